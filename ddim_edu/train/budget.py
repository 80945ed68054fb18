r"""A training run's time budget (``TrainConfig.max_minutes``): whether it is up, and, for a learning
rate that decays to 0 (cosine or linear) given no step count, the step at which it will run out, measured
from the run's own speed and measured again later in the run
(:func:`~ddim_edu.train.schedules.measure_times`, :func:`~ddim_edu.train.schedules.budget_horizon`).
With several processes each rank reads its own clock and all take the same answer (an all-reduce)."""
from __future__ import annotations

import time

import torch
import torch.distributed as dist

from .config import UNLIMITED_STEPS, TrainConfig
from .schedules import DECAYS, budget_horizon, measure_times


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
        self.since = None                     # (step, time) the next speed is measured from: after the first
                                              # step (its start-up is not speed), then the last measurement's
        self.checks = () if self.seconds is None else measure_times(self.seconds)
        self.passed = 0                       # checks passed so far (several may pass within one step)
        self.measurements: list[dict] = []    # one each time checks are passed, in order

    def up(self) -> bool:
        """Whether the budget has run out (on any rank: every rank stops at the same step)."""
        if self.seconds is None:
            return False
        late = self.clock() - self.start >= self.seconds
        return bool(self._max([float(late)])[0]) if self.world > 1 else late

    @property
    def settled(self) -> bool:
        """Whether every check has passed, so the speed will not be measured again (no budget: nothing to
        measure)."""
        return self.passed >= len(self.checks)

    def horizon(self, step: int, announce: bool = False) -> dict | None:
        """Call after every step until :attr:`settled`: None until the run passes its next check in
        :func:`~ddim_edu.train.schedules.measure_times`, then ``{"lr_decay_steps": N, "steps_per_s": r,
        "measured_at_step": step, "measured_over_s": s, "measurements": [...]}`` with N = step + r × (seconds
        left), r the steps/s since the previous measurement (the first: since the first step), s the seconds
        since the start, and ``measurements`` this and every earlier one (the same four keys each);
        ``announce``: print a line saying so. A step that passes several checks at once measures once. Always
        None once settled, or without a budget."""
        if self.settled:
            return None
        now = self.clock()
        if self.since is None:
            self.since = (step, now)
            return None
        elapsed = now - self.start
        passed = sum(t <= elapsed for t in self.checks) if elapsed < self.seconds and now > self.since[1] else 0
        speed = (step - self.since[0]) / (now - self.since[1]) if passed else 0.0
        end = budget_horizon(step, speed, self.seconds - elapsed) if passed else 0
        if self.world > 1:
            passed, (end, speed, elapsed) = self._furthest(passed, (end, speed, elapsed))
        if passed <= self.passed:
            return None
        if announce:
            print(self._line(speed, elapsed, int(end)), flush=True)
        self.passed, self.since = passed, (step, now)
        self.measurements.append({"lr_decay_steps": int(end), "steps_per_s": round(speed, 3),
                                  "measured_at_step": step, "measured_over_s": round(elapsed, 1)})
        return {**self.measurements[-1], "measurements": list(self.measurements)}

    def _line(self, speed: float, elapsed: float, end: int) -> str:
        budget = f"the {self.seconds / 60:g}-min budget"
        if not self.measurements:
            return (f"learning-rate decay: {speed:.2f} steps/s over the first {elapsed:.0f} s, so it reaches 0 at "
                    f"step {end}, when {budget} is expected to run out")
        was = self.measurements[-1]
        moved = (f"still reaches 0 at step {end}" if end == was["lr_decay_steps"]
                 else f"now reaches 0 at step {end}, not {was['lr_decay_steps']}")
        return (f"learning-rate decay measured again: {speed:.2f} steps/s from {was['measured_over_s']:.0f} s to "
                f"{elapsed:.0f} s, so it {moved}, when {budget} is expected to run out")

    def _furthest(self, passed: int, values: tuple[float, ...]) -> tuple[int, tuple[float, ...]]:
        """The checks passed by the rank furthest through them, and that rank's ``values`` (horizon, speed,
        seconds; several ranks there: the largest of each): each rank sends its values for every check it
        has passed, 0 for the others, and a horizon is at least step + 1, so the nonzero ones count them."""
        n = len(self.checks)
        reduced = self._max([float(v) if k < passed else 0.0 for v in values for k in range(n)])
        furthest = sum(e > 0 for e in reduced[:n])
        return furthest, tuple(reduced[i * n + furthest - 1] if furthest else 0.0 for i in range(len(values)))

    def _max(self, values: list[float]) -> list[float]:
        both = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(both, op=dist.ReduceOp.MAX)
        return both.tolist()
