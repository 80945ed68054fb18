r"""Sampling: DDPM's ancestral sampler, the DDIM family (eqs. 12, 16) and DDIM inversion.

One DDIM step from τ_i to τ_{i−1} (write ᾱ = ᾱ_{τ_i}, ᾱ' = ᾱ_{τ_{i−1}}, ᾱ' = 1 after the last):

    x̂_0  = (x_t − √(1−ᾱ) ε_θ(x_t, t)) / √ᾱ                                  "predicted x_0"
    x'   = √ᾱ' x̂_0 + √(1 − ᾱ' − σ²) ε_θ(x_t, t) + σ z,    z ~ N(0, I)          DDIM eq. (12)
    σ(η) = η √((1 − ᾱ')/(1 − ᾱ)) √(1 − ᾱ/ᾱ')                                   DDIM eq. (16)

η = 0 is DDIM (deterministic); η = 1 is DDPM's posterior variance β̃ on the sub-sequence.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .. import env
from .schedule import NoiseSchedule
from .timesteps import resolve_timesteps
from ..validation import check_choice, check_float, check_generator, check_int, check_model_output, check_tensor

VARIANCES = ("eta", "sigma_hat")


@dataclass
class Trajectory:
    """What a sampler visited: ``timesteps[k]`` is the time of ``xs[k]`` (−1 means clean data);
    ``x0_preds[k]`` is the x̂_0 predicted at ``timesteps[k]``."""
    timesteps: list = field(default_factory=list)
    xs: list = field(default_factory=list)
    x0_preds: list = field(default_factory=list)

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(xs [S+1, ...], x0_preds [S, ...]) as tensors, for plotting."""
        return torch.stack(self.xs), torch.stack(self.x0_preds)


