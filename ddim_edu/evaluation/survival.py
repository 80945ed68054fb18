r"""Judging a reconstruction by what a reader sees, and means with their standard errors.

* :func:`class_survival`: the share of images whose class, as the course classifier reads it,
  is the same after a round trip (DDIM encode → decode, an edit, ...) as before, with its
  binomial standard error √(p(1−p)/N). The class is compared with the classifier's reading of
  the original, not with the dataset label, so the classifier's own mistakes on the originals
  do not count as losses. It complements the per-dimension MSE of Table 2: a small MSE can
  hide a "1" that came back as an "8".
* :func:`mean_estimate`: the mean of N independent values ± its standard error s/√N (s the
  sample standard deviation, ddof = 1). For a paired comparison (the same digits, or the same
  (t, ε) draws, under two conditions) pass the per-item differences: the pairing removes the
  variation the two conditions share, so the error of the difference is far smaller than the
  two separate errors combined.
* :func:`share_estimate`: a share k/N of independent yes/no outcomes (an accuracy, a confident
  share) ± its binomial standard error, which does not claim certainty at k = 0 or k = N.

All three return :class:`~ddim_edu.evaluation.kernel.Estimate` (value, stderr, n), so a notebook can
state a margin as ``estimate.value / estimate.stderr`` standard errors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..validation import check_int
from .kernel import Estimate, _share_stderr
from .metrics import predict_labels

__all__ = ["ClassSurvival", "class_survival", "mean_estimate", "share_estimate"]


@dataclass(frozen=True, eq=False)
class ClassSurvival(Estimate):
    """Share of images whose predicted class survived (``value`` ± ``stderr`` over ``n``), and
    per image: ``kept`` (bool [N]), the classes ``before`` and ``after`` (LongTensor [N])."""
    kept: torch.Tensor = field(repr=False, default=None)
    before: torch.Tensor = field(repr=False, default=None)
    after: torch.Tensor = field(repr=False, default=None)


def class_survival(originals: torch.Tensor, decoded: torch.Tensor, classifier=None,
                   batch_size: int = 500) -> ClassSurvival:
    """Share of ``decoded[i]`` that the classifier puts in the same class as ``originals[i]``.

    ``originals``, ``decoded``: images of the same shape [N, 1, H, W] in [−1, 1] (``decoded`` is
    clamped to [−1, 1] first: x̂₀ may overshoot a little). ``classifier``: default the shipped
    MNIST classifier. Standard error: binomial, √(p(1−p)/N), with p = (k + ½)/(N + 1) at k = 0 or
    k = N so that it is never 0. Raises ValueError when the shapes differ or N = 0.
    """
    if not isinstance(originals, torch.Tensor) or not isinstance(decoded, torch.Tensor):
        raise TypeError(f"originals and decoded must be tensors, got {type(originals).__name__} "
                        f"and {type(decoded).__name__}")
    if originals.shape != decoded.shape:
        raise ValueError(f"decoded must have the shape of originals {tuple(originals.shape)}, "
                         f"got {tuple(decoded.shape)}")
    if originals.dim() < 1 or originals.shape[0] == 0:
        raise ValueError(f"originals must hold at least one image, got shape {tuple(originals.shape)}")
    before = predict_labels(originals, classifier, batch_size)
    after = predict_labels(decoded.clamp(-1, 1), classifier, batch_size)
    kept = before == after
    n, k = kept.numel(), int(kept.sum())
    return ClassSurvival(value=k / n, stderr=_share_stderr(k, n), n=n, kept=kept, before=before, after=after)


def mean_estimate(values) -> Estimate:
    """Mean of ``values`` (1-D: tensor, array or list of numbers; N >= 2) ± s/√N (ddof = 1)."""
    v = torch.as_tensor(values, dtype=torch.float64).detach().cpu()
    if v.dim() != 1 or v.numel() < 2:
        raise ValueError(f"values must be 1-D with at least 2 numbers, got shape {tuple(v.shape)}")
    if not torch.isfinite(v).all():
        raise ValueError("values must be finite")
    n = v.numel()
    return Estimate(value=float(v.mean()), stderr=float(v.std(unbiased=True)) / math.sqrt(n), n=n)


def share_estimate(k: int, n: int) -> Estimate:
    """The share k/n of n independent yes/no outcomes (ints, 0 <= k <= n, n >= 1) ± its binomial
    standard error √(p(1−p)/n); at k = 0 or k = n, where that formula gives 0 and claims
    certainty, p is replaced by (k + ½)/(n + 1) (about 0.7/n). Raises TypeError/ValueError
    naming ``k`` or ``n``."""
    n = check_int("n", n, lo=1)
    k = check_int("k", k, lo=0, hi=n)
    return Estimate(value=k / n, stderr=_share_stderr(k, n), n=n)
