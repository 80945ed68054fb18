"""Diagrams of the method: the paper's Figure 1 (the graphical models of DDPM and DDIM) and the
three terms of one DDIM step, eq. (12), drawn as vectors in the plane.

- :func:`graphical_models`: left, DDPM — the generative chain p_θ(x_{t−1} | x_t) and the
  Markovian inference (forward) process q(x_t | x_{t−1}); right, DDIM — the same generative
  chain and the non-Markovian inference process q_σ(x_{t−1} | x_t, x₀) of eqs. (6)–(7), in which
  every step also depends on x₀ (and x_T is drawn from q(x_T | x₀)).
- :func:`step_terms`: x_{t'} = √ᾱ' x̂₀ + √(1 − ᾱ' − σ²) ε̂ + σ z (eq. 12) as three arrows laid
  head to tail from the origin, with x_t and x̂₀ marked. The terms are computed by the caller
  (the notebook writes eq. (12) out and checks it against ``de.ddim_step``); this only draws.

Matplotlib only; both return the figure they drew on.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import FancyArrowPatch

from .plotting import _as_tensor, _axes

__all__ = ["STEP_TERM_COLORS", "graphical_models", "step_terms"]

STEP_TERM_COLORS = {"x0": "tab:blue", "direction": "tab:orange", "noise": "tab:red"}


def _node(ax, xy, label, filled=False):
    circle = plt.Circle(xy, 0.32, facecolor="0.85" if filled else "white", edgecolor="k", lw=1.3, zorder=3)
    ax.add_patch(circle)
    ax.text(*xy, label, ha="center", va="center", fontsize=12, zorder=4)
    return circle


def _arrow(ax, a, b, rad=0.0, dashed=False, color="k"):
    """An arrow from node ``a`` to node ``b`` (circles), clipped at their edges."""
    ax.add_patch(FancyArrowPatch(a.center, b.center, patchA=a, patchB=b, connectionstyle=f"arc3,rad={rad}",
                                 arrowstyle="-|>", mutation_scale=16, lw=1.4, ls="--" if dashed else "-",
                                 color=color, shrinkA=1, shrinkB=1, zorder=2))


def graphical_models(T: int = 3, axes=None):
    """The paper's Figure 1 for a chain x_T, …, x_0 with ``T`` noisy variables (the paper draws
    T = 3). Solid black arrows: the generative model p_θ(x_{t−1} | x_t), the same in both panels.
    Dashed coloured arrows: the inference process — left, DDPM's Markovian q(x_t | x_{t−1});
    right, DDIM's q_σ(x_{t−1} | x_t, x₀), with an arrow from x₀ into every x_t. x₀ (observed) is
    shaded. ``axes``: None or a pair of Axes."""
    if not isinstance(T, int) or isinstance(T, bool) or not 1 <= T <= 6:
        raise ValueError(f"T must be an int in 1..6 (nodes to draw), got {T!r}")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(12, 3.2))
    else:
        if len(axes) != 2:
            raise ValueError(f"axes must be None or a pair of Axes, got {len(axes)}")
        fig = axes[0].figure
    names = [f"$x_{{{t}}}$" for t in range(T, -1, -1)]        # x_T … x_0, left to right
    pos = [(1.4 * k, 0.0) for k in range(T + 1)]
    for ax, markov in zip(axes, (True, False)):
        nodes = [_node(ax, xy, name, filled=(k == T)) for k, (xy, name) in enumerate(zip(pos, names))]
        for k in range(T):                                     # generative chain, x_t → x_{t−1}
            _arrow(ax, nodes[k], nodes[k + 1], rad=-0.45)
        if markov:                                             # q(x_t | x_{t−1}): x_{t−1} → x_t
            for k in range(T):
                _arrow(ax, nodes[k + 1], nodes[k], rad=-0.45, dashed=True, color="tab:blue")
            ax.set_title("DDPM: Markovian inference process", fontsize=11)
            note = "inference (dashed): $q(x_t \\mid x_{t-1})$, each step sees only its neighbour"
        else:                                                  # q_σ(x_{t−1} | x_t, x_0) and q(x_T | x_0)
            for k in range(T - 1):
                _arrow(ax, nodes[k], nodes[k + 1], rad=0.45, dashed=True, color="tab:orange")
            for k in range(T):
                _arrow(ax, nodes[T], nodes[k], rad=-(0.3 + 0.1 * (T - 1 - k)), dashed=True, color="tab:orange")
            ax.set_title("DDIM: non-Markovian inference process", fontsize=11)
            note = "inference (dashed): $q_\\sigma(x_{t-1} \\mid x_t, x_0)$, every step also sees $x_0$"
        ax.text(0.7 * T, 0.95, "generative (solid): $p_\\theta(x_{t-1} \\mid x_t)$",
                ha="center", fontsize=9)
        ax.text(0.7 * T, -1.5, note, ha="center", fontsize=9,
                color="tab:blue" if markov else "tab:orange")
        ax.set(xlim=(-0.5, 1.4 * T + 0.5), ylim=(-1.7, 1.15), aspect="equal")
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def _draw_terms(ax, points, background, legend: bool, marker_scale: float = 1.0) -> None:
    """The three arrows and the marked points of :func:`step_terms` on ``ax``."""
    if background is not None:
        ax.scatter(background[:, 0], background[:, 1], s=2, color="0.75", zorder=0, label="data" if legend else None)
    zero, a, b, c = points["origin"], points["a"], points["b"], points["c"]
    for start, end, key, label in ((zero, a, "x0", "$\\sqrt{\\bar\\alpha'}\\,\\hat x_0$"),
                                   (a, b, "direction", "$\\sqrt{1-\\bar\\alpha'-\\sigma^2}\\,\\hat\\varepsilon$"),
                                   (b, c, "noise", "$\\sigma z$")):
        if float((end - start).norm()) > 0:                  # a patch: clipped to its axes (and to the zoom)
            ax.add_patch(FancyArrowPatch(tuple(start.tolist()), tuple(end.tolist()), arrowstyle="-|>", mutation_scale=15,
                                         color=STEP_TERM_COLORS[key], lw=2, shrinkA=0, shrinkB=0, zorder=4))
        if legend:
            ax.plot([], [], color=STEP_TERM_COLORS[key], lw=2, label=label)       # legend entry
    ax.scatter(*points["x_t"].tolist(), marker="o", s=45 * marker_scale, color="k", zorder=5, label="$x_t$" if legend else None)
    ax.scatter(*c.tolist(), marker="*", s=130 * marker_scale, color="tab:green", edgecolor="k", zorder=6,
               label="$x_{t'}$" if legend else None)
    if "x0_hat" in points:
        ax.scatter(*points["x0_hat"].tolist(), marker="x", s=60 * marker_scale, color="tab:blue", zorder=5,
                   label="$\\hat x_0$" if legend else None)
    ax.scatter(0, 0, marker="+", s=60, color="k", zorder=5)


def step_terms(x_t, x0_term, direction, noise, ax=None, background=None, title: str | None = None,
               lim: float | None = None, x0_hat=None, inset: bool = True):
    """Draw one DDIM step (eq. 12) in 2-D: arrows origin → √ᾱ' x̂₀ (blue), then + √(1 − ᾱ' − σ²) ε̂
    (orange, "the direction pointing to x_t"), then + σ z (red), ending at x_{t'} (green star);
    x_t is marked (black dot). Each argument is one 2-D point or vector (a tensor of 2 numbers);
    ``background``: optional points [N, 2] drawn faintly (e.g. samples of the data); ``x0_hat``:
    optional point x̂₀, marked ×; ``lim``: the half-width of the view around the origin;
    ``inset``: also draw a zoom on the end of the step (x_t, the orange and red arrows), whose
    region is outlined in the main view. Returns the figure."""
    vecs = {}
    for name, v in (("x_t", x_t), ("x0_term", x0_term), ("direction", direction), ("noise", noise), ("x0_hat", x0_hat)):
        if v is None:
            continue
        v = _as_tensor(name, v).reshape(-1)
        if v.numel() != 2:
            raise ValueError(f"{name} must be one 2-D point or vector (2 numbers), got {v.numel()} numbers")
        vecs[name] = v
    bg = None if background is None else _as_tensor("background", background)
    a = vecs["x0_term"]
    points = {"origin": a * 0, "a": a, "b": a + vecs["direction"], "c": a + vecs["direction"] + vecs["noise"],
              "x_t": vecs["x_t"], **({"x0_hat": vecs["x0_hat"]} if "x0_hat" in vecs else {})}
    fig, ax = _axes(ax, figsize=(4.6, 4.6))
    _draw_terms(ax, points, bg, legend=True)
    if lim is not None:
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim))
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    right, up = float(points["c"][0]) > 0, float(points["c"][1]) > 0     # keep the step itself in view:
    ax.legend(fontsize=7, loc=("upper " if up else "lower ") + ("left" if right else "right"))
    if title is not None:
        ax.set_title(title)
    if inset:
        near = torch.stack([points[k] for k in ("a", "b", "c", "x_t")])
        centre, half = (near.max(0).values + near.min(0).values) / 2, float((near.max(0).values - near.min(0).values).max()) / 2
        half = max(1.3 * half, 0.05)
        sub = ax.inset_axes([0.02 if right else 0.6, 0.02 if up else 0.6, 0.38, 0.38])   # the corner opposite the step
        _draw_terms(sub, points, bg, legend=False, marker_scale=1.3)
        sub.set(xlim=(float(centre[0]) - half, float(centre[0]) + half), ylim=(float(centre[1]) - half, float(centre[1]) + half),
                xticks=[], yticks=[], aspect="equal")
        ax.indicate_inset_zoom(sub, edgecolor="0.4")
    return fig
