"""Figures the notebooks share: image grids, schedules, 2-D point clouds and sampler paths,
error-vs-NFE plots. Matplotlib only; nothing here calls ``plt.show()``, so every helper
works under the Agg backend (CI) and inline in Jupyter.

Every helper takes an optional ``ax`` to draw into (otherwise it makes a new figure) and
returns the matplotlib ``Figure`` it drew on: ``fig.axes``, ``fig.axes[0].images`` and
``.lines`` are there to inspect. Images are in [-1, 1] (the range DDPM/DDIM work in) and are
shown as (x + 1)/2, clamped to [0, 1].

:func:`save_figure` writes a PNG to ``docs/figures/`` only when ``DDIM_EDU_SAVE_FIGURES=1``,
so running the notebooks (and CI) never writes files.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from .grids import make_grid
from ..validation import check_int, check_tensor

__all__ = ["grid_array", "image_grid", "show_row", "plot_schedules", "scatter2d", "trajectories2d",
           "loglog_slope", "loglog_errors", "save_figure", "saving_figures", "FIGURES_DIR"]

FIGURES_DIR = Path(__file__).resolve().parents[2] / "docs" / "figures"


# ----------------------------------------------------------------------------- inputs
def _as_tensor(name: str, value) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    check_tensor(name, value)
    return value.detach().to("cpu", torch.float64)


def _images(name: str, x) -> torch.Tensor:
    """[B, C, H, W] with C ∈ {1, 3}; a single image [C, H, W] becomes a batch of one."""
    x = _as_tensor(name, x)
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[1] not in (1, 3) or x.shape[0] == 0:
        raise ValueError(f"{name} must be images shaped [B, 1, H, W] or [B, 3, H, W] (or one image "
                         f"[C, H, W]) with values in [-1, 1], got shape {tuple(x.shape)}")
    return x


def _points(name: str, x, dims: int = 2) -> torch.Tensor:
    x = _as_tensor(name, x)
    if x.dim() != dims or x.shape[-1] != 2:
        want = "[N, 2]" if dims == 2 else "[S+1, B, 2]"
        raise ValueError(f"{name} must be 2-D points shaped {want}, got shape {tuple(x.shape)}")
    return x


def _axes(ax, **subplot_kw):
    if ax is None:
        fig, ax = plt.subplots(figsize=subplot_kw.pop("figsize", (4, 4)), **subplot_kw)
        return fig, ax
    if not isinstance(ax, plt.Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax.figure, ax


# ----------------------------------------------------------------------------- images
def grid_array(x, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile images [B, C, H, W] in [-1, 1] into one array in [0, 1]: [H', W'] (C = 1) or
    [H', W', 3] (C = 3), ``nrow`` images per row, ``padding`` pixels of ``pad_value`` between."""
    x = _images("x", x)
    nrow = check_int("nrow", nrow, lo=1)
    padding = check_int("padding", padding, lo=0)
    out = make_grid(((x + 1) / 2).clamp(0, 1), nrow=nrow, padding=padding, pad_value=pad_value).numpy()
    return out[0] if out.shape[0] == 1 else out.transpose(1, 2, 0)


def _draw_grid(ax, arr: np.ndarray, title: str | None) -> None:
    ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title)


def image_grid(x, nrow: int = 8, ax=None, title: str | None = None, padding: int = 2):
    """Show images [B, 1, H, W] or [B, 3, H, W] in [-1, 1] as one grid (−1 → black, 1 → white)."""
    arr = grid_array(x, nrow=nrow, padding=padding)
    fig, ax = _axes(ax, figsize=(min(arr.shape[1] / 30 + 0.5, 12), min(arr.shape[0] / 30 + 0.6, 12)))
    _draw_grid(ax, arr, title)
    return fig


def show_row(images, titles=None, nrow: int = 8, panel_size: float = 2.0, suptitle: str | None = None):
    """One panel per entry, side by side: each entry is an image [C, H, W] or a batch
    [B, C, H, W] (shown as a grid with ``nrow`` columns); ``titles``: one string per panel;
    ``panel_size``: the width of a panel in inches."""
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        images = list(images)
    if not isinstance(images, (list, tuple)) or not images:
        raise TypeError(f"images must be a non-empty list of tensors, got {type(images).__name__}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"titles must have one entry per image ({len(images)}), got {len(titles)}")
    arrays = [grid_array(_images(f"images[{i}]", img), nrow=nrow) for i, img in enumerate(images)]
    aspect = max(a.shape[0] / a.shape[1] for a in arrays)
    height = panel_size * aspect + 0.4 + (0.3 if suptitle else 0.0)
    fig, axes = plt.subplots(1, len(images), figsize=(panel_size * len(images), height), squeeze=False)
    for i, (arr, ax) in enumerate(zip(arrays, axes[0])):
        _draw_grid(ax, arr, None if titles is None else titles[i])
    if suptitle is not None:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- schedules
def plot_schedules(scheds: dict, ax=None):
    """ᾱ_t (left) and log SNR(t) = log(ᾱ_t/(1 − ᾱ_t)) (right) against t, one line per schedule.
    ``scheds``: {label: NoiseSchedule}; ``ax``: None or a pair of Axes."""
    from ..diffusion.schedule import NoiseSchedule

    if not isinstance(scheds, dict) or not scheds:
        raise TypeError(f"scheds must be a non-empty dict {{label: NoiseSchedule}}, got {type(scheds).__name__}")
    for label, s in scheds.items():
        if not isinstance(s, NoiseSchedule):
            raise TypeError(f"scheds[{label!r}] must be a NoiseSchedule, got {type(s).__name__}")
    if ax is None:
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    elif len(ax) != 2 or not all(isinstance(a, plt.Axes) for a in ax):
        raise ValueError(f"ax must be None or a pair of Axes (ᾱ, log-SNR), got {ax!r}")
    for label, s in scheds.items():
        t = np.arange(s.T)
        ax[0].plot(t, s.alpha_bar.numpy(), label=label)
        ax[1].plot(t, s.log_snr().numpy(), label=label)
    ax[0].set(xlabel="timestep t", ylabel="ᾱ_t", title="signal kept: ᾱ_t")
    ax[1].set(xlabel="timestep t", ylabel="log SNR(t)", title="log SNR = log ᾱ_t/(1 − ᾱ_t)")
    ax[1].axhline(0.0, color="gray", lw=0.8, ls=":")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend()
    fig = ax[0].figure
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- 2-D data
def _square(ax, lim, title) -> None:
    """Equal axes, a square view of half-width ``lim`` (None = auto) and an optional title."""
    ax.set_aspect("equal")
    if lim is not None:
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim))
    if title is not None:
        ax.set_title(title)


def scatter2d(points, ax=None, title: str | None = None, lim: float | None = 3.5, s: float = 3.0,
              alpha: float = 0.5, **kwargs):
    """A 2-D point cloud [N, 2] with equal axes (``lim``: half-width of the square view, None = auto).
    Extra keyword arguments go to ``ax.scatter`` (color, label, ...)."""
    p = _points("points", points)
    fig, ax = _axes(ax)
    ax.scatter(p[:, 0].numpy(), p[:, 1].numpy(), s=s, alpha=alpha, **kwargs)
    _square(ax, lim, title)
    return fig


def trajectories2d(xs, ax=None, title: str | None = None, lim: float | None = 3.5, color=None,
                   lw: float = 0.8, alpha: float = 0.7):
    """Sampler paths: ``xs`` [S+1, B, 2] (or a list of S+1 tensors [B, 2], e.g. ``Trajectory.xs``),
    one line per path (``color=None``: each path its own colour, in the same order on every
    call), start (x_T) as a hollow circle, end (x_0) as a filled dot."""
    if isinstance(xs, (list, tuple)):
        xs = torch.stack([_as_tensor(f"xs[{i}]", x) for i, x in enumerate(xs)])
    xs = _points("xs", xs, dims=3).numpy()
    fig, ax = _axes(ax)
    if color is None:
        ax.set_prop_cycle(None)
    ax.plot(xs[:, :, 0], xs[:, :, 1], color=color, lw=lw, alpha=alpha)
    ax.scatter(xs[0, :, 0], xs[0, :, 1], s=14, facecolors="none", edgecolors="gray", label="start x_T")
    ax.scatter(xs[-1, :, 0], xs[-1, :, 1], s=10, color="k", zorder=3, label="end x_0")
    _square(ax, lim, title)
    return fig


