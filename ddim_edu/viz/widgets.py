"""Sliders around the package's tested functions, for exploring a notebook by hand.

Each builder draws its figure once straight away, so the cell produces a figure (and any
error surfaces as an ordinary exception) even with no widget frontend, as under nbval in CI.
Moving a slider redraws inside the widget. Only core ipywidgets (7.x and 8.x) are used::

    de.viz.noise_slider(x0, sched)                 # one image noised by q(x_t | x_0)
    de.viz.slider(draw, t=(0, 999, 10), eta=(0.0, 1.0, 0.1))

The returned box has ``.controls`` ({name: slider}) and ``.update()`` (redraw with the
sliders' current values, returning what the drawing function returned).
"""
from __future__ import annotations

import numbers

import ipywidgets as W
import torch
from IPython.display import clear_output

from .. import env
from .plotting import _images, show_row
from ..diffusion.schedule import NoiseSchedule
from ..validation import check_int

__all__ = ["slider", "noise_slider", "noise_figure"]


def _flush_inline() -> None:
    """Show pending pyplot figures now when the inline backend is active (no-op elsewhere)."""
    try:
        from ipywidgets.widgets.interaction import show_inline_matplotlib_plots
    except ImportError:   # pragma: no cover - every ipywidgets 7/8 has it
        return
    show_inline_matplotlib_plots()


def _control(name: str, spec, continuous_update: bool):
    """(lo, hi) or (lo, hi, step) → IntSlider if all are ints, else FloatSlider; value starts at lo
    (or at ``spec[3]`` when given); a ready widget passes through."""
    if isinstance(spec, W.ValueWidget):
        return spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3, 4) or \
            not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in spec):
        raise TypeError(f"{name} must be (min, max), (min, max, step) or (min, max, step, value) "
                        f"numbers, or an ipywidgets widget, got {spec!r}")
    lo, hi = spec[0], spec[1]
    if not lo < hi:
        raise ValueError(f"{name} needs min < max, got {spec!r}")
    is_int = all(isinstance(v, numbers.Integral) for v in spec)
    step = spec[2] if len(spec) > 2 else (1 if is_int else (hi - lo) / 100)
    value = spec[3] if len(spec) > 3 else lo
    cls = W.IntSlider if is_int else W.FloatSlider
    return cls(value=value, min=lo, max=hi, step=step, description=name, continuous_update=continuous_update)


def slider(fn, *, continuous_update: bool = False, **ranges):
    """A slider per keyword of ``fn`` (see :func:`_control` for the range format); ``fn(**values)``
    draws a figure. Calls ``fn`` once now (errors raise here); later slider moves redraw."""
    if not callable(fn):
        raise TypeError(f"fn must be callable (it draws the figure), got {type(fn).__name__}")
    if not ranges:
        raise ValueError("slider needs at least one range, e.g. slider(fn, t=(0, 999, 10))")
    controls = {name: _control(name, spec, continuous_update) for name, spec in ranges.items()}
    out = W.Output()

    def update(change=None, *, raise_errors: bool = False):
        values = {k: c.value for k, c in controls.items()}
        error = None
        with out:
            if change is not None:
                clear_output(wait=True)
            try:
                result = fn(**values)
                _flush_inline()
            except Exception as e:   # shown in the widget when a slider moves; raised on the first call
                if not raise_errors:
                    raise
                error = e
        if error is not None:
            raise error
        return result

    for c in controls.values():
        c.observe(update, names="value")
    box = W.VBox([W.HBox(list(controls.values())), out])
    box.controls = controls
    box.update = lambda: update(raise_errors=True)
    box.update()
    return box


def noise_figure(x0: torch.Tensor, sched: NoiseSchedule, t: int, noise: torch.Tensor):
    """x_0, x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε (``sched.q_sample``, DDIM eq. 4) and ε side by side."""
    x0 = _images("x0", x0)
    t = check_int("t", t, lo=0, hi=sched.T - 1)
    x_t = sched.q_sample(x0, torch.full((x0.shape[0],), t, dtype=torch.long), noise.to(x0))
    ab = sched.alpha_bar_at(t)
    return show_row([x0, x_t, noise], ["x_0", f"x_t at t = {t}", "ε"], panel_size=2.4,
                    suptitle=f"ᾱ_t = {ab:.4f}: x_t keeps {100 * ab ** 0.5:.1f}% of x_0's scale, "
                             f"noise std {(1 - ab) ** 0.5:.3f}")


def noise_slider(x0: torch.Tensor, sched: NoiseSchedule, step: int = 10, seed: int = 0):
    """Slide t from 0 to T − 1 and watch ``x0`` (one image [C, H, W] or a few [B, C, H, W], in
    [-1, 1]) turn into noise. The noise ε is drawn once (seeded), so only t changes."""
    if not isinstance(sched, NoiseSchedule):
        raise TypeError(f"sched must be a NoiseSchedule, got {type(sched).__name__}")
    x0 = _images("x0", x0).to(torch.float32)
    step = check_int("step", step, lo=1, hi=sched.T)
    noise = env.randn(x0.shape, env.generator(seed))

    return slider(lambda t: noise_figure(x0, sched, t, noise), t=(0, sched.T - 1, step))
