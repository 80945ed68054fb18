"""The optimiser: AdamW (Loshchilov & Hutter 2019, Algorithm 2, with Adam's bias corrections), in
PyTorch's fused kernel wherever PyTorch has one for the model's parameters.

The fused kernel applies the same update as PyTorch's per-tensor loop in one pass over all
parameters: on a 2-core CPU the laptop preset's training step is about 5% faster with it
(``results/speedrun/grid4_notes.md``). A resumed run keeps the implementation it was saved with:
the optimiser's saved param group records it, and ``load_state_dict`` restores it."""
from __future__ import annotations

import torch


def fused_adamw_supported(model: torch.nn.Module, device: torch.device) -> bool:
    """Whether ``torch.optim.AdamW(fused=True)`` is taken for ``model`` on ``device``: a CPU or CUDA
    device and float32/float64 parameters only (a float16 or bfloat16 model, another device or a
    model without parameters gets the per-tensor loop)."""
    params = list(model.parameters())
    return (torch.device(device).type in ("cpu", "cuda") and bool(params)
            and all(p.dtype in (torch.float32, torch.float64) for p in params))


def make_adamw(model: torch.nn.Module, options: dict, device) -> torch.optim.AdamW:
    """AdamW over ``model``'s parameters with ``options`` (``TrainConfig.adamw_options()``: lr,
    weight_decay, betas), fused where :func:`fused_adamw_supported` says so."""
    return torch.optim.AdamW(model.parameters(), **options, fused=fused_adamw_supported(model, device))
