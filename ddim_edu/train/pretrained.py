"""Shipped weights: ``model, sched = load_pretrained("mnist")`` — no network, EMA weights,
eval mode. Each name is a run directory (model.safetensors + config.json) under
``checkpoints/`` at the repository root, written by ``python -m ddim_edu.train``; its
config.json records the exact command, steps and data. ``DDIM_EDU_CHECKPOINTS`` points
elsewhere (a folder holding the same sub-folders)."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from . import checkpoints as ck
from ..validation import check_choice

PRETRAINED = {
    "mnist": ("UNet ε-model for 28×28 MNIST digits (EMA weights)",
              "python -m ddim_edu.train --preset mnist --dataset mnist --seed 1 --out checkpoints/mnist"),
    "toy": ("2-D MLP ε-model for the 'gmm' toy set (8 Gaussians on a ring)",
            "python -m ddim_edu.train --dataset gmm --out checkpoints/toy"),
    "mnist_cond": ("class-conditional UNet ε(x_t, t, y) for 28×28 MNIST, null label 10 (EMA weights; guidance)",
                   "python -m ddim_edu.train --init checkpoints/mnist --conditional --out checkpoints/mnist_cond"),
}


def checkpoints_dir() -> Path:
    """``$DDIM_EDU_CHECKPOINTS`` if set, else ``checkpoints/`` at the repository root."""
    env = os.environ.get("DDIM_EDU_CHECKPOINTS")
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "checkpoints"


def available_pretrained() -> list[str]:
    """Names whose weights are present (a subset of ``PRETRAINED``)."""
    root = checkpoints_dir()
    return [n for n in PRETRAINED if (root / n / ck.MODEL_FILE).is_file() and (root / n / ck.CONFIG_FILE).is_file()]


def load_pretrained(name: str, device=None, *, return_config: bool = False):
    """(model, sched) for ``name`` ("mnist", "toy" or "mnist_cond"): the EMA weights in eval mode on
    ``device`` (default CPU). ``return_config=True`` adds the run's config.json as a dict."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, one of {', '.join(map(repr, PRETRAINED))}; got {type(name).__name__}")
    check_choice("name", name, tuple(PRETRAINED))
    path = checkpoints_dir() / name
    if not (path / ck.MODEL_FILE).is_file() or not (path / ck.CONFIG_FILE).is_file():
        have = available_pretrained()
        raise FileNotFoundError(
            f"pretrained weights {name!r} not found in {path}: expected {ck.MODEL_FILE} and {ck.CONFIG_FILE} "
            f"there. Train them with `{PRETRAINED[name][1]}` (or set DDIM_EDU_CHECKPOINTS). "
            f"Available now: {', '.join(have) if have else 'none'}.")
    model, sched, config = ck.load_model(path, device=device if device is not None else torch.device("cpu"))
    return (model, sched, config) if return_config else (model, sched)
