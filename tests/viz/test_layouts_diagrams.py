"""Aligned image layouts (layouts.py) and the diagrams (diagrams.py): panels and rows line up
whatever the number of images per cell, the diagrams draw what they say, and bad input fails."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import ddim_edu as de
from ddim_edu.viz import diagrams, layouts


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_pad_tiles_keeps_first_n_and_pads_blank():
    x = -torch.ones(3, 1, 4, 4)
    out = layouts.pad_tiles(x, 5)
    assert out.shape == (5, 1, 4, 4) and torch.equal(out[:3], x.double()) and (out[3:] == 1).all()
    assert layouts.pad_tiles(torch.zeros(7, 1, 4, 4), 5).shape == (5, 1, 4, 4)
    with pytest.raises(ValueError, match="n"):
        layouts.pad_tiles(x, 0)


def test_panel_table_every_panel_has_the_same_layout():
    """The bug it fixes: a cell with fewer images (S = 1000 on 2 of 8 x_T) changed its panel's layout."""
    full, few = -torch.ones(8, 1, 6, 6), -torch.ones(2, 1, 6, 6)
    cells = {(eta, S): (few if S == 1000 else full) for eta in (0.0, 1.0) for S in (10, 1000)}
    titles = []
    fig = de.viz.panel_table(cells, [0.0, 1.0], [10, 1000], n=8, nrow=4,
                             title=lambda r, c, k: titles.append(k) or f"η = {r}, S = {c}, {k} shown")
    shapes = {ax.images[0].get_array().shape for ax in fig.axes}
    assert len(fig.axes) == 4 and len(shapes) == 1
    assert sorted(titles) == [2, 2, 8, 8]
    arr = fig.axes[1].images[0].get_array()                   # S = 1000: tiles 3..8 are blank (white)
    assert np.asarray(arr)[2:8, 2:8].max() == 0.0 and np.asarray(arr)[2:8, 18:24].min() == 1.0   # padding 2, tiles 6 wide


def test_panel_table_missing_cell_is_empty_and_errors():
    fig = de.viz.panel_table({("a", 1): torch.zeros(4, 1, 5, 5)}, ["a", "b"], [1], n=4, nrow=4)
    assert len(fig.axes[1].images) == 0
    with pytest.raises(ValueError, match="rows and cols"):
        de.viz.panel_table({}, [], [1], n=4, nrow=4)
    with pytest.raises(TypeError, match="title"):
        de.viz.panel_table({("a", 1): torch.zeros(4, 1, 5, 5)}, ["a"], [1], n=4, nrow=4, title="x")


def test_image_rows_align_columns_and_label_rows():
    """Notebook 07's bug: 6 originals over 4 reconstructions. Every row is n tiles long."""
    rows = {"original": torch.zeros(6, 1, 28, 28), "S = 10": torch.zeros(4, 1, 28, 28), "S = 20": torch.zeros(9, 1, 28, 28)}
    fig = de.viz.image_rows(rows, n=6)
    ax = fig.axes[0]
    arr = np.asarray(ax.images[0].get_array())
    assert arr.shape == (3 * 30 + 2, 6 * 30 + 2)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(rows)
    assert np.allclose(ax.get_yticks(), [2 + 14, 2 + 30 + 14, 2 + 60 + 14])
    assert arr[32:60, 4 * 30 + 2:4 * 30 + 30].min() == 1.0     # row 2, tile 5: blank
    assert de.viz.image_rows(rows).axes[0].images[0].get_array().shape[1] == 9 * 30 + 2
    with pytest.raises(ValueError, match="one shape"):
        de.viz.image_rows({"a": torch.zeros(2, 1, 28, 28), "b": torch.zeros(2, 1, 32, 32)})
    with pytest.raises(TypeError, match="non-empty dict"):
        de.viz.image_rows({})


def test_graphical_models_draws_both_processes():
    fig = de.viz.graphical_models(T=3)
    left, right = fig.axes
    arrows = [sum(isinstance(p, matplotlib.patches.FancyArrowPatch) for p in ax.patches) for ax in (left, right)]
    circles = [sum(isinstance(p, matplotlib.patches.Circle) for p in ax.patches) for ax in (left, right)]
    assert circles == [4, 4]
    assert arrows == [3 + 3, 3 + 2 + 3]          # generative chain + inference (DDIM: x_t → x_{t−1} and x_0 → every x_t)
    assert "non-Markovian" in right.get_title() and "Markovian" in left.get_title()
    with pytest.raises(ValueError, match="T must be"):
        de.viz.graphical_models(T=0)


def test_step_terms_arrows_add_up_to_the_step():
    x_t = torch.tensor([1.0, 0.5])
    terms = torch.tensor([0.8, 0.2]), torch.tensor([0.3, 0.3]), torch.tensor([-0.1, 0.2])
    fig = de.viz.step_terms(x_t, *terms, background=torch.randn(50, 2), title="one step", x0_hat=torch.tensor([0.9, 0.3]))
    ax = fig.axes[0]
    by_label = {c.get_label(): c for c in ax.collections}
    assert np.allclose(by_label["$x_{t'}$"].get_offsets()[0], (terms[0] + terms[1] + terms[2]).numpy())
    assert np.allclose(by_label["$x_t$"].get_offsets()[0], x_t.numpy())
    arrows = [p for p in ax.patches if isinstance(p, matplotlib.patches.FancyArrowPatch)]
    assert [a.get_edgecolor() for a in arrows] == [matplotlib.colors.to_rgba(c) for c in diagrams.STEP_TERM_COLORS.values()]
    labels = ax.get_legend_handles_labels()[1]
    assert any("hat x_0" in s for s in labels) and any("sigma z" in s for s in labels)
    assert ax.get_title() == "one step" and len(ax.child_axes) == 1       # the zoom
    no_noise = de.viz.step_terms(x_t, terms[0], terms[1], torch.zeros(2), inset=False)
    assert not no_noise.axes[0].child_axes and len(no_noise.axes[0].patches) == 2   # σ = 0: no red arrow
    with pytest.raises(ValueError, match="2-D"):
        de.viz.step_terms(torch.zeros(3), *terms)
