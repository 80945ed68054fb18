"""benchmarks/screen.py: the two screened training pairs against independent references (the exact ε* of a
mixture of point masses; every assignment of five draws), the Fourier features against their definition, Lion's
update against its rule written out, and each variant end to end through speedrun.py (and kid_table.py) on a tiny
budget."""
import itertools
import sys
from pathlib import Path

import pytest
import torch

import ddim_edu as de
from ddim_edu.diffusion.analytic import GaussianMixture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
screen = pytest.importorskip("screen")


@pytest.mark.parametrize("t", [0, 50, 300, 700, 999])
def test_stable_target_with_the_whole_set_is_the_exact_optimum(t):
    """Reference = every point of the data set: ε̄ is E[ε | x_t] of that set, the ε* of a mixture of (near) point
    masses at its points (Tweedie's formula in ddim_edu.diffusion.analytic, written independently)."""
    sched = de.NoiseSchedule.linear(1000)
    g = torch.Generator().manual_seed(0)
    points = torch.randn(6, 5, generator=g, dtype=torch.float64) * 0.3      # a data set of six 5-d points
    x_t = torch.randn(4, 5, generator=g, dtype=torch.float64)
    ts = torch.full((4,), t)
    exact = GaussianMixture(points, 1e-7).eps(x_t, sched.alpha_bar.to(torch.float64)[ts])
    got = screen.stable_target(x_t, ts, sched, points)
    assert got.dtype == torch.float64 and got.shape == x_t.shape
    torch.testing.assert_close(got, exact, rtol=1e-6, atol=1e-8)


def test_stable_target_of_a_lone_image_is_the_noise_that_made_it():
    sched = de.NoiseSchedule.linear(1000)
    g = torch.Generator().manual_seed(1)
    x0, noise, t = torch.rand(3, 1, 4, 4, generator=g) * 2 - 1, torch.randn(3, 1, 4, 4, generator=g), torch.tensor([0, 500, 999])
    x_t = sched.q_sample(x0, t, noise)
    for i in range(3):
        torch.testing.assert_close(screen.stable_target(x_t[i:i + 1], t[i:i + 1], sched, x0[i:i + 1]), noise[i:i + 1],
                                   rtol=1e-4, atol=1e-4)


def test_assign_noise_finds_the_cheapest_of_all_pairings():
    g = torch.Generator().manual_seed(2)
    x0, noise = torch.randn(5, 1, 3, 3, generator=g), torch.randn(5, 1, 3, 3, generator=g)
    got = screen.assign_noise(x0, noise)

    def cost(n):
        return float((x0 - n).pow(2).sum())
    best = min(cost(noise[list(p)]) for p in itertools.permutations(range(5)))
    assert cost(got) == pytest.approx(best) and cost(got) <= cost(noise)
    assert sorted(got.flatten().tolist()) == sorted(noise.flatten().tolist())        # the same draws, reordered


