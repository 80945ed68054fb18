"""Where the course runs: device choice, fast mode, offline mode and seeding.

Every notebook starts with the same few lines::

    import ddim_edu as de
    FAST = de.env.fast_mode()      # DDIM_EDU_FAST=1 (CI sets it) shrinks counts, never skips code
    device = de.env.device()       # CUDA, then Apple MPS, then CPU
    de.env.seed_everything(0)
"""
from __future__ import annotations

import numbers
import os
import random
import sys
import warnings

import numpy as np
import torch

_TRUE = {"1", "true", "yes", "on"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def fast_mode() -> bool:
    """True when ``DDIM_EDU_FAST`` is set: notebooks shrink sample counts and steps."""
    return _flag("DDIM_EDU_FAST")


def offline() -> bool:
    """True when ``DDIM_EDU_OFFLINE`` is set: never try to download a dataset."""
    return _flag("DDIM_EDU_OFFLINE")


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then MPS, then CPU.

    ``prefer`` ("cpu", "cuda", "mps") forces a choice; ``DDIM_EDU_DEVICE`` does the same
    from the environment.
    """
    choice = prefer or os.environ.get("DDIM_EDU_DEVICE") or None
    if choice is not None:
        if choice not in ("cpu", "cuda", "mps"):
            raise ValueError(f"prefer must be 'cpu', 'cuda' or 'mps', got {choice!r}")
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _check_seed(seed) -> int:
    """Any non-negative integer (Python int, numpy integer, ...; not bool), as a Python int."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def course_seed() -> int:
    """The notebooks' base seed: ``DDIM_EDU_SEED`` (a non-negative whole number), default 0.
    Re-running a notebook with another seed checks that its asserts do not hang on one draw."""
    text = os.environ.get("DDIM_EDU_SEED", "").strip()
    if not text:
        return 0
    if not text.isdigit():
        raise ValueError(f"DDIM_EDU_SEED must be a non-negative whole number, got {text!r}")
    return int(text)


def seed_everything(seed: int | None = None) -> torch.Generator:
    """Seed Python, NumPy and torch with ``seed`` (default :func:`course_seed`); return a CPU
    ``torch.Generator`` seeded the same way."""
    seed = _check_seed(course_seed() if seed is None else seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return generator(seed)


def generator(seed: int = 0) -> torch.Generator:
    """A CPU generator: draw noise on the CPU, then move it (same numbers on every device)."""
    seed = _check_seed(seed)
    return torch.Generator(device="cpu").manual_seed(seed)


def randn(shape, generator: torch.Generator | None = None, *, dtype=torch.float32,
          device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normal noise drawn on the generator's device, then moved to ``device``.

    float16 and bfloat16 noise is drawn in float32 and rounded, so one seed gives the same noise
    in float16, bfloat16 and float32 (up to rounding), and a half-precision sampler follows its
    float32 run. float64 is drawn in float64 (torch's float64 stream differs from its float32
    one: the same seed gives other numbers in float64).
    """
    gen_device = generator.device if generator is not None else torch.device("cpu")
    draw = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    z = torch.randn(tuple(shape), generator=generator, dtype=draw, device=gen_device)
    return z.to(device=device, dtype=dtype)


def show_progress(progress: bool | None = None) -> bool:
    """The course's progress-bar policy: ``progress=None`` shows bars except in fast mode
    (CI); True or False decides outright."""
    return (not fast_mode()) if progress is None else bool(progress)


LOG_REFRESH_S = 30.0   # seconds between a bar's lines when it writes to a file or pipe, not a terminal


def _writes_to_log(stream) -> bool:
    """True when a bar drawn outside Jupyter goes to a file or pipe (``python -m ddim_edu.train ... 2> log``),
    where every redraw would become a line of the log."""
    if type(stream).__module__.startswith("ipykernel"):    # a notebook's output area redraws the bar in place
        return False
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


def progress_bar(iterable=None, progress: bool | None = None, desc: str | None = None, **tqdm_kwargs):
    """A ``tqdm.auto`` bar over ``iterable`` that :func:`show_progress` switches on or off;
    transient (``leave=False``) unless told otherwise. Long work in the package goes through here.
    Written to a file or pipe rather than a terminal or notebook, the bar redraws at most every
    ``LOG_REFRESH_S`` seconds (not ten times a second), so a logged 40-minute run stays a short log."""
    from tqdm.auto import tqdm
    tqdm_kwargs.setdefault("leave", False)
    if _writes_to_log(tqdm_kwargs.get("file") or sys.stderr):
        tqdm_kwargs.setdefault("mininterval", LOG_REFRESH_S)
        tqdm_kwargs.setdefault("maxinterval", LOG_REFRESH_S)    # tqdm's monitor would redraw after 10 s
    return tqdm(iterable, desc=desc, disable=not show_progress(progress), **tqdm_kwargs)


def describe() -> dict:
    """Versions and hardware, for notebooks' set-up cell and checkpoint configs."""
    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "device": str(device()),
        "fast_mode": fast_mode(),
        "offline": offline(),
        "colab": in_colab(),
        "cpu": cpu_model(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_bf16": cpu_bf16_units(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


BF16_UNITS = ("amx_bf16", "avx512_bf16")        # the x86 flags of bf16 instructions
BF16_EMULATED = ("bf16=True (--bf16) on a CPU whose flags list neither amx_bf16 nor avx512_bf16: torch emulates "
                 "bf16 there, and the laptop preset trained about 15x slower with it than in float32 on a 2-core "
                 "AVX2 CPU (results/speedrun_cpu.md). Leave bf16 off (drop --bf16) on this CPU.")


def _cpuinfo(key: str) -> str | None:
    """The value of the first line of /proc/cpuinfo whose name is ``key`` (Linux), or None where there is no
    such line or the file cannot be read. Never raises."""
    try:
        with open("/proc/cpuinfo") as f:
            fields = (line.partition(":") for line in f)
            return next((value.strip() for name, sep, value in fields if sep and name.strip() == key), None)
    except OSError:
        return None


def cpu_flags() -> list[str] | None:
    """The CPU's instruction-set flags as Linux writes them in /proc/cpuinfo (lower case, from its first
    ``flags`` line: x86), or None where there is no such line or the file cannot be read (ARM, whose
    line is ``Features``; macOS; Windows). Never raises."""
    flags = _cpuinfo("flags")
    return None if flags is None else flags.split()


def cpu_model() -> str | None:
    """The CPU's name as Linux writes it in /proc/cpuinfo (``model name``, e.g. ``"AMD EPYC"``; a virtual
    machine may shorten it), or None where it cannot be read. For results files beside :func:`cpu_flags`,
    which tell CPUs of one name apart (AVX2 only, or AVX-512 and bf16 units). Never raises."""
    return _cpuinfo("model name")


def cpu_bf16_units() -> list[str]:
    """The CPU's bf16 instruction sets, from :func:`cpu_flags`: a list of ``"amx_bf16"`` and
    ``"avx512_bf16"``, [] where it has neither or the flags cannot be read (other systems). Where the
    flags were read and this is [] (:func:`cpu_bf16_emulated`), bf16 autocast on the CPU is emulated and
    much slower than float32; where not, ``python -m ddim_edu.train --bf16`` trains faster
    (``results/speedrun_cpu.md``)."""
    flags = cpu_flags() or []
    return [u for u in BF16_UNITS if u in flags]


def cpu_bf16_emulated() -> bool:
    """True where the CPU's flags could be read (x86 Linux) and list neither bf16 unit: there bf16
    autocast is emulated, and the laptop preset trained about 15× slower with it than in float32
    on a 2-core AVX2 CPU (``results/speedrun_cpu.md``). False where the flags list a unit, and where they
    cannot be read (nothing is known there)."""
    flags = cpu_flags()
    return flags is not None and not any(u in flags for u in BF16_UNITS)


def warn_bf16_emulated(bf16: bool | None, device, stacklevel: int = 3) -> bool:
    """Warn (``UserWarning``, :data:`BF16_EMULATED`) where bf16 autocast (``bf16`` true) is to run on a CPU
    ``device`` (a ``torch.device`` or its name) for which :func:`cpu_bf16_emulated` is True, and return
    whether it warned. Only x86 Linux lists its flags: elsewhere nothing is known and nothing is said.
    ``stacklevel`` 3 names the caller of the function that calls this one (the trainer's caller)."""
    if bf16 and torch.device(device).type == "cpu" and cpu_bf16_emulated():
        warnings.warn(BF16_EMULATED, stacklevel=stacklevel)
        return True
    return False
