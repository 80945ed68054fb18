r"""Sample-quality and reconstruction metrics.

* Fréchet distance between Gaussians (Heusel et al. 2017; DDIM Table 1 reports FID):
  d² = ‖μ₁ − μ₂‖² + tr C₁ + tr C₂ − 2 tr (C₁^{1/2} C₂ C₁^{1/2})^{1/2}, in float64, with
  matrix square roots from symmetric eigen-decompositions (no scipy).
* Classifier FID: the same distance between the statistics of a small MNIST classifier's
  128-d penultimate features (``ddim_edu.evaluation.classifier``) — a course-internal stand-in for
  Inception FID, comparable only between runs of this course.
* Reconstruction error as DDIM Table 2 reports it: per-dimension MSE on [0, 1].
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from .classifier import load_classifier
from ..validation import check_image_range, check_int, check_same_shape, check_tensor

__all__ = ["frechet_distance", "feature_statistics", "classifier_features", "classifier_fid",
           "predict_labels", "predict_proba", "classifier_accuracy", "reconstruction_mse", "load_classifier"]


def _as64(name: str, value, dims: int) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")
    if value.dim() != dims:
        raise ValueError(f"{name} must have {dims} dimension(s), got shape {tuple(value.shape)}")
    value = value.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must be finite, but it contains nan or inf")
    return value


def _check_cov(name: str, c: torch.Tensor) -> None:
    """A covariance must be symmetric and positive semi-definite (up to rounding): the square
    roots below symmetrise and clip, so any other matrix would give a silently wrong distance."""
    scale = max(float(c.abs().max()), 1e-300)
    asym = float((c - c.T).abs().max())
    if asym > 1e-5 * scale:
        raise ValueError(f"{name} must be a symmetric covariance matrix, but max |{name} - {name}.T| = {asym:.3g} "
                         f"(largest entry {scale:.3g}); pass a covariance, e.g. from feature_statistics")
    w = torch.linalg.eigvalsh((c + c.T) / 2)
    w_min = float(w.min())
    if w_min < -1e-5 * max(float(w.abs().max()), 1e-300):     # rounding (float32 inputs) stays far above
        raise ValueError(f"{name} must be positive semi-definite (a covariance), but its smallest eigenvalue is "
                         f"{w_min:.3g} (largest entry {scale:.3g}); pass a covariance, e.g. from feature_statistics")


def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric PSD matrix via eigh (tiny negative eigenvalues clipped)."""
    w, v = torch.linalg.eigh((a + a.T) / 2)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2).

    tr (C₁^{1/2} C₂ C₁^{1/2})^{1/2} is the sum of square roots of the eigenvalues of the
    symmetric PSD matrix C₁^{1/2} C₂ C₁^{1/2} (same eigenvalues as C₁C₂). Computed in
    float64; returns a Python float ≥ 0.
    """
    mu1, mu2 = _as64("mu1", mu1, 1), _as64("mu2", mu2, 1)
    cov1, cov2 = _as64("cov1", cov1, 2), _as64("cov2", cov2, 2)
    d = mu1.shape[0]
    for name, c in (("cov1", cov1), ("cov2", cov2)):
        if c.shape != (d, d):
            raise ValueError(f"{name} must have shape [{d}, {d}] to match mu1 [{d}], got {tuple(c.shape)}")
    if mu2.shape != (d,):
        raise ValueError(f"mu2 must have shape [{d}] like mu1, got {tuple(mu2.shape)}")
    _check_cov("cov1", cov1)
    _check_cov("cov2", cov2)
    s1 = _sqrtm_psd(cov1)
    m = s1 @ cov2 @ s1
    tr_covmean = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0).sqrt().sum()
    fd = (mu1 - mu2).pow(2).sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * tr_covmean
    return max(float(fd), 0.0)


def feature_statistics(features) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean [d], covariance [d, d]) of ``features`` [N, d], float64, unbiased (N − 1) like
    ``np.cov(rowvar=False)`` in the reference FID code."""
    f = _as64("features", features, 2)
    if f.shape[0] < 2:
        raise ValueError(f"features needs at least 2 rows to estimate a covariance, got {f.shape[0]}")
    mu = f.mean(0)
    c = f - mu
    return mu, (c.T @ c) / (f.shape[0] - 1)


@functools.lru_cache(maxsize=4)
def _default_classifier(device: str):
    return load_classifier(device=device)


