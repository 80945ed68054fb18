r"""Noise-prediction networks ε_θ(x_t, t): a time-conditioned UNet for images and a small
MLP for 2-D toy data.

Both take the ORIGINAL integer timestep t ∈ {0, …, T−1} (a LongTensor [B], never the
sampler's loop index; CORRECTNESS.md pitfall 3) and tell every layer about it through a
sinusoidal embedding (Vaswani et al. 2017, sec. 3.5; DDPM appendix B). A noise predictor
that ignores t cannot work: the same x_t means different things at different noise levels
(pitfall 10).

Every model keeps the keyword arguments it was built with in ``model.config`` (a JSON-able
dict with a ``"type"`` key), and :func:`build_model` rebuilds it from that dict; checkpoints
store the config next to the weights.
"""
from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import check_choice, check_float, check_int, check_tensor

__all__ = ["timestep_embedding", "UNet", "MLPDenoiser", "build_model", "count_parameters"]


def _check_t(t, batch: int, device: torch.device | None = None) -> torch.Tensor:
    """t must be an integer tensor of shape [batch] (the original timesteps)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a LongTensor of shape [{batch}] of integer timesteps, got {type(t).__name__}")
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"t must hold integer timesteps (torch.long), got dtype {t.dtype}; "
                        "pass the original timestep values, not fractions of T")
    if t.shape != (batch,):
        raise ValueError(f"t must have shape [{batch}] (one timestep per example), got {tuple(t.shape)}")
    if device is not None and t.device != device:
        raise ValueError(f"t is on {t.device} but x is on {device}: put both on one device")
    return t


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000) -> torch.Tensor:
    r"""Sinusoidal embedding of integer timesteps: [B] → float32 [B, dim].

    The first half is sin(t·ω_k), the second cos(t·ω_k), ω_k = max_period^(−k/half),
    k = 0 … half−1 (Transformer positional encoding, as in DDPM's ``get_timestep_embedding``).
    An odd ``dim`` gets one zero column at the end.
    """
    check_tensor("t", t, min_dim=1)
    _check_t(t, t.shape[0] if t.dim() == 1 else -1)
    dim = check_int("dim", dim, lo=2)
    max_period = check_float("max_period", max_period, lo=1.0, lo_open=True)
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.to(torch.float32)[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


# ----------------------------------------------------------------------------- UNet pieces
class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, + projected time embedding per channel, GroupNorm → SiLU →
    dropout → conv, plus a (1×1-projected) skip: the DDPM residual block."""

    def __init__(self, cin: int, cout: int, temb_dim: int, dropout: float, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb_dim, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over all pixels, with a residual connection."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).transpose(-1, -2).unbind(1)
        h = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]   # [B, HW, C]
        return x + self.proj(h.transpose(-1, -2).reshape(B, C, H, W))


class Downsample(nn.Module):
    """3×3 conv with stride 2: 28 → 14 → 7 (and 32 → 16 → 8)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour upsampling to the skip's size (7 → 14 → 28, odd sizes too), then 3×3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=tuple(size), mode="nearest"))


class UNet(nn.Module):
    r"""Time-conditioned UNet ε_θ(x_t, t) for 28×28 or 32×32 images (DDPM-style, smaller).

    With ``channel_mults=(1, 2, 4)`` and ``base_channels=32`` the widths are 32/64/128:

    * conv_in (1 → 32) at 28×28;
    * down: for each width but the last (32 at 28×28, 64 at 14×14), ``num_res_blocks``
      residual blocks, then a stride-2 conv (28 → 14 → 7);
    * middle, at the lowest resolution (7×7) and the last width (128): residual block,
      [single-head self-attention if ``attention=True``], residual block;
    * up: for each width but the last, in reverse, nearest upsampling to the skip's size
      + conv (7 → 14 → 28), then ``num_res_blocks`` residual blocks, each concatenating
      the output of its mirror block on the down path (the skip connection);
    * GroupNorm, SiLU, conv_out to ``in_channels``, zero-initialised (ε̂ = 0 at start).

    The timestep embedding (sinusoidal, ``base_channels`` wide → Linear, SiLU, Linear to
    4·base) is projected and added per channel inside EVERY residual block. The defaults
    give 1.41M parameters (16/32/64: 0.36M), the sizes DESIGN.md measured.
    """

    def __init__(self, in_channels: int = 1, base_channels: int = 32, channel_mults=(1, 2, 4),
                 num_res_blocks: int = 2, attention: bool = False, dropout: float = 0.0, groups: int = 8):
        super().__init__()
        in_channels = check_int("in_channels", in_channels, lo=1)
        base_channels = check_int("base_channels", base_channels, lo=1)
        if isinstance(channel_mults, (str, bytes)) or not hasattr(channel_mults, "__len__") or len(channel_mults) == 0:
            raise ValueError(f"channel_mults must be a non-empty sequence of positive ints, got {channel_mults!r}")
        channel_mults = tuple(check_int(f"channel_mults[{i}]", m, lo=1) for i, m in enumerate(channel_mults))
        num_res_blocks = check_int("num_res_blocks", num_res_blocks, lo=1)
        if not isinstance(attention, bool):
            raise TypeError(f"attention must be True or False, got {attention!r}")
        dropout = check_float("dropout", dropout, lo=0.0, hi=1.0)
        groups = check_int("groups", groups, lo=1)
        widths = [base_channels * m for m in channel_mults]
        all_widths = sorted(set([base_channels] + widths))
        if any(w % groups for w in all_widths):
            raise ValueError(f"groups must divide every channel width {all_widths}, got groups={groups}")
        self.config = {"type": "unet", "in_channels": in_channels, "base_channels": base_channels,
                       "channel_mults": list(channel_mults), "num_res_blocks": num_res_blocks,
                       "attention": attention, "dropout": dropout, "groups": groups}
        self.in_channels, self.base_channels = in_channels, base_channels
        temb_dim = 4 * base_channels
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim))
        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)

        self.down, skips, ch = nn.ModuleList(), [], base_channels
        for w in widths[:-1]:
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(ch, w, temb_dim, dropout, groups))
                ch = w
                skips.append(ch)
            self.down.append(Downsample(ch))
        mid = [ResBlock(ch, widths[-1], temb_dim, dropout, groups)]
        ch = widths[-1]
        if attention:
            mid.append(SelfAttention(ch, groups))
        mid.append(ResBlock(ch, ch, temb_dim, dropout, groups))
        self.mid = nn.ModuleList(mid)
        self.up = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(Upsample(ch))
            for _ in range(num_res_blocks):
                self.up.append(ResBlock(ch + skips.pop(), w, temb_dim, dropout, groups))
                ch = w
        self.norm_out = nn.GroupNorm(groups, ch)
        self.conv_out = nn.Conv2d(ch, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predict ε with the shape of ``x`` [B, C, H, W]; ``t``: LongTensor [B] of timesteps."""
        check_tensor("x", x, floating=True)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape [B, {self.in_channels}, H, W] (in_channels={self.in_channels}), "
                             f"got {tuple(x.shape)}")
        _check_t(t, x.shape[0], x.device)
        temb = self.time_mlp(timestep_embedding(t, self.base_channels))
        h = self.conv_in(x)
        hs = []
        for layer in self.down:
            if isinstance(layer, ResBlock):
                h = layer(h, temb)
                hs.append(h)
            else:
                h = layer(h)
        for layer in self.mid:
            h = layer(h, temb)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, hs.pop()], dim=1), temb)
            else:
                h = layer(h, hs[-1].shape[-2:])
        return self.conv_out(F.silu(self.norm_out(h)))


