"""Timestep sub-sequences τ for sampling with S < T steps (DDIM section 4.2, appendix D.2)."""
from __future__ import annotations

import math

import torch

from ..validation import check_choice, check_int, check_tensor

SKIPS = ("uniform", "linspace", "quadratic", "log_snr")

DEFAULT_STEPS = 50
"""S when a sampler is given neither ``steps`` nor ``timesteps``: the paper's DDIM-50."""


def make_timesteps(T: int, steps: int, skip: str = "uniform", alpha_bar: torch.Tensor | None = None) -> torch.Tensor:
    """The increasing sub-sequence τ_0 < τ_1 < … < τ_{S−1} of {0, …, T−1}, exactly S = ``steps`` values.

    - ``"uniform"``: τ_i = i · ⌊T/S⌋ — the official code's ``range(0, T, T // S)`` cut to
      exactly S values (that range has more than S values when S does not divide T).
      DDIM's "linear" τ_i = ⌊c·i⌋ with c = ⌊T/S⌋. The last step starts below T − 1 when S does
      not divide T evenly into the grid (S = 50: τ_49 = 980).
    - ``"linspace"``: τ_i = round(i (T − 1)/(S − 1)), evenly spaced from 0 to T − 1 inclusive, so
      every run starts at t = T − 1 (diffusers' ``timestep_spacing="linspace"``).
    - ``"quadratic"``: τ_i = ⌊c·i²⌋ (appendix D.2) with c chosen so τ_{S−1} = T − 1; where
      consecutive values would repeat (small i with large S) the next free integer is used,
      so the S values are always distinct.
    - ``"log_snr"``: uniform in λ = log SNR = log(ᾱ/(1 − ᾱ)) = −2 log σ, the step-size rule
      DPM-Solver recommends for low-resolution data (Lu et al. 2022, section 3.3; their code's
      ``skip_type="logSNR"``) and the default grid of the DPM-Solver++ samplers. τ_i is the
      integer t whose λ_t is nearest to λ_0 + i/(S − 1)·(λ_{T−1} − λ_0), so τ_0 = 0 and
      τ_{S−1} = T − 1; repeats (λ changes fastest near t = 0) move to the next free integer, as
      for ``"quadratic"``. It depends on the schedule: ``alpha_bar`` (ᾱ, length T; the ODE
      solvers of :mod:`.ode` pass their schedule's), by default the linear schedule
      ``NoiseSchedule.linear(T)``.

    Returns a LongTensor [S] in increasing order; samplers walk it backwards.
    """
    T = check_int("T", T, lo=1)
    steps = check_int("steps", steps, lo=1, hi=T)
    check_choice("skip", skip, SKIPS)
    if skip == "uniform":
        return torch.arange(steps, dtype=torch.long) * (T // steps)
    if steps == 1:
        return torch.zeros(1, dtype=torch.long)
    if skip == "linspace":
        return torch.round(torch.linspace(0, T - 1, steps, dtype=torch.float64)).long()
    if skip == "quadratic":
        c = (T - 1) / (steps - 1) ** 2
        targets = [math.floor(c * i * i + 1e-9) for i in range(steps)]
    else:
        lam = _log_snr(T, alpha_bar)
        goal = torch.linspace(float(lam[0]), float(lam[-1]), steps, dtype=torch.float64)
        hi = torch.searchsorted(-lam, -goal).clamp(1, T - 1)      # λ falls with t: −λ_{hi−1} < −goal ≤ −λ_hi
        nearer_lo = (lam[hi - 1] - goal).abs() <= (lam[hi] - goal).abs()
        targets = torch.where(nearer_lo, hi - 1, hi).tolist()        # the t with λ_t nearest to the goal
    taus = []
    for i, tau in enumerate(targets):
        if taus:
            tau = max(tau, taus[-1] + 1)
        taus.append(min(tau, T - steps + i))  # leave room for the remaining values
    return torch.tensor(taus, dtype=torch.long)


def _log_snr(T: int, alpha_bar) -> torch.Tensor:
    """λ_t = log(ᾱ_t/(1 − ᾱ_t)) for t = 0..T−1 in float64 (the linear schedule's if ``alpha_bar`` is None)."""
    if alpha_bar is None:
        from .schedule import NoiseSchedule
        alpha_bar = NoiseSchedule.linear(T).alpha_bar
    alpha_bar = torch.as_tensor(alpha_bar, dtype=torch.float64).cpu()
    if alpha_bar.shape != (T,):
        raise ValueError(f"alpha_bar must have shape ({T},) to match T, got {tuple(alpha_bar.shape)}")
    return (alpha_bar / (1 - alpha_bar)).log()


def resolve_timesteps(T: int, steps: int | None, skip: str, timesteps, alpha_bar=None) -> torch.Tensor:
    """The grid τ of a sampler call: ``make_timesteps(T, steps, skip, alpha_bar)`` (``alpha_bar``: the
    schedule, for ``"log_snr"``), or the explicit increasing sequence ``timesteps``.

    ``steps``: int in [1, T] or None = :data:`DEFAULT_STEPS` (50) when ``timesteps`` is None. Given
    ``timesteps``, ``skip`` is unused and ``steps`` must be None or ``len(timesteps)``: ValueError
    naming both when they disagree (``steps=5, timesteps=[0, 100, 200]`` would otherwise run 3 steps).
    ValueError for an empty, non-integer, out-of-range or not strictly increasing ``timesteps``.
    Returns a LongTensor [S] on the CPU.
    """
    if timesteps is None:
        return make_timesteps(T, DEFAULT_STEPS if steps is None else steps, skip, alpha_bar)
    taus = _checked_timesteps(T, timesteps)
    if steps is not None and check_int("steps", steps, lo=1, hi=T) != len(taus):
        raise ValueError(f"steps={steps} disagrees with timesteps ({len(taus)} values: {_shown(taus)}); "
                         "pass one of them, or steps=len(timesteps)")
    return taus


def _checked_timesteps(T: int, timesteps) -> torch.Tensor:
    """``timesteps`` as a LongTensor on the CPU: 1-D, non-empty, integer, in [0, T − 1], strictly increasing."""
    if isinstance(timesteps, (list, tuple)) and len(timesteps) == 0:
        raise ValueError("timesteps must hold at least one timestep, got an empty sequence")
    taus = torch.as_tensor(timesteps)
    check_tensor("timesteps", taus)
    if taus.dim() != 1 or taus.dtype.is_floating_point or taus.dtype == torch.bool or taus.is_complex():
        raise ValueError(f"timesteps must be a 1-D sequence of integer timesteps, got shape {tuple(taus.shape)}, "
                         f"dtype {taus.dtype}")
    if taus.numel() == 0:
        raise ValueError("timesteps must hold at least one timestep, got an empty sequence")
    taus = taus.long().cpu()
    if int(taus.min()) < 0 or int(taus.max()) >= T:
        raise ValueError(f"timesteps must lie in [0, {T - 1}], got {int(taus.min())}..{int(taus.max())}")
    if len(taus) > 1 and not bool((taus[1:] > taus[:-1]).all()):
        raise ValueError(f"timesteps must be strictly increasing (τ_0 < τ_1 < …), got {_shown(taus)}")
    return taus


def _shown(taus: torch.Tensor) -> str:
    """The values of ``taus`` for an error message, the first 12 and "…" after them."""
    shown = taus.tolist() if len(taus) <= 12 else taus[:12].tolist() + ["…"]
    return "[" + ", ".join(map(str, shown)) + "]"
