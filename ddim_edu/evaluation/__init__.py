"""Measuring samples: the course's MNIST classifier and the metrics built on its features
(classifier-FID, predicted labels), small-sample metrics with standard errors (KID, the paired difference of two KIDs or KID minus c times another, confident
share, class histogram, class survival, the share of samples that copy a training image, a toy distribution's distance to its exact mixture), and the reconstruction error of Table 2 (loaded on first use,
so ``python -m ddim_edu.evaluation.classifier`` runs the module once)."""
from .._lazy import lazy_attributes

_METRICS = ("classifier_accuracy", "classifier_features", "classifier_fid", "feature_statistics",
            "frechet_distance", "predict_labels", "predict_proba", "reconstruction_mse")
_KERNEL = ("Estimate", "KIDEstimate", "ClassHistogram", "kernel_distance", "classifier_kid", "confident_share",
           "class_histogram")
_OTHERS = {"ClassSurvival": ".survival", "class_survival": ".survival", "mean_estimate": ".survival", "share_estimate": ".survival",
           "mixture_mmd": ".toy_distance", "sampler_grid_distances": ".toy_distance",
           "survival": ".survival", "toy_distance": ".toy_distance",
           "CopyShare": ".memorisation", "copy_share": ".memorisation", "nearest_distances": ".memorisation",
           "memorisation": ".memorisation",
           "kid_difference": ".compare", "DifferenceEstimate": ".compare", "scaled_difference_stderr": ".compare",
           "compare": ".compare"}
__getattr__, __dir__ = lazy_attributes(__name__, {
    **{name: ".metrics" for name in _METRICS}, **{name: ".kernel" for name in _KERNEL}, **_OTHERS,
    "load_classifier": ".classifier", "MNISTClassifier": ".classifier",
    "classifier": ".classifier", "metrics": ".metrics", "kernel": ".kernel"})
del lazy_attributes, _METRICS, _KERNEL, _OTHERS
