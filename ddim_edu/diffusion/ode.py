r"""The ODE view of DDIM (section 4.3) and the higher-order solvers of the probability-flow ODE.

Change variables to σ = √(1 − ᾱ)/√ᾱ and x̄ = x/√ᾱ. Then DDIM's update (eq. 12, η = 0) reads

    x̄_{t−Δt} = x̄_t + (σ_{t−Δt} − σ_t) ε_θ(x_t, t)                              DDIM eq. (13)

which is exactly Euler's method for the probability-flow ODE

    dx̄(σ) = ε_θ(x̄/√(σ² + 1), σ) dσ                                           DDIM eq. (14).

So a better ODE solver is a better sampler at the same number of network calls (NFE):

===================  ============================================  ================
solver               reference                                     NFE for S steps
===================  ============================================  ================
``euler_sample``     DDIM, eq. (13) (it *is* ``ddim_sample``)      S
``heun_sample``      Heun in σ (Karras et al. 2022, Algorithm 1)   2S − 1
``dpmpp_2m_sample``  DPM-Solver++(2M) (Lu et al. 2022b, Alg. 2)    S
``dpmpp_3m_sample``  DPM-Solver++(3M) (Lu et al. 2022b, multistep)  S
===================  ============================================  ================

All solvers follow the sampler contract (:mod:`.contract`) and walk the timesteps of
:func:`~.timesteps.make_timesteps` (S = ``steps``, 50 when None) or an explicit ``timesteps``
(then ``skip`` is unused and ``steps`` must be None or len(timesteps): ValueError otherwise,
as in every sampler). Their default grids differ:
DDIM/Euler and Heun use ``skip="uniform"``, the DPM-Solver++ samplers ``skip="log_snr"`` (uniform
steps in log σ, Lu et al. 2022), the grid their multistep extrapolation is built for; see
:data:`LOWER_ORDER_RATIO` for what goes wrong on a uniform-in-t grid. A solver is one step
function ``step(den, x̄, t, t_next, σ, σ_next, state) → (x̄_next, x̂₀)`` run by :func:`_solve`,
plus one entry in :mod:`.registry`.
"""
from __future__ import annotations

import functools
import math

import torch

from .contract import check_sampler_args, report, sampler_grid, steps_bar
from .denoiser import Denoiser, as_denoiser
from .samplers import ddim_sample
from ..validation import check_float

__all__ = ["sigma_from_alpha_bar", "alpha_bar_from_sigma", "to_xbar", "from_xbar", "heun_step", "dpmpp_2m_step",
           "dpmpp_3m_step", "LOWER_ORDER_RATIO", "euler_sample", "heun_sample", "dpmpp_2m_sample", "dpmpp_3m_sample"]


def sigma_from_alpha_bar(alpha_bar):
    """σ = √(1 − ᾱ)/√ᾱ (section 4.3); σ = 0 at ᾱ = 1 (clean data). A float or a float64 tensor."""
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


LOWER_ORDER_RATIO = 0.5
"""The multistep DPM-Solver++ steps lower their order while an earlier step they extrapolate from is
shorter (in λ = −log σ) than this fraction of the current one: r = h_{−1}/h < 0.5. The 2M update
extrapolates x̂₀ by D_1/2 = (x̂₀ − x̂₀^{prev})/(2r) (:func:`_dpmpp_multistep`); with r ≥ ½ the
extrapolation reaches at most one full difference of consecutive x̂₀ beyond the current one, with
a tiny r (a uniform-in-t grid's last steps into t ≈ 0, where σ falls from about 0.2 to 0.01 in a
few timesteps) it amplifies the x̂₀ difference by 1/(2r) and the sample blows up. The official DPM-Solver code does the same by position: with ``lower_order_final``
it uses lower orders for the final steps of short runs (under 10 steps; diffusers'
``DPMSolverMultistepScheduler``: under 15); a ratio rule also covers any grid a user passes. 0
disables it (diffusers' ``lower_order_final=False``)."""


# ----------------------------------------------------------------------------- one step each
def heun_step(model, xbar, t, t_next, sigma, sigma_next, state=None):
    """One Heun step of eq. (14) from σ (timestep ``t``) to σ_next (``t_next``; −1 with σ_next = 0).

    ``model``: a :class:`~.denoiser.Denoiser` or an ε-model ``model(x_t, t)``; ``xbar``: x̄ [B, ...].
    Trial Euler step, slope there, then the average of both slopes (Karras et al. 2022, Alg. 1):
    two network calls, one on the last step (to σ = 0, plain Euler). Returns (x̄_next, x̂₀ at t).
    """
    den = as_denoiser(model)
    d, x0_pred = den.at_sigma(xbar, t, sigma)
    xbar_euler = xbar + (sigma_next - sigma) * d
    if sigma_next == 0:
        return xbar_euler, x0_pred
    d_next, _ = den.at_sigma(xbar_euler, t_next, sigma_next)
    return xbar + (sigma_next - sigma) * 0.5 * (d + d_next), x0_pred


