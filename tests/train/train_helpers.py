"""Shared helpers of the train tests: tiny data, tiny models, a quiet CPU trainer."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ddim_edu.diffusion.schedule import NoiseSchedule
from ddim_edu.nets import UNet
from ddim_edu.train.trainer import Trainer, TrainConfig

ROOT = Path(__file__).resolve().parents[2]
SCHED = NoiseSchedule.linear(1000)
SUB_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "DDIM_EDU_OFFLINE": "1"}


def toy_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g) * 0.2 + torch.randint(0, 2, (n, 1), generator=g) * 2.0 - 1.0


def tiny_unet(dropout=0.0):
    return UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, dropout=dropout)


def trainer(model, data, out=None, **kw):
    kw = {"batch_size": 16, "log_every": 2, "ckpt_every": 0, "progress": False, **kw}
    return Trainer(model, SCHED, data, TrainConfig(**kw), out_dir=out, device="cpu")


def equal_states(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
