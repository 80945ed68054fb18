r"""A Gaussian mixture whose optimal noise predictor is known in closed form.

If x_0 ~ Σ_k π_k N(μ_k, s_k² I), then x_t = √ᾱ x_0 + √(1−ᾱ) ε is again a mixture,
q_t(x) = Σ_k π_k N(√ᾱ μ_k, v_k I) with v_k = ᾱ s_k² + 1 − ᾱ, and the ε that minimises the
DDPM loss is ε*(x_t) = −√(1−ᾱ) ∇ log q_t(x_t) (Tweedie's formula; DDIM eq. 10 trained to
optimum). The course uses it as a "perfectly trained model": any sampler error is then
the sampler's own, and the probability-flow ODE can be solved exactly to compare with.
"""
from __future__ import annotations

import math

import torch

from ..validation import check_int, check_tensor, check_timesteps


class GaussianMixture:
    """An isotropic Gaussian mixture in d dimensions with exact ε*(x_t, ᾱ).

    ``means``: [K, d]; ``stds``: [K] (or a number); ``weights``: [K] summing to 1.
    """

    def __init__(self, means, stds, weights=None):
        means = torch.as_tensor(means, dtype=torch.float64)
        if means.dim() != 2:
            raise ValueError(f"means must have shape [K, d], got {tuple(means.shape)}")
        K = means.shape[0]
        stds = torch.as_tensor(stds, dtype=torch.float64).expand(K).clone()
        if not bool((stds > 0).all()):
            raise ValueError(f"stds must be positive, got {stds.tolist()}")
        weights = torch.full((K,), 1.0 / K, dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        if weights.shape != (K,) or not bool((weights > 0).all()) or abs(float(weights.sum()) - 1) > 1e-9:
            raise ValueError(f"weights must be {K} positive numbers summing to 1, got {weights.tolist()}")
        self.means, self.stds, self.weights = means, stds, weights

    @classmethod
    def ring(cls, k: int = 8, radius: float = 2.0, std: float = 0.1) -> "GaussianMixture":
        """k equal components on a circle: the classic 2-D toy set."""
        k = check_int("k", k, lo=1)
        angles = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
        means = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
        return cls(means, std)

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def sample(self, n: int, generator: torch.Generator | None = None, return_labels: bool = False):
        """n draws from the mixture (float64, CPU)."""
        n = check_int("n", n, lo=1)
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = self.means[labels] + self.stds[labels, None] * z
        return (x, labels) if return_labels else x

    # ------------------------------------------------------------------ exact quantities
    def _components(self, x: torch.Tensor, alpha_bar: torch.Tensor):
        """Means, variances and log responsibilities of q_t's components at x."""
        ab = alpha_bar.to(x).reshape(-1, 1, 1)                                  # [B or 1, 1, 1]
        mu = ab.sqrt() * self.means.to(x)[None]                                  # [., K, d]
        var = (ab[..., 0] * self.stds.to(x)[None] ** 2 + 1 - ab[..., 0])        # [., K]
        sq = ((x[:, None, :] - mu) ** 2).sum(-1)                                 # [B, K]
        logp = self.weights.to(x).log() - 0.5 * sq / var - 0.5 * self.dim * torch.log(2 * math.pi * var)
        return mu, var, logp

    def log_prob(self, x: torch.Tensor, alpha_bar=1.0) -> torch.Tensor:
        """log q_t(x) for data at noise level ᾱ (ᾱ = 1: the mixture itself)."""
        check_tensor("x", x, floating=True, min_dim=2)
        _, _, logp = self._components(x, torch.as_tensor(alpha_bar, dtype=torch.float64))
        return torch.logsumexp(logp, dim=1)

    def score(self, x: torch.Tensor, alpha_bar) -> torch.Tensor:
        """∇_x log q_t(x) at noise level ᾱ (a number or a [B] tensor)."""
        check_tensor("x", x, floating=True, min_dim=2)
        if x.shape[1] != self.dim:
            raise ValueError(f"x must have shape [B, {self.dim}], got {tuple(x.shape)}")
        mu, var, logp = self._components(x, torch.as_tensor(alpha_bar, dtype=torch.float64))
        resp = torch.softmax(logp, dim=1)                                        # [B, K]
        return -(resp[..., None] * (x[:, None, :] - mu) / var[..., None]).sum(1)

    def eps(self, x: torch.Tensor, alpha_bar) -> torch.Tensor:
        """ε*(x, ᾱ) = −√(1 − ᾱ) ∇ log q_t(x): the optimal noise prediction (Tweedie)."""
        ab = torch.as_tensor(alpha_bar, dtype=torch.float64).to(x.device)
        return -(1 - ab).sqrt().to(x.dtype).reshape(-1, 1) * self.score(x, ab)

    def ode_solution(self, x_start: torch.Tensor, sigma_start: float, n_steps: int = 1000,
                     rho: float = 3.0) -> torch.Tensor:
        """The exact end point of the probability-flow ODE (DDIM eq. 14) for this mixture's ε*.

        Solves dx̄/dσ = ε*(x̄/√(σ² + 1), ᾱ = 1/(1 + σ²)) from x̄ = x_start·√(1 + σ_start²) down to
        σ = 0 with classical RK4 on the grid σ_k = σ_start (1 − k/n)^ρ (dense near σ = 0, where the
        field changes fastest). Independent of the package's samplers: the reference they are
        measured against. ``x_start``: [B, d] float tensor at noise level ``sigma_start`` (e.g.
        σ at t = 999 ≈ 158); returns x_0 [B, d] in x_start's dtype (use float64: with n = 1000
        the result is converged to about 1e-9).
        """
        check_tensor("x_start", x_start, floating=True, min_dim=2)
        n_steps = check_int("n_steps", n_steps, lo=1)

        def f(xbar, sigma):
            ab = 1.0 / (1.0 + sigma ** 2)
            return self.eps(xbar * math.sqrt(ab), ab)

        xbar = x_start * math.sqrt(1 + sigma_start ** 2)
        grid = [sigma_start * (1 - k / n_steps) ** rho for k in range(n_steps + 1)]
        for s0, s1 in zip(grid[:-1], grid[1:]):
            h = s1 - s0
            k1 = f(xbar, s0)
            k2 = f(xbar + 0.5 * h * k1, s0 + 0.5 * h)
            k3 = f(xbar + 0.5 * h * k2, s0 + 0.5 * h)
            k4 = f(xbar + h * k3, s1)
            xbar = xbar + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return xbar

    def eps_model(self, schedule) -> "ExactEpsModel":
        """A callable ``model(x_t, t)`` with integer timesteps, like a trained network."""
        return ExactEpsModel(self, schedule)


class ExactEpsModel(torch.nn.Module):
    """``model(x_t, t) = ε*(x_t, ᾱ_t)``: the Gaussian mixture's optimal ε for a schedule."""

    def __init__(self, mixture: GaussianMixture, schedule):
        super().__init__()
        self.mixture, self.schedule = mixture, schedule
        self.calls = 0   # number of function evaluations (NFE), for the solver comparisons

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        check_tensor("x_t", x_t, floating=True, min_dim=2)
        t = check_timesteps("t", t, x_t.shape[0], self.schedule.T, device=x_t.device)
        self.calls += 1
        ab = self.schedule.alpha_bar.to(x_t.device)[t]
        return self.mixture.eps(x_t, ab)