def _dpmpp_multistep(order, model, xbar, t, t_next, sigma, sigma_next, state, lower_order_ratio=LOWER_ORDER_RATIO):
    r"""DPM-Solver++ of multistep order ``order`` in λ = −log σ with data prediction D = x̂₀.

    With h = λ' − λ and ρ = σ'/σ = e^{−h}, the exponential integrator gives, in x̄,

        x̄' = ρ x̄ + (1 − ρ) D_0                                                     first order = DDIM
        x̄' = ρ x̄ + (1 − ρ)(D_0 + D_1/2),   D_1 = (D_0 − D_{−1})/r_0                  2M (Lu et al. Alg. 2)
        x̄' = ρ x̄ + (1 − ρ) D_0 + (1 − (1 − ρ)/h) D_1 − ((h − (1 − ρ))/h² − ½) D_2    3M

    where r_k = h_{−1−k}/h are the earlier steps' lengths over this one, and D_1, D_2 are the
    divided differences of the last three x̂₀ (3M: D_1 = D_1⁰ + r_0/(r_0 + r_1)(D_1⁰ − D_1¹),
    D_2 = (D_1⁰ − D_1¹)/(r_0 + r_1), D_1^k = (D_{−k} − D_{−k−1})/r_k). The first steps use lower
    orders (too few x̂₀ yet); so does a step whose r_k fall below ``lower_order_ratio``
    (:data:`LOWER_ORDER_RATIO`: the order drops until every ratio it uses is at least that); the
    last step, to σ = 0, returns x̂₀. ``state["orders"]`` records the order of each step.
    """
    _, x0_pred = as_denoiser(model).at_sigma(xbar, t, sigma)
    state = {} if state is None else state
    history = state.setdefault("history", [])        # (x̂₀, h) of earlier steps, newest last
    if sigma_next == 0:
        state.setdefault("orders", []).append(1)
        return x0_pred, x0_pred
    h = math.log(sigma) - math.log(sigma_next)
    rho = sigma_next / sigma
    k = min(order, len(history) + 1)
    ratios = [hk / h for _, hk in history[::-1]]          # r_0 = h_{-1}/h, r_1 = h_{-2}/h, …
    while k > 1 and min(ratios[:k - 1]) < lower_order_ratio:
        k -= 1                                           # extrapolating from much shorter steps: lower order
    state.setdefault("orders", []).append(k)
    if k <= 2:
        d_eff = x0_pred
        if k == 2:
            r = history[-1][1] / h
            d_eff = (1 + 1 / (2 * r)) * x0_pred - (1 / (2 * r)) * history[-1][0]
        out = d_eff + rho * (xbar - d_eff)
    else:
        (m2, h1), (m1, h0) = history[-2], history[-1]
        r0, r1 = h0 / h, h1 / h
        d1_0, d1_1 = (x0_pred - m1) / r0, (m1 - m2) / r1
        d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
        d2 = (d1_0 - d1_1) / (r0 + r1)
        phi = -math.expm1(-h)                        # 1 − ρ
        out = rho * xbar + phi * x0_pred + (1 - phi / h) * d1 - ((h - phi) / h ** 2 - 0.5) * d2
    history.append((x0_pred, h))
    del history[:-(order - 1)]
    return out, x0_pred


def dpmpp_2m_step(model, xbar, t, t_next, sigma, sigma_next, state, lower_order_ratio=LOWER_ORDER_RATIO):
    """One step of DPM-Solver++(2M); ``state`` (a dict, empty at the start) carries the previous x̂₀.
    Returns (x̄_next, x̂₀ at t). See :func:`_dpmpp_multistep` for the formulas."""
    return _dpmpp_multistep(2, model, xbar, t, t_next, sigma, sigma_next, state, lower_order_ratio)


def dpmpp_3m_step(model, xbar, t, t_next, sigma, sigma_next, state, lower_order_ratio=LOWER_ORDER_RATIO):
    """One step of DPM-Solver++(3M); ``state`` carries the two previous x̂₀. Returns (x̄_next, x̂₀ at t)."""
    return _dpmpp_multistep(3, model, xbar, t, t_next, sigma, sigma_next, state, lower_order_ratio)


# ----------------------------------------------------------------------------- the loop
def _solve(step_fn, name, model, x, sched, steps, skip, timesteps, generator, callback, progress, prediction):
    """Run ``step_fn`` in x̄ down the grid τ_{S−1} > … > τ_0 > −1 (σ = 0); return x at σ = 0 (= x̄)."""
    check_sampler_args(model, x, sched, generator, callback)
    den = Denoiser(model, prediction)
    taus = sampler_grid(sched, steps, skip, timesteps)[::-1] + [-1]
    sigmas = [sigma_from_alpha_bar(sched.alpha_bar_at(t)) if t >= 0 else 0.0 for t in taus]
    xbar, state = to_xbar(x, sched.alpha_bar_at(taus[0])), {}
    for i in steps_bar(len(taus) - 1, progress, name):
        xbar, x0_pred = step_fn(den, xbar, taus[i], taus[i + 1], sigmas[i], sigmas[i + 1], state)
        if callback is not None:
            x_next = xbar / math.sqrt(sigmas[i + 1] ** 2 + 1)
            report(callback, i, taus[i], taus[i + 1], x, x_next, x0_pred)
            x = x_next
    return xbar


