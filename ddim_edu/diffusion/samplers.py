r"""Sampling: the DDIM family (eqs. 12, 16), DDPM's ancestral sampler and DDIM inversion.

One DDIM step from τ_i to τ_{i−1} (write ᾱ = ᾱ_{τ_i}, ᾱ' = ᾱ_{τ_{i−1}}, ᾱ' = 1 after the last):

    x̂_0  = (x_t − √(1−ᾱ) ε_θ(x_t, t)) / √ᾱ                                  "predicted x_0"
    x'   = √ᾱ' x̂_0 + √(1 − ᾱ' − σ²) ε_θ(x_t, t) + σ z,    z ~ N(0, I)          DDIM eq. (12)
    σ(η) = η √((1 − ᾱ')/(1 − ᾱ)) √(1 − ᾱ/ᾱ')                                   DDIM eq. (16)

η = 0 is DDIM (deterministic); η = 1 is DDPM's posterior variance β̃ on the sub-sequence. The paper's
η lies in [0, 1]; anything outside is refused (ValueError), never clamped (η > 1 would need σ² > 1 − ᾱ').
The loops follow the sampler contract of :mod:`.contract`; ``euler_sample`` (in :mod:`.ode`)
is this DDIM loop with η = 0.

One vocabulary for the noise of the stochastic samplers, ``variance``:

- ``"eta"``: σ = σ(η) of eq. (16); in ``ddpm_sample`` η = 1, i.e. σ² = β̃_t (DDPM's posterior
  variance);
- ``"sigma_hat"``: the paper's σ̂ = √(1 − ᾱ/ᾱ') with the ε coefficient of η = 1 kept (appendix
  D.3); on consecutive steps σ̂² = β_t, DDPM's other choice.

Dtypes (the package's policy, :mod:`.schedule`): every coefficient (√ᾱ, √(1 − ᾱ' − σ²), σ, …) is a
Python float computed in float64 and only the product with the data carries x's dtype; a sampler
runs in x_T's dtype (float16, bfloat16, float32 or float64) and casts the model's output to it, so
a float16 network under a float64 sampler, or the reverse, is fine. The noise z is drawn by
:func:`ddim_edu.env.randn`: in float32 for float16/bfloat16 x (then rounded), so one seed gives the
same noise in float16, bfloat16 and float32; float64 x gets torch's float64 draws (other numbers).

Noise and batch size: one generator draws the noise of the whole batch at each step, so with
η > 0 (and in DDPM) the sample for example k depends on the batch it is in: the same seed and
x_T[k] give another sample in a batch of another size. Sample in one batch, or draw x_T and pass
one generator per batch, to reproduce a run; η = 0 samples do not depend on the batch.
"""
from __future__ import annotations

import math

import torch

from .. import env
from .contract import Trajectory, check_sampler_args, report, sampler_grid, steps_bar
from .denoiser import Denoiser, x0_from_eps
from .schedule import NoiseSchedule
from ..validation import (PIXEL_SCALE_LIMIT, check_choice, check_float, check_image_range, check_int, check_model_output,
                          check_same_shape, check_tensor)

__all__ = ["VARIANCES", "Trajectory", "ddim_sigma", "ddim_step", "ddim_invert_step", "ddim_sample", "ddpm_sample",
           "ddim_invert"]

VARIANCES = ("eta", "sigma_hat")


# ----------------------------------------------------------------------------- the formulas
ETA_RANGE = dict(lo=0.0, hi=1.0)       # the paper's η ∈ [0, 1]; checked, never clamped


