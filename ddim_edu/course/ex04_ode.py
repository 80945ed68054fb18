"""The exercises of notebook 04 (the ODE view, section 4.3): converting x ↔ x̄, DDIM as an Euler
step in σ and a Heun step, each with its reference solution, hint and known mistakes.

The solutions are the notebook's exercise functions, filled in; see :mod:`ddim_edu.course`
for why this module, not the notebook, is their source of truth.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from .engine import Case, Exercise
from .fixtures import COS, LIN
from .fixtures import mixture_eps_model as _mixture_model
from .fixtures import seeded_randn as _randn
from ..diffusion import alpha_bar_from_sigma, ddim_step, from_xbar, heun_step, sigma_from_alpha_bar, to_xbar

NOTEBOOK = "04_ode_view.ipynb"
ex04 = SimpleNamespace()


def _sig(s, t):
    """σ = √((1 − ᾱ)/ᾱ) at timestep t of schedule s (0 at t = −1)."""
    return float(sigma_from_alpha_bar(s.alpha_bar_at(t)))


# ----------------------------------------------------------------------------- ex04.xbar
def my_x_to_xbar(x, sigma):
    """x̄ from x at noise level σ (a float)."""
    return x * math.sqrt(sigma ** 2 + 1)


def my_xbar_to_x(xbar, sigma):
    """x from x̄ at noise level σ (a float)."""
    return xbar / math.sqrt(sigma ** 2 + 1)


def _xbar_pair(x, sigma):
    """(x̄ from x, x from x̄) at noise level σ by the package's conversions, with ᾱ = 1/(σ² + 1)."""
    ab = alpha_bar_from_sigma(sigma)
    return to_xbar(x, ab), from_xbar(x, ab)


_SIGMAS = [("σ at t = 420", _sig(LIN, 420)), ("σ = 0 (clean data)", 0.0), ("σ at t = 999 (≈ 158)", _sig(LIN, 999))]

ex04.xbar = Exercise(
    "ex04.xbar", _xbar_pair, solution=[my_x_to_xbar, my_xbar_to_x],
    adapt=lambda to, back: (lambda x, s: (to(x, s), back(x, s))),
    cases=lambda: [Case(f"{lab}, [10, 2] float64", (_randn(10, 2), s)) for lab, s in _SIGMAS]
    + [Case("batch of one, float32", (_randn(1, 1, 4, 4, dtype=torch.float32), _SIGMAS[0][1]))],
    mistakes=[(lambda x, s: (x * s, x / s if s else x), "scale by √(σ² + 1), not by σ"),
              (lambda x, s: _xbar_pair(x, s)[::-1], "the two conversions are swapped"),
              (lambda x, s: (x * (s ** 2 + 1), x / (s ** 2 + 1)), "take the square root of σ² + 1")],
    hint="√ᾱ = 1/√(σ² + 1), so x̄ = x·√(σ² + 1) and x = x̄/√(σ² + 1); check both on σ = 0 (they do nothing).")


# ----------------------------------------------------------------------------- ex04.euler_step
def my_euler_step(x_t, eps, t, t_prev, sched):
    """x_{t'} from x_t by eq. (13): x̄' = x̄ + (σ' − σ) ε. Use sched.alpha_bar_at(t) (it gives 1 at t = −1)."""
    ab, ab_prev = sched.alpha_bar_at(t), sched.alpha_bar_at(t_prev)
    s, s_prev = math.sqrt((1 - ab) / ab), math.sqrt((1 - ab_prev) / ab_prev)
    xbar = x_t * math.sqrt(s ** 2 + 1)
    return (xbar + (s_prev - s) * eps) / math.sqrt(s_prev ** 2 + 1)


def _euler_cases():
    out = [Case(f"{t} → {tp}, [5, 2] float64", (_randn(5, 2), _randn(5, 2, seed=1), t, tp, LIN))
           for t, tp in [(600, 450), (20, -1), (0, -1), (999, 0)]]
    return out + [Case("700 → 300, batch of one, float32", (_randn(1, 1, 4, 4, dtype=torch.float32),
                                                            _randn(1, 1, 4, 4, seed=2, dtype=torch.float32), 700, 300, COS))]