@torch.no_grad()
def euler_sample(model, x, sched, *, steps=None, skip="uniform", timesteps=None, generator=None, callback=None,
                 progress=None, prediction="eps") -> torch.Tensor:
    """Euler's method for eq. (14) in σ, which is DDIM with η = 0 (eq. 13): this *is*
    :func:`ddim_sample` (``eta=0``), one implementation of the update. NFE = S. ``steps``
    (None: 50 unless ``timesteps`` is given), ``skip``, ``timesteps`` and the ValueError when
    ``steps`` ≠ len(timesteps): as in :func:`ddim_sample`."""
    return ddim_sample(model, x, sched, steps=steps, skip=skip, timesteps=timesteps, generator=generator,
                       callback=callback, progress=progress, prediction=prediction, eta=0.0)


@torch.no_grad()
def heun_sample(model, x, sched, *, steps=None, skip="uniform", timesteps=None, generator=None, callback=None,
                progress=None, prediction="eps") -> torch.Tensor:
    """Heun's second-order method for eq. (14) in σ (Karras et al. 2022, Algorithm 1), :func:`heun_step`.

    ``x``: x_T [B, ...] at τ_{S−1}; returns x_0 shaped and typed like x. ``steps``: int S, or None
    = 50 unless ``timesteps`` (an explicit grid; ``skip`` unused) is given; ValueError when
    ``steps`` ≠ len(timesteps). NFE = 2S − 1; global error O(1/S²) once the steps are small. On the
    uniform-in-t grid the last corrected step evaluates ε at t = 0, where a network trained with
    little weight on small t (min-SNR) is least accurate, and the shipped MNIST model's Heun samples
    degrade badly (results/solvers.md); a grid that stops at t = 20 (``timesteps``) with the same
    NFE recovers most of it (results/solvers_small_t.md).
    DPM-Solver++ steps in log σ and puts more of its steps near t = 0; its own weak spot there is
    long log-σ steps into t ≈ 0 (see :data:`LOWER_ORDER_RATIO`)."""
    return _solve(heun_step, "Heun", model, x, sched, steps, skip, timesteps, generator, callback, progress,
                  prediction)


@torch.no_grad()
def dpmpp_2m_sample(model, x, sched, *, steps=None, skip="log_snr", timesteps=None, generator=None, callback=None,
                    progress=None, prediction="eps", lower_order_ratio=LOWER_ORDER_RATIO) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022b, Algorithm 2): second order from one network call a step,
    reusing the previous x̂₀. The first step is DDIM; the last (to σ = 0) returns x̂₀; a step after a
    much shorter one (ratio below ``lower_order_ratio``, :data:`LOWER_ORDER_RATIO`) is first order.
    NFE = S. Default grid ``skip="log_snr"``: steps uniform in log σ (Lu et al. 2022), on which it is
    at least as accurate as DDIM on its uniform grid from S = 10 and converges at order 2 (the
    tests check both on two mixtures with exact ε). ``steps``: int S, or None = 50 unless
    ``timesteps`` (an explicit grid; ``skip`` unused) is given; ValueError when ``steps`` ≠
    len(timesteps). Returns x_0 shaped and typed like ``x``."""
    lower_order_ratio = check_float("lower_order_ratio", lower_order_ratio, lo=0.0)
    step = functools.partial(dpmpp_2m_step, lower_order_ratio=lower_order_ratio)
    return _solve(step, "DPM-Solver++(2M)", model, x, sched, steps, skip, timesteps, generator, callback,
                  progress, prediction)


@torch.no_grad()
def dpmpp_3m_sample(model, x, sched, *, steps=None, skip="log_snr", timesteps=None, generator=None, callback=None,
                    progress=None, prediction="eps", lower_order_ratio=LOWER_ORDER_RATIO) -> torch.Tensor:
    """DPM-Solver++(3M) (Lu et al. 2022b, multistep third order in λ = −log σ): one network call a
    step, reusing the two previous x̂₀. Steps 1 and 2 are DDIM and 2M; the last (to σ = 0) returns
    x̂₀ (diffusers' ``final_sigmas_type="zero"``); orders drop after much shorter steps
    (``lower_order_ratio``, :data:`LOWER_ORDER_RATIO`). NFE = S. Default grid ``skip="log_snr"``, as
    for :func:`dpmpp_2m_sample`; ``steps`` and ``timesteps`` as there (None: 50 unless
    ``timesteps`` is given; ValueError when ``steps`` ≠ len(timesteps)). Returns x_0 shaped and
    typed like ``x``."""
    lower_order_ratio = check_float("lower_order_ratio", lower_order_ratio, lo=0.0)
    step = functools.partial(dpmpp_3m_step, lower_order_ratio=lower_order_ratio)
    return _solve(step, "DPM-Solver++(3M)", model, x, sched, steps, skip, timesteps, generator, callback,
                  progress, prediction)