@pytest.mark.skipif("mnist" not in de.available_pretrained(), reason="shipped MNIST weights missing")
@pytest.mark.parametrize("variant", ["immiscible", "stf", "fourier", "lion"])
def test_screen_trains_the_preset_with_its_change_and_restores_speedrun(tmp_path, variant, monkeypatch):
    import speedrun
    import ddim_edu.train.trainer as trainer
    from ddim_edu.train import optim
    if variant == "lion":
        pytest.importorskip("lion_pytorch")
    before = (trainer.diffusion_loss, trainer.Trainer.__init__, speedrun.build, optim.make_adamw)
    calls = []
    for name in ("assign_noise", "stable_target", "make_lion"):    # the change is what the training run used
        real = getattr(screen, name)
        monkeypatch.setattr(screen, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    lion_lr = ["--lion-lr", "3e-4"] if variant == "lion" else []
    rows = screen.main([variant, "--stf-reference", "8", *lion_lr, "--steps", "2", "--batch", "4", "--n", "4",
                        "--sample-steps", "2", "--threads", "1", "--out-dir", str(tmp_path / "res"),
                        "--runs", str(tmp_path / "runs")])
    assert [r["recipe"] for r in rows] == [screen.NAMES[variant]] and rows[0]["steps"] == 2
    lr = {"lr": 3e-4} if variant == "lion" else {}
    preset = speedrun.RECIPES[speedrun.SHIPPED_RECIPE][0]
    assert rows[0]["config"] == {**rows[0]["config"], **preset, "batch_size": 4, **lr}
    assert set(calls) == {"immiscible": {"assign_noise"}, "stf": {"stable_target"}, "fourier": set(),
                          "lion": {"make_lion"}}[variant]
    assert len(calls) == {"fourier": 0, "lion": 1}.get(variant, 2)     # one call per training step; one optimiser
    assert (trainer.diffusion_loss, trainer.Trainer.__init__, speedrun.build, optim.make_adamw) == before  # restored
    assert screen.NAMES[variant] not in speedrun.RECIPES
    if variant == "lion":                                       # another rate than the default is in the run's key
        assert (tmp_path / "runs" / "lowtlion_b4_h2_lr3e-04_steps").is_dir()
        assert screen.with_tag(["--tag", "avx2", "--n", "4"], "lr3e-04") == ["--tag", "avx2_lr3e-04", "--n", "4"]
        assert screen.with_tag(["--tag=avx2"], "lr3e-04") == ["--tag=avx2_lr3e-04"]
    with pytest.raises(SystemExit, match="leave out --recipes"):
        screen.main([variant, "--recipes", "lowtfloor05", "--steps", "1"])
    with pytest.raises(SystemExit, match="usage"):
        screen.main(["nope"])
    if variant == "fourier":                  # its folder loads with the first conv rebuilt, and kid_table scores it
        run = tmp_path / "runs" / "lowtfourier_b4_h2_steps"
        model = screen.load(run, "cpu")[0]
        assert isinstance(model.conv_in, screen.FourierConv) and model.conv_in.in_channels == 4 * 7
        screen.main(["kid", "--checkpoint", str(run), "--n", "4", "--steps", "2", "--etas", "0", "--threads", "1",
                     "--out", str(tmp_path / "kid")])
        assert (tmp_path / "kid.json").exists()


def test_lion_steps_by_the_sign_of_its_interpolated_momentum():
    """Thirty steps of make_lion's optimiser against Lion's update written out (Chen et al. 2023, Algorithm 2):
    c = β1·m + (1 − β1)·g, θ ← θ − lr·(sign(c) + λ·θ), m ← β2·m + (1 − β2)·g."""
    pytest.importorskip("lion_pytorch")
    model = torch.nn.Linear(3, 2)
    theta = [p.detach().clone() for p in model.parameters()]
    m = [torch.zeros_like(p) for p in theta]
    opt = screen.make_lion(model, {"lr": 0.01, "weight_decay": 0.1}, "cpu")
    g = torch.Generator().manual_seed(3)
    for _ in range(30):
        grads = [torch.randn(p.shape, generator=g) for p in theta]
        for p, gr in zip(model.parameters(), grads):
            p.grad = gr.clone()
        opt.step()
        for i, gr in enumerate(grads):
            c = 0.9 * m[i] + 0.1 * gr
            theta[i] = theta[i] * (1 - 0.01 * 0.1) - 0.01 * torch.sign(c)
            m[i] = 0.99 * m[i] + 0.01 * gr
    for p, want in zip(model.parameters(), theta):
        torch.testing.assert_close(p.detach(), want)


def test_lion_lr_must_be_a_positive_number_and_an_option_of_lion_only():
    for bad in (["0"], ["-1e-4"], ["nan"], ["inf"], ["fast"], []):
        with pytest.raises(SystemExit, match="--lion-lr must be a finite number > 0"):
            screen.main(["lion", "--steps", "1", "--lion-lr", *bad])
    with pytest.raises(SystemExit, match="an option of screen.py lion only"):
        screen.main(["stf", "--lion-lr", "1e-4", "--steps", "1"])


def test_fourier_conv_sees_the_sines_and_cosines_of_its_input():
    """FourierConv = a plain conv of [x, sin(2^k π x), cos(2^k π x)], written out by hand here."""
    import math
    conv = screen.FourierConv(torch.nn.Conv2d(2, 3, 3, padding=1))
    x = torch.rand(2, 2, 5, 5) * 2 - 1
    feats = [x] + [torch.sin(2 ** k * math.pi * x) for k in screen.FOURIER_KS] \
        + [torch.cos(2 ** k * math.pi * x) for k in screen.FOURIER_KS]
    # the channel order FourierConv uses: x's channels, then for each k its sines, then for each k its cosines
    plain = torch.nn.functional.conv2d(torch.cat(feats, 1), conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(conv(x), plain)
    assert conv.in_channels == 2 * 7 and "freqs" not in conv.state_dict()
