"""The exercises of notebook 03 (DDPM vs DDIM sampling): σ(η) of eq. (16), one DDIM step of
eq. (12) and one step of Table 1's σ̂ row, each with its reference solution, hint and known mistakes.

The solutions are the notebook's exercise functions, filled in; see :mod:`ddim_edu.course`
for why this module, not the notebook, is their source of truth.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from .engine import Case, Exercise
from .fixtures import COS, LIN, alpha_bar_by_index
from .fixtures import seeded_randn as _randn
from ..diffusion import ddim_sigma, ddim_step

NOTEBOOK = "03_ddpm_vs_ddim.ipynb"
ex03 = SimpleNamespace()


# ----------------------------------------------------------------------------- ex03.sigma
def my_sigma(alpha_bar_t, alpha_bar_prev, eta):
    """σ(η) = η √((1 − ᾱ')/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ'), DDIM eq. (16). Floats in, a float out."""
    return eta * math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) * math.sqrt(1 - alpha_bar_t / alpha_bar_prev)


_PAIRS = [(420, 400), (980, 960), (487, 486), (999, 998), (999, 0), (50, -1), (0, -1)]

ex03.sigma = Exercise(
    "ex03.sigma", ddim_sigma, solution=my_sigma, rtol=1e-9, atol=1e-12,
    cases=lambda: [Case(f"{t} → {tp}, η = {eta}", (LIN.alpha_bar_at(t), LIN.alpha_bar_at(tp), eta))
                   for t, tp in _PAIRS for eta in (1.0, 0.0, 0.3)],
    mistakes=[(lambda a, ap, eta: eta * (1 - ap) / (1 - a) * math.sqrt(1 - a / ap),
               "the first factor needs its square root: √((1 − ᾱ')/(1 − ᾱ_t))"),
              (lambda a, ap, eta: ddim_sigma(a, ap, eta) ** 2, "that is σ², the variance; return σ"),
              (lambda a, ap, eta: eta * math.sqrt((1 - a) / (1 - ap)) * math.sqrt(1 - a / ap),
               "the first ratio is upside down: (1 − ᾱ') over (1 − ᾱ_t), ᾱ' being the less noisy step")],
    hint="σ = η · √((1 − ᾱ')/(1 − ᾱ_t)) · √(1 − ᾱ_t/ᾱ') with ᾱ' = alpha_bar_prev; η = 0 gives 0.")


# ----------------------------------------------------------------------------- ex03.ddim_step
def my_ddim_step(x_t, eps, t, t_prev, sched, eta, noise):
    """x_{t_prev} = √ᾱ' x̂_0 + √(1 − ᾱ' − σ²) ε + σ z, DDIM eq. (12)."""
    ab, ab_prev = sched.alpha_bar_at(t), sched.alpha_bar_at(t_prev)
    x0 = (x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    s = my_sigma(ab, ab_prev, eta)
    return math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - s ** 2, 0.0)) * eps + s * noise


def _step_cases(etas, pairs=((900, 700), (100, -1), (0, -1), (1, 0))):
    out = []
    for t, tp in pairs:
        for eta in etas:
            out.append(Case(f"{t} → {tp}, η = {eta}, [3, 1, 8, 8] float64", (_randn(3, 1, 8, 8), _randn(
                3, 1, 8, 8, seed=1), t, tp, LIN, eta, _randn(3, 1, 8, 8, seed=2))))
    out.append(Case("900 → 850, η = 1, batch of one, float32", (_randn(1, 2, dtype=torch.float32), _randn(
        1, 2, seed=3, dtype=torch.float32), 900, 850, COS, 1.0, _randn(1, 2, seed=4, dtype=torch.float32))))
    return out


def _step_wrong(dir_sig2=True, last_one=True, noise=True):
    """A DDIM step with one of its three classic slips switched on."""
    def step(x, e, t, tp, s, eta, z):
        ab, abp = s.alpha_bar_at(t), (s.alpha_bar_at(tp) if last_one else alpha_bar_by_index(s, tp))
        sig = ddim_sigma(ab, abp, eta) if eta else 0.0
        x0 = (x - math.sqrt(1 - ab) * e) / math.sqrt(ab)
        return math.sqrt(abp) * x0 + math.sqrt(max(1 - abp - dir_sig2 * sig ** 2, 0)) * e + noise * sig * z
    return step


ex03.ddim_step = Exercise(
    "ex03.ddim_step", lambda *a: ddim_step(*a)[0], solution=[my_sigma, my_ddim_step],
    cases=lambda: _step_cases((0.0, 0.5, 1.0)),
    mistakes=[(_step_wrong(dir_sig2=False), "the direction term is √(1 − ᾱ' − σ²) ε: you left out −σ²"),
              (_step_wrong(last_one=False), "the last step (t_prev = −1) goes to ᾱ = 1: use "
                                            "sched.alpha_bar_at(t_prev), not sched.alpha_bar[t_prev]"),
              (_step_wrong(noise=False), "the noise term σ z is missing")],
    hint="x̂0 = (x_t − √(1−ᾱ_t) ε)/√ᾱ_t; then √ᾱ' x̂0 + √(1 − ᾱ' − σ²) ε + σ z, ᾱ' = sched.alpha_bar_at(t_prev).")


# ----------------------------------------------------------------------------- ex03.sigma_hat_step
def my_sigma_hat_step(x_t, eps, t, t_prev, sched, noise):
    """One step of the σ̂ ("DDPM") row of Table 1."""
    ab, ab_prev = sched.alpha_bar_at(t), sched.alpha_bar_at(t_prev)
    x0 = (x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    direction = math.sqrt(max(1 - ab_prev - my_sigma(ab, ab_prev, 1.0) ** 2, 0.0))
    s_hat = math.sqrt(1 - ab / ab_prev) if t_prev >= 0 else 0.0     # no noise on the last step
    return math.sqrt(ab_prev) * x0 + direction * eps + s_hat * noise


def _sigma_hat_dir_wrong(x, e, t, tp, s, z):
    """σ̂ step with σ̂² (instead of σ(1)²) in the ε coefficient."""
    ab, abp = s.alpha_bar_at(t), s.alpha_bar_at(tp)
    s_hat = math.sqrt(1 - ab / abp) if tp >= 0 else 0.0
    x0 = (x - math.sqrt(1 - ab) * e) / math.sqrt(ab)
    return math.sqrt(abp) * x0 + math.sqrt(max(1 - abp - s_hat ** 2, 0.0)) * e + s_hat * z


ex03.sigma_hat_step = Exercise(
    "ex03.sigma_hat_step", lambda x, e, t, tp, s, z: ddim_step(x, e, t, tp, s, 1.0, z, variance="sigma_hat")[0],
    solution=[my_sigma, my_sigma_hat_step],
    cases=lambda: [Case(c.label.replace(", η = 1.0", ""), c.args[:5] + c.args[6:]) for c in _step_cases((1.0,))],
    mistakes=[(lambda x, e, t, tp, s, z: ddim_step(x, e, t, tp, s, 1.0, z)[0],
               "that is the η = 1 step; σ̂ = √(1 − ᾱ_t/ᾱ') is larger than σ(1)"),
              (lambda x, e, t, tp, s, z: ddim_step(x, e, t, tp, s, 1.0, z, variance="sigma_hat")[0] + (
                  tp < 0) * math.sqrt(1 - s.alpha_bar_at(t)) * z, "no noise on the last step (t_prev = −1)"),
              (_sigma_hat_dir_wrong,
               "the ε coefficient stays √(1 − ᾱ' − σ(1)²), with σ(1) of eq. (16), not σ̂")],
    hint="noise σ̂ = √(1 − ᾱ_t/ᾱ') (0 when t_prev = −1), direction √(1 − ᾱ' − σ(1)²) with σ(1) = ddim_sigma(·, ·, 1).")