# ----------------------------------------------------------------------------- convergence
def loglog_slope(xs, ys) -> float:
    """Least-squares slope of log y against log x: the empirical order of convergence
    (error ∝ NFE^slope, so order p shows as slope −p)."""
    x, y = _as_tensor("xs", torch.as_tensor(xs)), _as_tensor("ys", torch.as_tensor(ys))
    if x.shape != y.shape or x.dim() != 1 or len(x) < 2:
        raise ValueError(f"xs and ys must be 1-D with the same length ≥ 2, got {tuple(x.shape)} and {tuple(y.shape)}")
    if not bool((x > 0).all() and (y > 0).all()):
        raise ValueError("xs and ys must be positive to take logarithms")
    lx, ly = x.log() - x.log().mean(), y.log() - y.log().mean()
    return float((lx * ly).sum() / (lx * lx).sum())


def loglog_errors(nfe_dict: dict, ax=None, ref_orders=(1, 2), title: str | None = "error against NFE"):
    """Error against the number of network calls on log-log axes, one line per solver
    (``nfe_dict``: {label: (nfes, errors)}; the legend shows each fitted slope), plus dashed
    reference lines ∝ NFE^(−p) for each p in ``ref_orders``."""
    if not isinstance(nfe_dict, dict) or not nfe_dict:
        raise TypeError(f"nfe_dict must be a non-empty dict {{label: (nfes, errors)}}, got {type(nfe_dict).__name__}")
    fig, ax = _axes(ax, figsize=(5.5, 4.2))
    firsts = []
    for label, pair in nfe_dict.items():
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"nfe_dict[{label!r}] must be a pair (nfes, errors), got {pair!r}")
        slope = loglog_slope(*pair)
        nfe, err = np.asarray(pair[0], dtype=float), np.asarray(pair[1], dtype=float)
        ax.loglog(nfe, err, "o-", label=f"{label} (slope {slope:.2f})")
        firsts.append((nfe[0], err[0], nfe[-1]))
    n0 = min(f[0] for f in firsts)
    e0 = min(f[1] for f in firsts)
    n1 = max(f[2] for f in firsts)
    grid = np.geomspace(n0, n1, 20)
    for p in ref_orders:
        ax.loglog(grid, 0.5 * e0 * (grid / n0) ** (-float(p)), "--", color="gray", lw=1, alpha=0.8)
        ax.annotate(f"NFE$^{{-{p:g}}}$", (grid[-1], 0.5 * e0 * (grid[-1] / n0) ** (-float(p))),
                    color="gray", fontsize=9, ha="right", va="bottom")
    ax.set(xlabel="network calls (NFE)", ylabel="error")
    if title is not None:
        ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    return fig


# ----------------------------------------------------------------------------- saving
def saving_figures() -> bool:
    """True when ``DDIM_EDU_SAVE_FIGURES`` is set to 1/true/yes/on."""
    return os.environ.get("DDIM_EDU_SAVE_FIGURES", "").strip().lower() in {"1", "true", "yes", "on"}


def save_figure(fig, name: str, dpi: int = 120) -> Path | None:
    """Write ``fig`` to ``docs/figures/<name>.png`` when ``DDIM_EDU_SAVE_FIGURES=1``; otherwise
    write nothing. Returns the path written, or None."""
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+(\.png)?", name):
        raise ValueError(f"name must be a file name of letters, digits, '_' or '-' (optionally ending "
                         f"in .png; figures are PNG only), got {name!r}")
    dpi = check_int("dpi", dpi, lo=10, hi=600)
    if not saving_figures():
        return None
    path = Path(FIGURES_DIR) / (name if name.endswith(".png") else name + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", format="png")
    return path
