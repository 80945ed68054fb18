"""The contract every sampler shares: argument checks, the timestep grid, the callback dict and
the :class:`Trajectory` recorder (in the style of k-diffusion's sampling module).

Every sampler is called as

    x_out = sampler(model, x, sched, *, steps=None, skip="uniform", timesteps=None, generator=None,
                    callback=None, progress=None, prediction="eps", **its_own_options)

and returns one tensor shaped and typed like ``x``. The grid τ comes from ``steps`` and ``skip``
(S = ``steps``; None means :data:`~.timesteps.DEFAULT_STEPS` = 50, in ``ddpm_sample`` all T) or
from an explicit increasing ``timesteps`` (S = len(timesteps); ``skip`` is then unused). Pass
``timesteps`` without ``steps``, or with ``steps=len(timesteps)``: any other ``steps`` raises a
ValueError naming both, never a silently shorter or longer run. After each of its S steps it calls
``callback(info)`` with one dict, the same keys in every sampler:

    info["i"]        the step's index, 0 … S − 1
    info["t"]        the timestep where the step starts: the time of info["x"] (−1 = clean data)
    info["t_next"]   the timestep where it ends: the time of info["x_next"] (−1 = clean data)
    info["x"]        the state at t (what the model saw first in this step)
    info["x_next"]   the state at t_next
    info["x0_pred"]  x̂₀ predicted from (info["x"], t)

Samplers walk t downwards (t_next < t); ``ddim_invert`` walks upwards (t_next > t, starting
at t = −1), with the same meaning of every key.

Writing a new sampler: check the arguments with :func:`check_sampler_args`, get the grid with
:func:`sampler_grid`, wrap the model once in :class:`~.denoiser.Denoiser` (it turns an ε, x₀ or
v output into (ε̂, x̂₀)), loop over :func:`steps_bar`, and call :func:`report` after every step;
then add one entry to :data:`~.registry.SAMPLERS`. ``samplers.ddim_sample`` is the shortest
example; an ODE solver in σ is one step function for ``ode._solve``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import env
from .schedule import NoiseSchedule
from .timesteps import resolve_timesteps
from ..validation import _show_typed, check_callable, check_finite, check_generator, check_tensor


def check_sampler_args(model, x, sched, generator, callback) -> None:
    """The shared argument checks: TypeError naming the argument, what was given and what is allowed.
    ``x`` may be float16, bfloat16, float32 or float64 (the sampler runs in its dtype) and must be
    finite (ValueError for NaN or inf) and hold values (ValueError on the meta device)."""
    check_callable("model", model, "model(x_t, t)")
    check_tensor("x", x, floating=True)
    if x.device.type == "meta":
        raise ValueError(f"x must hold values, got a tensor on the meta device of shape {tuple(x.shape)} "
                         "(create it on 'cpu', 'cuda' or 'mps')")
    check_finite("x", x)                         # NaN or inf in x would run to an all-NaN result
    if not isinstance(sched, NoiseSchedule):
        raise TypeError(f"sched must be a NoiseSchedule, got {_show_typed(sched)}")
    check_schedule_matches(model, sched)
    check_generator("generator", generator)
    if callback is not None:
        check_callable("callback", callback, "callback(info: dict)")


def check_schedule_matches(model, sched: NoiseSchedule) -> None:
    """A loaded model (``train.load_model``, ``load_pretrained``) knows the schedule it was trained with,
    ``model.schedule_config``; ValueError if ``sched`` is another one. ᾱ_t gives t its meaning, so a
    network trained on one schedule predicts the wrong ε on another. Models without the attribute
    (built in a notebook, wrapped in a function) are not checked."""
    trained = getattr(model, "schedule_config", None)
    if not isinstance(trained, dict) or sched.name not in ("linear", "cosine"):
        return
    if sched.to_config() != trained:
        raise ValueError(f"sched is {sched!r} but the model was trained with {trained}: sample with the "
                         "schedule that load_model returned, or NoiseSchedule.from_config(model.schedule_config)")


def sampler_grid(sched: NoiseSchedule, steps, skip, timesteps) -> list[int]:
    """τ_0 < … < τ_{S−1} as a list of ints: ``timesteps`` if given (``steps`` None or equal to its
    length, else ValueError; ``skip`` unused), else ``make_timesteps(T, steps, skip)`` with
    ``steps=None`` meaning :data:`~.timesteps.DEFAULT_STEPS` (``"log_snr"`` spaced on this
    schedule's own ᾱ). See :func:`~.timesteps.resolve_timesteps`."""
    return resolve_timesteps(sched.T, steps, skip, timesteps, sched.alpha_bar).tolist()


def steps_bar(n: int, progress, desc: str):
    """range(n) behind the package's progress bar (``env.progress_bar``)."""
    return env.progress_bar(range(n), progress, desc)


def report(callback, i: int, t: int, t_next: int, x, x_next, x0_pred) -> None:
    """Call ``callback`` (if any) with the contract's dict for step ``i``."""
    if callback is not None:
        callback({"i": i, "t": t, "t_next": t_next, "x": x, "x_next": x_next, "x0_pred": x0_pred})


@dataclass
class Trajectory:
    """A callback that records a run: ``traj = Trajectory(); ddim_sample(..., callback=traj)``.

    ``timesteps[k]`` is the time of ``xs[k]`` (S + 1 entries, −1 = clean data) and ``x0_preds[k]``
    the x̂₀ predicted at ``timesteps[k]`` (S entries). Use a fresh one for every run.
    """
    timesteps: list = field(default_factory=list)
    xs: list = field(default_factory=list)
    x0_preds: list = field(default_factory=list)

    def __call__(self, info: dict) -> None:
        if info["i"] == 0 and self.xs:
            raise ValueError("this Trajectory already holds a run: record each run with a fresh Trajectory()")
        if not self.xs:
            self.timesteps.append(info["t"]), self.xs.append(info["x"])
        self.timesteps.append(info["t_next"]), self.xs.append(info["x_next"]), self.x0_preds.append(info["x0_pred"])

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(xs [S+1, ...], x0_preds [S, ...]) as tensors, for plotting."""
        return torch.stack(self.xs), torch.stack(self.x0_preds)
