"""Measuring samples: the course's MNIST classifier and the metrics built on its features
(classifier-FID, predicted labels), and the reconstruction error of Table 2."""
from . import classifier, metrics
from .classifier import load_classifier
from .metrics import (classifier_accuracy, classifier_features, classifier_fid, feature_statistics,
                      frechet_distance, predict_labels, reconstruction_mse)
