r"""A class-conditional Gaussian mixture: the labels are the components, and every quantity guidance
needs is exact — the "perfectly trained" conditional model for testing guidance.

For x_0 ~ Σ_k π_k N(μ_k, s_k² I) with label y = k, the noisy marginals at ᾱ = ᾱ_t are

    q_t(x | y) = N(x; √ᾱ μ_y, v_y I),  v_y = ᾱ s_y² + 1 − ᾱ,      q_t(x) = Σ_k π_k q_t(x | k),

so the optimal conditional ε (Tweedie; DDIM eq. (10) at optimum) is a single Gaussian's,

    ε*(x, t | y) = −√(1−ᾱ) ∇ log q_t(x | y) = √(1−ᾱ) (x − √ᾱ μ_y) / v_y,

the unconditional ε*(x, t) is :class:`~.analytic.GaussianMixture`'s, and the exact noise-aware
classifier is the responsibility p_t(y | x) = π_y q_t(x | y) / q_t(x). Guidance then has a closed
form at every t (:meth:`ConditionalMixture.guided_eps`), and its probability-flow ODE can be
solved to 1e-9 with RK4 (:meth:`ConditionalMixture.guided_ode_solution`) — the reference for
samplers run with :class:`~.guidance.ClassifierFreeGuidance`.

What the closed form shows: at w = 1 the ODE carries q_T(x | y) exactly to the component
N(μ_y, s_y² I); at w > 1 samples move away from the other classes (p(y | x_0) rises, the spread
around μ_y shrinks), but their law is NOT the tilted p(x | y)^w p(x)^(1−w)
(:meth:`ConditionalMixture.tilted_log_prob`): the tilt of each q_t is not the noised tilt.
"""
from __future__ import annotations

import torch

from .analytic import GaussianMixture
from ..validation import check_float, check_tensor, check_timesteps

__all__ = ["ConditionalMixture", "ConditionalExactEpsModel"]


