"""Plotting helpers and widgets: right figure structure under Agg, correct image scaling,
clear errors, no files written unless asked, widgets that build and draw headless."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import ddim_edu as de  # noqa: E402
from ddim_edu.viz import plotting
from ddim_edu.viz import widgets  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_grid_array_maps_minus_one_one_to_zero_one():
    x = torch.tensor([-1.0, 0.0, 1.0, 3.0]).reshape(1, 1, 2, 2)     # 3.0 is out of range: clamped
    arr = plotting.grid_array(x, padding=0)
    assert arr.shape == (2, 2)
    np.testing.assert_allclose(arr, [[0.0, 0.5], [1.0, 1.0]])


def test_grid_array_layout_and_padding():
    x = -torch.ones(5, 1, 4, 3)                  # black images on a white (1.0) padding
    arr = plotting.grid_array(x, nrow=2, padding=1)
    assert arr.shape == (3 * (4 + 1) + 1, 2 * (3 + 1) + 1)
    assert arr[1:5, 1:4].max() == 0.0 and arr[0].min() == 1.0
    assert arr[-5:-1, -4:-1].min() == 1.0        # the 6th slot of the 3×2 grid stays empty
    rgb = plotting.grid_array(torch.zeros(3, 3, 4, 4), nrow=8)
    assert rgb.shape == (4 + 4, 3 * 6 + 2, 3) and np.isclose(rgb[3, 3], 0.5).all()


def test_image_grid_one_axes_one_image():
    x = torch.rand(10, 1, 28, 28) * 2 - 1
    fig = plotting.image_grid(x, nrow=5, title="digits")
    assert len(fig.axes) == 1 and len(fig.axes[0].images) == 1
    im = fig.axes[0].images[0]
    assert im.get_array().shape == (2 * 30 + 2, 5 * 30 + 2)
    assert im.get_clim() == (0.0, 1.0) and fig.axes[0].get_title() == "digits"
    fig2, ax = plt.subplots()
    assert plotting.image_grid(x[0], ax=ax) is fig2                     # one image [C, H, W]


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(2, 2, 8, 8), r"x must be images shaped \[B, 1, H, W\] or \[B, 3, H, W\].*got shape \(2, 2, 8, 8\)"),
    (torch.zeros(8, 8), r"x must be images.*got shape \(8, 8\)"),
])
def test_image_grid_rejects_bad_shapes(bad, match):
    with pytest.raises(ValueError, match=match):
        plotting.image_grid(bad)


def test_image_grid_rejects_non_tensor_and_bad_nrow():
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        plotting.image_grid([[0.0]])
    with pytest.raises(ValueError, match=r"nrow must be in \[1, inf\], got 0"):
        plotting.image_grid(torch.zeros(2, 1, 4, 4), nrow=0)


def test_show_row_panels_and_titles():
    imgs = [torch.zeros(1, 8, 8), torch.zeros(4, 1, 8, 8), torch.zeros(3, 8, 8)]
    fig = plotting.show_row(imgs, ["a", "b", "c"], suptitle="row")
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]
    assert all(len(ax.images) == 1 for ax in fig.axes)
    with pytest.raises(ValueError, match=r"titles must have one entry per image \(3\), got 2"):
        plotting.show_row(imgs, ["a", "b"])
    with pytest.raises(ValueError, match=r"images\[1\] must be images"):
        plotting.show_row([torch.zeros(1, 8, 8), torch.zeros(8, 8, 2, 2, 2)])


def test_plot_schedules_two_axes_one_line_per_schedule():
    scheds = {"linear": de.NoiseSchedule.linear(T=100), "cosine": de.NoiseSchedule.cosine(T=100)}
    fig = plotting.plot_schedules(scheds)
    assert len(fig.axes) == 2
    ab_lines = fig.axes[0].get_lines()
    assert len(ab_lines) == 2
    np.testing.assert_allclose(ab_lines[0].get_ydata(), scheds["linear"].alpha_bar.numpy())
    np.testing.assert_allclose(fig.axes[1].get_lines()[1].get_ydata(), scheds["cosine"].log_snr().numpy())
    with pytest.raises(TypeError, match=r"scheds\['x'\] must be a NoiseSchedule, got int"):
        plotting.plot_schedules({"x": 3})
    with pytest.raises(ValueError, match="ax must be None or a pair of Axes"):
        plotting.plot_schedules(scheds, ax=[plt.subplots()[1]])


def test_scatter2d():
    pts = torch.randn(50, 2)
    fig = plotting.scatter2d(pts, title="t = 0")
    ax = fig.axes[0]
    assert len(ax.collections) == 1 and ax.collections[0].get_offsets().shape == (50, 2)
    assert ax.get_xlim() == (-3.5, 3.5) and ax.get_title() == "t = 0"
    fig2, axes = plt.subplots(1, 2)
    assert plotting.scatter2d(pts.numpy(), ax=axes[1]) is fig2 and len(axes[1].collections) == 1
    with pytest.raises(ValueError, match=r"points must be 2-D points shaped \[N, 2\], got shape \(50, 3\)"):
        plotting.scatter2d(torch.randn(50, 3))
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes or None, got str"):
        plotting.scatter2d(pts, ax="left")


def test_trajectories2d_one_line_per_path():
    xs = torch.randn(11, 7, 2)
    fig = plotting.trajectories2d(xs)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 7
    np.testing.assert_allclose(ax.get_lines()[3].get_xydata(), xs[:, 3].numpy(), rtol=1e-6)
    assert len(ax.collections) == 2                            # start and end markers
    fig = plotting.trajectories2d(list(xs))                    # Trajectory.xs is a list
    assert len(fig.axes[0].get_lines()) == 7
    with pytest.raises(ValueError, match=r"xs must be 2-D points shaped \[S\+1, B, 2\]"):
        plotting.trajectories2d(torch.randn(11, 2))


def test_loglog_slope_recovers_power_law():
    n = np.array([10, 20, 40, 80])
    assert plotting.loglog_slope(n, 3.0 * n ** -2.0) == pytest.approx(-2.0)
    assert plotting.loglog_slope(n.tolist(), (0.5 / n).tolist()) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="must be positive"):
        plotting.loglog_slope([1, 2], [0.0, 1.0])
    with pytest.raises(ValueError, match="same length"):
        plotting.loglog_slope([1, 2, 3], [1.0, 2.0])


def test_loglog_errors_lines_and_reference_slopes():
    n = np.array([10, 20, 40, 80])
    data = {"DDIM": (n, 1 / n), "Heun": (2 * n - 1, 5 / n ** 2), "DPM": (n, 4 / n ** 2)}
    fig = plotting.loglog_errors(data, ref_orders=(1, 2))
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 3 + 2
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "DDIM (slope -1.00)" and labels[2] == "DPM (slope -2.00)"
    for line, p in zip(ax.get_lines()[3:], (1, 2)):               # the reference lines have slope −p
        x, y = line.get_xdata(), line.get_ydata()
        assert plotting.loglog_slope(x, y) == pytest.approx(-p)
    with pytest.raises(ValueError, match=r"nfe_dict\['x'\] must be a pair \(nfes, errors\)"):
        plotting.loglog_errors({"x": [1, 2, 3]})


def test_save_figure_writes_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(plotting, "FIGURES_DIR", tmp_path / "figures")
    fig = plotting.scatter2d(torch.randn(5, 2))
    monkeypatch.delenv("DDIM_EDU_SAVE_FIGURES", raising=False)
    assert plotting.save_figure(fig, "toy") is None
    monkeypatch.setenv("DDIM_EDU_SAVE_FIGURES", "0")
    assert plotting.save_figure(fig, "toy") is None
    assert not (tmp_path / "figures").exists()
    monkeypatch.setenv("DDIM_EDU_SAVE_FIGURES", "1")
    path = plotting.save_figure(fig, "toy")
    assert path == tmp_path / "figures" / "toy.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((tmp_path / "figures").iterdir()) == [path]


@pytest.mark.parametrize("name", ["../escape", "a/b", "fig.svg", ""])
def test_save_figure_rejects_bad_names(name):
    with pytest.raises(ValueError, match="name must be a file name"):
        plotting.save_figure(plt.figure(), name)


def test_save_figure_rejects_non_figure():
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure, got Axes"):
        plotting.save_figure(plt.subplots()[1], "x")


# ----------------------------------------------------------------------------- widgets
def test_slider_builds_headless_and_draws_once_now():
    calls = []

    def draw(t, eta):
        calls.append((t, eta))
        return plotting.scatter2d(torch.randn(4, 2) * eta)

    box = widgets.slider(draw, t=(0, 999, 10), eta=(0.0, 1.0, 0.1, 0.5))
    assert calls == [(0, 0.5)]                                      # drawn once at construction
    assert type(box.controls["t"]).__name__ == "IntSlider"
    assert type(box.controls["eta"]).__name__ == "FloatSlider"
    box.controls["t"].value = 500                                   # a slider move redraws
    assert calls[-1] == (500, 0.5)
    assert len(box.update().axes) == 1 and calls[-1] == (500, 0.5)


def test_slider_surfaces_errors_and_rejects_bad_ranges():
    def broken(t):
        raise RuntimeError("draw failed")

    with pytest.raises(RuntimeError, match="draw failed"):
        widgets.slider(broken, t=(0, 10))
    with pytest.raises(TypeError, match=r"t must be \(min, max\)"):
        widgets.slider(lambda t: None, t=[0, 10])
    with pytest.raises(ValueError, match="t needs min < max"):
        widgets.slider(lambda t: None, t=(5, 5))
    with pytest.raises(ValueError, match="at least one range"):
        widgets.slider(lambda: None)
    with pytest.raises(TypeError, match="fn must be callable"):
        widgets.slider(3, t=(0, 1))


def test_noise_slider_uses_q_sample():
    sched = de.NoiseSchedule.linear(T=100)
    x0 = torch.rand(1, 8, 8) * 2 - 1
    box = widgets.noise_slider(x0, sched, step=5)
    assert box.controls["t"].max == 99 and box.controls["t"].step == 5
    box.controls["t"].value = 40
    fig = box.update()
    assert [ax.get_title() for ax in fig.axes] == ["x_0", "x_t at t = 40", "ε"]
    # the middle panel is q_sample(x0, 40, ε) with the slider's fixed noise
    eps = de.env.randn((1, 1, 8, 8), de.env.generator(0))
    want = sched.q_sample(x0[None].double(), torch.tensor([40]), eps.double())
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(), plotting.grid_array(want), atol=1e-6)
    with pytest.raises(TypeError, match="sched must be a NoiseSchedule"):
        widgets.noise_slider(x0, "linear")