# ----------------------------------------------------------------------------- the formulas
def ddim_sigma(alpha_bar_t: float, alpha_bar_prev: float, eta: float) -> float:
    """σ_{τ_i}(η) = η √((1 − ᾱ')/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ') — DDIM eq. (16).

    With η = 1 and consecutive steps this is DDPM's posterior variance β̃_t (DDPM eq. 7)."""
    eta = check_float("eta", eta, lo=0.0)
    return eta * math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) * math.sqrt(1 - alpha_bar_t / alpha_bar_prev)


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int, sched: NoiseSchedule,
              eta: float = 0.0, noise: torch.Tensor | None = None, *, variance: str = "eta",
              clip_x0: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of DDIM eq. (12) from timestep ``t`` to ``t_prev`` (−1 = clean data, ᾱ = 1).

    Returns ``(x_prev, x0_pred)``. ``noise`` (shaped like ``x_t``) is needed when σ > 0.
    ``variance="sigma_hat"`` is the paper's σ̂ = √(1 − ᾱ_t/ᾱ') row (appendix D.3): the larger
    noise with the ε coefficient √(1 − ᾱ' − σ(1)²) kept, no noise on the final step.
    ``clip_x0`` clips x̂_0 to [−1, 1] and recomputes ε from it (the official DDIM code does not clip).
    """
    check_tensor("x_t", x_t, floating=True)
    check_model_output(eps, x_t)
    t = check_int("t", t, lo=0, hi=sched.T - 1)
    t_prev = check_int("t_prev", t_prev, lo=-1, hi=t - 1)
    check_choice("variance", variance, VARIANCES)
    ab, ab_prev = sched.alpha_bar_at(t), sched.alpha_bar_at(t_prev)
    eps = eps.to(x_t.dtype)
    x0 = (x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
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
        x_prev = x_prev + sigma * noise.to(x_t.dtype)
    return x_prev, x0


def ddim_invert_step(x: torch.Tensor, eps: torch.Tensor, t_from: int, t_to: int,
                     sched: NoiseSchedule) -> torch.Tensor:
    """One deterministic step *towards more noise*, from ``t_from`` (−1 = data) to ``t_to`` > ``t_from``:
    eq. (12) with σ = 0 run backwards, x' = √ᾱ' x̂_0 + √(1 − ᾱ') ε with ε evaluated at the
    current point and time (the Euler step of the ODE, eq. 13, in the increasing direction)."""
    check_tensor("x", x, floating=True)
    check_model_output(eps, x)
    t_to = check_int("t_to", t_to, lo=0, hi=sched.T - 1)
    t_from = check_int("t_from", t_from, lo=-1, hi=t_to - 1)
    ab_from, ab_to = sched.alpha_bar_at(t_from), sched.alpha_bar_at(t_to)
    eps = eps.to(x.dtype)
    x0 = (x - math.sqrt(1 - ab_from) * eps) / math.sqrt(ab_from)
    return math.sqrt(ab_to) * x0 + math.sqrt(1 - ab_to) * eps


# ----------------------------------------------------------------------------- loops
def _check_common(model, x, sched, generator) -> None:
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t), got {type(model).__name__}")
    check_tensor("x_T", x, floating=True)
    if not isinstance(sched, NoiseSchedule):
        raise TypeError(f"sched must be a NoiseSchedule, got {type(sched).__name__}")
    check_generator("generator", generator)


def _progress(iterable, progress, desc):
    return env.progress_bar(iterable, progress, desc)


def call_model(model, x: torch.Tensor, t: int) -> torch.Tensor:
    """ε_θ(x, t) for a whole batch at one integer timestep, checked for shape."""
    t_batch = torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device)
    return check_model_output(model(x, t_batch), x)


@torch.no_grad()
def ddim_sample(model, x_T: torch.Tensor, sched: NoiseSchedule, steps: int = 50, eta: float = 0.0,
                skip: str = "uniform", generator: torch.Generator | None = None, *, timesteps=None,
                variance: str = "eta", clip_x0: bool = False, progress: bool | None = None,
                callback=None, return_trajectory: bool = False):
    """Generate x_0 from x_T with S = ``steps`` DDIM steps (eq. 12, σ from eq. 16).

    x_T sits at timestep τ_{S−1}; the model always receives the original timesteps τ_i; the
    last step goes to ᾱ = 1 and so returns x̂_0. Runs on x_T's device and dtype (float64
    in, float64 out). Noise (η > 0) comes from ``generator`` (a CPU generator: same numbers
    on every device). ``callback(i, t, x, x0_pred)`` is called after every step;
    ``return_trajectory=True`` returns ``(x0, Trajectory)``.
    """
    _check_common(model, x_T, sched, generator)
    eta = check_float("eta", eta, lo=0.0)
    check_choice("variance", variance, VARIANCES)
    taus = resolve_timesteps(sched.T, steps, skip, timesteps).tolist()
    x = x_T
    traj = Trajectory(timesteps=[taus[-1]], xs=[x])
    for i in _progress(range(len(taus) - 1, -1, -1), progress, f"DDIM η={eta:g}"):
        t, t_prev = taus[i], (taus[i - 1] if i > 0 else -1)
        eps = call_model(model, x, t)
        noisy = (eta > 0 or variance == "sigma_hat") and t_prev >= 0
        noise = env.randn(x.shape, generator, dtype=x.dtype, device=x.device) if noisy else None
        x, x0_pred = ddim_step(x, eps, t, t_prev, sched, eta, noise, variance=variance, clip_x0=clip_x0)
        if return_trajectory:
            traj.timesteps.append(t_prev), traj.xs.append(x), traj.x0_preds.append(x0_pred)
        if callback is not None:
            callback(len(taus) - 1 - i, t, x, x0_pred)
    return (x, traj) if return_trajectory else x


@torch.no_grad()
def ddpm_sample(model, x_T: torch.Tensor, sched: NoiseSchedule, generator: torch.Generator | None = None, *,
                variance: str = "beta_tilde", clip_x0: bool = False, progress: bool | None = None,
                callback=None, return_trajectory: bool = False):
    """Ancestral sampling over all T steps (DDPM Algorithm 2):

        x_{t−1} = μ̃_t(x_t, x̂_0) + σ_t z,   μ̃ from DDPM eq. (7) (equivalently eq. 11 in ε form),

    with σ_t² = β̃_t (``variance="beta_tilde"``, the η = 1 member of DDIM's family) or
    σ_t² = β_t (``variance="beta"``); no noise on the final step.
    """
    _check_common(model, x_T, sched, generator)
    check_choice("variance", variance, ("beta_tilde", "beta"))
    var = sched.posterior_variance if variance == "beta_tilde" else sched.betas
    x = x_T
    traj = Trajectory(timesteps=[sched.T - 1], xs=[x])
    for t in _progress(range(sched.T - 1, -1, -1), progress, "DDPM"):
        eps = call_model(model, x, t)
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        x0_pred = sched.predict_x0(x, t_batch, eps)
        if clip_x0:
            x0_pred = x0_pred.clamp(-1.0, 1.0)
        x = sched.posterior_mean(x0_pred, x, t_batch)
        if t > 0:
            x = x + math.sqrt(float(var[t])) * env.randn(x.shape, generator, dtype=x.dtype, device=x.device)
        if return_trajectory:
            traj.timesteps.append(t - 1), traj.xs.append(x), traj.x0_preds.append(x0_pred)
        if callback is not None:
            callback(sched.T - 1 - t, t, x, x0_pred)
    return (x, traj) if return_trajectory else x


@torch.no_grad()
def ddim_invert(model, x0: torch.Tensor, sched: NoiseSchedule, steps: int = 50, skip: str = "uniform", *,
                timesteps=None, progress: bool | None = None, callback=None, return_trajectory: bool = False):
    """The deterministic DDIM encoder x_0 → x_{τ_{S−1}} (section 4.3, "reconstruction"; Table 2).

    Walks the same sub-sequence as :func:`ddim_sample` upwards: from −1 (data) to τ_0, τ_1, …,
    evaluating ε at the current point and timestep (the timestep −1 is fed to the model as 0,
    where ᾱ_0 ≈ 1). Decoding the result with :func:`ddim_sample` (η = 0, same ``steps`` and
    ``skip``) returns x_0 up to an error that falls as S grows.
    """
    _check_common(model, x0, sched, None)
    taus = resolve_timesteps(sched.T, steps, skip, timesteps).tolist()
    x, t_from = x0, -1
    traj = Trajectory(timesteps=[-1], xs=[x])
    for i, t_to in enumerate(_progress(taus, progress, "DDIM inversion")):
        eps = call_model(model, x, max(t_from, 0))
        x = ddim_invert_step(x, eps, t_from, t_to, sched)
        if return_trajectory:
            ab = sched.alpha_bar_at(t_from)
            traj.timesteps.append(t_to), traj.xs.append(x)
            traj.x0_preds.append((traj.xs[-2] - math.sqrt(1 - ab) * eps) / math.sqrt(ab))
        if callback is not None:
            callback(i, t_to, x, None)
        t_from = t_to
    return (x, traj) if return_trajectory else x