ex04.euler_step = Exercise(
    "ex04.euler_step", lambda x, e, t, tp, s: ddim_step(x, e, t, tp, s, 0.0)[0], solution=my_euler_step,
    cases=_euler_cases,
    mistakes=[(lambda x, e, t, tp, s: x * math.sqrt(_sig(s, t) ** 2 + 1) + (_sig(s, tp) - _sig(s, t)) * e,
               "you returned x̄': convert back with x' = x̄'/√(σ'² + 1)"),
              (lambda x, e, t, tp, s: from_xbar(x * math.sqrt(_sig(s, t) ** 2 + 1) + (
                  _sig(s, t) - _sig(s, tp)) * e, s.alpha_bar_at(tp)), "the step is (σ' − σ) ε: σ decreases"),
              (lambda x, e, t, tp, s: from_xbar(x + (_sig(s, tp) - _sig(s, t)) * e, s.alpha_bar_at(tp)),
               "convert x_t to x̄ = x·√(σ² + 1) before stepping")],
    hint="σ = √((1 − ᾱ)/ᾱ) for t and t_prev (σ' = 0 at t_prev = −1); x̄ = x√(σ²+1); x̄' = x̄ + (σ' − σ) ε; back.")


# ----------------------------------------------------------------------------- ex04.heun_step
def my_heun_step(model, xbar, t, t_next, sched):
    """x̄ at t_next ≥ 0 from x̄ at t by Heun's method for eq. (14) (Karras et al. 2022, Algorithm 1).
    The slope at (x̄, σ) is model(x̄/√(σ²+1), t) with t given as a LongTensor [B]."""
    s = math.sqrt((1 - sched.alpha_bar_at(t)) / sched.alpha_bar_at(t))
    s_next = math.sqrt((1 - sched.alpha_bar_at(t_next)) / sched.alpha_bar_at(t_next))
    t_b, t_next_b = torch.full((xbar.shape[0],), t), torch.full((xbar.shape[0],), t_next)
    d = model(xbar / math.sqrt(s ** 2 + 1), t_b)
    trial = xbar + (s_next - s) * d
    d_next = model(trial / math.sqrt(s_next ** 2 + 1), t_next_b)
    return xbar + (s_next - s) * 0.5 * (d + d_next)


def _heun(model, xbar, t, t_next, sched):
    """The package's Heun step from t to t_next, with σ and σ' of ``sched``."""
    return heun_step(model, xbar, t, t_next, _sig(sched, t), _sig(sched, t_next))[0]


ex04.heun_step = Exercise(
    "ex04.heun_step", _heun, solution=my_heun_step, rtol=1e-6, atol=1e-8,
    cases=lambda: [Case(f"{t} → {tn}, [16, 2] float64", (_mixture_model(), _randn(16, 2) * _sig(LIN, t), t, tn, LIN))
                   for t, tn in [(700, 300), (999, 500), (100, 0)]]
    + [Case("500 → 499, batch of one", (_mixture_model(), _randn(1, 2) * _sig(LIN, 500), 500, 499, LIN))],
    mistakes=[(lambda m, xb, t, tn, s: xb + (_sig(s, tn) - _sig(s, t)) * m(
                  xb / math.sqrt(_sig(s, t) ** 2 + 1), torch.full((xb.shape[0],), t)),
               "that is the Euler step; average it with the slope at the trial point"),
              (lambda m, xb, t, tn, s: _heun(lambda x, tt: m(x, torch.full_like(tt, t)), xb, t, tn, s),
               "evaluate the second slope at t_next (the trial point's time), not at t"),
              (lambda m, xb, t, tn, s: _heun(lambda x, tt: m(x * math.sqrt(
                  _sig(s, int(tt[0])) ** 2 + 1), tt), xb, t, tn, s),
               "the model takes x = x̄/√(σ² + 1), not x̄")],
    hint="d = model(x̄/√(σ²+1), t); trial = x̄ + (σ' − σ) d; d' = model(trial/√(σ'²+1), t_next); x̄ + (σ' − σ)(d + d')/2.")
