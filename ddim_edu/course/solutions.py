"""Reference solutions of the notebook exercises, written out for teaching.

``ddim_edu.course.checks`` prints these with ``.solution()``; its tests assert that each one agrees
with the tested package function it re-derives (schedules, samplers, ode, editing, training).
"""
from __future__ import annotations

import math

import torch


# ----------------------------------------------------------------------------- notebook 01
def alpha_bar(betas):
    """ᾱ_t = ∏_{s ≤ t} (1 − β_s) (DDPM eq. 4's ᾱ; the DDIM paper's α_t)."""
    return torch.cumprod(1 - betas, dim=0)


def q_sample(x0, t, noise, sched):
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, one timestep per example (DDPM eq. 4)."""
    ab = sched.alpha_bar.to(x0.dtype)[t].reshape(-1, *([1] * (x0.dim() - 1)))
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def posterior_variance(alpha_bar, betas):
    """β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t for t = 1, …, T − 1 (DDPM eq. 7)."""
    return (1 - alpha_bar[:-1]) / (1 - alpha_bar[1:]) * betas[1:]


# ----------------------------------------------------------------------------- notebook 02
def loss(model, x0, t, noise, sched):
    """L_simple = mean ‖ε_θ(x_t, t) − ε‖² (DDPM eq. 14), x_t by the closed form of notebook 01."""
    ab = sched.alpha_bar.to(x0.dtype)[t].reshape(-1, *([1] * (x0.dim() - 1)))
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    return (model(x_t, t) - noise).pow(2).mean()


def timestep_embedding(t, dim):
    """[B] integer timesteps → float32 [B, dim]: sin(t ω_k), then cos(t ω_k), ω_k = 10000^(−k/half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


@torch.no_grad()
def ema_update(ema_params, params, decay):
    """In place: θ̄ ← d θ̄ + (1 − d) θ for every pair of tensors."""
    for e, p in zip(ema_params, params):
        e.mul_(decay).add_(p, alpha=1 - decay)


# ----------------------------------------------------------------------------- notebook 03
def sigma(alpha_bar_t, alpha_bar_prev, eta):
    """σ(η) = η √((1 − ᾱ')/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ'), DDIM eq. (16)."""
    return eta * math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) * math.sqrt(1 - alpha_bar_t / alpha_bar_prev)


def ddim_step(x_t, eps, t, t_prev, sched, eta, noise):
    """x' = √ᾱ' x̂_0 + √(1 − ᾱ' − σ²) ε + σ z, DDIM eq. (12); ᾱ at t_prev = −1 is 1."""
    ab, ab_prev = sched.alpha_bar_at(t), sched.alpha_bar_at(t_prev)
    x0 = (x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    s = sigma(ab, ab_prev, eta)
    return math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - s ** 2, 0.0)) * eps + s * noise


