"""The exercises of notebook 08 (likelihood): the bound's weight on the ε error in closed form,
and nats per image to bits per dimension, each with its reference solution, hint and known mistakes.

The solutions are the notebook's exercise functions, filled in; see :mod:`ddim_edu.course`
for why this module, not the notebook, is their source of truth.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from .engine import Case, Exercise
from .fixtures import COS, LIN
from ..diffusion import NoiseSchedule

NOTEBOOK = "08_likelihood.ipynb"
ex08 = SimpleNamespace()


# ----------------------------------------------------------------------------- ex08.bound_weight
def my_bound_weight(betas):
    """w_t = β_t / (2 α_t (1 − ᾱ_{t−1})) for t = 1, …, T − 1: DDPM eq. 12's weight with σ_t² = β̃_t."""
    alphas = 1 - betas
    alpha_bar = torch.cumprod(alphas, dim=0)
    return betas[1:] / (2 * alphas[1:] * (1 - alpha_bar[:-1]))


def _bound_weight_reference(betas):
    """w_t = β_t² / (2 σ_t² α_t (1 − ᾱ_t)) with σ_t² = β̃_t, straight from DDPM eq. 12 and the package."""
    sched = NoiseSchedule(betas)
    sigma2 = sched.posterior_variance[1:]
    return betas[1:] ** 2 / (2 * sigma2 * sched.alphas[1:] * (1 - sched.alpha_bar[1:]))


def _bound_weight_wrong_alpha_bar(betas):
    alphas = 1 - betas
    return betas[1:] / (2 * alphas[1:] * (1 - torch.cumprod(alphas, 0)[1:]))


ex08.bound_weight = Exercise(
    "ex08.bound_weight", _bound_weight_reference, solution=my_bound_weight, rtol=1e-9, atol=1e-12,
    cases=lambda: [Case("linear schedule, T = 1000", (LIN.betas,)), Case("cosine schedule", (COS.betas,)),
                   Case("linear schedule, T = 10", (NoiseSchedule.linear(T=10).betas,))],
    mistakes=[(_bound_weight_wrong_alpha_bar,
               "σ_t² = β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t) cancels the (1 − ᾱ_t): what is left is 1 − ᾱ_{t−1}"),
              (lambda b: 2 * _bound_weight_reference(b), "the KL between two Gaussians of variance σ² has 1/(2σ²): keep the 2"),
              (lambda b: _bound_weight_reference(b) * (1 - b[1:]) ** 2, "α_t = 1 − β_t divides, it does not multiply"),
              (lambda b: b[1:] / (2 * (1 - torch.cumprod(1 - b, 0)[:-1])), "you dropped α_t from the denominator")],
    hint="Put σ_t² = β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t) into w_t = β_t² / (2 σ_t² α_t (1 − ᾱ_t)) and cancel; "
         "for t = 1 … T−1, ᾱ_{t−1} is cumprod(1 − betas)[:-1].")


# ----------------------------------------------------------------------------- ex08.bits_per_dim
def my_bits_per_dim(nats_per_image, D):
    """−log p(x₀) in nats for one image (a float or a tensor of them) → bits per dimension."""
    return nats_per_image / (D * math.log(2))


ex08.bits_per_dim = Exercise(
    "ex08.bits_per_dim", lambda nats, D: nats / (D * math.log(2)), solution=my_bits_per_dim, rtol=1e-10, atol=1e-12,
    cases=lambda: [Case("1000 nats, D = 784 (a float64 tensor)", (torch.tensor(1000.0, dtype=torch.float64), 784)),
                   Case("a batch of 3 images, D = 3072 (CIFAR-10)",
                        (torch.tensor([7000.0, 8100.5, 9000.25], dtype=torch.float64), 3072)),
                   Case("a Python float, D = 1", (2.0, 1))],
    mistakes=[(lambda n, D: n / D, "that is nats per dimension: divide by ln 2 too (1 bit = ln 2 nats)"),
              (lambda n, D: n * math.log(2) / D, "1 bit = ln 2 nats, so bits = nats / ln 2, not nats · ln 2"),
              (lambda n, D: n / math.log(2), "bits per image: divide by the number of dimensions D too"),
              (lambda n, D: n / (D * math.log(10)), "log base 2, not 10: divide by ln 2")],
    hint="bits = nats / ln 2 (because log₂ y = ln y / ln 2), then per dimension: divide by D.")
