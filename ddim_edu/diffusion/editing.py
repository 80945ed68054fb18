r"""Working in DDIM's latent space: interpolation between two x_T and SDEdit-style edits.

* :func:`slerp` — spherical linear interpolation (Shoemake 1985), the rule DDIM uses to
  interpolate between two x_T (DDIM appendix D.5, S = 50):
  slerp(z₀, z₁; α) = sin((1−α)θ)/sin θ · z₀ + sin(αθ)/sin θ · z₁, θ = arccos(⟨z₀, z₁⟩/(‖z₀‖‖z₁‖)).
  A standard Gaussian z ∈ ℝ^d has ‖z‖ ≈ √d, so x_T lives near a sphere; :func:`lerp`'s
  midpoint of two independent draws has norm ≈ √(d/2), a point the model never saw.
* :func:`sdedit` — noise an image part-way, x_{t₀} = q_sample(x₀, t₀, ε) (DDIM eq. 4), and
  decode it with DDIM (eq. 12) from t₀ down to data (Meng et al. 2022, SDEdit).
* :func:`label_edit` — DDIM-invert x₀ with its own label (section 4.3), decode the latent with
  another label and classifier-free guidance: "this 3 as an 8, in the same handwriting".
"""
from __future__ import annotations

import torch

from .. import env
from .guidance import ClassifierFreeGuidance
from .samplers import ddim_invert, ddim_sample
from .schedule import NoiseSchedule
from .timesteps import DEFAULT_STEPS
from ..validation import check_float, check_generator, check_int, check_same_shape, check_tensor

__all__ = ["lerp", "slerp", "interpolate_latents", "sdedit_timesteps", "sdedit", "label_edit"]

_PARALLEL_EPS = 1e-6   # |sin θ| below this: the great circle is undefined or ill-conditioned, use lerp


def _alphas(alpha, like: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """alpha as a float64 tensor [n] and whether the caller asked for a batch of interpolants."""
    if isinstance(alpha, torch.Tensor):
        if alpha.dim() != 1 or not alpha.is_floating_point() or alpha.numel() == 0:
            raise ValueError(f"alpha must be a float or a non-empty 1-D float tensor of weights in [0, 1], "
                             f"got tensor(shape={tuple(alpha.shape)}, dtype={alpha.dtype})")
        a = alpha.detach().to(like.device, torch.float64)
        if not bool(((a >= 0) & (a <= 1)).all()):
            raise ValueError(f"alpha must lie in [0, 1], got values from {float(a.min())} to {float(a.max())}")
        return a, True
    return torch.tensor([check_float("alpha", alpha, lo=0.0, hi=1.0)], dtype=torch.float64, device=like.device), False


def _check_pair(z0, z1) -> None:
    check_tensor("z0", z0, floating=True)
    check_tensor("z1", z1, floating=True)
    check_same_shape("z1", z1, "z0", z0)


def _flat(z: torch.Tensor) -> torch.Tensor:
    """[B, ...] → float64 [B, D] (a 1-D tensor is one example)."""
    return z.detach().to(torch.float64).reshape(1 if z.dim() == 1 else z.shape[0], -1)


def lerp(z0: torch.Tensor, z1: torch.Tensor, alpha) -> torch.Tensor:
    """Linear interpolation (1 − α) z₀ + α z₁. ``alpha``: a float (result shaped like z0) or a
    1-D tensor [n] (result [n, *z0.shape]). Shown to contrast with :func:`slerp`."""
    _check_pair(z0, z1)
    a, batched = _alphas(alpha, z0)
    out = torch.stack([(1 - ai) * z0.to(torch.float64) + ai * z1.to(torch.float64) for ai in a]).to(z0.dtype)
    return out if batched else out[0]


def slerp(z0: torch.Tensor, z1: torch.Tensor, alpha) -> torch.Tensor:
    r"""Spherical linear interpolation, DDIM appendix D.5 (as in the official code):

        θ = arccos(⟨z₀, z₁⟩ / (‖z₀‖ ‖z₁‖)),  slerp = sin((1−α)θ)/sin θ · z₀ + sin(αθ)/sin θ · z₁.

    ``z0``, ``z1``: [B, ...] (one angle per example, over all non-batch dimensions) or a
    single 1-D vector. ``alpha``: a float in [0, 1] (result shaped like z0) or a 1-D tensor
    [n] (result [n, *z0.shape]). α = 0 and α = 1 return z0 and z1 exactly; for ‖z₀‖ = ‖z₁‖
    every interpolant has that norm. Where sin θ ≈ 0 (parallel or anti-parallel vectors, or
    a zero vector) the arc is undefined and the example falls back to :func:`lerp`.
    Computed in float64, returned in z0's dtype.
    """
    _check_pair(z0, z1)
    a, batched = _alphas(alpha, z0)
    f0, f1 = _flat(z0), _flat(z1)
    n0, n1 = f0.norm(dim=1), f1.norm(dim=1)
    cos = ((f0 * f1).sum(1) / (n0 * n1).clamp_min(1e-300)).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)                                               # [B]
    sin = torch.sin(theta)
    linear = (sin.abs() < _PARALLEL_EPS) | (n0 == 0) | (n1 == 0)            # [B]
    safe_sin = torch.where(linear, torch.ones_like(sin), sin)
    outs = []
    for ai in a:
        w0 = torch.where(linear, 1 - ai, torch.sin((1 - ai) * theta) / safe_sin)
        w1 = torch.where(linear, ai.expand_as(theta), torch.sin(ai * theta) / safe_sin)
        out = w0[:, None] * f0 + w1[:, None] * f1
        if float(ai) == 0.0:
            out = f0
        elif float(ai) == 1.0:
            out = f1
        outs.append(out.reshape(z0.shape))
    out = torch.stack(outs).to(z0.dtype)
    return out if batched else out[0]


