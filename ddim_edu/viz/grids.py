"""PNG sample grids written during training, without matplotlib: image grids (through
``torchvision.utils.save_image`` when torchvision is installed, else a small built-in PNG
writer) and 2-D density images for the toy sets."""
from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import torch


def make_grid(x: torch.Tensor, nrow: int = 8, padding: int = 1, pad_value: float = 1.0) -> torch.Tensor:
    """Tile images [N, C, H, W] into one [C, H', W'] image, ``nrow`` per row."""
    n, c, h, w = x.shape
    nrow = max(1, min(nrow, n))
    rows = math.ceil(n / nrow)
    out = torch.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value, dtype=x.dtype)
    for i in range(n):
        r, k = divmod(i, nrow)
        y0, x0 = padding + r * (h + padding), padding + k * (w + padding)
        out[:, y0:y0 + h, x0:x0 + w] = x[i]
    return out


def write_png(img: torch.Tensor, path) -> None:
    """Write a [1, H, W] (grey) or [3, H, W] (RGB) image with values in [0, 1] as 8-bit PNG."""
    c, h, w = img.shape
    if c not in (1, 3):
        raise ValueError(f"img must have 1 or 3 channels, got shape {tuple(img.shape)}")
    px = (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    raw = b"".join(b"\x00" + px[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", w, h, 8, 0 if c == 1 else 2, 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
                           + chunk(b"IEND", b""))


def save_grid(x: torch.Tensor, path, nrow: int = 8, padding: int = 1, pad_value: float = 1.0) -> Path:
    """Save images [N, C, H, W] in [0, 1] as one PNG grid."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = x.detach().float().cpu().clamp(0, 1)
    try:
        from torchvision.utils import save_image
    except ImportError:   # the trainer must run with torch, safetensors, numpy and tqdm alone
        write_png(make_grid(x, nrow, padding, pad_value), path)
    else:
        save_image(x, path, nrow=nrow, padding=padding, pad_value=pad_value)
    return path


def density_image(points: torch.Tensor, lim: float, bins: int = 160) -> torch.Tensor:
    """2-D histogram of ``points`` [N, 2] on [−lim, lim]² as a [1, bins, bins] image in [0, 1],
    dark where dense, y pointing up."""
    h = torch.histogramdd(points[:, :2].double().cpu(), bins=[bins, bins], range=[-lim, lim, -lim, lim]).hist
    h = (h / h.max().clamp(min=1)).sqrt().T.flip(0)
    return (1.0 - h).float()[None]
