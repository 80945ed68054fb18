r"""Noise schedules and the forward process q(x_t | x_0).

Notation (read this once; the rest of the course uses ᾱ):

=====================  ==========================  ==================================
this course / DDPM     DDIM paper (Song et al.)    meaning
=====================  ==========================  ==================================
β_t                    —                           variance added at step t
α_t = 1 − β_t          —                           one-step signal scale²
ᾱ_t = ∏_{s≤t} α_s      α_t                         total signal kept up to step t
=====================  ==========================  ==================================

The paper writes α_t for what DDPM calls ᾱ_t. Timesteps are integers t ∈ {0, …, T−1}
(DDPM's t = 1 … T shifted by one), and ᾱ at "t = −1", the step after the last, is 1.

The dtype policy, once for the whole package: the schedule is float64; every coefficient
(√ᾱ_t, √(1 − ᾱ_t), the posterior's weights, …) is gathered and combined in float64 and only
the result is cast to the data's dtype. In float16, ᾱ_0 = 0.9999 rounds to 1, so √(1 − ᾱ_0)
computed after the cast would be 0 (no noise at t = 0, a division by zero in the posterior). Samplers run in x_T's dtype and cast the model's output to it;
networks run in their parameters' dtype (see ``ddim_edu.nets``).
"""
from __future__ import annotations

import math

import torch

from ..validation import check_choice, check_float, check_int, check_same_shape, check_tensor, check_timesteps


