r"""Comparing two sample sets made from the same x_T: the difference of their kernel distances
to one reference, with the standard error of the paired difference.

Table 1's cells share their x_T (common random numbers: η = 0 against η = 1 at one S, or two
models on the same x_T and noise seed), so the i-th samples of two cells are paired. The KIDs of
the two cells to the same reference are then strongly correlated, and the error of their
difference is far smaller than √(se_A² + se_B²), the error of two independent KIDs, which is
what a table of separate KIDs allows. :func:`kid_difference` estimates it directly: the
two-sample delete-one jackknife of D = MMD²_u(A, R) − MMD²_u(B, R) that leaves out a pair
(a_i, b_i) together, or one reference row (``evaluation.mmd``; Arvesen 1969 for the jackknife
of U-statistics, Bińkowski et al. 2018, Sec. 4, for KID).

With ``scale=c`` it is KID(A, R) − c·KID(B, R) instead, with the same paired jackknife: whether
A's distance is within c times B's ("within 3× of the shipped model's") is D_c ≤ 0, and its
standard error says whether the sample sizes can tell. c·KID(B, R) carries c times B's own error,
so D_c's error is at least |c·se_B − se_A| (the jackknife variance is a quadratic form: Cauchy–
Schwarz), and by the same algebra var(D_c) = (1 − c)·se_A² + (c² − c)·se_B² + c·se_D², with se_D
the error of the plain difference (c = 1). Where B's KID is itself within about one standard
error of 0, as the shipped model's is at 2,000 samples against the 500 held-out digits, that
error is comparable to the threshold c·KID(B, R).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..validation import check_float
from .kernel import Estimate, _features, _labels
from .mmd import mmd2_difference

__all__ = ["kid_difference", "DifferenceEstimate", "scaled_difference_stderr"]


@dataclass(frozen=True)
class DifferenceEstimate(Estimate):
    """A paired difference ``value ± stderr`` over ``n`` pairs, and the error's two parts:
    ``stderr_samples`` from the paired sample rows (it shrinks as 1/√n with more samples) and
    ``stderr_reference`` from the reference rows (fixed by the reference set's size);
    stderr² = stderr_samples² + stderr_reference²."""
    stderr_samples: float
    stderr_reference: float


def kid_difference(features_a, features_b, reference, *, labels_ref=None, scale: float = 1.0) -> DifferenceEstimate:
    """KID(A, R) − scale · KID(B, R) for paired sample sets, ± its paired jackknife standard error.

    ``features_a``, ``features_b``: features [n, d] (torch or numpy, any float dtype and device)
    of two sample sets whose i-th rows are paired (e.g. made from the same x_T), n >= 3.
    ``reference``: features [m, d] of the reference, m >= 3; ``labels_ref``: its integer class
    labels [m] when it was drawn stratified (the course's held-out digits: pass them, as for
    :func:`~ddim_edu.evaluation.kernel.kernel_distance`), at least 3 rows a class. Computed on the
    CPU in float64. ``value`` equals ``kernel_distance(A, R).value − kernel_distance(B, R).value``
    (same labels); negative means A is nearer the reference. ``scale``: a finite c >= 0 (default
    1); ``value`` is then ``kernel_distance(A, R).value − c · kernel_distance(B, R).value``, and
    c = 0 gives A's KID with its own jackknife error. ``stderr``: see the module docstring
    (conservative, like the jackknife of a single KID), with its parts from the samples and from the
    reference (:class:`DifferenceEstimate`). ``n``: pairs.

    Raises TypeError (not a tensor/array, integer dtype, float labels, a scale that is not a real
    number) or ValueError (not 2-D,
    fewer than 3 rows, nan/inf, feature dimensions that differ, A and B of different sizes,
    labels of the wrong shape or a class with fewer than 3 rows, a scale that is negative or not
    finite), naming the argument.
    """
    scale = _check_scale(scale)
    a = _features("features_a", features_a, min_rows=3)
    b = _features("features_b", features_b, min_rows=3)
    ref = _features("reference", reference, min_rows=3)
    if b.shape != a.shape:
        raise ValueError(f"features_b must be paired row by row with features_a, shape {tuple(a.shape)}, "
                         f"got {tuple(b.shape)}")
    if ref.shape[1] != a.shape[1]:
        raise ValueError(f"reference must have the feature dimension of features_a ({a.shape[1]}), "
                         f"got shape {tuple(ref.shape)}")
    labels = _labels("labels_ref", labels_ref, ref.shape[0], "reference", min_rows=3,
                     why="the jackknife, which leaves one out of its within-class pairs")
    value, stderr, se_samples, se_ref = mmd2_difference(a, b, ref, labels, scale=scale, parts=True)
    return DifferenceEstimate(value=value, stderr=stderr, n=a.shape[0], stderr_samples=se_samples,
                              stderr_reference=se_ref)


def scaled_difference_stderr(se_a: float, se_b: float, se_difference: float, scale: float) -> float:
    """The paired error of KID(A, R) − scale · KID(B, R) from three errors a table already holds: A's
    and B's own (``kernel_distance``) and that of their plain paired difference (``kid_difference``,
    scale 1), all on the same pairs and reference. The jackknife variance is a quadratic form, so
    var = (1 − c)·se_A² + (c² − c)·se_B² + c·se_D² (module docstring); it equals
    ``kid_difference(..., scale=c).stderr`` up to rounding. Floats in, float out (same units as the
    errors); a slightly negative variance from rounding gives 0. Raises TypeError / ValueError for an
    error or scale that is not a finite real >= 0, naming it."""
    c = _check_scale(scale)
    se = [_check_scale(v, name) for v, name in ((se_a, "se_a"), (se_b, "se_b"), (se_difference, "se_difference"))]
    var = (1 - c) * se[0] ** 2 + (c * c - c) * se[1] ** 2 + c * se[2] ** 2
    return math.sqrt(max(var, 0.0))


def _check_scale(value, name: str = "scale") -> float:
    value = check_float(name, value, lo=0.0)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number in [0.0, inf), got {value}")
    return value
