r"""The time-conditioned UNet ε_θ(x_t, t) for 28×28 or 32×32 images (DDPM-style, smaller)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import check_float, check_int, check_tensor
from .embedding import check_t, timestep_embedding


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, + projected time embedding per channel, GroupNorm → SiLU →
    dropout → conv, plus a (1×1-projected) skip: the DDPM residual block. ``scale_shift``: the
    embedding gives a scale s and shift b per channel applied after the second GroupNorm,
    GN(h)·(1 + s) + b (ADM's adaptive GroupNorm); ``zero_init``: the last conv starts at zero."""

    def __init__(self, cin: int, cout: int, temb_dim: int, dropout: float, groups: int,
                 scale_shift: bool = False, zero_init: bool = False):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.scale_shift = scale_shift
        self.temb = nn.Linear(temb_dim, 2 * cout if scale_shift else cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if zero_init:                    # the block starts as its skip alone
            nn.init.zeros_(self.conv2.weight)
            nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        e = self.temb(F.silu(temb))[:, :, None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + e)
        h = self.conv2(self.dropout(F.silu(h)))
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
      [single-head self-attention if ``attention=True``], residual block (``mid_blocks``
      residual blocks in all, default 2: more of them add depth where a block is cheapest);
    * up: for each width but the last, in reverse, nearest upsampling to the skip's size
      + conv (7 → 14 → 28), then ``num_res_blocks`` residual blocks, each concatenating
      the output of its mirror block on the down path (the skip connection);
    * GroupNorm, SiLU, conv_out to ``in_channels``, zero-initialised (ε̂ = 0 at start).

    ``patch_size=p`` > 1 first folds each p×p block of pixels into p² channels
    (``pixel_unshuffle``: 1×28×28 → 4×14×14 for p = 2, an exact rearrangement, nothing is
    lost) and unfolds the output the same way, so the whole network runs at 1/p of the
    resolution: with widths 32/64/128 at 14/7/4 instead of 28/14/7 a training step is about
    3× cheaper on a CPU (benchmarks/speedrun.py), the compute moved off 28×28 where the
    elementwise work sits. H and W must be multiples of p.

    The timestep embedding (sinusoidal, ``base_channels`` wide → Linear, SiLU, Linear to
    4·base) is projected and added per channel inside EVERY residual block; with
    ``scale_shift=True`` it is projected to a scale s and a shift b per channel instead, applied
    as GN(h)·(1 + s) + b after the block's second GroupNorm (adaptive GroupNorm, Dhariwal &
    Nichol 2021, "Diffusion Models Beat GANs on Image Synthesis", §3; +6% parameters).
    ``zero_init=True`` zero-initialises every residual block's last conv, so each block starts
    as its skip connection (the same paper's initialisation). Both are recorded in
    ``config`` only when set (``patch_size`` and ``mid_blocks`` only away from 1 and 2), so configs
    saved before they existed stay the same. The defaults
    give 1.41M parameters (16/32/64: 0.36M), the sizes DESIGN.md measured.

    ``num_res_blocks`` may also be a list with one count per level above the lowest (e.g.
    ``[1, 2]`` with three widths: one block each way at 28×28, two at 14×14), to move compute
    between resolutions: a 3×3 conv costs H·W·C_in·C_out, so 32 channels at 28×28, 64 at 14×14
    and 128 at 7×7 cost the same per block, while the elementwise work (GroupNorm, SiLU) and
    memory traffic grow with H·W·C and sit mostly at 28×28.
    """

    def __init__(self, in_channels: int = 1, base_channels: int = 32, channel_mults=(1, 2, 4),
                 num_res_blocks: int = 2, attention: bool = False, dropout: float = 0.0, groups: int = 8,
                 patch_size: int = 1, scale_shift: bool = False, zero_init: bool = False, mid_blocks: int = 2):
        super().__init__()
        in_channels = check_int("in_channels", in_channels, lo=1)
        base_channels = check_int("base_channels", base_channels, lo=1)
        if isinstance(channel_mults, (str, bytes)) or not hasattr(channel_mults, "__len__") or len(channel_mults) == 0:
            raise ValueError(f"channel_mults must be a non-empty sequence of positive ints, got {channel_mults!r}")
        channel_mults = tuple(check_int(f"channel_mults[{i}]", m, lo=1) for i, m in enumerate(channel_mults))
        if isinstance(num_res_blocks, (list, tuple)):
            if len(num_res_blocks) != len(channel_mults) - 1:
                raise ValueError(f"num_res_blocks as a list needs one count per level above the lowest "
                                 f"({len(channel_mults) - 1}), got {list(num_res_blocks)!r}")
            blocks = [check_int(f"num_res_blocks[{i}]", b, lo=1) for i, b in enumerate(num_res_blocks)]
            num_res_blocks = list(blocks)
        else:
            num_res_blocks = check_int("num_res_blocks", num_res_blocks, lo=1)
            blocks = [num_res_blocks] * (len(channel_mults) - 1)
        for name, flag in (("attention", attention), ("scale_shift", scale_shift), ("zero_init", zero_init)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        mid_blocks = check_int("mid_blocks", mid_blocks, lo=1)
        dropout = check_float("dropout", dropout, lo=0.0, hi=1.0)
        groups = check_int("groups", groups, lo=1)
        self.patch_size = check_int("patch_size", patch_size, lo=1)
        widths = [base_channels * m for m in channel_mults]
        all_widths = sorted(set([base_channels] + widths))
        if any(w % groups for w in all_widths):
            raise ValueError(f"groups must divide every channel width {all_widths}, got groups={groups}")
        self.config = {"type": "unet", "in_channels": in_channels, "base_channels": base_channels,
                       "channel_mults": list(channel_mults), "num_res_blocks": num_res_blocks,
                       "attention": attention, "dropout": dropout, "groups": groups}
        # options added later are recorded only away from their defaults, so older configs stay byte-identical
        later = (("patch_size", self.patch_size, 1), ("scale_shift", scale_shift, False),
                 ("zero_init", zero_init, False), ("mid_blocks", mid_blocks, 2))
        self.config.update({name: value for name, value, default in later if value != default})
        block = dict(dropout=dropout, groups=groups, scale_shift=scale_shift, zero_init=zero_init)
        self.in_channels, self.base_channels = in_channels, base_channels
        temb_dim = 4 * base_channels
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim))
        self.conv_in = nn.Conv2d(in_channels * patch_size ** 2, base_channels, 3, padding=1)

        self.down, skips, ch = nn.ModuleList(), [], base_channels
        for w, nb in zip(widths[:-1], blocks):
            for _ in range(nb):
                self.down.append(ResBlock(ch, w, temb_dim, **block))
                ch = w
                skips.append(ch)
            self.down.append(Downsample(ch))
        mid = [ResBlock(ch, widths[-1], temb_dim, **block)]
        ch = widths[-1]
        if attention:
            mid.append(SelfAttention(ch, groups))
        mid += [ResBlock(ch, ch, temb_dim, **block) for _ in range(mid_blocks - 1)]
        self.mid = nn.ModuleList(mid)
        self.up = nn.ModuleList()
        for w, nb in zip(reversed(widths[:-1]), reversed(blocks)):
            self.up.append(Upsample(ch))
            for _ in range(nb):
                self.up.append(ResBlock(ch + skips.pop(), w, temb_dim, **block))
                ch = w
        self.norm_out = nn.GroupNorm(groups, ch)
        self.conv_out = nn.Conv2d(ch, in_channels * patch_size ** 2, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predict ε with the shape of ``x`` [B, C, H, W]; ``t``: LongTensor [B] of timesteps."""
        return self.body(x, self.embed(x, t))

    def embed(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Check ``x`` [B, C, H, W] and ``t`` [B]; the timestep embedding [B, 4·base] in the parameters' dtype
        (a conditional subclass adds its label embedding to it before :meth:`body`)."""
        check_tensor("x", x, floating=True)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape [B, {self.in_channels}, H, W] (in_channels={self.in_channels}), "
                             f"got {tuple(x.shape)}")
        check_t(t, x.shape[0], x.device)
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(f"x's height and width must be multiples of patch_size={self.patch_size}, "
                             f"got {tuple(x.shape[-2:])}")
        return self.time_mlp(timestep_embedding(t, self.base_channels).to(self.conv_in.weight.dtype))

    def body(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """The network proper: ε̂ [B, C, H, W] in ``x``'s dtype from ``x`` and the embedding ``temb`` [B, 4·base]."""
        dtype, p = self.conv_in.weight.dtype, self.patch_size     # run in the parameters' dtype, answer in x's
        h = self.conv_in(F.pixel_unshuffle(x.to(dtype), p) if p > 1 else x.to(dtype))
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
        out = self.conv_out(F.silu(self.norm_out(h)))
        return (F.pixel_shuffle(out, p) if p > 1 else out).to(x.dtype)