class NoiseSchedule:
    """A discrete variance schedule β_1..β_T and everything derived from it (float64).

    Build one with :meth:`linear` (DDPM/DDIM, β from 1e-4 to 0.02) or :meth:`cosine`
    (Nichol & Dhariwal 2021).
    """

    def __init__(self, betas: torch.Tensor, name: str = "custom", params: dict | None = None):
        check_tensor("betas", betas, floating=True)
        if betas.dim() != 1:
            raise ValueError(f"betas must be 1-D, got shape {tuple(betas.shape)}")
        betas = betas.detach().to("cpu", torch.float64)
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("betas must lie in (0, 1)")
        self.name = name
        self.params = dict(params or {})
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alpha_bar = torch.cumprod(self.alphas, dim=0)
        # ᾱ_{t−1}, with ᾱ_{−1} = 1
        self.alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar[:-1]])

    # ----------------------------------------------------------------- constructors
    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "NoiseSchedule":
        """β linear from ``beta_start`` to ``beta_end`` (Ho et al. 2020; used throughout DDIM)."""
        T = check_int("T", T, lo=1)
        beta_start = check_float("beta_start", beta_start, lo=0.0, hi=1.0, lo_open=True)
        beta_end = check_float("beta_end", beta_end, lo=0.0, hi=1.0, lo_open=True)
        if beta_end >= 1.0 or beta_start >= 1.0:
            raise ValueError(f"beta_start and beta_end must be < 1, got {beta_start}, {beta_end}")
        betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
        return cls(betas, "linear", {"T": T, "beta_start": beta_start, "beta_end": beta_end})

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> "NoiseSchedule":
        """ᾱ(t) = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s) · π/2) (Nichol & Dhariwal 2021, eq. 17),
        with β clipped at ``max_beta`` as in their code."""
        T = check_int("T", T, lo=1)
        s = check_float("s", s, lo=0.0)
        max_beta = check_float("max_beta", max_beta, lo=0.0, hi=1.0, lo_open=True)
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(min=1e-12, max=max_beta)
        return cls(betas, "cosine", {"T": T, "s": s, "max_beta": max_beta})

    @classmethod
    def from_config(cls, config: dict) -> "NoiseSchedule":
        """Rebuild a schedule from :meth:`to_config` (used by checkpoints)."""
        if not isinstance(config, dict) or "name" not in config:
            raise ValueError(f"config must be a dict with a 'name' key, got {config!r}")
        kind = check_choice("config['name']", config["name"], ("linear", "cosine"))
        params = {k: v for k, v in config.items() if k != "name"}
        return getattr(cls, kind)(**params)

    def to_config(self) -> dict:
        if self.name not in ("linear", "cosine"):
            raise ValueError("only linear and cosine schedules can be saved in a config")
        return {"name": self.name, **self.params}

    # ----------------------------------------------------------------- basics
    @property
    def T(self) -> int:
        return int(self.betas.shape[0])

    def __repr__(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"NoiseSchedule.{self.name}({extra})"

    def alpha_bar_at(self, t: int) -> float:
        """ᾱ_t as a Python float (float64), with ᾱ_{−1} = 1 for the step after the last."""
        t = check_int("t", t, lo=-1, hi=self.T - 1)
        return 1.0 if t < 0 else float(self.alpha_bar[t])

    def snr(self, t: torch.Tensor | None = None) -> torch.Tensor:
        """Signal-to-noise ratio SNR(t) = ᾱ_t / (1 − ᾱ_t) (Kingma et al. 2021), float64."""
        ab = self.alpha_bar if t is None else self.alpha_bar[self._t(t)]
        return ab / (1.0 - ab)

    def log_snr(self, t: torch.Tensor | None = None) -> torch.Tensor:
        """log SNR(t), float64; falls monotonically with t."""
        return torch.log(self.snr(t))

    def sigma(self, t: torch.Tensor | None = None) -> torch.Tensor:
        """σ_t = √(1 − ᾱ_t)/√ᾱ_t, the noise level of x̄ = x/√ᾱ (DDIM section 4.3), float64."""
        return self.snr(t).rsqrt()

    def _t(self, t) -> torch.Tensor:
        t = torch.as_tensor(t)
        if t.dim() == 0:
            t = t[None]
        return check_timesteps("t", t.cpu(), t.shape[0], self.T)

    def _gather(self, values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """values[t] in float64 on x's device (float32 on Apple MPS, which has no float64),
        shaped [B, 1, 1, ...] to broadcast over x. Combine these, then cast the result."""
        t = check_timesteps("t", t, x.shape[0], self.T, device=x.device)
        wide = torch.float32 if x.device.type == "mps" else torch.float64
        return values.to(wide).to(x.device)[t].reshape(-1, *([1] * (x.dim() - 1)))

    # ----------------------------------------------------------------- forward process
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Sample x_t ~ q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) (DDPM eq. 4; DDIM eq. 4):
        x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε."""
        check_tensor("x0", x0, floating=True)
        check_tensor("noise", noise, floating=True)
        check_same_shape("noise", noise, "x0", x0)
        ab = self._gather(self.alpha_bar, t, x0)
        return ab.sqrt().to(x0.dtype) * x0 + (1.0 - ab).sqrt().to(x0.dtype) * noise.to(x0.dtype)

    def q_step(self, x_prev: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """One step of the Markov chain q(x_t | x_{t−1}) = N(√(1 − β_t) x_{t−1}, β_t I) (DDPM eq. 2)."""
        check_tensor("x_prev", x_prev, floating=True)
        check_same_shape("noise", noise, "x_prev", x_prev)
        beta = self._gather(self.betas, t, x_prev)
        return (1.0 - beta).sqrt().to(x_prev.dtype) * x_prev + beta.sqrt().to(x_prev.dtype) * noise.to(x_prev.dtype)

    # ----------------------------------------------------------------- reverse-process pieces
    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x̂_0 = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t, the "predicted x_0" of DDIM eq. (9)/(12)."""
        check_tensor("x_t", x_t, floating=True)
        check_same_shape("eps", eps, "x_t", x_t)
        ab = self._gather(self.alpha_bar, t, x_t)
        a, b = ab.rsqrt().to(x_t.dtype), ((1.0 - ab) / ab).sqrt().to(x_t.dtype)    # 1/√ᾱ, √(1−ᾱ)/√ᾱ
        return a * x_t - b * eps.to(x_t.dtype)

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """ε = (x_t − √ᾱ_t x_0) / √(1 − ᾱ_t), the inverse of :meth:`predict_x0`."""
        check_tensor("x_t", x_t, floating=True)
        check_same_shape("x0", x0, "x_t", x_t)
        ab = self._gather(self.alpha_bar, t, x_t)
        a, b = (1.0 - ab).rsqrt().to(x_t.dtype), (ab / (1.0 - ab)).sqrt().to(x_t.dtype)   # 1/√(1−ᾱ), √ᾱ/√(1−ᾱ)
        return a * x_t - b * x0.to(x_t.dtype)

    @property
    def posterior_variance(self) -> torch.Tensor:
        """β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t, the variance of q(x_{t−1} | x_t, x_0) (DDPM eq. 7)."""
        return (1.0 - self.alpha_bar_prev) / (1.0 - self.alpha_bar) * self.betas

    def posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """μ̃_t(x_t, x_0) = √ᾱ_{t−1} β_t/(1 − ᾱ_t) · x_0 + √α_t (1 − ᾱ_{t−1})/(1 − ᾱ_t) · x_t (DDPM eq. 7)."""
        check_tensor("x_t", x_t, floating=True)
        check_same_shape("x0", x0, "x_t", x_t)
        ab = self._gather(self.alpha_bar, t, x_t)
        ab_prev = self._gather(self.alpha_bar_prev, t, x_t)
        beta = self._gather(self.betas, t, x_t)
        coef_x0 = (ab_prev.sqrt() * beta / (1.0 - ab)).to(x_t.dtype)
        coef_xt = ((1.0 - beta).sqrt() * (1.0 - ab_prev) / (1.0 - ab)).to(x_t.dtype)
        return coef_x0 * x0.to(x_t.dtype) + coef_xt * x_t
