"""Sample grids during training: what the EMA model draws now, as a PNG — a grid of DDIM
samples for images, or for 2-D points a density image of the data beside the samples."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from .. import env


@torch.no_grad()
def save_sample_grid(model, sched, data: torch.Tensor, path, *, count: int = 64, steps: int = 50,
                     seed: int = 0) -> Path:
    """Draw samples with DDIM (η = 0, ``min(steps, sched.T)`` steps) from a fixed x_T (seeded by
    ``seed``, on ``data``'s device) and write them to ``path``: ``count`` images in a square-ish
    grid when ``data`` is [N, C, H, W] in [-1, 1]; when it is [N, 2], a density image of the
    data (left) beside one of max(count, 2000) samples (right). Returns ``path``."""
    from ..diffusion.samplers import ddim_sample
    from ..viz import grids
    shape = (count, *data.shape[1:]) if data.dim() > 2 else (max(count, 2000), data.shape[1])
    gen = env.generator(seed)
    x_T = env.randn(shape, gen, device=data.device)
    x0 = ddim_sample(model, x_T, sched, steps=min(steps, sched.T), eta=0.0, generator=gen,
                     progress=False).float().cpu()
    if x0.dim() == 4:
        return grids.save_grid((x0.clamp(-1, 1) + 1) / 2, Path(path), nrow=max(1, int(math.sqrt(count))))
    lim = float(data[:, :2].abs().max()) * 1.15
    imgs = [grids.density_image(d, lim) for d in (data.cpu(), x0)]
    return grids.save_grid(torch.stack(imgs), Path(path), nrow=2, padding=4, pad_value=0.5)
