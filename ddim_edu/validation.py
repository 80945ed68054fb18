"""Argument checks shared by the package: each failure names the argument, its value and
what is allowed, so a student's mistake is caught where it is made."""
from __future__ import annotations

import numbers

import torch


def _show(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor(shape={tuple(value.shape)}, dtype={value.dtype}, device={value.device})"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _show_typed(value) -> str:
    """The value and its type, e.g. ``123 (int)``: for arguments of the wrong kind."""
    return f"{_show(value)} ({type(value).__name__})"


FLOAT_DTYPES = "float16, bfloat16, float32 or float64"


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` must be an int in [lo, hi] (bounds inclusive, None = unbounded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_show(value)}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "-inf" if lo is None else lo
        hi_s = "inf" if hi is None else hi
        raise ValueError(f"{name} must be in [{lo_s}, {hi_s}], got {value}")
    return value


def check_float(name: str, value, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """``value`` must be a real number in [lo, hi] (open at ``lo`` with ``lo_open``, at ``hi`` with
    ``hi_open``)."""
    left, right = "(" if lo_open else "[", "inf)" if hi is None else f"{hi}{')' if hi_open else ']'}"
    allowed = f"{left}{'-inf' if lo is None else lo}, {right}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in {allowed}, got {_show(value)}")
    value = float(value)
    if value != value:
        raise ValueError(f"{name} must be a number in {allowed}, got nan")
    bad_lo = lo is not None and (value <= lo if lo_open else value < lo)
    bad_hi = hi is not None and (value >= hi if hi_open else value > hi)
    if bad_lo or bad_hi:
        raise ValueError(f"{name} must be in {allowed}, got {value}")
    return value


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_tensor(name: str, value, *, floating: bool = False, min_dim: int = 1) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimension(s), got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        hint = f"; for 0-255 pixels use {name}.float() / 127.5 - 1" if value.dtype == torch.uint8 else ""
        raise TypeError(f"{name} must be a floating-point tensor ({FLOAT_DTYPES}), got {_show(value)}{hint}")
    return value


def check_finite(name: str, value: torch.Tensor) -> torch.Tensor:
    """``value`` must hold no NaN or infinite entries; ValueError naming how many it holds."""
    bad = int((~torch.isfinite(value)).sum())
    if bad:
        raise ValueError(f"{name} must be finite, got {bad} NaN/inf value(s) of {value.numel()} "
                         f"in a tensor of shape {tuple(value.shape)}")
    return value


def check_same_shape(name: str, value: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    if value.shape != ref.shape:
        raise ValueError(f"{name} must have the shape of {ref_name} {tuple(ref.shape)}, got {tuple(value.shape)}")


def check_timesteps(name: str, t, batch: int, T: int, device: torch.device | None = None) -> torch.Tensor:
    """``t`` must be an integer tensor of shape [batch] with values in [0, T)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a LongTensor of shape [{batch}], got {type(t).__name__}")
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must hold integer timesteps (torch.long), got dtype {t.dtype}")
    if t.shape != (batch,):
        raise ValueError(f"{name} must have shape [{batch}] (one timestep per example), got {tuple(t.shape)}")
    if device is not None and t.device != device:
        raise ValueError(f"{name} is on {t.device} but the data is on {device}: put both on one device")
    if batch and (int(t.min()) < 0 or int(t.max()) >= T):
        raise ValueError(f"{name} must be in [0, {T - 1}], got values from {int(t.min())} to {int(t.max())}")
    return t.long()


def check_generator(name: str, generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        hint = " (for a seed, pass ddim_edu.env.generator(seed))" if isinstance(generator, numbers.Integral) else ""
        raise TypeError(f"{name} must be a torch.Generator or None, got {_show_typed(generator)}{hint}")


def check_device(name: str, value) -> torch.device:
    """``value`` as a torch.device: a torch.device or a string torch parses (``"cpu"``, ``"cuda:0"``, ``"mps"``)."""
    if isinstance(value, torch.device):
        return value
    try:
        return torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{name} must be a torch.device or a device string such as 'cpu', 'cuda', 'cuda:0' "
                         f"or 'mps', got {_show_typed(value)}") from None


def check_callable(name: str, value, usage: str) -> None:
    """``value`` must be callable, as ``usage`` says (e.g. ``"model(x_t, t)"``)."""
    if not callable(value):
        raise TypeError(f"{name} must be callable as {usage}, got {_show_typed(value)}")


def check_model_output(out, x: torch.Tensor) -> torch.Tensor:
    """The ε-model must return a floating-point tensor shaped like its input; it is cast to x's
    dtype and device (a float16 network under a float64 sampler is fine: the sampler runs in x's dtype)."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"model must return a tensor (the predicted noise ε), got {type(out).__name__}")
    if out.shape != x.shape:
        raise ValueError(f"model must return ε with the shape of x_t {tuple(x.shape)}, got {tuple(out.shape)}")
    if not out.is_floating_point():
        raise TypeError(f"model must return a floating-point tensor ({FLOAT_DTYPES}), got {_show(out)}")
    return out.to(device=x.device, dtype=x.dtype)


# Image range: the course's images live in [-1, 1] (x = 2 * pixel / 255 - 1). Metrics fed [0, 1]
# or 0-255 images do not fail, they give silently wrong numbers, so both are refused here.
IMAGE_RANGE_LIMIT = 2.0       # |x| up to this is accepted: samplers may overshoot ±1 a little
PIXEL_SCALE_LIMIT = 10.0      # for inputs that may also be noise: |x| beyond this is pixels (0-255, 2 * x - 1 of them ...)
_UNIT_MIN = -0.25             # a batch whose values all lie in [-0.25, ...] has no dark pixel at all ...
_UNIT_MAX = 0.5               # ... yet reaches 0.5: that is [0, 1] data, not [-1, 1]
_UNIT_MIN_NUMEL = 64          # too few values to tell the ranges apart: only the hard limit applies


def check_image_range(name: str, x: torch.Tensor, *, limit: float = IMAGE_RANGE_LIMIT) -> torch.Tensor:
    """``x`` must hold images in [-1, 1] (the course's range), up to a small sampler overshoot.

    Refused, with the conversion to use:

    * any value beyond ±``limit`` (default 2; e.g. 0-255 pixels: ``x / 127.5 - 1``);
    * a batch (>= 64 numbers) that never goes below -0.25 yet reaches 0.5: [0, 1] images
      (``2 * x - 1``). Real [-1, 1] digits and model samples have their background at -1.

    Model samples (which may exceed ±1 slightly), uniform noise in [-1, 1] and blank images pass.
    ``limit=PIXEL_SCALE_LIMIT`` (10; for inputs that may be data or any other point, as the DDIM
    encoder's) lets Gaussian noise pass and still refuses 0-255 and [0, 1] images. Returns ``x``
    unchanged.
    """
    if x.numel() == 0 or not x.is_floating_point():
        return x
    lo, hi = (float(v) for v in torch.aminmax(x.detach()))
    if lo != lo or hi != hi:          # nan: left to the callers' own checks
        return x
    span = f"its values span [{lo:.4g}, {hi:.4g}]"
    if max(abs(lo), abs(hi)) > limit:
        if lo >= -0.5 and hi > PIXEL_SCALE_LIMIT:
            how = "this looks like 0-255 pixels: convert with x / 127.5 - 1"
        else:
            how = "rescale it to [-1, 1] (from [0, 1]: 2 * x - 1; from 0-255: x / 127.5 - 1)"
        raise ValueError(f"{name} must be images in [-1, 1], but {span}; {how}")
    if x.numel() >= _UNIT_MIN_NUMEL and lo >= _UNIT_MIN and hi >= _UNIT_MAX:
        raise ValueError(f"{name} must be images in [-1, 1], but {span} with no dark pixel below "
                         f"{_UNIT_MIN}: this looks like [0, 1] images; convert with 2 * x - 1 "
                         f"(and back to [0, 1] with (x + 1) / 2)")
    return x