# ----------------------------------------------------------------------------- 2-D MLP
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
        _check_t(t, x.shape[0], x.device)
        temb = self.time_mlp(timestep_embedding(t, self.emb_dim))
        h = self.inp(x)
        for layer in self.layers:
            h = h + layer(F.silu(h + temb))
        return self.out(F.silu(h))


# ----------------------------------------------------------------------------- configs
_TYPES = {"unet": UNet, "mlp": MLPDenoiser}


def build_model(config: dict) -> nn.Module:
    """Rebuild a model from its ``config`` (``{"type": "unet" | "mlp", **kwargs}``)."""
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict like model.config, got {type(config).__name__}")
    if "type" not in config:
        raise ValueError(f"config must have a 'type' key (one of {', '.join(map(repr, _TYPES))}), "
                         f"got keys {sorted(config)}")
    kind = check_choice("config['type']", config["type"], tuple(_TYPES))
    cls = _TYPES[kind]
    kwargs = {k: v for k, v in config.items() if k != "type"}
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for key in kwargs:
        if key not in allowed:
            raise ValueError(f"config key {key!r} is not an argument of {cls.__name__} "
                             f"(type {kind!r}); allowed keys: 'type', {', '.join(map(repr, allowed))}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:   # a bad value: say which config it came from
        raise ValueError(f"bad config for {cls.__name__} (type {kind!r}): {err}") from err


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
