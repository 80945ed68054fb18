"""Self-checks for the exercises of notebooks 04–06: the ODE view, interpolation and inversion.

Used through :mod:`ddim_edu.course.checks` (``from ddim_edu.course.checks import ex04``), which also documents
how a check behaves; the machinery and the shared fixtures live in :mod:`ddim_edu.course.engine`.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from . import solutions as sol
from .engine import COS, LIN, Case, Exercise
from .engine import alpha_bar_by_index as _ab
from .engine import mixture_eps_model as _mixture_model
from .engine import seeded_randn as _randn
from ..diffusion.editing import lerp, slerp
from ..diffusion.ode import _heun_step, sigma_from_alpha_bar
from ..diffusion.samplers import ddim_invert, ddim_invert_step, ddim_step

__all__ = ["ex04", "ex05", "ex06"]

# ============================================================================= notebook 04
_SIGMAS = [("σ at t = 420", float(sigma_from_alpha_bar(LIN.alpha_bar_at(420)))), ("σ = 0 (clean data)", 0.0),
           ("σ at t = 999 (≈ 158)", float(sigma_from_alpha_bar(LIN.alpha_bar_at(999))))]


def _euler_cases():
    out = [Case(f"{t} → {tp}, [5, 2] float64", (_randn(5, 2), _randn(5, 2, seed=1), t, tp, LIN))
           for t, tp in [(600, 450), (20, -1), (0, -1), (999, 0)]]
    return out + [Case("700 → 300, batch of one, float32", (_randn(1, 1, 4, 4, dtype=torch.float32),
                                                            _randn(1, 1, 4, 4, seed=2, dtype=torch.float32), 700, 300, COS))]


def _sig(s, t):
    return float(sigma_from_alpha_bar(s.alpha_bar_at(t)))


ex04 = SimpleNamespace(
    xbar=Exercise(
        "ex04.xbar", lambda x, s: (sol.x_to_xbar(x, s), sol.xbar_to_x(x, s)), solution=[sol.x_to_xbar, sol.xbar_to_x],
        adapt=lambda to, back: (lambda x, s: (to(x, s), back(x, s))),
        cases=lambda: [Case(f"{lab}, [10, 2] float64", (_randn(10, 2), s)) for lab, s in _SIGMAS]
        + [Case("batch of one, float32", (_randn(1, 1, 4, 4, dtype=torch.float32), _SIGMAS[0][1]))],
        mistakes=[(lambda x, s: (x * s, x / s if s else x), "scale by √(σ² + 1), not by σ"),
                  (lambda x, s: (sol.xbar_to_x(x, s), sol.x_to_xbar(x, s)), "the two conversions are swapped"),
                  (lambda x, s: (x * (s ** 2 + 1), x / (s ** 2 + 1)), "take the square root of σ² + 1")],
        hint="√ᾱ = 1/√(σ² + 1), so x̄ = x·√(σ² + 1) and x = x̄/√(σ² + 1); check both on σ = 0 (they do nothing)."),
    euler_step=Exercise(
        "ex04.euler_step", lambda x, e, t, tp, s: ddim_step(x, e, t, tp, s, 0.0)[0], solution=sol.euler_step,
        cases=_euler_cases,
        mistakes=[(lambda x, e, t, tp, s: x * math.sqrt(_sig(s, t) ** 2 + 1) + (_sig(s, tp) - _sig(s, t)) * e,
                   "you returned x̄': convert back with x' = x̄'/√(σ'² + 1)"),
                  (lambda x, e, t, tp, s: sol.xbar_to_x(x * math.sqrt(_sig(s, t) ** 2 + 1) + (
                      _sig(s, t) - _sig(s, tp)) * e, _sig(s, tp)), "the step is (σ' − σ) ε: σ decreases"),
                  (lambda x, e, t, tp, s: sol.xbar_to_x(x + (_sig(s, tp) - _sig(s, t)) * e, _sig(s, tp)),
                   "convert x_t to x̄ = x·√(σ² + 1) before stepping")],
        hint="σ = √((1 − ᾱ)/ᾱ) for t and t_prev (σ' = 0 at t_prev = −1); x̄ = x√(σ²+1); x̄' = x̄ + (σ' − σ) ε; back."),
    heun_step=Exercise(
        "ex04.heun_step", lambda m, xb, t, tn, s: _heun_step(m, xb, t, tn, _sig(s, t), _sig(s, tn), None)[0],
        solution=sol.heun_step, rtol=1e-6, atol=1e-8,
        cases=lambda: [Case(f"{t} → {tn}, [16, 2] float64", (_mixture_model(), _randn(16, 2) * _sig(LIN, t), t, tn, LIN))
                       for t, tn in [(700, 300), (999, 500), (100, 0)]]
        + [Case("500 → 499, batch of one", (_mixture_model(), _randn(1, 2) * _sig(LIN, 500), 500, 499, LIN))],
        mistakes=[(lambda m, xb, t, tn, s: xb + (_sig(s, tn) - _sig(s, t)) * m(
                      xb / math.sqrt(_sig(s, t) ** 2 + 1), torch.full((xb.shape[0],), t)),
                   "that is the Euler step; average it with the slope at the trial point"),
                  (lambda m, xb, t, tn, s: sol.heun_step(lambda x, tt: m(x, torch.full_like(tt, t)), xb, t, tn, s),
                   "evaluate the second slope at t_next (the trial point's time), not at t"),
                  (lambda m, xb, t, tn, s: sol.heun_step(lambda x, tt: m(x * math.sqrt(
                      _sig(s, int(tt[0])) ** 2 + 1), tt), xb, t, tn, s),
                   "the model takes x = x̄/√(σ² + 1), not x̄")],
        hint="d = model(x̄/√(σ²+1), t); trial = x̄ + (σ' − σ) d; d' = model(trial/√(σ'²+1), t_next); x̄ + (σ' − σ)(d + d')/2."),
)

# ============================================================================= notebook 05
def _slerp_cases():
    a, b = _randn(6, 1, 8, 8), _randn(6, 1, 8, 8, seed=1)
    out = [Case(f"[6, 1, 8, 8] float64, α = {al}", (a, b, al)) for al in (0.3, 0.0, 0.5, 1.0)]
    return out + [Case("batch of one, [1, 16] float32, α = 0.7", (_randn(1, 16, dtype=torch.float32),
                                                                  _randn(1, 16, seed=2, dtype=torch.float32), 0.7))]


def _paths(*shape, seed=0):
    return (_randn(*shape, seed=seed) * 0.8).to(torch.float32)


ex05 = SimpleNamespace(
    slerp=Exercise(
        "ex05.slerp", slerp, solution=sol.slerp, rtol=1e-6, atol=1e-8, cases=_slerp_cases,
        mistakes=[(lambda a, b, al: lerp(a, b, al), "that is lerp (a straight line); slerp follows the arc"),
                  (lambda a, b, al: sol.slerp(a.reshape(1, -1), b.reshape(1, -1), al).reshape(a.shape),
                   "one angle for the whole batch: compute θ per example (flatten all dimensions but the first)")],
        hint="flatten to [B, D]; θ = arccos(⟨z0, z1⟩/(‖z0‖‖z1‖)) per row; sin((1−α)θ)/sin θ z0 + sin(αθ)/sin θ z1."),
    midpoint_norm=Exercise(
        "ex05.midpoint_norm", sol.lerp_midpoint_norm, rtol=0.02, atol=0.0,
        cases=lambda: [Case(f"d = {d}", (d,)) for d in (64, 784, 3072, 100_000)],
        mistakes=[(lambda d: math.sqrt(d), "√d is the norm of one code; (z0 + z1)/2 has variance 1/2 per dimension"),
                  (lambda d: d / 2, "take the square root: ‖z‖ ≈ √(E‖z‖²)"),
                  (lambda d: math.sqrt(d) / 2, "the two halves are independent: their variances add, (1/4 + 1/4) d")],
        hint="(z0 + z1)/2 ~ N(0, ½ I_d), and ‖z‖ ≈ √(E‖z‖²) in high dimension."),
    roughness=Exercise(
        "ex05.roughness", sol.roughness, rtol=1e-5, atol=1e-7,
        cases=lambda: [Case("paths [3, 7, 1, 8, 8] (some values outside [−1, 1])", (_paths(3, 7, 1, 8, 8),)),
                       Case("one path of two frames", (_paths(1, 2, 1, 4, 4, seed=1),))],
        mistakes=[(lambda p: float((p[:, 1:] - p[:, :-1]).abs().mean()), "rescale to [0, 1] first: (x + 1)/2"),
                  (lambda p: float(((p + 1) / 2)[:, 1:].sub(((p + 1) / 2)[:, :-1]).abs().mean()),
                   "clamp to [0, 1] after rescaling"),
                  (lambda p: sol.roughness(p.transpose(0, 1)), "difference neighbouring frames (dim 1), not paths")],
        hint="x = ((paths + 1)/2).clamp(0, 1); mean of |x[:, 1:] − x[:, :-1]|."),
)

# ============================================================================= notebook 06
def _invert_wrong_t(model, x0, sched, steps, offset):
    """Inversion with the model told the wrong timestep (the next one, or the loop index)."""
    from ..diffusion.timesteps import make_timesteps
    x, t_from = x0, -1
    for i, t_to in enumerate(make_timesteps(sched.T, steps).tolist()):
        t_model = t_to if offset == "next" else i
        x = sol.invert_step(x, model(x, torch.full((x.shape[0],), t_model)), t_from, t_to, sched)
        t_from = t_to
    return x


ex06 = SimpleNamespace(
    invert_step=Exercise(
        "ex06.invert_step", ddim_invert_step, solution=sol.invert_step,
        cases=lambda: [Case(f"{a} → {b}, [5, 1, 8, 8] float64", (_randn(5, 1, 8, 8), _randn(5, 1, 8, 8, seed=1), a, b, LIN))
                       for a, b in [(100, 140), (-1, 0), (900, 999), (0, 1)]]
        + [Case("-1 → 20, batch of one, float32", (_randn(1, 2, dtype=torch.float32),
                                                    _randn(1, 2, seed=2, dtype=torch.float32), -1, 20, COS))],
        mistakes=[(lambda x, e, a, b, s: sol.invert_step(x, e, b, b, s),
                   "x̂_0 was computed with ᾱ at t_to: x and ε live at t_from, so x̂_0 uses ᾱ_{t_from}"),
                  (lambda x, e, a, b, s: (lambda af, at: math.sqrt(at) * (x - math.sqrt(1 - af) * e) / math.sqrt(af)
                                          + math.sqrt(1 - at) * e)(_ab(s, a), s.alpha_bar_at(b)),
                   "t_from = −1 is clean data with ᾱ = 1: use sched.alpha_bar_at(t_from), not alpha_bar[t_from]"),
                  (lambda x, e, a, b, s: ddim_step(x, e, b, a, s, 0.0)[0],
                   "that steps towards less noise (a DDIM sampling step); inversion goes from t_from up to t_to")],
        hint="x̂0 = (x − √(1 − ᾱ_from) ε)/√ᾱ_from, then √ᾱ_to x̂0 + √(1 − ᾱ_to) ε, ᾱ from sched.alpha_bar_at."),
    invert=Exercise(
        "ex06.invert", lambda m, x0, s, n: ddim_invert(m, x0, s, steps=n, progress=False), solution=sol.invert,
        rtol=1e-6, atol=1e-8,
        cases=lambda: [Case("mixture, 64 points, S = 20", (_mixture_model(), _randn(64, 2), LIN, 20)),
                       Case("S = 7 (does not divide T)", (_mixture_model(), _randn(8, 2, seed=1), LIN, 7)),
                       Case("S = 1, batch of one", (_mixture_model(), _randn(1, 2, seed=2), LIN, 1))],
        mistakes=[(lambda m, x0, s, n: _invert_wrong_t(m, x0, s, n, "next"),
                   "the model was evaluated at the wrong timestep (the target t_to): use the current one (0 at the data end)"),
                  (lambda m, x0, s, n: _invert_wrong_t(m, x0, s, n, "index"),
                   "the model got the loop index: give it the timestep value itself")],
        hint="x, t_from = x0, −1; for t_to in make_timesteps(T, steps): ε = model(x, full(B, max(t_from, 0))); step; t_from = t_to."),
    roundtrip=Exercise(
        "ex06.roundtrip", sol.roundtrip_errors, rtol=1e-6, atol=1e-10,
        cases=lambda: [Case("mixture, 100 points, S = [10, 20]", (_mixture_model(), _randn(100, 2), LIN, [10, 20])),
                       Case("S = [5], batch of one", (_mixture_model(), _randn(1, 2, seed=1), LIN, [5]))],
        mistakes=[(lambda m, x0, s, sl: {k: v ** 2 for k, v in sol.roundtrip_errors(m, x0, s, sl).items()},
                   "that looks squared: use the mean of the norms ‖decode(encode(x0)) − x0‖"),
                  (lambda m, x0, s, sl: {k: float((ddim_invert(m, x0, s, steps=k, progress=False) - x0).norm(
                      dim=1).mean()) for k in sl}, "decode the code again with ddim_sample before comparing")],
        hint="for each S: z = de.ddim_invert(model, x0, sched, steps=S); x = de.ddim_sample(model, z, sched, steps=S); "
             "(x − x0).norm(dim=1).mean()."),
)
