r"""Does a model copy its training images? The nearest training neighbours of its samples.

A network that memorises its training set returns near-copies of training images. A held-out
ε-loss that rises while the training loss falls (notebook 02, ``benchmarks/training_curve.py``)
says so on average; this module asks it of each sample, in pixel space:

* :func:`nearest_distances`: for every image, the distances to its k nearest images of a
  reference set (d₁ ≤ d₂ ≤ … ≤ d_k) and their indices.
* :func:`copy_share`: the share of samples that lie closer to a training image than almost
  every genuinely new image does. The threshold is the q-quantile of the held-out images' own
  distances to their nearest training image, so a model that draws new images from the data
  distribution has a copy share of about q, and a model that hands back its training images
  has one near 1. Its standard error is binomial over the samples, √(p(1−p)/N); the
  threshold's own sampling error (from the held-out set's size) is not included.

A distance is the root mean square over the D pixels on the course's [−1, 1] scale,
‖a − b‖₂ / √D (half of it on the [0, 1] pixel scale), computed on the CPU in
float64 without the matrix-product shortcut, so an exact copy is at distance 0.

Source: the nearest-neighbour check used to find memorised samples of diffusion models
(Carlini et al. 2023, "Extracting Training Data from Diffusion Models", USENIX Security,
Sec. 4), calibrated here against held-out images instead of a fixed threshold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..validation import check_float, check_image_range, check_int, check_tensor
from .kernel import Estimate, _share_stderr

__all__ = ["CopyShare", "nearest_distances", "copy_share"]


@dataclass(frozen=True, eq=False)
class CopyShare(Estimate):
    """Share of samples nearer a training image than the ``q``-quantile ``threshold`` of the
    held-out images' nearest-training distances (``value`` ± ``stderr`` over ``n`` samples), and
    per image: the samples' ``distances`` and ``indices`` of their nearest training image
    ([N] float64 / long) and the ``held_out_distances`` ([M] float64)."""
    q: float = 0.0
    threshold: float = 0.0
    distances: torch.Tensor = field(repr=False, default=None)
    indices: torch.Tensor = field(repr=False, default=None)
    held_out_distances: torch.Tensor = field(repr=False, default=None)


def _flat_images(name: str, x) -> torch.Tensor:
    check_tensor(name, x, floating=True, min_dim=2)
    if x.layout != torch.strided or x.is_meta:
        raise TypeError(f"{name} must be a dense tensor that holds its values (layout torch.strided, not on the "
                        f"meta device), got layout {x.layout} on device {x.device}")
    if x.shape[0] == 0 or x[0].numel() == 0:
        raise ValueError(f"{name} must hold at least one image of at least one pixel, got shape {tuple(x.shape)}")
    check_image_range(name, x)
    x = x.detach().to("cpu", torch.float64).flatten(1)
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite (it holds nan or inf)")
    return x


def nearest_distances(x: torch.Tensor, reference: torch.Tensor, k: int = 1,
                      batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest images of ``reference`` to each image of ``x``.

    ``x``: [N, ...] and ``reference``: [M, ...] images in [−1, 1] of the same shape (any float
    dtype, any device; e.g. [N, 1, 28, 28]). ``k``: 1 <= k <= M. Returns ``(distances, indices)``,
    both [N, k], sorted nearest first: RMS per-pixel distances (float64, CPU; see the module
    docstring) and the rows of ``reference`` they belong to (long). ``x`` is compared with
    ``reference`` ``batch_size`` rows at a time. Raises TypeError for non-float, sparse or
    meta tensors and ValueError for shapes that differ, empty sets, images of no pixels,
    nan/inf, a k out of range or images outside [−1, 1] ([0, 1] and 0-255 images are refused).
    """
    return _nearest(x, reference, k, batch_size, ("x", "reference"))


def _nearest(x, reference, k, batch_size, names):
    """:func:`nearest_distances`, its errors naming the caller's arguments ``names``."""
    a, b = _flat_images(names[0], x), _flat_images(names[1], reference)
    if x.shape[1:] != reference.shape[1:]:
        raise ValueError(f"{names[0]} and {names[1]} must hold images of one shape, got {tuple(x.shape[1:])} "
                         f"and {tuple(reference.shape[1:])}")
    k = check_int("k", k, lo=1, hi=b.shape[0])
    batch_size = check_int("batch_size", batch_size, lo=1)
    dists, idx = [], []
    for i in range(0, a.shape[0], batch_size):
        d = torch.cdist(a[i:i + batch_size], b, compute_mode="donot_use_mm_for_euclid_dist")
        top = d.topk(k, dim=1, largest=False, sorted=True)
        dists.append(top.values)
        idx.append(top.indices)
    return torch.cat(dists) / math.sqrt(a.shape[1]), torch.cat(idx)


def copy_share(samples: torch.Tensor, train: torch.Tensor, held_out: torch.Tensor, q: float = 0.05,
               batch_size: int = 500) -> CopyShare:
    """Share of ``samples`` closer to their nearest ``train`` image than the ``q``-quantile of the
    ``held_out`` images' distances to theirs (see the module docstring).

    ``samples`` [N, ...], ``train`` [M, ...], ``held_out`` [H, ...]: images in [−1, 1] of one
    shape (any float dtype and device), ``held_out`` disjoint from ``train``. ``q``: in (0, 1);
    the threshold is ``torch.quantile`` of the H held-out distances (linear interpolation).
    Returns :class:`CopyShare`: about ``q`` for a model whose samples are as new as held-out
    images, near 1 for one that returns its training images. Raises as :func:`nearest_distances`
    does (naming ``samples``, ``train``, ``held_out``), and ValueError for ``q`` outside (0, 1) or a
    ``held_out`` set whose q-quantile lies at distance 0 (it overlaps ``train``).
    """
    q = check_float("q", q)
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q}")
    d_samples, i_samples = _nearest(samples, train, 1, batch_size, ("samples", "train"))
    d_held, _ = _nearest(held_out, train, 1, batch_size, ("held_out", "train"))
    threshold = float(torch.quantile(d_held[:, 0], q))
    if threshold == 0.0:
        raise ValueError(f"held_out must be images not in train, but at least a share q = {q} of them "
                         "are exact copies of training images (the threshold would be 0)")
    below = d_samples[:, 0] < threshold
    n, k = below.numel(), int(below.sum())
    return CopyShare(value=k / n, stderr=_share_stderr(k, n), n=n, q=q, threshold=threshold,
                     distances=d_samples[:, 0], indices=i_samples[:, 0], held_out_distances=d_held[:, 0])