def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` points along the slerp arc from one latent ``z0`` to another ``z1`` (each one
    example of any shape, e.g. [C, H, W]), α = 0, 1/(n−1), …, 1: returns [n, *z0.shape],
    a batch ready for :func:`ddim_sample` (DDIM appendix D.5)."""
    _check_pair(z0, z1)
    n = check_int("n", n, lo=2)
    alphas = torch.linspace(0, 1, n, dtype=torch.float64)
    return slerp(z0[None], z1[None], alphas)[:, 0]


def sdedit_timesteps(t_start: int, steps: int) -> torch.Tensor:
    """The decoding sub-sequence for :func:`sdedit`: τ_i = ⌊i · t₀/(S−1) + ½⌋, i = 0 … S−1.

    The uniform grid of ``make_timesteps`` (τ_i = i⌊T/S⌋) rescaled to end exactly at t₀ =
    ``t_start`` (where x_{t₀} was drawn) and start at 0: S distinct increasing values
    (appendix D.2's "linear" spacing). Needs 1 ≤ S ≤ t₀ + 1; S = 1 gives [t₀].
    """
    t_start = check_int("t_start", t_start, lo=0)
    steps = check_int("steps", steps, lo=1, hi=t_start + 1)
    if steps == 1:
        return torch.tensor([t_start], dtype=torch.long)
    i = torch.arange(steps, dtype=torch.float64)
    return torch.floor(i * t_start / (steps - 1) + 0.5).long()


@torch.no_grad()
def sdedit(model, x0: torch.Tensor, sched: NoiseSchedule, t_start: int, steps: int, eta: float = 0.0,
           generator: torch.Generator | None = None, noise: torch.Tensor | None = None, *,
           progress: bool | None = False) -> torch.Tensor:
    """SDEdit with a DDIM decoder (Meng et al. 2022; DDIM eqs. 4 and 12).

    x_{t₀} = √ᾱ_{t₀} x₀ + √(1 − ᾱ_{t₀}) ε (``sched.q_sample``), then ``ddim_sample`` over
    :func:`sdedit_timesteps` (t₀ = ``t_start``, S = ``steps``). Small t₀ keeps x₀'s layout
    and redraws details; t₀ = T − 1 forgets x₀ almost entirely. ``noise`` (shaped like x0) is
    ε, else drawn from ``generator`` (which also draws the η > 0 noise). Returns x̂₀ like x0.
    """
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t), got {type(model).__name__}")
    if not isinstance(sched, NoiseSchedule):
        raise TypeError(f"sched must be a NoiseSchedule, got {type(sched).__name__}")
    check_tensor("x0", x0, floating=True, min_dim=2)
    t_start = check_int("t_start", t_start, lo=0, hi=sched.T - 1)
    steps = check_int("steps", steps, lo=1, hi=t_start + 1)
    eta = check_float("eta", eta, lo=0.0)
    check_generator("generator", generator)
    if noise is None:
        noise = env.randn(x0.shape, generator, dtype=x0.dtype, device=x0.device)
    else:
        check_tensor("noise", noise, floating=True)
        check_same_shape("noise", noise, "x0", x0)
    t = torch.full((x0.shape[0],), t_start, dtype=torch.long, device=x0.device)
    x_t = sched.q_sample(x0, t, noise.to(x0.device))
    return ddim_sample(model, x_t, sched, eta=eta, generator=generator, timesteps=sdedit_timesteps(t_start, steps),
                       progress=progress)



@torch.no_grad()
def label_edit(model, x0: torch.Tensor, sched: NoiseSchedule, y_source, y_target, w: float = 1.0, *,
               w_invert: float = 1.0, steps: int = DEFAULT_STEPS, skip: str = "uniform", progress: bool | None = False,
               return_latent: bool = False):
    r"""Change the class of ``x0`` and keep the rest: DDIM inversion, then guided DDIM decoding.

    1. x_T = ddim_invert(ε̃_{y_source, w_invert}, x₀) — the deterministic encoder of section 4.3
       run with the guided model ε̃ of :class:`~.guidance.ClassifierFreeGuidance` for the source
       label (``w_invert = 1``: the conditional model ε(·, y_source); 0: the unconditional one);
    2. x̂₀ = ddim_sample(ε̃_{y_target, w}, x_T), η = 0, on the same grid (``steps``, ``skip``).

    The latent x_T keeps what the two classes share (position, slant, stroke width: "the same
    handwriting"). With ``y_target = y_source`` and ``w = w_invert`` the decoder is the exact
    inverse ODE of the encoder, so x̂₀ = x₀ up to the discretisation error that falls with S
    (Table 2); any other decoder (another w or label) is a different ODE, and the reconstruction
    degrades as w moves away from ``w_invert`` — which null-text inversion (Mokady et al. 2023)
    repairs by optimising the null embedding per step.

    ``model``: a conditional ε-model ``model(x, t, y)`` with ``num_classes`` (∅ = num_classes);
    ``x0``: [B, ...] float data; ``y_source``/``y_target``: one int or a LongTensor [B]; ``w`` and
    ``w_invert``: finite ≥ 0. Returns x̂₀ shaped and typed like x0 (and x_T with
    ``return_latent=True``). Raises like the wrapper and the samplers for bad arguments.
    """
    check_tensor("x0", x0, floating=True, min_dim=2)
    encoder = ClassifierFreeGuidance(model, y_source, w_invert)
    decoder = ClassifierFreeGuidance(model, y_target, w)
    x_T = ddim_invert(encoder, x0, sched, steps=steps, skip=skip, progress=progress)
    out = ddim_sample(decoder, x_T, sched, steps=steps, skip=skip, progress=progress)
    return (out, x_T) if return_latent else out