def _alpha_bar_value(name: str, value, lo: float) -> float:
    """ᾱ as a Python float (float64): a number or a one-element tensor, in (lo, 1]."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point():
        value = float(value)
    return check_float(name, value, lo=lo, hi=1.0, lo_open=True)


def ddim_sigma(alpha_bar_t: float, alpha_bar_prev: float, eta: float) -> float:
    """σ_{τ_i}(η) = η √((1 − ᾱ')/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ') — DDIM eq. (16).

    ``alpha_bar_t`` = ᾱ_t in (0, 1) (the noisier end), ``alpha_bar_prev`` = ᾱ' in [ᾱ_t, 1] (1 after the
    last step), ``eta`` in [0, 1]. With η = 1 and consecutive steps this is DDPM's posterior
    variance β̃_t (DDPM eq. 7). Computed in float64; returns a Python float."""
    eta = check_float("eta", eta, **ETA_RANGE)
    alpha_bar_t = _alpha_bar_value("alpha_bar_t", alpha_bar_t, 0.0)
    if alpha_bar_t == 1.0:
        raise ValueError("alpha_bar_t must be in (0.0, 1.0) (ᾱ of a noisy timestep t ≥ 0), got 1.0")
    alpha_bar_prev = _alpha_bar_value("alpha_bar_prev", alpha_bar_prev, 0.0)
    if alpha_bar_prev < alpha_bar_t:
        raise ValueError(f"alpha_bar_prev must be in [alpha_bar_t, 1.0] = [{alpha_bar_t}, 1.0] (ᾱ' of the less "
                         f"noisy timestep; are the arguments swapped?), got {alpha_bar_prev}")
    return eta * math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) * math.sqrt(1 - alpha_bar_t / alpha_bar_prev)


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int, sched: NoiseSchedule,
              eta: float = 0.0, noise: torch.Tensor | None = None, *, variance: str = "eta",
              clip_x0: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of DDIM eq. (12) from timestep ``t`` to ``t_prev`` (−1 = clean data, ᾱ = 1).

    Returns ``(x_prev, x0_pred)`` in x_t's dtype (``eps`` and ``noise`` are cast to it; coefficients in
    float64). ``noise`` (shaped like ``x_t``) is needed when σ > 0; ``eta`` in [0, 1].
    ``variance="sigma_hat"`` is the paper's σ̂ = √(1 − ᾱ_t/ᾱ') row (appendix D.3): the larger
    noise with the ε coefficient √(1 − ᾱ' − σ(1)²) kept, no noise on the final step.
    ``clip_x0`` clips x̂_0 to [−1, 1] and recomputes ε from it (the official DDIM code does not clip).
    """
    check_tensor("x_t", x_t, floating=True)
    eps = check_model_output(eps, x_t)
    t = check_int("t", t, lo=0, hi=sched.T - 1)
    t_prev = check_int("t_prev", t_prev, lo=-1, hi=t - 1)
    check_choice("variance", variance, VARIANCES)
    eta = check_float("eta", eta, **ETA_RANGE)
    if variance == "sigma_hat" and eta not in (0.0, 1.0):
        raise ValueError(f"eta must be 0 or 1 with variance='sigma_hat' (σ̂ sets the noise itself), got {eta}")
    ab, ab_prev = sched.alpha_bar_at(t), sched.alpha_bar_at(t_prev)
    x0 = x0_from_eps(x_t, eps, ab)
    if clip_x0:
        x0 = x0.clamp(-1.0, 1.0)
        eps = (x_t - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
    sigma = ddim_sigma(ab, ab_prev, eta)
    if variance == "sigma_hat":
        dir_coef = math.sqrt(max(1 - ab_prev - ddim_sigma(ab, ab_prev, 1.0) ** 2, 0.0))
        sigma = math.sqrt(1 - ab / ab_prev) if t_prev >= 0 else 0.0
    else:
        dir_coef = math.sqrt(max(1 - ab_prev - sigma ** 2, 0.0))
    x_prev = math.sqrt(ab_prev) * x0 + dir_coef * eps
    if sigma > 0:
        if noise is None:
            raise ValueError(f"noise is required when σ > 0 (eta={eta}, variance={variance!r}, t={t} → {t_prev})")
        check_tensor("noise", noise, floating=True)
        check_same_shape("noise", noise, "x_t", x_t)
        x_prev = x_prev + sigma * noise.to(device=x_t.device, dtype=x_t.dtype)
    return x_prev, x0


def ddim_invert_step(x: torch.Tensor, eps: torch.Tensor, t_from: int, t_to: int,
                     sched: NoiseSchedule) -> torch.Tensor:
    """One deterministic step *towards more noise*, from ``t_from`` (−1 = data) to ``t_to`` > ``t_from``:
    eq. (12) with σ = 0 run backwards, x' = √ᾱ' x̂_0 + √(1 − ᾱ') ε with ε evaluated at the
    current point and time (the Euler step of the ODE, eq. 13, in the increasing direction)."""
    check_tensor("x", x, floating=True)
    t_to = check_int("t_to", t_to, lo=0, hi=sched.T - 1)
    t_from = check_int("t_from", t_from, lo=-1, hi=t_to - 1)
    ab_from, ab_to = sched.alpha_bar_at(t_from), sched.alpha_bar_at(t_to)
    eps = check_model_output(eps, x)
    x0 = x0_from_eps(x, eps, ab_from)
    return math.sqrt(ab_to) * x0 + math.sqrt(1 - ab_to) * eps


# ----------------------------------------------------------------------------- loops
@torch.no_grad()
def ddim_sample(model, x, sched, *, steps=None, skip="uniform", timesteps=None, generator=None, callback=None,
                progress=None, prediction="eps", eta=0.0, variance="eta", clip_x0=False) -> torch.Tensor:
    """Generate x_0 from x = x_T with S = ``steps`` DDIM steps (eq. 12, σ from eq. 16).

    ``x``: [B, ...] float tensor at timestep τ_{S−1}. ``steps``: int S in 1..T, or None = 50
    (:data:`~.timesteps.DEFAULT_STEPS`); ``skip``: the grid's spacing (:func:`~.timesteps.make_timesteps`);
    ``timesteps``: an explicit increasing grid instead, S = len(timesteps), ``skip`` unused and
    ``steps`` left out (or equal to S). The model always receives the original timesteps τ_i; the
    last step goes to ᾱ = 1 and so returns x̂_0. Returns a tensor shaped like x, on x's device
    and in x's dtype. Noise (η > 0 or ``variance="sigma_hat"``) comes from ``generator`` (a CPU
    generator: the same numbers on every device). ``clip_x0`` clips x̂_0 to [−1, 1] (pitfall 5).
    ``callback`` and ``prediction``: see :mod:`.contract` and :mod:`.denoiser`. Raises ValueError
    for steps outside 1..T, ``steps`` ≠ len(timesteps) when both are given, η outside [0, 1], an
    unknown ``skip``/``variance``/``prediction``.

    Runs in x's dtype (float16, bfloat16, float32, float64; the model's output is cast to it). With
    noise, example k's sample depends on the batch size: one generator draws the whole batch's
    noise at each step, so x[k] in a batch of 4 and in a batch of 8 gets different noise (see the
    module docstring). With η = 0 it depends on x[k] alone.
    """
    check_sampler_args(model, x, sched, generator, callback)
    eta = check_float("eta", eta, **ETA_RANGE)
    check_choice("variance", variance, VARIANCES)
    den = Denoiser(model, prediction)
    taus = sampler_grid(sched, steps, skip, timesteps)
    S = len(taus)
    for i in steps_bar(S, progress, f"DDIM η={eta:g}" if variance == "eta" else "DDIM σ̂"):
        t, t_prev = taus[S - 1 - i], (taus[S - 2 - i] if i < S - 1 else -1)
        eps, _ = den(x, t, sched.alpha_bar_at(t))
        noisy = (eta > 0 or variance == "sigma_hat") and t_prev >= 0
        noise = env.randn(x.shape, generator, dtype=x.dtype, device=x.device) if noisy else None
        x_next, x0_pred = ddim_step(x, eps, t, t_prev, sched, eta, noise, variance=variance, clip_x0=clip_x0)
        report(callback, i, t, t_prev, x, x_next, x0_pred)
        x = x_next
    return x


@torch.no_grad()
def ddpm_sample(model, x, sched, *, steps=None, skip="uniform", timesteps=None, generator=None, callback=None,
                progress=None, prediction="eps", variance="eta", clip_x0=False) -> torch.Tensor:
    """Ancestral sampling (DDPM Algorithm 2), by default over all T steps:

        x_{t−1} = μ̃_t(x_t, x̂_0) + σ_t z,   μ̃ from DDPM eq. (7) (equivalently eq. 11 in ε form),

    with σ_t² = β̃_t (``variance="eta"``: the η = 1 member of DDIM's family) or σ_t² = β_t
    (``variance="sigma_hat"``: σ̂ on consecutive steps); no noise on the final step. ``steps=None``
    and ``timesteps=None`` mean all T steps (not the 50 of the other samplers). A shorter grid,
    from ``steps`` and ``skip`` or from ``timesteps`` (``skip`` unused; ``steps`` left out or equal
    to len(timesteps), else ValueError), runs the same sampler on the sub-sequence, which is
    :func:`ddim_sample` with η = 1 (or σ̂): DDIM eq. (16). Returns a tensor shaped like x (x_T), in
    its dtype and on its device. As in :func:`ddim_sample` the noise of example k depends on the
    batch size (one generator draws the whole batch at each step).
    """
    check_sampler_args(model, x, sched, generator, callback)
    check_choice("variance", variance, VARIANCES)
    full = steps is None and timesteps is None
    if not full and sampler_grid(sched, steps, skip, timesteps) != list(range(sched.T)):
        return ddim_sample(model, x, sched, steps=steps, skip=skip, timesteps=timesteps, generator=generator,
                           callback=callback, progress=progress, prediction=prediction, eta=1.0, variance=variance,
                           clip_x0=clip_x0)
    den = Denoiser(model, prediction)
    var = sched.posterior_variance if variance == "eta" else sched.betas
    for i in steps_bar(sched.T, progress, "DDPM"):
        t = sched.T - 1 - i
        eps, _ = den(x, t, sched.alpha_bar_at(t))
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        x0_pred = sched.predict_x0(x, t_batch, eps)      # DDPM eq. (15) in the schedule's form (bit-stable)
        if clip_x0:
            x0_pred = x0_pred.clamp(-1.0, 1.0)
        x_next = sched.posterior_mean(x0_pred, x, t_batch)
        if t > 0:
            x_next = x_next + math.sqrt(float(var[t])) * env.randn(x.shape, generator, dtype=x.dtype, device=x.device)
        report(callback, i, t, t - 1, x, x_next, x0_pred)
        x = x_next
    return x


@torch.no_grad()
def ddim_invert(model, x, sched, *, steps=None, skip="uniform", timesteps=None, generator=None, callback=None,
                progress=None, prediction="eps") -> torch.Tensor:
    """The deterministic DDIM encoder x_0 → x_{τ_{S−1}} (section 4.3, "reconstruction"; Table 2).

    ``x``: data x_0 [B, ...]. Walks the same sub-sequence as :func:`ddim_sample` upwards: from −1
    (data) to τ_0, τ_1, …, evaluating ε at the current point and timestep (the timestep −1 is fed
    to the model as 0, where ᾱ_0 ≈ 1). ``steps``, ``skip`` and ``timesteps`` as in :func:`ddim_sample`
    (``steps=None``: 50 unless ``timesteps`` is given; ValueError when ``steps`` ≠ len(timesteps)).
    Decoding the result with :func:`ddim_sample` (η = 0, the same grid) returns x_0 up to an error
    that falls as S grows. ``generator`` is accepted for the common contract and unused (no
    randomness). The callback's ``t`` is where each step starts (−1 for the first), ``t_next``
    where it ends, as in every sampler. Raises ValueError when images ``x`` (3 or more dimensions)
    are plainly pixels not in [−1, 1]: 0–255, [0, 1], or any value beyond ±10 (the message names
    the conversion); Gaussian noise and 2-D points pass.
    """
    check_sampler_args(model, x, sched, generator, callback)
    if x.dim() >= 3:                # images x_0 ([B, C, H, W] or one [C, H, W]): pixels would encode to a wrong latent
        check_image_range("x", x, limit=PIXEL_SCALE_LIMIT)
    den = Denoiser(model, prediction)
    taus = sampler_grid(sched, steps, skip, timesteps)
    t_from = -1
    for i in steps_bar(len(taus), progress, "DDIM inversion"):
        t_to, t_model = taus[i], max(t_from, 0)
        eps, _ = den(x, t_model, sched.alpha_bar_at(t_model))
        x_next = ddim_invert_step(x, eps, t_from, t_to, sched)
        if callback is not None:
            report(callback, i, t_from, t_to, x, x_next, x0_from_eps(x, eps, sched.alpha_bar_at(t_from)))
        x, t_from = x_next, t_to
    return x
