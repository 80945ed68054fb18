r"""A training run's time budget (``TrainConfig.max_minutes``): whether it is up, and, for a learning
rate that decays to 0 (cosine or linear) given no step count, the step at which it will run out, measured
from the run's own speed (:func:`~ddim_edu.train.schedules.calibration_seconds`, :func:`~ddim_edu.train.schedules.budget_horizon`).
With several processes each rank reads its own clock and all take the same answer (an all-reduce)."""
from __future__ import annotations

import time

import torch
import torch.distributed as dist

from .config import UNLIMITED_STEPS, TrainConfig
from .schedules import DECAYS, budget_horizon, calibration_seconds


def decay_ends_with_budget(cfg: TrainConfig) -> bool:
    """Whether a run of ``cfg`` sets its decay's end from its time budget: a cosine (or linear) decay with no
    ``lr_decay_steps``, a ``max_minutes`` budget and no step limit (``steps`` ≥ ``UNLIMITED_STEPS``)."""
    return (cfg.lr_schedule in DECAYS and not cfg.lr_decay_steps and cfg.max_minutes is not None
            and cfg.steps >= UNLIMITED_STEPS)


class TimeBudget:
    """``minutes`` of wall-clock from now (None: no budget) for ``world`` processes on ``device``, read
    from ``clock`` (seconds; default ``time.perf_counter``)."""

    def __init__(self, minutes: float | None, world: int = 1, device=None, clock=None):
        self.seconds = None if minutes is None else 60.0 * minutes
        self.world, self.device, self.clock = world, device, clock or time.perf_counter
        self.start = self.clock()
        self.first = None                     # (step, time) after the first step: its start-up is not speed

    def up(self) -> bool:
        """Whether the budget has run out (on any rank: every rank stops at the same step)."""
        if self.seconds is None:
            return False
        late = self.clock() - self.start >= self.seconds
        return bool(self._max([float(late)])[0]) if self.world > 1 else late

    def horizon(self, step: int, announce: bool = False) -> dict | None:
        """Call after every step: None while measuring, then ``{"lr_decay_steps": N, "steps_per_s": r,
        "measured_at_step": step, "measured_over_s": s}`` with N = step + r × (seconds left), r the
        steps/s since the first step, once ``calibration_seconds`` of the budget have passed;
        ``announce``: print a line saying so."""
        now = self.clock()
        if self.first is None:
            self.first = (step, now)
            return None
        elapsed = now - self.start
        ready = calibration_seconds(self.seconds) <= elapsed < self.seconds and now > self.first[1]
        speed = (step - self.first[0]) / (now - self.first[1]) if ready else 0.0
        end = budget_horizon(step, speed, self.seconds - elapsed) if ready else 0
        if self.world > 1:                    # the first rank ready decides for all
            ready, end, speed = self._max([float(ready), float(end), speed])
        if not ready:
            return None
        if announce:
            print(f"learning-rate decay: {speed:.2f} steps/s over the first {elapsed:.0f} s, so it reaches 0 at "
                  f"step {int(end)}, when the {self.seconds / 60:g}-min budget is expected to run out", flush=True)
        return {"lr_decay_steps": int(end), "steps_per_s": round(speed, 3), "measured_at_step": step,
                "measured_over_s": round(elapsed, 1)}

    def _max(self, values: list[float]) -> list[float]:
        both = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(both, op=dist.ReduceOp.MAX)
        return both.tolist()
