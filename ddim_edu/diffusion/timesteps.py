"""Timestep sub-sequences τ for sampling with S < T steps (DDIM section 4.2, appendix D.2)."""
from __future__ import annotations

import math

import torch

from ..validation import check_choice, check_int, check_tensor

SKIPS = ("uniform", "quadratic")


def make_timesteps(T: int, steps: int, skip: str = "uniform") -> torch.Tensor:
    """The increasing sub-sequence τ_0 < τ_1 < … < τ_{S−1} of {0, …, T−1}, exactly S = ``steps`` values.

    - ``"uniform"``: τ_i = i · ⌊T/S⌋ — the official code's ``range(0, T, T // S)`` cut to
      exactly S values (that range has more than S values when S does not divide T).
      DDIM's "linear" τ_i = ⌊c·i⌋ with c = ⌊T/S⌋.
    - ``"quadratic"``: τ_i = ⌊c·i²⌋ (appendix D.2) with c chosen so τ_{S−1} = T − 1; where
      consecutive values would repeat (small i with large S) the next free integer is used,
      so the S values are always distinct.

    Returns a LongTensor [S] in increasing order; samplers walk it backwards.
    """
    T = check_int("T", T, lo=1)
    steps = check_int("steps", steps, lo=1, hi=T)
    check_choice("skip", skip, SKIPS)
    if skip == "uniform":
        return torch.arange(steps, dtype=torch.long) * (T // steps)
    if steps == 1:
        return torch.zeros(1, dtype=torch.long)
    c = (T - 1) / (steps - 1) ** 2
    taus = []
    for i in range(steps):
        tau = math.floor(c * i * i + 1e-9)
        if taus:
            tau = max(tau, taus[-1] + 1)
        taus.append(min(tau, T - steps + i))  # leave room for the remaining values
    return torch.tensor(taus, dtype=torch.long)


def resolve_timesteps(T: int, steps: int | None, skip: str, timesteps) -> torch.Tensor:
    """Either ``steps`` + ``skip`` or an explicit increasing ``timesteps`` sequence."""
    if timesteps is None:
        return make_timesteps(T, steps, skip)
    taus = torch.as_tensor(timesteps)
    check_tensor("timesteps", taus)
    if taus.dim() != 1 or taus.dtype.is_floating_point:
        raise ValueError(f"timesteps must be a 1-D integer sequence, got shape {tuple(taus.shape)}, dtype {taus.dtype}")
    taus = taus.long().cpu()
    if int(taus.min()) < 0 or int(taus.max()) >= T:
        raise ValueError(f"timesteps must lie in [0, {T - 1}], got {int(taus.min())}..{int(taus.max())}")
    if len(taus) > 1 and not bool((taus[1:] > taus[:-1]).all()):
        raise ValueError("timesteps must be strictly increasing (τ_0 < τ_1 < …)")
    return taus