class ConditionalMixture:
    """The :class:`~.analytic.GaussianMixture` ``mixture`` with its K components as classes 0..K−1
    (K = :attr:`null_label` is ∅, "no label"). Arguments x: [B, d] float; ``alpha_bar``: a number
    or a float [B] tensor; ``y``: LongTensor [B] in 0..K (K: the unconditional ε)."""

    def __init__(self, mixture: GaussianMixture):
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
        self.mixture = mixture
        self.num_classes = int(mixture.means.shape[0])

    @property
    def null_label(self) -> int:
        return self.num_classes

    def component(self, y: int) -> GaussianMixture:
        """p(x_0 | y) = N(μ_y, s_y² I) as a one-component mixture."""
        m = self.mixture
        return GaussianMixture(m.means[y:y + 1], m.stds[y:y + 1], [1.0])

    def _ab(self, x: torch.Tensor, alpha_bar) -> torch.Tensor:
        check_tensor("x", x, floating=True, min_dim=2)
        if x.shape[1] != self.mixture.dim:
            raise ValueError(f"x must have shape [B, {self.mixture.dim}], got {tuple(x.shape)}")
        return torch.as_tensor(alpha_bar, dtype=torch.float64).to(x.device)

    def class_log_probs(self, x: torch.Tensor, alpha_bar) -> torch.Tensor:
        """log p_t(y | x) for every y: float [B, K] in x's dtype (the exact noise-aware classifier,
        the mixture's log responsibilities at noise level ᾱ)."""
        ab = self._ab(x, alpha_bar)
        _, _, logp = self.mixture._components(x, ab)
        return torch.log_softmax(logp, dim=1)

    def eps(self, x: torch.Tensor, alpha_bar, y: torch.Tensor | None = None) -> torch.Tensor:
        """ε*(x, ᾱ | y) = √(1−ᾱ)(x − √ᾱ μ_y)/v_y per example (one Gaussian's ε); ``y`` None or
        equal to K gives the unconditional mixture ε*(x, ᾱ). Shape and dtype of x."""
        ab = self._ab(x, alpha_bar)
        eps_u = self.mixture.eps(x, ab)
        if y is None:
            return eps_u
        from ..nets.conditional import check_labels
        y = check_labels("y", y, x.shape[0], self.num_classes, x.device)
        k = y.clamp(max=self.num_classes - 1)
        abb = ab.expand(x.shape[0]).reshape(-1, 1)
        v = abb * self.mixture.stds.to(x.device)[k, None] ** 2 + 1 - abb                 # [B, 1]
        eps_c = ((1 - abb).sqrt() * (x - abb.sqrt() * self.mixture.means.to(x.device)[k]) / v).to(x.dtype)
        return torch.where((y == self.num_classes)[:, None], eps_u, eps_c)

    def guided_eps(self, x: torch.Tensor, alpha_bar, y: torch.Tensor, w: float) -> torch.Tensor:
        """The guided ε̃ = ε*(x, ᾱ | ∅) + w (ε*(x, ᾱ | y) − ε*(x, ᾱ | ∅)) in closed form; equal to
        ε* − w √(1−ᾱ) ∇ log p_t(y | x) (Bayes' rule; Dhariwal & Nichol 2021 §4.2)."""
        w = check_float("w", w, lo=0.0)
        eps_u = self.eps(x, alpha_bar)
        return eps_u + w * (self.eps(x, alpha_bar, y) - eps_u)

    def guided_ode_solution(self, x_start: torch.Tensor, sigma_start: float, y: torch.Tensor, w: float,
                            n_steps: int = 1000, rho: float = 3.0) -> torch.Tensor:
        """The exact end point of the guided probability-flow ODE dx̄/dσ = ε̃(x̄/√(σ²+1), 1/(1+σ²))
        (DDIM eq. (14) with :meth:`guided_eps`), by the same classical RK4 on the same σ grid as
        :meth:`~.analytic.GaussianMixture.ode_solution` (independent of the package's samplers).
        ``x_start`` [B, d] at noise level ``sigma_start``; ``y`` LongTensor [B]; returns x_0 [B, d]."""
        w = check_float("w", w, lo=0.0)
        field = _GuidedField(self, y, w)
        return GaussianMixture.ode_solution(field, x_start, sigma_start, n_steps=n_steps, rho=rho)

    def tilted_log_prob(self, x: torch.Tensor, y: torch.Tensor, w: float) -> torch.Tensor:
        """w log p(x | y) + (1 − w) log p(x) at ᾱ = 1 (unnormalised, [B]): the law CFG would sample
        if tilting commuted with noising; it does not (see the module docstring)."""
        w = check_float("w", w, lo=0.0)
        comp = self.class_log_probs(x, 1.0).gather(1, y[:, None].to(x.device))[:, 0]   # log p(y | x)
        return self.mixture.log_prob(x) + w * comp                                     # + const

    def eps_model(self, schedule) -> "ConditionalExactEpsModel":
        """``model(x_t, t, y=None)`` with integer timesteps, like a trained conditional network."""
        return ConditionalExactEpsModel(self, schedule)

    def classifier(self, schedule):
        """The exact noise-aware classifier ``log_prob(x_t, t, y)`` → log p_t(y | x_t) [B], for
        :class:`~.guidance.ClassifierGuidance`."""
        def log_prob(x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            t = check_timesteps("t", t, x.shape[0], schedule.T, device=x.device)
            ab = schedule.alpha_bar.to(x.device)[t]
            return self.class_log_probs(x, ab).gather(1, y[:, None])[:, 0]
        return log_prob


class _GuidedField:
    """ε̃(x, ᾱ) for one y and w, shaped like a mixture for ``GaussianMixture.ode_solution``."""

    def __init__(self, cm: ConditionalMixture, y: torch.Tensor, w: float):
        self.cm, self.y, self.w = cm, y, w

    def eps(self, x: torch.Tensor, alpha_bar) -> torch.Tensor:
        return self.cm.guided_eps(x, alpha_bar, self.y.to(x.device), self.w)


class ConditionalExactEpsModel(torch.nn.Module):
    """``model(x_t, t, y=None) = ε*(x_t, ᾱ_t | y)``: the conditional mixture's optimal ε for a
    schedule (y None or K = ∅: the unconditional ε*). ``calls`` counts evaluations."""

    def __init__(self, cm: ConditionalMixture, schedule):
        super().__init__()
        self.cm, self.schedule = cm, schedule
        self.num_classes = cm.num_classes
        self.calls = 0

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        check_tensor("x_t", x_t, floating=True, min_dim=2)
        t = check_timesteps("t", t, x_t.shape[0], self.schedule.T, device=x_t.device)
        self.calls += 1
        return self.cm.eps(x_t, self.schedule.alpha_bar.to(x_t.device)[t], y)
