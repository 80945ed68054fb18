"""The exponential moving average (EMA) of the weights that samplers use (Ho et al. 2020,
appendix B: decay 0.9999): θ̄ ← d θ̄ + (1 − d) θ after every optimiser step, kept by
``torch.optim.swa_utils.AveragedModel``."""
from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def ema_multi_avg_fn(decay: float, warmup: bool = True):
    """EMA update for ``AveragedModel``: θ̄ ← d θ̄ + (1 − d) θ with d = decay, or with warmup
    d_n = min(decay, (1 + n)/(10 + n)) after n averages, so early EMA isn't stuck at init."""
    if not warmup:
        return get_ema_multi_avg_fn(decay)

    @torch.no_grad()
    def update(ema_params, params, num_averaged):
        n = int(num_averaged)
        d = min(decay, (1.0 + n) / (10.0 + n))
        if ema_params and (ema_params[0].is_floating_point() or ema_params[0].is_complex()):
            torch._foreach_lerp_(ema_params, params, 1.0 - d)
        else:
            for e, p in zip(ema_params, params):
                e.copy_(p)
    return update


def make_ema(model: torch.nn.Module, decay: float | None = None, warmup: bool | None = None) -> AveragedModel:
    """An EMA copy of ``model`` (buffers averaged too), initialised to its current weights
    (n_averaged = 1), so after one more update θ̄ = d·θ_0 + (1 − d)·θ_1. ``decay`` and ``warmup``
    default to the training defaults (``TrainConfig.ema_decay``, ``TrainConfig.ema_warmup``)."""
    from .config import TrainConfig
    decay = TrainConfig.ema_decay if decay is None else decay
    warmup = TrainConfig.ema_warmup if warmup is None else warmup
    ema = AveragedModel(model, multi_avg_fn=ema_multi_avg_fn(decay, warmup), use_buffers=True)
    ema.update_parameters(model)
    ema.module.eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema
