r"""The noise predictor ε_θ(x_t, t) for 2-D toy data: a residual MLP with the timestep
embedding added before every layer."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import check_int, check_tensor
from .embedding import check_t, timestep_embedding


class MLPDenoiser(nn.Module):
    r"""ε_θ(x_t, t) for 2-D toy data: x → Linear → ``num_layers`` residual layers
    h ← h + Linear(SiLU(h + e(t))) → SiLU → Linear, where e(t) is the sinusoidal embedding
    (``emb_dim`` wide) passed through Linear, SiLU, Linear and ADDED before every layer."""

    def __init__(self, dim: int = 2, hidden: int = 128, num_layers: int = 3, emb_dim: int = 64):
        super().__init__()
        dim = check_int("dim", dim, lo=1)
        hidden = check_int("hidden", hidden, lo=1)
        num_layers = check_int("num_layers", num_layers, lo=1)
        emb_dim = check_int("emb_dim", emb_dim, lo=2)
        self.config = {"type": "mlp", "dim": dim, "hidden": hidden, "num_layers": num_layers, "emb_dim": emb_dim}
        self.dim, self.emb_dim = dim, emb_dim
        self.time_mlp = nn.Sequential(nn.Linear(emb_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inp = nn.Linear(dim, hidden)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(num_layers))
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predict ε with the shape of ``x`` [B, dim]; ``t``: LongTensor [B] of timesteps."""
        check_tensor("x", x, floating=True)
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape [B, {self.dim}] (dim={self.dim}), got {tuple(x.shape)}")
        check_t(t, x.shape[0], x.device)
        dtype = self.inp.weight.dtype              # run in the parameters' dtype, answer in x's
        temb = self.time_mlp(timestep_embedding(t, self.emb_dim).to(dtype))
        h = self.inp(x.to(dtype))
        for layer in self.layers:
            h = h + layer(F.silu(h + temb))
        return self.out(F.silu(h)).to(x.dtype)
