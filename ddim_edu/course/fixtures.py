"""Inputs the exercise checks share: the two schedules, seeded random tensors, an exact-ε model
and a deliberately wrong ᾱ lookup for modelling a classic slip."""
from __future__ import annotations

import torch

from ..diffusion import ExactEpsModel, GaussianMixture, NoiseSchedule

LIN = NoiseSchedule.linear(T=1000)
COS = NoiseSchedule.cosine(T=1000)


def seeded_randn(*shape, seed=0, dtype=torch.float64):
    """A standard-normal tensor of ``shape`` drawn from its own CPU generator seeded with ``seed``."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def mixture_eps_model(sched=LIN):
    """A 2-D Gaussian mixture's exact ε: a "perfectly trained model" to run samplers on."""
    return ExactEpsModel(GaussianMixture([[1.0, 0.5], [-1.0, -0.5]], [0.4, 0.6], [0.3, 0.7]), sched)


def alpha_bar_by_index(sched, t):
    """The classic slip, for wrong answers: alpha_bar[-1] is ᾱ_{T−1}, not the 1 of clean data."""
    return float(sched.alpha_bar[t])
