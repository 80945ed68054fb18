"""Image layouts whose panels line up: a table of image panels (one panel per (row, column) cell,
every panel the same number of tiles) and one image row per label, all rows the same length.

Both exist so that the same position means the same x_T (or the same original digit) in every
panel and row, even where a cell holds fewer images than the others (notebook 03 runs S = 1000
on fewer images; notebook 07 reconstructs fewer digits in fast mode): missing images are blank
tiles, drawn in the padding colour, and the panel's title says how many images it shows.

Images are [B, C, H, W] in [-1, 1], as everywhere in ``ddim_edu.viz``. Matplotlib only.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from ..validation import check_int
from .plotting import _axes, _draw_grid, _images, grid_array

__all__ = ["image_rows", "pad_tiles", "panel_table"]


def pad_tiles(x, n: int) -> torch.Tensor:
    """The first ``n`` images of ``x`` [B, C, H, W], followed by blank tiles (value 1, the colour of
    a grid's padding) when B < n: [n, C, H, W]."""
    x = _images("x", x)
    n = check_int("n", n, lo=1)
    if x.shape[0] >= n:
        return x[:n]
    return torch.cat([x, torch.ones(n - x.shape[0], *x.shape[1:], dtype=x.dtype)])


def panel_table(cells: dict, rows: list, cols: list, n: int, nrow: int, title=None,
                panel_size: float = 2.3, suptitle: str | None = None):
    """A table of image panels: panel (r, c) shows ``cells[r, c]`` ([B, C, H, W]) as a grid of
    ``nrow`` columns, padded with blank tiles to ``n`` images so that every panel has the same
    layout and tile i is the same input in every panel. A missing key is an empty panel.

    ``title(r, c, shown)`` makes each panel's title (``shown``: how many real images it holds);
    by default ``"r, c"``. Returns the figure; ``fig.axes`` are in row-major order."""
    n, nrow = check_int("n", n, lo=1), check_int("nrow", nrow, lo=1)
    if not rows or not cols:
        raise ValueError(f"rows and cols must be non-empty lists, got {len(rows)} rows and {len(cols)} cols")
    if title is not None and not callable(title):
        raise TypeError(f"title must be a function (r, c, shown) -> str or None, got {type(title).__name__}")
    grid_rows = -(-n // nrow)
    fig, axes = plt.subplots(len(rows), len(cols), squeeze=False,
                             figsize=(panel_size * len(cols), panel_size * len(rows) * (grid_rows / min(nrow, n)) + 0.35 * len(rows)))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            ax = axes[i, j]
            images = cells.get((r, c))
            if images is None:
                ax.set_axis_off()
                continue
            shown = min(_images(f"cells[{r!r}, {c!r}]", images).shape[0], n)
            arr = grid_array(pad_tiles(images, n), nrow=nrow)
            _draw_grid(ax, arr, title(r, c, shown) if title is not None else f"{r}, {c}")
    if suptitle is not None:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def image_rows(rows: dict, n: int | None = None, ax=None, title: str | None = None, padding: int = 2):
    """One row of images per entry of ``rows`` ({label: images [B, C, H, W]}), labelled on the
    left, every row ``n`` tiles long (default: the longest row): longer rows are cut to ``n``,
    shorter ones padded with blank tiles, so column k is the same input in every row."""
    if not isinstance(rows, dict) or not rows:
        raise TypeError(f"rows must be a non-empty dict {{label: images}}, got {type(rows).__name__}")
    batches = {label: _images(f"rows[{label!r}]", x) for label, x in rows.items()}
    shapes = {tuple(x.shape[1:]) for x in batches.values()}
    if len(shapes) != 1:
        raise ValueError(f"rows must all hold images of one shape [C, H, W], got {sorted(shapes)}")
    n = max(x.shape[0] for x in batches.values()) if n is None else check_int("n", n, lo=1)
    stacked = torch.cat([pad_tiles(x, n) for x in batches.values()])
    arr = grid_array(stacked, nrow=n, padding=padding)
    fig, ax = _axes(ax, figsize=(min(arr.shape[1] / 30 + 1.5, 12), min(arr.shape[0] / 30 + 0.6, 12)))
    _draw_grid(ax, arr, title)
    ax.set_axis_on()
    height = next(iter(shapes))[1] + padding
    ax.set_yticks([padding + height * k + (height - padding) / 2 for k in range(len(batches))], list(batches))
    ax.set_xticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    return fig
