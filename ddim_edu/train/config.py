"""The hyper-parameters of a training run: :class:`TrainConfig` is the one place that holds
each option's default, help text, allowed range and command-line spelling, from which
:mod:`ddim_edu.train.cli` generates its training options (so the two cannot disagree)."""
from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import typing

from ..validation import check_float, check_int
from .schedules import DECAYS
from .loss import T_SAMPLINGS, WEIGHTINGS

UNLIMITED_STEPS = 10 ** 9        # "no step limit": a run given only a time budget (the CLI's --minutes without --steps)


def option(default, help: str, *, lo=None, hi=None, lo_open: bool = False, hi_open: bool = False,
           flag: str | None = None, dest: str | None = None, resumable: bool = False, finite: bool = False,
           choices: tuple | None = None, aliases: tuple = ()):
    """A :class:`TrainConfig` field whose ``metadata`` describes it: ``help`` (the CLI help),
    the allowed range ``lo``/``hi`` (open at an end with ``lo_open``/``hi_open``; checked by
    :meth:`TrainConfig.validate` and the CLI),
    the CLI ``flag`` (default ``--name-with-dashes``; ``--no-name`` for a bool that is on by
    default), the ``dest`` under which the CLI stores it (the key in config.json's "args";
    a bool stored as ``no_<name>`` holds the negation), and ``resumable``: whether ``--resume``
    may change it (it does not alter the training trajectory); ``finite``: a float that must not be infinite;
    ``choices``: the allowed values of a string field; ``aliases``: more CLI spellings of the same option."""
    return dataclasses.field(default=default, metadata={
        "help": help, "lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "flag": flag, "dest": dest,
        "resumable": resumable, "finite": finite, "choices": choices, "aliases": tuple(aliases)})


