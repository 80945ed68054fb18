"""The exercises of notebook 01 (the forward process): ᾱ, sampling q(x_t | x_0) and the DDPM
posterior variance, each with its reference solution, hint and known mistakes side by side.

The solutions are the notebook's exercise functions, filled in; see :mod:`ddim_edu.course`
for why this module, not the notebook, is their source of truth.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch

from .engine import Case, Exercise
from .fixtures import COS, LIN
from .fixtures import seeded_randn as _randn
from ..diffusion import NoiseSchedule

NOTEBOOK = "01_forward_process.ipynb"
ex01 = SimpleNamespace()


# ----------------------------------------------------------------------------- ex01.alpha_bar
def my_alpha_bar(betas):
    """ᾱ_t = ∏_{s ≤ t} (1 − β_s) for every t; betas: 1-D float64 tensor. Returns a tensor of the same shape."""
    return torch.cumprod(1 - betas, dim=0)


ex01.alpha_bar = Exercise(
    "ex01.alpha_bar", lambda b: torch.cumprod(1 - b, 0), solution=my_alpha_bar, rtol=1e-10, atol=1e-14,
    cases=lambda: [Case("linear schedule, T = 1000", (LIN.betas,)), Case("cosine schedule", (COS.betas,)),
                   Case("a single step, T = 1", (torch.tensor([0.3], dtype=torch.float64),))],
    mistakes=[(lambda b: torch.cumprod(b, 0), "you multiplied the β's; ᾱ is the product of (1 − β_s)"),
              (lambda b: torch.cumsum(1 - b, 0), "that is a running sum; ᾱ is a running product"),
              (lambda b: torch.cat([b.new_ones(1), torch.cumprod(1 - b, 0)[:-1]]),
               "off by one: the product runs over s ≤ t, so ᾱ_0 = 1 − β_0, not 1")],
    hint="ᾱ_t = ∏_{s ≤ t} (1 − β_s): torch.cumprod(1 - betas, dim=0), or a loop that multiplies as it goes.")


# ----------------------------------------------------------------------------- ex01.q_sample
def my_q_sample(x0, t, noise, sched):
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε with one timestep per example (t: LongTensor [B])."""
    ab = sched.alpha_bar.to(x0.dtype)[t].reshape(-1, *([1] * (x0.dim() - 1)))
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


ex01.q_sample = Exercise(
    "ex01.q_sample", lambda x0, t, n, s: s.q_sample(x0, t, n), solution=my_q_sample,
    cases=lambda: [
        Case("images [5, 1, 8, 8], t = [0, 7, 120, 640, 999], float64",
             (_randn(5, 1, 8, 8), torch.tensor([0, 7, 120, 640, 999]), _randn(5, 1, 8, 8, seed=1), LIN)),
        Case("batch of one at t = 0", (_randn(1, 1, 4, 4), torch.tensor([0]), _randn(1, 1, 4, 4, seed=2), LIN)),
        Case("2-D points [4, 2], float32, cosine schedule", (_randn(4, 2, dtype=torch.float32),
             torch.tensor([999, 500, 3, 250]), _randn(4, 2, seed=3, dtype=torch.float32), COS))],
    mistakes=[(lambda x0, t, n, s: s.q_sample(n, t, x0),
               "√ᾱ and √(1 − ᾱ) are swapped: √ᾱ_t multiplies x_0, √(1 − ᾱ_t) multiplies ε"),
              (lambda x0, t, n, s: (lambda a: a * x0 + (1 - a) * n)(
                  s.alpha_bar.to(x0.dtype)[t].reshape(-1, *([1] * (x0.dim() - 1)))),
               "the coefficients need square roots: √ᾱ_t and √(1 − ᾱ_t)"),
              (lambda x0, t, n, s: s.q_sample(x0, t[:1].expand_as(t), n),
               "every example used t[0]: index ᾱ with the whole t and reshape to [B, 1, 1, ...]")],
    hint="index ᾱ with t (shape [B]), reshape to [B, 1, …, 1] so it broadcasts, then √ᾱ·x0 + √(1−ᾱ)·noise.")


# ----------------------------------------------------------------------------- ex01.posterior_variance
def my_posterior_variance(alpha_bar, betas):
    """β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t for t = 1, …, T − 1 (DDPM eq. 7)."""
    return (1 - alpha_bar[:-1]) / (1 - alpha_bar[1:]) * betas[1:]


ex01.posterior_variance = Exercise(
    "ex01.posterior_variance", lambda ab, b: NoiseSchedule(b).posterior_variance[1:],
    solution=my_posterior_variance, rtol=1e-10, atol=1e-14,
    cases=lambda: [Case("linear schedule", (LIN.alpha_bar, LIN.betas)),
                   Case("cosine schedule", (COS.alpha_bar, COS.betas)),
                   Case("linear schedule, T = 10", (NoiseSchedule.linear(T=10).alpha_bar,
                                                    NoiseSchedule.linear(T=10).betas))],
    mistakes=[(lambda ab, b: (1 - ab[1:]) / (1 - ab[:-1]) * b[1:],
               "the ratio is upside down: (1 − ᾱ_{t−1}) / (1 − ᾱ_t)"),
              (lambda ab, b: (1 - ab[:-1]) / (1 - ab[1:]),
               "you left out the factor β_t"),
              (lambda ab, b: (1 - ab[:-1]) / (1 - ab[1:]) * b[:-1],
               "β is off by one: use β_t = betas[1:], paired with ᾱ_t = alpha_bar[1:]")],
    hint="for t = 1 … T−1, ᾱ_{t−1} is alpha_bar[:-1], ᾱ_t is alpha_bar[1:], β_t is betas[1:] (length T − 1).")
