"""The exercises of notebook 05 (interpolation in x_T, appendix D.5): slerp, the norm of a lerp
midpoint and the roughness of a path, each with its reference solution, hint and known mistakes.

The solutions are the notebook's exercise functions, filled in; see :mod:`ddim_edu.course`
for why this module, not the notebook, is their source of truth.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from .engine import Case, Exercise
from .fixtures import seeded_randn as _randn
from ..diffusion import lerp, slerp

NOTEBOOK = "05_interpolation.ipynb"
ex05 = SimpleNamespace()


# ----------------------------------------------------------------------------- ex05.slerp
def my_slerp(z0, z1, alpha):
    """Spherical linear interpolation per example (DDIM appendix D.5); z0, z1: [B, ...]."""
    f0, f1 = z0.flatten(1), z1.flatten(1)
    theta = torch.arccos(((f0 * f1).sum(1) / (f0.norm(dim=1) * f1.norm(dim=1))).clamp(-1, 1))
    w0 = torch.sin((1 - alpha) * theta) / torch.sin(theta)
    w1 = torch.sin(alpha * theta) / torch.sin(theta)
    return (w0[:, None] * f0 + w1[:, None] * f1).reshape(z0.shape)


def _slerp_cases():
    a, b = _randn(6, 1, 8, 8), _randn(6, 1, 8, 8, seed=1)
    out = [Case(f"[6, 1, 8, 8] float64, α = {al}", (a, b, al)) for al in (0.3, 0.0, 0.5, 1.0)]
    return out + [Case("batch of one, [1, 16] float32, α = 0.7", (_randn(1, 16, dtype=torch.float32),
                                                                  _randn(1, 16, seed=2, dtype=torch.float32), 0.7))]


ex05.slerp = Exercise(
    "ex05.slerp", slerp, solution=my_slerp, rtol=1e-6, atol=1e-8, cases=_slerp_cases,
    mistakes=[(lambda a, b, al: lerp(a, b, al), "that is lerp (a straight line); slerp follows the arc"),
              (lambda a, b, al: slerp(a.reshape(1, -1), b.reshape(1, -1), al).reshape(a.shape),
               "one angle for the whole batch: compute θ per example (flatten all dimensions but the first)")],
    hint="flatten to [B, D]; θ = arccos(⟨z0, z1⟩/(‖z0‖‖z1‖)) per row; sin((1−α)θ)/sin θ z0 + sin(αθ)/sin θ z1.")


# ----------------------------------------------------------------------------- ex05.midpoint_norm
def my_lerp_midpoint_norm(d):
    """The (approximate) norm of (z0 + z1)/2 for independent z0, z1 ~ N(0, I_d)."""
    return math.sqrt(d / 2)


def _midpoint_norm_reference(d):
    """‖(z0 + z1)/2‖ with ‖z0‖ ≈ ‖z1‖ ≈ √d and z0 ⟂ z1 (independent directions in high dimension)."""
    return math.hypot(math.sqrt(d), math.sqrt(d)) / 2


ex05.midpoint_norm = Exercise(
    "ex05.midpoint_norm", _midpoint_norm_reference, solution=my_lerp_midpoint_norm, rtol=0.02, atol=0.0,
    cases=lambda: [Case(f"d = {d}", (d,)) for d in (64, 784, 3072, 100_000)],
    mistakes=[(lambda d: math.sqrt(d), "√d is the norm of one code; (z0 + z1)/2 has variance 1/2 per dimension"),
              (lambda d: d / 2, "take the square root: ‖z‖ ≈ √(E‖z‖²)"),
              (lambda d: math.sqrt(d) / 2, "the two halves are independent: their variances add, (1/4 + 1/4) d")],
    hint="(z0 + z1)/2 ~ N(0, ½ I_d), and ‖z‖ ≈ √(E‖z‖²) in high dimension.")


# ----------------------------------------------------------------------------- ex05.roughness
def my_roughness(paths):
    """mean |x_f − x_{f−1}| over paths, frames f = 1 … F−1 and pixels, on [0, 1]."""
    x = ((paths + 1) / 2).clamp(0, 1)
    return float((x[:, 1:] - x[:, :-1]).abs().mean())


def _paths(*shape, seed=0):
    return (_randn(*shape, seed=seed) * 0.8).to(torch.float32)


def _roughness_reference(paths):
    """Half the mean |Δx| between neighbouring frames on [−1, 1] (clamped first): the same on [0, 1]."""
    return float(torch.diff(paths.clamp(-1, 1), dim=1).abs().mean() / 2)


ex05.roughness = Exercise(
    "ex05.roughness", _roughness_reference, solution=my_roughness, rtol=1e-5, atol=1e-7,
    cases=lambda: [Case("paths [3, 7, 1, 8, 8] (some values outside [−1, 1])", (_paths(3, 7, 1, 8, 8),)),
                   Case("one path of two frames", (_paths(1, 2, 1, 4, 4, seed=1),))],
    mistakes=[(lambda p: float((p[:, 1:] - p[:, :-1]).abs().mean()), "rescale to [0, 1] first: (x + 1)/2"),
              (lambda p: float(((p + 1) / 2)[:, 1:].sub(((p + 1) / 2)[:, :-1]).abs().mean()),
               "clamp to [0, 1] after rescaling"),
              (lambda p: _roughness_reference(p.transpose(0, 1)), "difference neighbouring frames (dim 1), not paths")],
    hint="x = ((paths + 1)/2).clamp(0, 1); mean of |x[:, 1:] − x[:, :-1]|.")