def sigma_hat_step(x_t, eps, t, t_prev, sched, noise):
    """The σ̂ row of Table 1 (appendix D.3): noise σ̂ = √(1 − ᾱ_t/ᾱ'), ε coefficient of η = 1."""
    ab, ab_prev = sched.alpha_bar_at(t), sched.alpha_bar_at(t_prev)
    x0 = (x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    direction = math.sqrt(max(1 - ab_prev - sigma(ab, ab_prev, 1.0) ** 2, 0.0))
    s_hat = math.sqrt(1 - ab / ab_prev) if t_prev >= 0 else 0.0     # no noise on the last step
    return math.sqrt(ab_prev) * x0 + direction * eps + s_hat * noise


# ----------------------------------------------------------------------------- notebook 04
def x_to_xbar(x, sigma):
    """x̄ = x/√ᾱ = x·√(σ² + 1) (section 4.3)."""
    return x * math.sqrt(sigma ** 2 + 1)


def xbar_to_x(xbar, sigma):
    """x = x̄/√(σ² + 1)."""
    return xbar / math.sqrt(sigma ** 2 + 1)


def euler_step(x_t, eps, t, t_prev, sched):
    """DDIM (η = 0) as Euler in σ, eq. (13): x̄' = x̄ + (σ' − σ) ε."""
    ab, ab_prev = sched.alpha_bar_at(t), sched.alpha_bar_at(t_prev)
    s, s_prev = math.sqrt((1 - ab) / ab), math.sqrt((1 - ab_prev) / ab_prev)
    xbar = x_t * math.sqrt(s ** 2 + 1)
    return (xbar + (s_prev - s) * eps) / math.sqrt(s_prev ** 2 + 1)


def heun_step(model, xbar, t, t_next, sched):
    """Heun in σ for eq. (14) (Karras et al. 2022, Algorithm 1): average the slopes at both ends."""
    s = math.sqrt((1 - sched.alpha_bar_at(t)) / sched.alpha_bar_at(t))
    s_next = math.sqrt((1 - sched.alpha_bar_at(t_next)) / sched.alpha_bar_at(t_next))
    t_b, t_next_b = torch.full((xbar.shape[0],), t), torch.full((xbar.shape[0],), t_next)
    d = model(xbar / math.sqrt(s ** 2 + 1), t_b)
    trial = xbar + (s_next - s) * d
    d_next = model(trial / math.sqrt(s_next ** 2 + 1), t_next_b)
    return xbar + (s_next - s) * 0.5 * (d + d_next)


# ----------------------------------------------------------------------------- notebook 05
def slerp(z0, z1, alpha):
    """sin((1−α)θ)/sin θ · z₀ + sin(αθ)/sin θ · z₁ with one angle θ per example (appendix D.5)."""
    f0, f1 = z0.flatten(1), z1.flatten(1)
    theta = torch.arccos(((f0 * f1).sum(1) / (f0.norm(dim=1) * f1.norm(dim=1))).clamp(-1, 1))
    w0 = torch.sin((1 - alpha) * theta) / torch.sin(theta)
    w1 = torch.sin(alpha * theta) / torch.sin(theta)
    return (w0[:, None] * f0 + w1[:, None] * f1).reshape(z0.shape)


def lerp_midpoint_norm(d):
    """(z₀ + z₁)/2 ~ N(0, I/2), so its norm is about √(d/2): lerp shrinks the code by 1/√2."""
    return math.sqrt(d / 2)


def roughness(paths):
    """mean |x_f − x_{f−1}| over paths, frames and pixels, on [0, 1]."""
    x = ((paths + 1) / 2).clamp(0, 1)
    return float((x[:, 1:] - x[:, :-1]).abs().mean())


# ----------------------------------------------------------------------------- notebook 06
def invert_step(x, eps, t_from, t_to, sched):
    """Eq. (12) with σ = 0 towards more noise: x' = √ᾱ_to x̂_0 + √(1 − ᾱ_to) ε, x̂_0 at t_from."""
    ab_from, ab_to = sched.alpha_bar_at(t_from), sched.alpha_bar_at(t_to)
    x0 = (x - math.sqrt(1 - ab_from) * eps) / math.sqrt(ab_from)
    return math.sqrt(ab_to) * x0 + math.sqrt(1 - ab_to) * eps


def invert(model, x0, sched, steps):
    """The DDIM encoder: walk τ_0 < τ_1 < … upwards, ε at the *current* point and timestep."""
    from ..diffusion.timesteps import make_timesteps
    x, t_from = x0, -1
    for t_to in make_timesteps(sched.T, steps).tolist():
        eps = model(x, torch.full((x.shape[0],), max(t_from, 0)))
        x = invert_step(x, eps, t_from, t_to, sched)
        t_from = t_to
    return x


def roundtrip_errors(model, x0, sched, steps_list):
    """{S: mean ‖decode(encode(x0)) − x0‖} with the same S both ways, η = 0."""
    from ..diffusion.samplers import ddim_invert, ddim_sample
    errors = {}
    for s in steps_list:
        z = ddim_invert(model, x0, sched, steps=s, progress=False)
        errors[s] = float((ddim_sample(model, z, sched, steps=s, progress=False) - x0).norm(dim=1).mean())
    return errors
