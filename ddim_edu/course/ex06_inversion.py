"""The exercises of notebook 06 (DDIM inversion and reconstruction, Table 2): one inversion step,
the whole encoder and the round-trip error by S, each with its reference solution, hint and known mistakes.

The solutions are the notebook's exercise functions, filled in (they call ``de.…`` as the
notebook does); see :mod:`ddim_edu.course` for why this module, not the notebook, is their
source of truth.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch

import ddim_edu as de
from .engine import Case, Exercise
from .fixtures import COS, LIN, alpha_bar_by_index
from .fixtures import mixture_eps_model as _mixture_model
from .fixtures import seeded_randn as _randn
from ..diffusion import ddim_invert, ddim_invert_step, ddim_sample, ddim_step
from ..diffusion.denoiser import x0_from_eps

NOTEBOOK = "06_reconstruction.ipynb"
ex06 = SimpleNamespace()


# ----------------------------------------------------------------------------- ex06.invert_step
def my_invert_step(x, eps, t_from, t_to, sched):
    """x at t_to from x at t_from < t_to by eq. (12) with σ = 0, run towards more noise."""
    ab_from, ab_to = sched.alpha_bar_at(t_from), sched.alpha_bar_at(t_to)
    x0 = (x - math.sqrt(1 - ab_from) * eps) / math.sqrt(ab_from)
    return math.sqrt(ab_to) * x0 + math.sqrt(1 - ab_to) * eps


def _renoised(x, eps, ab_x0, ab_to):
    """x̂_0 from (x, ε) read with ᾱ = ab_x0, taken to ᾱ = ab_to along ε: a slipped inversion step."""
    return math.sqrt(ab_to) * x0_from_eps(x, eps, ab_x0) + math.sqrt(1 - ab_to) * eps


ex06.invert_step = Exercise(
    "ex06.invert_step", ddim_invert_step, solution=my_invert_step,
    cases=lambda: [Case(f"{a} → {b}, [5, 1, 8, 8] float64", (_randn(5, 1, 8, 8), _randn(5, 1, 8, 8, seed=1), a, b, LIN))
                   for a, b in [(100, 140), (-1, 0), (900, 999), (0, 1)]]
    + [Case("-1 → 20, batch of one, float32", (_randn(1, 2, dtype=torch.float32),
                                                _randn(1, 2, seed=2, dtype=torch.float32), -1, 20, COS))],
    mistakes=[(lambda x, e, a, b, s: _renoised(x, e, s.alpha_bar_at(b), s.alpha_bar_at(b)),
               "x̂_0 was computed with ᾱ at t_to: x and ε live at t_from, so x̂_0 uses ᾱ_{t_from}"),
              (lambda x, e, a, b, s: _renoised(x, e, alpha_bar_by_index(s, a), s.alpha_bar_at(b)),
               "t_from = −1 is clean data with ᾱ = 1: use sched.alpha_bar_at(t_from), not alpha_bar[t_from]"),
              (lambda x, e, a, b, s: ddim_step(x, e, b, a, s, 0.0)[0],
               "that steps towards less noise (a DDIM sampling step); inversion goes from t_from up to t_to")],
    hint="x̂0 = (x − √(1 − ᾱ_from) ε)/√ᾱ_from, then √ᾱ_to x̂0 + √(1 − ᾱ_to) ε, ᾱ from sched.alpha_bar_at.")


# ----------------------------------------------------------------------------- ex06.invert
def my_invert(model, x0, sched, steps):
    """x_T from x_0 by DDIM inversion with S = steps (the encoder of Table 2)."""
    x, t_from = x0, -1
    for t_to in de.make_timesteps(sched.T, steps).tolist():
        eps = model(x, torch.full((x.shape[0],), max(t_from, 0)))
        x = my_invert_step(x, eps, t_from, t_to, sched)
        t_from = t_to
    return x


def _invert_wrong_t(model, x0, sched, steps, offset):
    """Inversion with the model told the wrong timestep: the target one (``"next"``) or the loop index."""
    taus = de.make_timesteps(sched.T, steps).tolist()
    told = iter(taus if offset == "next" else range(len(taus)))
    return ddim_invert(lambda x, t: model(x, torch.full_like(t, next(told))), x0, sched, steps=steps, progress=False)


ex06.invert = Exercise(
    "ex06.invert", lambda m, x0, s, n: ddim_invert(m, x0, s, steps=n, progress=False), solution=my_invert,
    rtol=1e-6, atol=1e-8,
    cases=lambda: [Case("mixture, 64 points, S = 20", (_mixture_model(), _randn(64, 2), LIN, 20)),
                   Case("S = 7 (does not divide T)", (_mixture_model(), _randn(8, 2, seed=1), LIN, 7)),
                   Case("S = 1, batch of one", (_mixture_model(), _randn(1, 2, seed=2), LIN, 1))],
    mistakes=[(lambda m, x0, s, n: _invert_wrong_t(m, x0, s, n, "next"),
               "the model was evaluated at the wrong timestep (the target t_to): use the current one (0 at the data end)"),
              (lambda m, x0, s, n: _invert_wrong_t(m, x0, s, n, "index"),
               "the model got the loop index: give it the timestep value itself")],
    hint="x, t_from = x0, −1; for t_to in make_timesteps(T, steps): ε = model(x, full(B, max(t_from, 0))); step; t_from = t_to.")


# ----------------------------------------------------------------------------- ex06.roundtrip
def my_roundtrip_errors(model, x0, sched, steps_list):
    """{S: mean ‖decode(encode(x0)) − x0‖} for each S in steps_list (same S both ways, η = 0)."""
    errors = {}
    for s in steps_list:
        z = de.ddim_invert(model, x0, sched, steps=s, progress=False)
        errors[s] = float((de.ddim_sample(model, z, sched, steps=s, progress=False) - x0).norm(dim=1).mean())
    return errors


def _roundtrip_reference(model, x0, sched, steps_list):
    """{S: mean distance between x0 and its decoded DDIM code}, by the package's encoder and decoder."""
    def decoded(S):
        code = ddim_invert(model, x0, sched, steps=S, progress=False)
        return ddim_sample(model, code, sched, steps=S, progress=False)
    return {S: float(torch.linalg.vector_norm(decoded(S) - x0, dim=1).mean()) for S in steps_list}


ex06.roundtrip = Exercise(
    "ex06.roundtrip", _roundtrip_reference, solution=my_roundtrip_errors, rtol=1e-6, atol=1e-10,
    cases=lambda: [Case("mixture, 100 points, S = [10, 20]", (_mixture_model(), _randn(100, 2), LIN, [10, 20])),
                   Case("S = [5], batch of one", (_mixture_model(), _randn(1, 2, seed=1), LIN, [5]))],
    mistakes=[(lambda m, x0, s, sl: {k: v ** 2 for k, v in _roundtrip_reference(m, x0, s, sl).items()},
               "that looks squared: use the mean of the norms ‖decode(encode(x0)) − x0‖"),
              (lambda m, x0, s, sl: {k: float((ddim_invert(m, x0, s, steps=k, progress=False) - x0).norm(
                  dim=1).mean()) for k in sl}, "decode the code again with ddim_sample before comparing")],
    hint="for each S: z = de.ddim_invert(model, x0, sched, steps=S); x = de.ddim_sample(model, z, sched, steps=S); "
         "(x − x0).norm(dim=1).mean().")
