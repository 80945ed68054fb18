"""The hyper-parameters of a training run: :class:`TrainConfig` is the one place that holds
each option's default, help text, allowed range and command-line spelling, from which
:mod:`ddim_edu.train.cli` generates its training options (so the two cannot disagree)."""
from __future__ import annotations

import dataclasses
import functools
import math
import typing

from ..validation import check_float, check_int


def option(default, help: str, *, lo=None, hi=None, lo_open: bool = False, flag: str | None = None,
           dest: str | None = None, resumable: bool = False, finite: bool = False):
    """A :class:`TrainConfig` field whose ``metadata`` describes it: ``help`` (the CLI help),
    the allowed range ``lo``/``hi`` (checked by :meth:`TrainConfig.validate` and the CLI),
    the CLI ``flag`` (default ``--name-with-dashes``; ``--no-name`` for a bool that is on by
    default), the ``dest`` under which the CLI stores it (the key in config.json's "args";
    a bool stored as ``no_<name>`` holds the negation), and ``resumable``: whether ``--resume``
    may change it (it does not alter the training trajectory); ``finite``: a float that must not be infinite."""
    return dataclasses.field(default=default, metadata={
        "help": help, "lo": lo, "hi": hi, "lo_open": lo_open, "flag": flag, "dest": dest, "resumable": resumable,
        "finite": finite})


@dataclasses.dataclass
class TrainConfig:
    """Hyper-parameters of a run (saved in config.json under "training"); see each field's
    ``metadata["help"]``, or ``python -m ddim_edu.train --help``."""
    steps: int = option(5000, "total optimiser steps, counting resumed ones", lo=1, resumable=True)
    batch_size: int = option(128, "global batch; each of K torchrun processes takes batch_size / K", lo=1)
    lr: float = option(5e-4, "AdamW learning rate", lo=0.0, lo_open=True, finite=True)
    weight_decay: float = option(0.0, "AdamW weight decay", lo=0.0, finite=True)
    lr_warmup: int = option(100, "linear learning-rate warm-up over the first N steps", lo=0)
    ema_decay: float = option(0.999, "EMA decay d of the weights", lo=0.0, hi=1.0, flag="--ema", dest="ema",
                              finite=True)
    ema_warmup: bool = option(True, "EMA warm-up: decay d_n = min(d, (1+n)/(10+n)) after n updates, so the early "
                                    "EMA is not stuck at the initial weights", dest="no_ema_warmup")
    grad_clip: float = option(1.0, "max global gradient norm; 0 turns clipping off", lo=0.0, finite=True)
    seed: int = option(0, "seed of the data and noise streams (each rank its own)", lo=0)
    log_every: int = option(100, "record the mean loss every N steps", lo=1, resumable=True)
    ckpt_every: int = option(1000, "checkpoint every N steps, and always at the end (0: only at the end)",
                             lo=0, resumable=True)
    sample_every: int = option(1000, "a PNG grid of EMA samples every N steps in OUT/samples (0: off; "
                                     "needs a run directory)", lo=0, resumable=True)
    snapshot_every: int = option(0, "keep the EMA weights every N steps in OUT/snapshots/step_N, "
                                    "for a training curve (0: off)", lo=0, resumable=True)
    sample_count: int = option(64, "images in each sample grid", lo=1, resumable=True)
    sample_steps: int = option(50, "DDIM steps (eta = 0) for each sample grid", lo=1, resumable=True)
    max_minutes: float | None = option(None, "stop cleanly, with a checkpoint, after this many minutes",
                                       lo=0.0, lo_open=True, resumable=True)
    progress: bool | None = option(None, "a progress bar (None: on unless fast mode, DDIM_EDU_FAST=1)",
                                   resumable=True)
    compile: bool = option(False, "torch.compile the model (CUDA; slower start)", resumable=True)

    def validate(self) -> "TrainConfig":
        """Check every field against its type and range; raises ``TypeError``/``ValueError``
        naming the field, its value and what is allowed. Returns ``self``."""
        for f in dataclasses.fields(self):
            value, m, kind = getattr(self, f.name), f.metadata, field_type(f)
            if value is None and f.default is None:          # optional: max_minutes, progress
                continue
            if kind is int:
                check_int(f.name, value, lo=m["lo"], hi=m["hi"])
            elif kind is float:
                check_float(f.name, value, lo=m["lo"], hi=m["hi"], lo_open=m["lo_open"])
                if m["finite"] and not math.isfinite(float(value)):
                    raise ValueError(f"{f.name} must be a finite number, got {value}")
            elif not isinstance(value, bool):
                raise TypeError(f"{f.name} must be True or False, got {value!r}")
        return self


def cli_flag(f: dataclasses.Field) -> str:
    """The command-line flag of a :class:`TrainConfig` field: ``metadata["flag"]``, else
    ``--no-name`` for a bool that is on (or None: automatic) by default, else ``--name-with-dashes``."""
    if f.metadata["flag"]:
        return f.metadata["flag"]
    name = f.name.replace("_", "-")
    return f"--no-{name}" if field_type(f) is bool and f.default is not False else f"--{name}"


def cli_dest(f: dataclasses.Field) -> str:
    """Where the command line stores a :class:`TrainConfig` field: its key in config.json's "args"."""
    return f.metadata["dest"] or f.name


def cli_negated(f: dataclasses.Field) -> bool:
    """Whether the command line stores the negation of a bool field (``ema_warmup`` as ``no_ema_warmup``)."""
    return field_type(f) is bool and cli_dest(f) == f"no_{f.name}"


def field_type(f: dataclasses.Field) -> type:
    """The value type of a :class:`TrainConfig` field: int, float or bool (``X | None`` gives X)."""
    hint = _hints()[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


@functools.lru_cache(maxsize=None)
def _hints() -> dict:
    return typing.get_type_hints(TrainConfig)
