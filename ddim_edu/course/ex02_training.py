"""The exercises of notebook 02 (training ε_θ): the L_simple loss, the sinusoidal timestep
embedding and the EMA of the weights, each with its reference solution, hint and known mistakes.

The solutions are the notebook's exercise functions, filled in; see :mod:`ddim_edu.course`
for why this module, not the notebook, is their source of truth.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from .engine import Case, Exercise
from .fixtures import LIN
from .fixtures import seeded_randn as _randn
from ..nets import timestep_embedding
from ..train.loss import diffusion_loss

NOTEBOOK = "02_epsilon_training.ipynb"
ex02 = SimpleNamespace()


class _ToyEps(torch.nn.Module):
    """A fixed, cheap ε-model that depends on x and t (for checking losses)."""
    def forward(self, x, t):
        return 0.7 * torch.tanh(x) + (t.to(x.dtype) / 1000).reshape(-1, *([1] * (x.dim() - 1)))


# ----------------------------------------------------------------------------- ex02.loss
def my_loss(model, x0, t, noise, sched):
    """L_simple (DDPM eq. 14) for a batch x0 [B, ...], timesteps t [B] and noise ε like x0."""
    ab = sched.alpha_bar.to(x0.dtype)[t].reshape(-1, *([1] * (x0.dim() - 1)))
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    return (model(x_t, t) - noise).pow(2).mean()


ex02.loss = Exercise(
    "ex02.loss", lambda m, x0, t, n, s: diffusion_loss(m, x0, s, t=t, noise=n), solution=my_loss,
    rtol=1e-4, atol=1e-7,
    cases=lambda: [
        Case("2-D points [64, 2]", (_ToyEps(), _randn(64, 2, dtype=torch.float32),
                                    torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(4)),
                                    _randn(64, 2, seed=5, dtype=torch.float32), LIN)),
        Case("images [3, 1, 8, 8], float64", (_ToyEps(), _randn(3, 1, 8, 8), torch.tensor([0, 500, 999]),
                                              _randn(3, 1, 8, 8, seed=6), LIN)),
        Case("batch of one at t = 0", (_ToyEps(), _randn(1, 2), torch.tensor([0]), _randn(1, 2, seed=7), LIN))],
    mistakes=[(lambda m, x0, t, n, s: (m(x0, t) - n).pow(2).mean(),
               "the model saw x_0: feed it the noisy x_t = √ᾱ x_0 + √(1 − ᾱ) ε"),
              (lambda m, x0, t, n, s: (m(s.q_sample(x0, t, n), t) - x0).pow(2).mean(),
               "the target is the noise ε, not x_0"),
              (lambda m, x0, t, n, s: (m(s.q_sample(x0, t, n), t) - n).pow(2).sum(),
               "you summed the squared errors: L_simple is their mean over batch and dimensions"),
              (lambda m, x0, t, n, s: (m(s.q_sample(x0, t, n), t) - n).pow(2).sum(-1).mean(),
               "average over every dimension too, not only over the batch")],
    hint="x_t = √ᾱ_t x0 + √(1−ᾱ_t) noise (ᾱ indexed by t and reshaped), then ((model(x_t, t) − noise)²).mean().")


# ----------------------------------------------------------------------------- ex02.embedding
def my_timestep_embedding(t, dim):
    """[B] integer timesteps → float32 [B, dim] (sin half, then cos half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


ex02.embedding = Exercise(
    "ex02.embedding", timestep_embedding, solution=my_timestep_embedding, rtol=1e-4, atol=1e-4,
    cases=lambda: [Case("t = [0, 1, 17, 500, 999], dim 32", (torch.tensor([0, 1, 17, 500, 999]), 32)),
                   Case("batch of one at t = 0, dim 2", (torch.tensor([0]), 2)),
                   Case("t = [3, 999], dim 128", (torch.tensor([3, 999]), 128))],
    mistakes=[(lambda t, d: timestep_embedding(t, d).roll(d // 2, 1), "sines first, then cosines"),
              (lambda t, d: (lambda a: torch.cat([a.sin(), a.cos()], 1))(
                  t.float()[:, None] * torch.exp(-math.log(10000) * torch.arange(d // 2) / d)[None]),
               "the exponent is k/(dim/2), not k/dim: ω_k = 10000^(−k/half)")],
    hint="half = dim // 2; ω_k = exp(−ln(10000)·k/half) for k < half; cat([sin(t ω), cos(t ω)], dim=1).")


# ----------------------------------------------------------------------------- ex02.ema
@torch.no_grad()
def my_ema_update(ema_params, params, decay):
    """In-place EMA update of the list ema_params towards params."""
    for e, p in zip(ema_params, params):
        e.mul_(decay).add_(p, alpha=1 - decay)


def _ema_adapt(fn):
    """The student's update works in place and returns nothing: check the tensors it updated."""
    def run(ema_params, params, decay):
        fn(ema_params, params, decay)
        return ema_params
    return run


def _ema_cases():
    e, p = [_randn(3, 4), _randn(3, seed=1)], [_randn(3, 4, seed=2), _randn(3, seed=3)]
    return [Case(f"two tensors, decay {d}", (e, p, d)) for d in (0.8, 0.999, 0.0, 1.0)]


ex02.ema = Exercise(
    "ex02.ema", lambda e, p, d: [d * ei + (1 - d) * pi for ei, pi in zip(e, p)], solution=my_ema_update,
    adapt=_ema_adapt, cases=_ema_cases,
    mistakes=[(lambda e, p, d: [d * pi + (1 - d) * ei for ei, pi in zip(e, p)],
               "the weights are swapped: the EMA keeps d of its own value, θ̄ ← d θ̄ + (1 − d) θ"),
              (lambda e, p, d: e, "the EMA tensors did not change: update them in place "
                                  "(e.mul_(d).add_(p, alpha=1 − d)), rebinding a name has no effect")],
    hint="for e, p in zip(ema_params, params): e.mul_(decay).add_(p, alpha=1 - decay)")
