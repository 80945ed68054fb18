"""Measuring samples: the course's MNIST classifier and the metrics built on its features
(classifier-FID, predicted labels), and the reconstruction error of Table 2 (loaded on first use,
so ``python -m ddim_edu.evaluation.classifier`` runs the module once)."""
from .._lazy import lazy_attributes

_METRICS = ("classifier_accuracy", "classifier_features", "classifier_fid", "feature_statistics",
            "frechet_distance", "predict_labels", "reconstruction_mse")
__getattr__, __dir__ = lazy_attributes(__name__, {
    **{name: ".metrics" for name in _METRICS}, "load_classifier": ".classifier", "MNISTClassifier": ".classifier",
    "classifier": ".classifier", "metrics": ".metrics"})
del lazy_attributes, _METRICS
