r"""The parts of a training recipe that change with the step or the batch, outside the loss:
the learning-rate schedule and the random-shift augmentation of the images.

Learning rate at optimiser step n (0-based) with peak η = ``lr``, warm-up W = ``lr_warmup`` and
decay horizon N = ``lr_decay_steps`` (0: ``steps``):

    warm-up   η_n = η · min(1, (n + 1)/W)                              (Goyal et al. 2017, Sec. 2.2)
    constant  η_n = η after the warm-up
    cosine    η_n = η · min(1, (n + 1)/W) · ½ (1 + cos(π · min(1, (n − W)⁺ / (N − W))))
                                                                       (Loshchilov & Hutter 2017, eq. 5)
    linear    η_n = η · min(1, (n + 1)/W) · (1 − min(1, (n − W)⁺ / (N − W)))
                                                  (decay to zero: Defazio et al. 2023; Bergsma et al. 2025)

so both decays are η at the end of the warm-up and 0 at step N (and after it).

A run given only a time budget (``steps`` ≥ ``UNLIMITED_STEPS``, ``max_minutes`` set, ``lr_decay_steps``
0) does not know N in advance. With a decay (cosine or linear) it measures its own speed over the first
part of the budget (:func:`calibration_seconds`: 5% of it, at least 10 s and at most 60 s or half the
budget, the first step's start-up excluded) and sets N to the step where the budget is expected to run out
(:func:`budget_horizon`), so the decay reaches about 0 as the time does; the run stops at N if it
gets there early. A start slower or faster than the rest (a machine still warming up, another
process ending) would misplace N by as much, so the run measures again at 10%, 25%, 50% and 75% of the
budget (:func:`measure_times`), each time over the steps since the previous measurement (it follows a
machine whose speed drifts sooner than an average since the start would, at the cost of more noise),
and moves N. Moving N from N₁ to N₂ at step n changes the decay's progress only from (n − W)/(N₁ − W)
to (n − W)/(N₂ − W): an estimate 10% off, corrected at half the budget, moves the cosine's η_n by at
most 0.09 η (from ½ η at progress ½ to ½(1 + cos(π/2 · 1/1.1)) η = 0.57 η or
½(1 + cos(π/2 · 1/0.9)) η = 0.41 η), and at three quarters by about 0.08 η (from 0.15 η to 0.23 η or
0.07 η). Speed changes in the last quarter, or any that reach N before it, are not followed: the run
then stops at N early, or with the budget before N.

Random shift (DrQ, Kostrikov et al. 2020; the "translate" of Karras et al. 2020's ADA): each image
moves by (dy, dx) ∈ {−k..k}² pixels drawn per image; the uncovered border gets the background
value −1 (MNIST's black). The digit stays whole when its margin is ≥ k (MNIST's is ≈ 4 pixels)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..validation import check_int

DECAYS = ("cosine", "linear")     # the schedules that reach 0 at a horizon N


def lr_at(step: int, lr: float, warmup: int = 0, schedule: str = "constant", decay_steps: int = 0) -> float:
    """The learning rate at optimiser step ``step`` (0-based), see the module docstring.
    ``schedule``: ``"constant"``, ``"cosine"`` or ``"linear"``; ``decay_steps``: the step at which a decay
    reaches 0 (must be set for ``"cosine"`` and ``"linear"``). ``ValueError`` for another schedule."""
    scale = min(1.0, (step + 1) / warmup) if warmup else 1.0
    if schedule == "constant":
        return lr * scale
    if schedule not in DECAYS:
        raise ValueError(f"schedule must be 'constant', 'cosine' or 'linear', got {schedule!r}")
    span = max(1, decay_steps - warmup)
    progress = min(1.0, max(0, step - warmup) / span)
    decay = 0.5 * (1.0 + math.cos(math.pi * progress)) if schedule == "cosine" else 1.0 - progress
    return lr * scale * decay


def calibration_seconds(budget_s: float) -> float:
    """How long (s) a run with a time budget of ``budget_s`` seconds measures its speed before it sets
    its cosine horizon: 5% of the budget, at least 10 s and at most 60 s, and never more than half the
    budget (a budget under 20 s measures over its first half)."""
    return min(0.5 * budget_s, max(10.0, min(60.0, 0.05 * budget_s)))


def measure_times(budget_s: float) -> tuple[float, ...]:
    """When (s from the start) a run with a time budget of ``budget_s`` seconds measures its speed and sets
    (then moves) its decay's horizon: after :func:`calibration_seconds`, then at 10%, 25%, 50% and 75% of
    the budget, those that come later than the first, in order."""
    first = calibration_seconds(budget_s)
    return (first, *(f * budget_s for f in (0.10, 0.25, 0.50, 0.75) if f * budget_s > first))


def budget_horizon(step: int, steps_per_s: float, seconds_left: float) -> int:
    """The step at which a time budget is expected to run out: ``step`` (now) + ``steps_per_s`` (measured so
    far) × ``seconds_left``, rounded, and at least ``step + 1``. ``ValueError`` for a negative or non-finite
    speed or time."""
    for name, v in (("steps_per_s", steps_per_s), ("seconds_left", seconds_left)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v}")
    return step + max(1, round(steps_per_s * seconds_left))


def random_shift(x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                 fill: float = -1.0) -> torch.Tensor:
    """``x`` [B, C, H, W] with each image shifted by its own (dy, dx) ∈ {−k..k}², drawn from
    ``generator`` (CPU); the uncovered border is ``fill``. ``k = 0`` returns ``x`` itself."""
    k = check_int("k", k, lo=0)
    if k == 0:
        return x
    if x.dim() != 4:
        raise ValueError(f"x must be images [B, C, H, W] to shift (augment_shift = {k} needs image data), "
                         f"got shape {tuple(x.shape)}")
    B, _, H, W = x.shape
    d = torch.randint(0, 2 * k + 1, (B, 2), generator=generator).to(x.device)   # offsets into the padded image
    padded = F.pad(x, (k, k, k, k), value=fill)
    rows = (d[:, 0, None] + torch.arange(H, device=x.device))[:, None, :, None]      # [B, 1, H, 1]
    cols = (d[:, 1, None] + torch.arange(W, device=x.device))[:, None, None, :]      # [B, 1, 1, W]
    b = torch.arange(B, device=x.device)[:, None, None, None]
    c = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[b, c, rows, cols]
