r"""The timestep embedding every noise predictor needs: the ORIGINAL integer timestep
t ∈ {0, …, T−1} (a LongTensor [B], never the sampler's loop index)
as sinusoids (Vaswani et al. 2017, sec. 3.5; DDPM appendix B). A network that ignores t
cannot work: the same x_t means different things at different noise levels."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..validation import check_float, check_int, check_tensor


def check_t(t, batch: int, device: torch.device | None = None) -> torch.Tensor:
    """t must be an integer tensor of shape [batch] of original timesteps, none negative (a network
    does not know T, so the upper end is the schedule's check). TypeError or ValueError saying which."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a LongTensor of shape [{batch}] of integer timesteps, got {type(t).__name__}")
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"t must hold integer timesteps (torch.long), got dtype {t.dtype}; "
                        "pass the original timestep values, not fractions of T")
    if t.shape != (batch,):
        raise ValueError(f"t must have shape [{batch}] (one timestep per example), got {tuple(t.shape)}")
    if device is not None and t.device != device:
        raise ValueError(f"t is on {t.device} but x is on {device}: put both on one device")
    # −1 is the samplers' name for clean data, never a model input (not checked inside torch.compile,
    # where reading a value from the tensor would break the graph)
    if t.numel() and not torch.compiler.is_compiling() and int(t.min()) < 0:
        raise ValueError(f"t must be timesteps in {{0, …, T−1}}, got a minimum of {int(t.min())}; "
                         "t = −1 (clean data, in the sampler contract) is never passed to a network")
    return t


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000) -> torch.Tensor:
    r"""Sinusoidal embedding of integer timesteps: [B] → float32 [B, dim].

    The first half is sin(t·ω_k), the second cos(t·ω_k), ω_k = max_period^(−k/half),
    k = 0 … half−1 (Transformer positional encoding, as in DDPM's ``get_timestep_embedding``).
    An odd ``dim`` gets one zero column at the end.
    """
    check_tensor("t", t, min_dim=1)
    check_t(t, t.shape[0] if t.dim() == 1 else -1)
    dim = check_int("dim", dim, lo=2)
    max_period = check_float("max_period", max_period, lo=1.0, lo_open=True)
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.to(torch.float32)[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb
