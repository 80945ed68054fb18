r"""The ε → denoiser seam: turns any model output (ε, x₀ or v) into the pair (ε̂, x̂₀) the samplers use.

A network may be trained to predict the noise ε (DDPM, DDIM), the clean data x₀, or the velocity
v = √ᾱ ε − √(1 − ᾱ) x₀ (Salimans & Ho 2022). At x_t = √ᾱ x₀ + √(1 − ᾱ) ε (DDIM eq. 4) each one
determines the other two:

    ε:  x̂₀ = (x_t − √(1 − ᾱ) ε̂)/√ᾱ                                            DDIM eq. (9)
    x₀: ε̂  = (x_t − √ᾱ x̂₀)/√(1 − ᾱ)
    v:  x̂₀ = √ᾱ x_t − √(1 − ᾱ) v̂,   ε̂ = √(1 − ᾱ) x_t + √ᾱ v̂

In the ODE variables of section 4.3 (σ = √(1 − ᾱ)/√ᾱ, x̄ = x/√ᾱ) x̂₀ is Karras et al.'s denoiser
D(x̄, σ) and ε̂ = (x̄ − D)/σ is the slope dx̄/dσ of eq. (14). Every sampler calls the model through
:class:`Denoiser`, so a model of another parametrisation plugs into all of them.
"""
from __future__ import annotations

import math

import torch

from ..validation import check_choice, check_model_output

PREDICTIONS = ("eps", "x0", "v")


def x0_from_eps(x: torch.Tensor, eps: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """x̂₀ = (x_t − √(1 − ᾱ) ε)/√ᾱ (DDIM eq. 9); ᾱ a Python float (float64), the result in x's dtype."""
    return (x - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)


def eps_x0_from_output(out: torch.Tensor, x: torch.Tensor, alpha_bar: float,
                       prediction: str = "eps") -> tuple[torch.Tensor, torch.Tensor]:
    """(ε̂, x̂₀) at x = x_t with ᾱ = ``alpha_bar`` from a model output ``out`` of kind ``prediction``.

    ``out`` and ``x``: tensors of the same shape (any float dtype); the coefficients √ᾱ and
    √(1 − ᾱ) are computed in float64 and only the results carry x's dtype. ``"x0"`` needs ᾱ < 1.
    Raises ValueError for an unknown ``prediction``.
    """
    check_choice("prediction", prediction, PREDICTIONS)
    if prediction == "eps":
        return out, x0_from_eps(x, out, alpha_bar)
    a, s = math.sqrt(alpha_bar), math.sqrt(1 - alpha_bar)
    if prediction == "x0":
        return (x - a * out) / s, out
    return s * x + a * out, a * x - s * out


class Denoiser:
    """A model ``model(x_t, t)`` (t: LongTensor [B] of integer timesteps) seen by the samplers.

    ``prediction``: what the model returns, ``"eps"`` (default), ``"x0"`` or ``"v"``. Both methods
    return ``(eps, x0)``, tensors shaped and typed like their input; the model output must have
    the input's shape (ValueError) and be a tensor (TypeError).
    """

    def __init__(self, model, prediction: str = "eps"):
        if isinstance(model, Denoiser):
            model = model.model
        if not callable(model):
            raise TypeError(f"model must be callable as model(x_t, t), got {type(model).__name__}")
        self.model, self.prediction = model, check_choice("prediction", prediction, PREDICTIONS)

    def output(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """The raw model output for the whole batch at one integer timestep ``t``, checked for shape."""
        t_batch = torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device)
        return check_model_output(self.model(x, t_batch), x)

    def __call__(self, x: torch.Tensor, t: int, alpha_bar: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(ε̂, x̂₀) at x = x_t, timestep ``t`` with ᾱ = ``alpha_bar`` (``sched.alpha_bar_at(t)``)."""
        return eps_x0_from_output(self.output(x, t), x, alpha_bar, self.prediction)

    def at_sigma(self, xbar: torch.Tensor, t: int, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(dx̄/dσ, D(x̄, σ)) in the ODE variables: ε̂ at x = x̄/√(σ² + 1) and x̂₀ = x̄ − σ ε̂ (eq. 14)."""
        x = xbar / math.sqrt(sigma ** 2 + 1)
        out = self.output(x, t)
        if self.prediction == "eps":
            return out, xbar - sigma * out
        return eps_x0_from_output(out, x, 1.0 / (1.0 + sigma ** 2), self.prediction)


def as_denoiser(model) -> Denoiser:
    """``model`` if it is a :class:`Denoiser`, else an ε-predicting one around it."""
    return model if isinstance(model, Denoiser) else Denoiser(model)
