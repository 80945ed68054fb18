r"""The ODE view of DDIM (section 4.3) and higher-order solvers.

Change variables to σ = √(1 − ᾱ)/√ᾱ and x̄ = x/√ᾱ. Then DDIM's update (eq. 12, η = 0) reads

    x̄_{t−Δt} = x̄_t + (σ_{t−Δt} − σ_t) ε_θ(x_t, t)                              DDIM eq. (13)

which is exactly Euler's method for the probability-flow ODE

    dx̄(σ) = ε_θ(x̄/√(σ² + 1), σ) dσ                                           DDIM eq. (14).

So a better ODE solver is a better sampler at the same number of network calls (NFE):

================  ============================================  ==================
solver            reference                                     NFE for S steps
================  ============================================  ==================
``euler_sample``  DDIM, eq. (13)                                S
``heun_sample``   Heun in σ (Karras et al. 2022, Algorithm 1)   2S − 1
``dpmpp_2m``      DPM-Solver++(2M) (Lu et al. 2022, Alg. 2)     S
================  ============================================  ==================

All solvers walk the same timesteps as :func:`ddim_sample` and share its call shape.
"""
from __future__ import annotations

import math

import torch

from .samplers import Trajectory, _check_common, _progress, call_model
from .schedule import NoiseSchedule
from .timesteps import resolve_timesteps


def sigma_from_alpha_bar(alpha_bar):
    """σ = √(1 − ᾱ)/√ᾱ (section 4.3); σ = 0 at ᾱ = 1 (clean data)."""
    if isinstance(alpha_bar, torch.Tensor):
        return ((1 - alpha_bar) / alpha_bar).sqrt()
    return math.sqrt((1 - alpha_bar) / alpha_bar)


def alpha_bar_from_sigma(sigma):
    """ᾱ = 1/(1 + σ²), the inverse of :func:`sigma_from_alpha_bar`."""
    return 1.0 / (1.0 + sigma ** 2)


def to_xbar(x: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """x̄ = x/√ᾱ: the scaled variable whose noise level is σ."""
    return x / math.sqrt(alpha_bar)


def from_xbar(xbar: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """x = √ᾱ · x̄ = x̄/√(σ² + 1)."""
    return xbar * math.sqrt(alpha_bar)


def _eps_xbar(model, xbar: torch.Tensor, t: int, sigma: float) -> torch.Tensor:
    """dx̄/dσ = ε_θ(x̄/√(σ² + 1), t) — the right-hand side of eq. (14)."""
    return call_model(model, xbar / math.sqrt(sigma ** 2 + 1), t)


def _run(model, x_T, sched, steps, skip, timesteps, progress, callback, return_trajectory, name, step_fn):
    _check_common(model, x_T, sched, None)
    taus = resolve_timesteps(sched.T, steps, skip, timesteps).tolist()[::-1] + [-1]
    sigmas = [sigma_from_alpha_bar(sched.alpha_bar_at(t)) if t >= 0 else 0.0 for t in taus]
    xbar = to_xbar(x_T, sched.alpha_bar_at(taus[0]))
    traj = Trajectory(timesteps=[taus[0]], xs=[x_T])
    state = {}
    for i in _progress(range(len(taus) - 1), progress, name):
        xbar, x0_pred = step_fn(model, xbar, taus[i], taus[i + 1], sigmas[i], sigmas[i + 1], state)
        x = xbar / math.sqrt(sigmas[i + 1] ** 2 + 1)
        if return_trajectory:
            traj.timesteps.append(taus[i + 1]), traj.xs.append(x), traj.x0_preds.append(x0_pred)
        if callback is not None:
            callback(i, taus[i], x, x0_pred)
    return (xbar, traj) if return_trajectory else xbar


def _euler_step(model, xbar, t, t_next, sigma, sigma_next, state):
    d = _eps_xbar(model, xbar, t, sigma)
    return xbar + (sigma_next - sigma) * d, xbar - sigma * d


def _heun_step(model, xbar, t, t_next, sigma, sigma_next, state):
    d = _eps_xbar(model, xbar, t, sigma)
    xbar_euler = xbar + (sigma_next - sigma) * d
    if sigma_next == 0:          # last step: Euler (no model at σ = 0), as in Karras et al.
        return xbar_euler, xbar - sigma * d
    d_next = _eps_xbar(model, xbar_euler, t_next, sigma_next)
    return xbar + (sigma_next - sigma) * 0.5 * (d + d_next), xbar - sigma * d


def _dpmpp_2m_step(model, xbar, t, t_next, sigma, sigma_next, state):
    # In x̄ with data prediction D = x̂_0 and λ = −log σ, one step of DPM-Solver++(2M) is
    #   x̄' = x̄ + (σ'/σ − 1)(x̄ − D_eff),   D_eff = (1 + 1/(2r)) D_i − 1/(2r) D_{i−1},  r = h_{i−1}/h_i,
    # which for D_eff = D_i is exactly the Euler/DDIM step.
    d = _eps_xbar(model, xbar, t, sigma)
    x0_pred = xbar - sigma * d
    if sigma_next == 0:
        return x0_pred, x0_pred
    h = math.log(sigma) - math.log(sigma_next)
    d_eff = x0_pred
    if "x0_prev" in state:
        r = state["h_prev"] / h
        d_eff = (1 + 1 / (2 * r)) * x0_pred - (1 / (2 * r)) * state["x0_prev"]
    state["x0_prev"], state["h_prev"] = x0_pred, h
    return d_eff + (sigma_next / sigma) * (xbar - d_eff), x0_pred


@torch.no_grad()
def euler_sample(model, x_T, sched, steps=50, skip="uniform", *, timesteps=None, progress=None,
                 callback=None, return_trajectory=False):
    """Euler's method for eq. (14) in σ: identical to :func:`ddim_sample` with η = 0 (eq. 13). NFE = S."""
    return _run(model, x_T, sched, steps, skip, timesteps, progress, callback, return_trajectory,
                "Euler (DDIM)", _euler_step)


@torch.no_grad()
def heun_sample(model, x_T, sched, steps=50, skip="uniform", *, timesteps=None, progress=None,
                callback=None, return_trajectory=False):
    """Heun's second-order method for eq. (14) in σ (Karras et al. 2022, Algorithm 1).

    Each step averages the slope at both ends; the last step (to σ = 0) is an Euler step.
    NFE = 2S − 1; global error O(1/S²) once the steps are small. With few steps on the
    uniform-in-t grid the first step spans σ ≈ 25 → 7 or more, the correction is scaled by
    Δσ/σ' and a trained network's Heun samples degrade badly (results/solvers.md);
    DPM-Solver++(2M), which steps in log σ, does not have that problem."""
    return _run(model, x_T, sched, steps, skip, timesteps, progress, callback, return_trajectory,
                "Heun", _heun_step)


@torch.no_grad()
def dpmpp_2m_sample(model, x_T, sched, steps=50, skip="uniform", *, timesteps=None, progress=None,
                    callback=None, return_trajectory=False):
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): second order from one network call a step,
    reusing the previous x̂_0. The first step is DDIM; the last (to σ = 0) returns x̂_0. NFE = S."""
    return _run(model, x_T, sched, steps, skip, timesteps, progress, callback, return_trajectory,
                "DPM-Solver++(2M)", _dpmpp_2m_step)