def _classifier_and_device(classifier, x: torch.Tensor):
    if classifier is None:
        classifier = _default_classifier(str(x.device))
    if not hasattr(classifier, "features"):
        raise TypeError(f"classifier must have a features(x) method (e.g. MNISTClassifier), got {type(classifier).__name__}")
    return classifier, next(classifier.parameters()).device


def _check_images(name: str, x) -> torch.Tensor:
    check_tensor(name, x, floating=True)
    if x.dim() != 4 or x.shape[1] != 1 or x.shape[-1] not in (28, 32):
        raise ValueError(f"{name} must be MNIST-like images [N, 1, 28, 28] (or 32x32) in [-1, 1], got {tuple(x.shape)}")
    return check_image_range(name, x)


@torch.no_grad()
def _batched(method: str, x: torch.Tensor, classifier, batch_size: int, name: str = "x") -> torch.Tensor:
    """Run ``classifier.<method>`` over ``x`` in eval mode, batch by batch; results on the CPU."""
    _check_images(name, x)
    batch_size = check_int("batch_size", batch_size, lo=1)
    classifier, dev = _classifier_and_device(classifier, x)
    was_training = classifier.training
    classifier.eval()
    fn = getattr(classifier, method)
    out = [fn(x[i:i + batch_size].to(dev, torch.float32)).cpu() for i in range(0, x.shape[0], batch_size)]
    classifier.train(was_training)
    return torch.cat(out)


def classifier_features(x: torch.Tensor, classifier=None, batch_size: int = 500) -> torch.Tensor:
    """Penultimate-layer features [N, 128] (float64, CPU) of images in [-1, 1] ([0, 1] or 0-255
    images are refused: convert with 2x − 1 or x/127.5 − 1)."""
    return _batched("features", x, classifier, batch_size).double()


def classifier_fid(samples: torch.Tensor, reference, classifier=None, batch_size: int = 500) -> float:
    """Fréchet distance between classifier features of ``samples`` and ``reference``.

    ``reference``: images [M, 1, 28, 28] in [-1, 1], or precomputed ``(mu, cov)`` from
    :func:`feature_statistics`. ``classifier``: default the shipped MNIST classifier
    (``load_classifier()``). Like FID it is biased upwards for small N: compare values
    computed with the same numbers of images.
    """
    _check_images("samples", samples)
    if not (isinstance(reference, (tuple, list)) and len(reference) == 2):
        _check_images("reference", reference)
    mu1, cov1 = feature_statistics(_batched("features", samples, classifier, batch_size, "samples").double())
    if isinstance(reference, (tuple, list)) and len(reference) == 2:
        mu2, cov2 = reference
    else:
        mu2, cov2 = feature_statistics(_batched("features", reference, classifier, batch_size, "reference").double())
    return frechet_distance(mu1, cov1, mu2, cov2)


def predict_labels(x: torch.Tensor, classifier=None, batch_size: int = 500) -> torch.Tensor:
    """Predicted digit classes, LongTensor [N] on the CPU."""
    return _batched("forward", x, classifier, batch_size).argmax(1)


def predict_proba(x: torch.Tensor, classifier=None, batch_size: int = 500) -> torch.Tensor:
    """Class probabilities [N, num_classes] (softmax of the logits; float64, CPU; rows sum to 1)."""
    return torch.softmax(_batched("forward", x, classifier, batch_size).double(), dim=1)


def classifier_accuracy(x: torch.Tensor, labels: torch.Tensor, classifier=None, batch_size: int = 500) -> float:
    """Fraction of ``x`` that the classifier labels as ``labels``."""
    check_tensor("labels", labels)
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape [{x.shape[0]}] (one per image), got {tuple(labels.shape)}")
    return float((predict_labels(x, classifier, batch_size) == labels.cpu().long()).double().mean())


def reconstruction_mse(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean"):
    """Per-dimension MSE on [0, 1] between images ``x`` and ``y`` given in [−1, 1]
    (DDIM Table 2's measure): mean(((x+1)/2 − (y+1)/2)²) = mean((x − y)²) / 4. Images in
    [0, 1] or 0–255 are refused (convert with 2x − 1 or x/127.5 − 1).
    ``reduction="none"`` returns one value per example (float64 tensor [N])."""
    check_tensor("x", x, floating=True)
    check_tensor("y", y, floating=True)
    check_same_shape("y", y, "x", x)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    check_image_range("x", x)
    check_image_range("y", y)
    d = ((x.double() - y.double().to(x.device)) / 2).pow(2)
    if reduction == "none":
        return d.reshape(d.shape[0], -1).mean(1).cpu() if d.dim() > 1 else d.cpu()
    return float(d.mean())
