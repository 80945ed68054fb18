r"""Sample-quality metrics that a CPU notebook can afford (200–500 samples), each reported with
an honest standard error: the kernel distance (KID), the share of confidently classified
samples and the histogram of predicted classes (mode coverage).

KID (Bińkowski, Sutherland, Arbel & Gretton 2018, "Demystifying MMD GANs", Sec. 4) is the
unbiased estimate of the squared maximum mean discrepancy (Gretton et al. 2012, JMLR, Lemma 6,
eq. (3)) between two feature sets X = {x_i} (n rows) and Y = {y_j} (m rows), with the cubic
polynomial kernel k(x, y) = (xᵀy / d + 1)³ (d = feature dimension):

    MMD²_u = Σ_{i≠i'} k(x_i, x_i') / (n(n−1)) + Σ_{j≠j'} k(y_j, y_j') / (m(m−1)) − 2 Σ_{i,j} k(x_i, y_j) / (nm).

Unlike the Fréchet distance it has no small-sample bias (E[MMD²_u] = MMD², so it can be
negative when the two distributions agree), which is why notebook-sized comparisons use it
(CORRECTNESS.md, pitfall 13). That needs i.i.d. sets: for a set drawn with a fixed number per
class, such as the course's held-out digits, pass its labels and the within-set term is
averaged class by class (``evaluation.mmd``). Everything is computed on the CPU in float64.

Which numbers are reported (``KIDEstimate``):

* ``value``: MMD²_u over the full sets (all pairs: the lowest-variance unbiased estimate).
* ``stderr``: the standard error of ``value`` (its sampling error when X and Y are random draws
  from their distributions), estimated by the two-sample delete-one jackknife of the U-statistic
  (Arvesen 1969): var = (n−1)/n Σ_i (θ₋ᵢ − θ̄)² over the left-out x's plus the same over the y's.
  It is exact on average when the distributions differ, and conservative (up to √2 too large,
  Efron & Stein 1981) when they are equal and MMD² = 0.
* ``subset_mean``, ``subset_std``: the paper's subset method (and torchmetrics'): MMD²_u on
  ``subsets`` random subsets of ``subset_size`` rows of each set, their mean and their standard
  deviation (ddof = 0). ``subset_std`` is the spread of a KID computed on ``subset_size`` rows,
  not the error of ``value`` or of ``subset_mean`` (subsets overlap), so it is not used as one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..validation import FLOAT_DTYPES, _show_typed, check_float, check_generator, check_int
from .metrics import _batched, _check_images
from .mmd import mmd2

__all__ = ["Estimate", "KIDEstimate", "ClassHistogram", "kernel_distance", "classifier_kid",
           "confident_share", "class_histogram"]


@dataclass(frozen=True)
class Estimate:
    """A number with its standard error: ``value ± stderr`` from ``n`` samples.

    ``float(est)`` is the value; ``str(est)`` reads like ``0.0123 ± 0.0021``;
    ``f"{est:.3f}"`` formats both numbers with the given spec."""
    value: float
    stderr: float
    n: int

    def __float__(self) -> float:
        return float(self.value)

    def __format__(self, spec: str) -> str:
        if not spec:
            return str(self)
        return f"{self.value:{spec}} ± {self.stderr:{spec}}"

    def __str__(self) -> str:
        return f"{self.value:.4g} ± {self.stderr:.2g}"


@dataclass(frozen=True)
class KIDEstimate(Estimate):
    """KID over the full sets (``value``, ``stderr``, ``n`` = rows of the first set), the size of
    the second set ``n_b``, and the paper's subset statistics (``subset_mean``, ``subset_std`` over
    ``subsets`` subsets of ``subset_size`` rows; nan when ``subsets == 0``). See the module docstring."""
    n_b: int
    subset_mean: float
    subset_std: float
    subsets: int
    subset_size: int


@dataclass(frozen=True)
class ClassHistogram:
    """Predicted classes of ``n`` samples: ``counts[c]`` ± ``stderr[c]`` (standard error of the
    count, √(n p (1−p)) with the ½-rule at p = 0 or 1, see :func:`class_histogram`), ``shares[c]``
    = counts[c] / n ± ``share_stderr[c]``, and ``classes_present`` (mode coverage: classes with a
    count > 0). Tuples, so ``plt.bar(range(10), h.counts, yerr=h.stderr)`` works."""
    counts: tuple
    stderr: tuple
    shares: tuple
    share_stderr: tuple
    n: int
    classes_present: int

    def __str__(self) -> str:
        rows = [f"class {c}: {k:4d} ± {s:4.1f}  ({p:.1%})"
                for c, (k, s, p) in enumerate(zip(self.counts, self.stderr, self.shares))]
        return "\n".join(rows + [f"{self.classes_present} of {len(self.counts)} classes present, n = {self.n}"])


# ---------------------------------------------------------------------------- validation
def _features(name: str, value, min_rows: int = 2) -> torch.Tensor:
    """Features [N, d] (torch or numpy, any float dtype, any device) → CPU float64, checked."""
    if isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.floating):
            raise TypeError(f"{name} must hold floating-point features ({FLOAT_DTYPES}), got a numpy array of {value.dtype}")
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array of features [N, d], got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must hold floating-point features ({FLOAT_DTYPES}), got dtype {value.dtype}")
    if value.dim() != 2 or value.shape[1] < 1:
        raise ValueError(f"{name} must be features [N, d] (2-D, d >= 1), got shape {tuple(value.shape)}")
    if value.shape[0] < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} rows (samples) for an unbiased KID, got {value.shape[0]}")
    value = value.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must be finite, but it contains nan or inf")
    return value


def _share_stderr(k: int, n: int) -> float:
    """Binomial standard error of the share k/n: √(p(1−p)/n). At k = 0 or k = n that formula
    gives 0, which claims certainty; there p is replaced by (k + ½)/(n + 1) (half a success or
    failure added), giving about 0.7/n."""
    p = (k + 0.5) / (n + 1) if k in (0, n) else k / n
    return math.sqrt(p * (1 - p) / n)


# ---------------------------------------------------------------------------- KID
def _labels(name: str, labels, rows: int, features: str, min_rows: int = 2,
            why: str = "its within-class pairs") -> torch.Tensor | None:
    """Class labels of a stratified set: None, or integers [rows] with at least ``min_rows`` rows per class
    (2 for the within-class pairs; 3 where a jackknife leaves one out), else ValueError saying ``why``."""
    if labels is None:
        return None
    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(np.ascontiguousarray(labels))
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.is_complex() \
            or labels.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor of class labels [{rows}] or None, got {_show_typed(labels)}")
    if labels.shape != (rows,):
        raise ValueError(f"{name} must have one label per row of {features}, shape [{rows}], got {tuple(labels.shape)}")
    labels = labels.detach().to("cpu", torch.long)
    counts = torch.unique(labels, return_counts=True)
    if int(counts[1].min()) < min_rows:
        few = counts[1] < min_rows
        got = "a single row" if int(counts[1][few].max()) == 1 else f"fewer than {min_rows} rows"
        raise ValueError(f"{name}: every class needs at least {min_rows} rows for {why}, "
                         f"got {got} of class {', '.join(map(str, counts[0][few].tolist()[:5]))}")
    return labels


def _kid(a: torch.Tensor, b: torch.Tensor, subsets, subset_size, generator, labels_a=None,
         labels_b=None) -> KIDEstimate:
    n, m = a.shape[0], b.shape[0]
    subsets = check_int("subsets", subsets, lo=0)
    if subset_size is None:
        subset_size = max(2, min(n, m, 2000) // 2)
    subset_size = check_int("subset_size", subset_size, lo=2, hi=min(n, m))
    check_generator("generator", generator)
    value, stderr = mmd2(a, b, labels_a, labels_b, with_stderr=True)
    runs = []
    for _ in range(subsets):                     # the draws torchmetrics makes: a's permutation, then b's
        ia = torch.randperm(n, generator=generator)[:subset_size]
        ib = torch.randperm(m, generator=generator)[:subset_size]
        runs.append(mmd2(a[ia], b[ib]))
    sub = np.asarray(runs, dtype=np.float64)
    return KIDEstimate(value=value, stderr=stderr, n=n, n_b=m,
                       subset_mean=float(sub.mean()) if subsets else math.nan,
                       subset_std=float(sub.std()) if subsets else math.nan,
                       subsets=subsets, subset_size=subset_size)


def kernel_distance(features_a, features_b, *, subsets: int = 100, subset_size: int | None = None,
                    generator: torch.Generator | None = None, labels_a=None, labels_b=None) -> KIDEstimate:
    """Kernel distance (KID): the unbiased MMD² between two feature sets, with its standard error.

    ``features_a`` [n, d], ``features_b`` [m, d]: torch tensors or numpy arrays of any float
    dtype (float16, bfloat16, float32, float64) on any device, n, m >= 2 (>= 3 for a finite
    standard error); computed on the CPU in float64. Kernel k(x, y) = (xᵀy / d + 1)³, estimator
    MMD²_u of Gretton et al. 2012 eq. (3) as used for KID by Bińkowski et al. 2018 (Sec. 4).
    Unitless (squared feature-space distance under k); ≈ 0 (possibly < 0) for equal distributions.

    ``labels_a`` / ``labels_b``: integer class labels [n] / [m] of a set drawn stratified, with a
    fixed number of rows per class (the course's held-out digits: 50 of each), at least 2 per
    class; its within-set pairs are then averaged class by class (``evaluation.mmd``), because
    the plain MMD²_u is biased low for such a set (about −2×10⁻³ for the held-out digits). None
    (default): an i.i.d. set, the plain estimator.

    Returns a :class:`KIDEstimate`: ``value`` = MMD²_u over the full sets, ``stderr`` = its
    two-sample jackknife standard error (nan if a set or class has 2 rows). Additionally, the paper's subset
    statistics over ``subsets`` (>= 0; 0 skips them) random subsets of ``subset_size`` rows
    (2 <= subset_size <= min(n, m); default min(n, m) // 2, at most 1,000) drawn with
    ``torch.randperm(·, generator=generator)`` exactly as torchmetrics' KernelInceptionDistance
    draws them: ``subset_mean`` and ``subset_std`` (the spread of a ``subset_size``-row KID,
    not a standard error of ``value``; labels are not used there).

    Raises TypeError (not a tensor/array, integer dtype, bad generator, float labels) or ValueError
    (not 2-D, feature dimensions differ, fewer than 2 rows, nan/inf, subsets < 0, subset_size out
    of range, labels of the wrong shape or a class with one row), naming the argument.
    """
    a, b = _features("features_a", features_a), _features("features_b", features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_b must have the feature dimension of features_a ({a.shape[1]}), "
                         f"got shape {tuple(b.shape)}")
    return _kid(a, b, subsets, subset_size, generator, _labels("labels_a", labels_a, a.shape[0], "features_a"),
                _labels("labels_b", labels_b, b.shape[0], "features_b"))


def classifier_kid(samples: torch.Tensor, reference, classifier=None, *, subsets: int = 100,
                   subset_size: int | None = None, generator: torch.Generator | None = None,
                   batch_size: int = 500, reference_labels=None) -> KIDEstimate:
    """KID between the course classifier's 128-d features of ``samples`` and ``reference``.

    ``samples``: images [N, 1, 28, 28] (or 32×32) in [−1, 1], N >= 2 ([0, 1] or 0–255 images are
    refused with the conversion to use). ``reference``: images like ``samples``, or their
    precomputed features [M, d] from :func:`~ddim_edu.evaluation.metrics.classifier_features`
    (compute a reference once, reuse it). ``reference_labels``: the reference's classes when it
    was drawn stratified, as ``load_mnist("test")`` is (pass its labels: without them KID reads
    about 2×10⁻³ low; see :func:`kernel_distance`'s ``labels_b``). ``classifier``: default the
    shipped MNIST classifier. The other arguments and the result are those of
    :func:`kernel_distance`. Comparable only between runs of this course (a stand-in for
    Inception features).
    """
    a = _features("samples", _batched("features", samples, classifier, batch_size, "samples"))
    if isinstance(reference, (torch.Tensor, np.ndarray)) and reference.ndim == 2:
        b = _features("reference", reference)
    else:
        b = _features("reference", _batched("features", reference, classifier, batch_size, "reference"))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"reference features must have the classifier's feature dimension {a.shape[1]}, "
                         f"got shape {tuple(b.shape)}")
    return _kid(a, b, subsets, subset_size, generator, None,
                _labels("reference_labels", reference_labels, b.shape[0], "reference"))


# ---------------------------------------------------------------------------- classifier shares
def _probabilities(x, classifier, batch_size: int) -> torch.Tensor:
    _check_images("x", x)
    if x.shape[0] < 1:
        raise ValueError(f"x must hold at least 1 image, got shape {tuple(x.shape)}")
    logits = _batched("forward", x, classifier, batch_size)
    if logits.dim() != 2 or logits.shape[0] != x.shape[0]:
        raise ValueError(f"classifier must return logits [N, num_classes], got shape {tuple(logits.shape)}")
    return torch.softmax(logits.double(), dim=1)


def confident_share(x: torch.Tensor, classifier=None, threshold: float = 0.9, batch_size: int = 500) -> Estimate:
    """Share of images whose top softmax probability exceeds ``threshold``, ± its standard error.

    ``x``: images [N, 1, 28, 28] (or 32×32) in [−1, 1], N >= 1. ``threshold`` in (0, 1).
    ``classifier``: default the shipped MNIST classifier. A proxy for "looks like a clear digit".
    Value p = k/N (k images with max softmax > threshold); standard error √(p(1−p)/N), the
    binomial one, except at k = 0 or k = N, where p is replaced by (k + ½)/(N + 1) so the error is
    not 0 (about 0.7/N). Returns an :class:`Estimate` (value, stderr, n = N).
    Raises TypeError/ValueError naming ``x``, ``threshold`` or ``batch_size``.
    """
    threshold = check_float("threshold", threshold, lo=0.0, hi=1.0, lo_open=True)
    if threshold >= 1.0:
        raise ValueError(f"threshold must be in (0, 1) (a probability strictly between 0 and 1), got {threshold}")
    p = _probabilities(x, classifier, batch_size)
    n, k = p.shape[0], int((p.max(dim=1).values > threshold).sum())
    return Estimate(value=k / n, stderr=_share_stderr(k, n), n=n)


def class_histogram(x: torch.Tensor, classifier=None, batch_size: int = 500) -> ClassHistogram:
    """Counts of predicted classes (argmax of the classifier's logits) with standard errors.

    ``x``: images [N, 1, 28, 28] (or 32×32) in [−1, 1], N >= 1; ``classifier``: default the
    shipped MNIST classifier (10 classes, digits 0–9). The count of class c is one cell of a
    multinomial: standard error √(N p_c (1 − p_c)) with p_c = count/N (at a count of 0 or N, p_c
    = (count + ½)/(N + 1), as in :func:`confident_share`). ``classes_present`` counts classes
    predicted at least once (mode coverage: a model that drops a digit shows fewer than 10).
    Returns a :class:`ClassHistogram`. Raises TypeError/ValueError naming ``x`` or ``batch_size``.
    """
    p = _probabilities(x, classifier, batch_size)
    n = p.shape[0]
    counts = [int(c) for c in torch.bincount(p.argmax(dim=1), minlength=p.shape[1])]
    share_se = [_share_stderr(k, n) for k in counts]
    return ClassHistogram(counts=tuple(counts), stderr=tuple(n * s for s in share_se),
                          shares=tuple(k / n for k in counts), share_stderr=tuple(share_se),
                          n=n, classes_present=sum(k > 0 for k in counts))