@dataclasses.dataclass
class TrainConfig:
    """Hyper-parameters of a run (saved in config.json under "training"); see each field's
    ``metadata["help"]``, or ``python -m ddim_edu.train --help``."""
    steps: int = option(5000, "total optimiser steps, counting resumed ones", lo=1, resumable=True)
    batch_size: int = option(128, "global batch; each of K torchrun processes takes batch_size / K", lo=1)
    lr: float = option(5e-4, "AdamW learning rate", lo=0.0, lo_open=True, finite=True)
    weight_decay: float = option(0.0, "AdamW weight decay", lo=0.0, finite=True)
    adam_beta2: float = option(0.999, "AdamW's beta2: the decay of its running mean of squared gradients",
                               lo=0.0, hi=0.9999, finite=True)
    lr_warmup: int = option(100, "linear learning-rate warm-up over the first N steps", lo=0)
    lr_schedule: str = option("constant", "learning rate after the warm-up: constant, or a cosine or linear decay "
                                          "to 0 at --lr-decay-steps (ddim_edu.train.schedules.lr_at)",
                              choices=("constant", *DECAYS))
    lr_decay_steps: int = option(0, "the step where the decay reaches 0 (0: --steps; with a time budget "
                                    "alone, the step where the budget is expected to run out, measured from the "
                                    "run's own speed and measured again at a tenth, a quarter, half and three "
                                    "quarters of the budget)", lo=0)
    loss_weighting: str = option("none", "weight of each t in the loss: none (L_simple) or min_snr "
                                         "(min(SNR_t, gamma)/SNR_t, Hang et al. 2023; DDIM's L_gamma family)",
                                 choices=WEIGHTINGS)
    min_snr_gamma: float = option(5.0, "gamma of --loss-weighting min_snr", lo=0.0, lo_open=True, finite=True)
    min_snr_floor: float = option(0.0, "least weight of any t under --loss-weighting min_snr: max(min(SNR_t, "
                                       "gamma)/SNR_t, floor); 0 is plain min-SNR", lo=0.0, hi=1.0, finite=True)
    t_sampling: str = option("uniform", "how t is drawn in the loss: uniform (U{0..T-1}), stratified (one draw from "
                                        "each n-th of the chain per batch of n, Kingma et al. 2021; no better KID for "
                                        "the laptop preset), logit_normal (t = T sigmoid(z), z ~ N(0, 1), Esser et "
                                        "al. 2024; 6x worse KID for the laptop preset: "
                                        "results/speedrun/grid4_notes.md) or asymmetric (t >= T * --t-split with "
                                        "probability --t-upper-share, else below it, Wang et al. 2024); each is in "
                                        "DDIM's L_gamma family",
                             choices=T_SAMPLINGS)
    t_split: float = option(0.5, "--t-sampling asymmetric: the split tau = floor(T * this) between its two parts",
                            lo=0.0, hi=1.0, lo_open=True, hi_open=True, finite=True)
    t_upper_share: float = option(0.2, "--t-sampling asymmetric: the share of draws at t >= tau (0.5 with "
                                       "--t-split 0.5 is uniform)", lo=0.0, hi=1.0, lo_open=True, hi_open=True,
                                  finite=True)
    augment_shift: int = option(0, "shift each training image by up to N pixels (random, per image; "
                                   "background fills the border)", lo=0)
    p_uncond: float = option(0.2, "with class labels (--conditional): probability that a training label becomes "
                                  "the null label (Ho & Salimans 2022 label dropout; unconditional model)",
                             lo=0.0, hi=1.0, finite=True)
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
    max_minutes: float | None = option(None, "stop cleanly, with a checkpoint, after this many minutes of wall-clock "
                                             "(a new run given only a time budget, no --steps, trains until it is up)",
                                       lo=0.0, lo_open=True, finite=True, resumable=True,
                                       aliases=("--minutes",))
    progress: bool | None = option(None, "a progress bar (None: on unless fast mode, DDIM_EDU_FAST=1)",
                                   resumable=True)
    compile: bool = option(False, "torch.compile the model (CUDA; slower start)", resumable=True)
    channels_last: bool | None = option(None, "channels_last memory format for images (default: on CUDA only)",
                                        flag="--channels-last", resumable=True)
    bf16: bool | None = option(None, "bf16 autocast for the forward pass and loss (default: on CUDA only). On a CPU "
                                     "with AMX or AVX-512 BF16 it roughly halves the time of a UNet step "
                                     "(benchmarks/speedrun.py --speed); on other CPUs it is emulated, about 15x "
                                     "slower on a 2-core AVX2 CPU, and the trainer warns there (x86 Linux)",
                               flag="--bf16")

    def adamw_options(self) -> dict:
        """The keyword arguments of ``torch.optim.AdamW`` for this run: lr, weight_decay, betas (β1 = 0.9)."""
        return {"lr": self.lr, "weight_decay": self.weight_decay, "betas": (0.9, self.adam_beta2)}

    def validate(self) -> "TrainConfig":
        """Check every field against its type and range; raises ``TypeError``/``ValueError``
        naming the field, its value and what is allowed. Returns ``self``."""
        for f in dataclasses.fields(self):
            value, m, kind = getattr(self, f.name), f.metadata, field_type(f)
            if value is None and f.default is None:          # optional: max_minutes, progress, channels_last
                continue
            if kind is str:
                if not isinstance(value, str) or value not in m["choices"]:
                    raise ValueError(f"{f.name} must be one of {', '.join(map(repr, m['choices']))}, got {value!r}")
            elif kind is int:
                check_int(f.name, value, lo=m["lo"], hi=m["hi"])
            elif kind is float:
                check_float(f.name, value, lo=m["lo"], hi=m["hi"], lo_open=m["lo_open"], hi_open=m["hi_open"])
                if m["finite"] and not math.isfinite(float(value)):
                    raise ValueError(f"{f.name} must be a finite number, got {value}")
            elif not isinstance(value, bool):
                raise TypeError(f"{f.name} must be True or False, got {value!r}")
        return self

    def loss_options(self) -> dict:
        """The keyword arguments of :func:`~.loss.diffusion_loss` that this run sets: its weighting of t
        and how it draws t (DDIM's L_γ, eq. 5, with the γ_t they give)."""
        return {"weighting": self.loss_weighting, "min_snr_gamma": self.min_snr_gamma,
                "min_snr_floor": self.min_snr_floor, "t_sampling": self.t_sampling, "t_split": self.t_split,
                "t_upper_share": self.t_upper_share}


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
    """The value type of a :class:`TrainConfig` field: int, float, bool or str (``X | None`` gives X)."""
    hint = _hints()[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


@functools.lru_cache(maxsize=None)
def _hints() -> dict:
    return typing.get_type_hints(TrainConfig)


# ----------------------------------------------------------------- command-line values
def _int_at_least(lo: int):
    def parse(s):
        if int(s) < lo:
            raise argparse.ArgumentTypeError(f"must be a positive integer, got {s}" if lo == 1 else f"must be >= {lo}, got {s}")
        return int(s)
    return parse


_pos_int = _int_at_least(1)


def _widths(s):
    try:
        ws = [int(w) for w in s.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers like 32,64,128, got {s!r}") from None
    if not ws or ws[0] < 1 or any(w % ws[0] for w in ws):
        raise argparse.ArgumentTypeError(f"every width must be a positive multiple of the first, got {s!r}")
    return ws


def check_saved_args(parser, saved: dict, where) -> dict:
    """The "args" that a run's config.json (``where``) saved, checked as the command line checks
    them: every key must be an option of ``parser`` (an ``argparse`` parser built like
    :func:`ddim_edu.train.cli.build_parser`), every value must read back through the option's own
    parser (its type, range and choices) unchanged, so a string where a number belongs is refused,
    and the training fields must pass :meth:`TrainConfig.validate`. Returns ``saved``; raises
    ``ValueError`` naming the file, the field, its value and what is allowed."""
    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest not in ("help", "resume", "out")}
    if not isinstance(saved, dict):
        raise ValueError(f"{where}: 'args' must be a JSON object of option values, got {type(saved).__name__}")
    for key, value in saved.items():
        if key not in actions:
            raise ValueError(f"{where}: unknown field {key!r} in 'args' (value {value!r}); allowed: {sorted(actions)}")
        a = actions[key]
        bad = f"{where}: field {key!r} in 'args' ({'/'.join(a.option_strings)}) is {value!r}, "
        if a.nargs == 0:                                          # a switch: store_true / store_false
            if not isinstance(value, bool) and not (value is None and a.default is None):
                raise ValueError(bad + "allowed: true or false")
            continue
        if value is None:
            if a.default is not None:
                raise ValueError(bad + f"allowed: a value like its default {a.default!r}")
            continue
        text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        try:
            back = a.type(text) if a.type else text
        except (argparse.ArgumentTypeError, TypeError, ValueError) as e:
            raise ValueError(bad + f"allowed: {e if isinstance(e, argparse.ArgumentTypeError) else _kind(a)}") from None
        if back != value or isinstance(value, bool) or (a.choices and back not in a.choices):
            allowed = f"one of {list(a.choices)}" if a.choices else _kind(a)
            raise ValueError(bad + f"allowed: {allowed}")
    values = {}
    for f in dataclasses.fields(TrainConfig):
        v = saved.get(cli_dest(f), (not f.default) if cli_negated(f) else f.default)
        values[f.name] = (not v) if cli_negated(f) else v
    try:
        TrainConfig(**values).validate()
    except (TypeError, ValueError) as e:
        dest = {f.name: cli_dest(f) for f in dataclasses.fields(TrainConfig)}.get(str(e).split()[0], "?")
        raise ValueError(f"{where}: field {dest!r} in 'args' holds a bad training option: {e}") from None
    return saved


def _kind(action) -> str:
    t = getattr(action.type, "__name__", "")
    return {"float": "a number (a JSON number)", "int": "an integer", "parse": "a whole number (a JSON integer)",
            "_widths": "a list of integers"}.get(t, "a JSON string" if action.type is None else f"a value {t} accepts")
