"""benchmarks/screen.py: the two screened training pairs against independent references (the exact ε* of a
mixture of point masses; every assignment of five draws), the Fourier features against their definition, Lion's
update against its rule written out, the Gaussian's ε*_N against Tweedie's formula and a linear solve, the
dispersive term against its pairwise kernel written out with torch.cdist, and each
variant end to end through speedrun.py (and kid_table.py, swap_steps.py) on a tiny budget."""
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
@pytest.mark.parametrize("variant", ["immiscible", "stf", "fourier", "lion", "gauss", "disperse"])
def test_screen_trains_the_preset_with_its_change_and_restores_speedrun(tmp_path, variant, monkeypatch):
    import speedrun
    import ddim_edu.train.trainer as trainer
    from ddim_edu.train import optim
    if variant == "lion":
        pytest.importorskip("lion_pytorch")
    before = (trainer.diffusion_loss, trainer.Trainer.__init__, speedrun.build, optim.make_adamw)
    calls = []
    for name in ("assign_noise", "stable_target", "make_lion", "with_gauss", "dispersive_term"):  # what training used
        real = getattr(screen, name)
        monkeypatch.setattr(screen, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    option = {"lion": ["--lion-lr", "3e-4"], "disperse": ["--disperse-weight", "0.1"]}.get(variant, [])
    rows = screen.main([variant, "--stf-reference", "8", *option, "--steps", "2", "--batch", "4", "--n", "4",
                        "--sample-steps", "2", "--threads", "1", "--out-dir", str(tmp_path / "res"),
                        "--runs", str(tmp_path / "runs")])
    assert [r["recipe"] for r in rows] == [screen.NAMES[variant]] and rows[0]["steps"] == 2
    lr = {"lr": 3e-4} if variant == "lion" else {}
    preset = speedrun.RECIPES[speedrun.SHIPPED_RECIPE][0]
    assert rows[0]["config"] == {**rows[0]["config"], **preset, "batch_size": 4, **lr}
    assert set(calls) == {"immiscible": {"assign_noise"}, "stf": {"stable_target"}, "fourier": set(),
                          "lion": {"make_lion"}, "gauss": {"with_gauss"}, "disperse": {"dispersive_term"}}[variant]
    assert len(calls) == {"fourier": 0, "lion": 1, "gauss": 1}.get(variant, 2)  # a call a step; one optimiser, net
    assert (trainer.diffusion_loss, trainer.Trainer.__init__, speedrun.build, optim.make_adamw) == before  # restored
    assert screen.NAMES[variant] not in speedrun.RECIPES
    if variant == "lion":                                       # another rate than the default is in the run's key
        assert (tmp_path / "runs" / "lowtlion_b4_h2_lr3e-04_steps").is_dir()
        assert screen.with_tag(["--tag", "avx2", "--n", "4"], "lr3e-04") == ["--tag", "avx2_lr3e-04", "--n", "4"]
        assert screen.with_tag(["--tag=avx2"], "lr3e-04") == ["--tag=avx2_lr3e-04"]
    if variant == "disperse":                                   # so is another weight than the default
        assert (tmp_path / "runs" / "lowtdisp_b4_h2_w1e-01_steps").is_dir() and "plus 0.1 x" in rows[0]["change"]
    with pytest.raises(SystemExit, match="leave out --recipes"):
        screen.main([variant, "--recipes", "lowtfloor05", "--steps", "1"])
    with pytest.raises(SystemExit, match="usage"):
        screen.main(["nope"])
    if variant in ("fourier", "gauss"):       # its folder loads with the network rebuilt, and kid_table scores it
        run = tmp_path / "runs" / f"{screen.NAMES[variant]}_b4_h2_steps"
        model = screen.load(run, "cpu")[0]
        if variant == "fourier":
            assert isinstance(model.conv_in, screen.FourierConv) and model.conv_in.in_channels == 4 * 7
        else:                                 # a plain UNet's weights; the Gaussian fitted again, not stored
            plain = de.train.checkpoints.load_model(run)[0]
            assert type(model) is screen.GaussianSkipUNet and model.state_dict().keys() == plain.state_dict().keys()
            x, t = torch.randn(2, 1, 28, 28), torch.tensor([3, 900])
            with torch.no_grad():
                torch.testing.assert_close(model(x, t), plain(x, t) + model.gaussian_eps(x, t))
            with pytest.raises(SystemExit, match="EMA weights only"):
                screen.load(run, "cpu", weights="raw")
            swap = screen.main(["swap_steps", "--checkpoint", str(run), "--with", "gaussian", "--switch-at",
                                "600", "--reverse", "--n", "4", "--steps", "2", "--threads", "1",
                                "--out", str(tmp_path / "sw")])
            assert swap["with"].startswith("ε*_N alone") and set(swap["swapped"]) == {
                "--with below 600", "--checkpoint below 600"}
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


def test_lion_lr_and_disperse_weight_must_be_positive_numbers_and_options_of_their_variant_only():
    for bad in (["0"], ["-1e-4"], ["nan"], ["inf"], ["fast"], []):
        with pytest.raises(SystemExit, match="--lion-lr must be a finite number > 0"):
            screen.main(["lion", "--steps", "1", "--lion-lr", *bad])
    with pytest.raises(SystemExit, match="an option of screen.py lion only"):
        screen.main(["stf", "--lion-lr", "1e-4", "--steps", "1"])
    for bad in (["0"], ["-0.5"], ["nan"], ["big"], []):
        with pytest.raises(SystemExit, match="--disperse-weight must be a finite number > 0"):
            screen.main(["disperse", "--steps", "1", "--disperse-weight", *bad])
    with pytest.raises(SystemExit, match="an option of screen.py disperse only"):
        screen.main(["lion", "--disperse-weight", "0.1", "--steps", "1"])


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


def test_dispersive_term_is_the_log_mean_of_its_pairwise_kernel():
    """The term written out with torch.cdist over unit-length rows: log[(1/B²) Σ_ij exp(−‖ẑ_i − ẑ_j‖²/τ)]; 0 for
    a batch of copies; log[(B + B(B − 1)e^{−2/τ})/B²] for orthogonal states; blind to each state's scale."""
    import math
    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 4, 3, 3, generator=g, dtype=torch.float64)
    zn = z.flatten(1) / z.flatten(1).norm(dim=1, keepdim=True)
    for tau in (0.5, 2.0):
        want = torch.exp(-torch.cdist(zn, zn).pow(2) / tau).mean().log()
        torch.testing.assert_close(screen.dispersive_term(z, tau).double(), want, rtol=1e-5, atol=1e-6)
    scaled = z * torch.tensor([1e-3, 1, 10, 1e3, 2, 5], dtype=torch.float64)[:, None, None, None]
    torch.testing.assert_close(screen.dispersive_term(scaled), screen.dispersive_term(z))
    assert abs(screen.dispersive_term(z[:1].expand(5, -1, -1, -1)).item()) < 1e-6
    want = math.log((5 + 20 * math.exp(-2 / 0.5)) / 25)
    assert screen.dispersive_term(torch.eye(5).to(torch.bfloat16), 0.5).item() == pytest.approx(want, abs=1e-3)
    plain = screen.dispersive_term(z.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):       # computed in float32 under an autocast
        torch.testing.assert_close(screen.dispersive_term(z.float()), plain)


def test_dispersive_loss_adds_the_term_of_the_middle_blocks_output():
    """With the same draws: the preset's loss plus λ·term of what the last middle block returned (caught here by
    the test's own hook); no hook left behind; gradients reach the blocks before the middle; a network without
    one middle block is refused."""
    model = _tiny_unet()
    sched = de.NoiseSchedule.linear(1000)
    x0 = torch.rand(4, 1, 8, 8) * 2 - 1
    seen = []
    handle = model.mid[-1].register_forward_hook(lambda mod, inp, out: seen.append(out.detach()))
    got = screen.dispersive_loss(0.3, 2.0)(model, x0, sched, torch.Generator().manual_seed(7), weighting="min_snr")
    handle.remove()
    base = de.train.loss.diffusion_loss(model, x0, sched, torch.Generator().manual_seed(7), weighting="min_snr")
    torch.testing.assert_close(got, base + 0.3 * screen.dispersive_term(seen[0], 2.0))
    assert not model.mid[-1]._forward_hooks
    weight = model.down[0].conv1.weight                     # a block before the middle: the term's gradient reaches it
    g_got = torch.autograd.grad(got, weight)[0]
    g_base = torch.autograd.grad(de.train.loss.diffusion_loss(model, x0, sched, torch.Generator().manual_seed(7),
                                                              weighting="min_snr"), weight)[0]
    assert (g_got - g_base).abs().max() > 1e-4 * g_base.abs().max()
    with pytest.raises(TypeError, match="one middle block"):
        screen.dispersive_loss()(torch.nn.Linear(2, 2), x0, sched)


def _tiny_unet():
    return de.nets.UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, groups=4)


def test_gaussian_eps_is_tweedies_for_data_with_those_moments():
    """Data whose own mean is μ and covariance exactly σ²I: gaussian_eps is the ε* of the one-component mixture
    N(μ, σ²I) (ddim_edu.diffusion.analytic, Tweedie's formula); with a full covariance it is
    √(1−ᾱ)(ᾱΣ + (1−ᾱ)I)⁻¹(x_t − √ᾱμ), Σ from torch.cov and a linear solve, not the eigendecomposition; where the
    data do not vary (a constant pixel) it is the ε that made x_t, (x_t − √ᾱμ)/√(1−ᾱ). Each row its own t."""
    sched = de.NoiseSchedule.linear(1000)
    g = torch.Generator().manual_seed(3)
    z = torch.randn(50, 4, generator=g, dtype=torch.float64)
    z = z - z.mean(0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(z.T))).T         # covariance exactly I
    mu = torch.tensor([0.5, -1.0, 0.2, 0.0], dtype=torch.float64)
    iso = (mu + 0.3 * z).view(50, 1, 2, 2)
    ts = torch.tensor([0, 40, 300, 999, 500])
    x_t, ab = torch.randn(5, 1, 2, 2, generator=g), sched.alpha_bar[ts]
    model = screen.with_gauss(_tiny_unet(), iso, sched)
    exact = GaussianMixture(mu[None], 0.3).eps(x_t.flatten(1).double(), ab)
    torch.testing.assert_close(model.gaussian_eps(x_t, ts).flatten(1).double(), exact, rtol=1e-4, atol=1e-5)

    mix = torch.randn(2, 2, generator=g, dtype=torch.float64)                 # correlated pixels
    full = torch.randn(60, 1, 2, 2, generator=g, dtype=torch.float64) @ mix
    full[:, 0, 1, 1] = -1.0                                                   # a pixel that never varies
    cov, mean = torch.cov(full.flatten(1).T), full.flatten(1).mean(0)
    y = x_t.flatten(1).double() - ab.sqrt()[:, None] * mean
    exact = torch.stack([(1 - a).sqrt() * torch.linalg.solve(a * cov + (1 - a) * torch.eye(4, dtype=torch.float64), row)
                         for a, row in zip(ab, y)])
    got = screen.with_gauss(_tiny_unet(), full, sched).gaussian_eps(x_t, ts).flatten(1).double()
    torch.testing.assert_close(got, exact, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got[:, 3], y[:, 3] / (1 - ab).sqrt(), rtol=1e-4, atol=1e-4)


def test_with_gauss_starts_at_the_gaussian_and_refuses_another_network():
    """The UNet's last conv starts at zero, so the network starts as ε*_N; its buffers stay out of the state dict."""
    sched = de.NoiseSchedule.linear(1000)
    data = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(4)) * 2 - 1
    keys = _tiny_unet().state_dict().keys()
    model = screen.with_gauss(_tiny_unet(), data, sched)
    assert model.state_dict().keys() == keys
    x, t = torch.randn(3, 1, 28, 28), torch.tensor([0, 500, 999])
    with torch.no_grad():
        torch.testing.assert_close(model(x, t), model.gaussian_eps(x, t))
    with pytest.raises(TypeError, match="plain UNet"):
        screen.with_gauss(model, data, sched)
    for dtype in (torch.bfloat16, torch.float16, torch.float64):   # computed in float32, returned in x's dtype
        got = model.gaussian_eps(x.to(dtype), t)
        want = model.gaussian_eps(x.to(dtype).float(), t)
        assert got.dtype == dtype and torch.equal(got, want.to(dtype))


def test_gausshi_weights_the_gaussian_by_snr_and_loads_with_its_weight():
    """gausshi's ε*_N is gauss's times g_t = 1/(1 + (SNR_t/0.1)²): 1/2 where SNR_t = 0.1, whole near x_T."""
    sched = de.NoiseSchedule.linear(1000)
    whole = screen.with_gauss(_tiny_unet(), screen.train_digits(), sched)     # what rebuilt() fits to
    snr = sched.alpha_bar / (1 - sched.alpha_bar)
    t = torch.tensor([int((snr - 0.1).abs().argmin()), 0, 999])
    x = torch.randn(3, 1, 28, 28)
    g = 1 / (1 + (snr[t] / 0.1) ** 2)
    assert abs(float(g[0]) - 0.5) < 0.05 and float(g[1]) < 1e-6 and float(g[2]) > 0.999
    for recipe in ("lowtgausshi", "lowtgauss"):
        model = screen.rebuilt(recipe, _tiny_unet(), sched)
        want = whole.gaussian_eps(x, t) * (g.float().view(3, 1, 1, 1) if recipe == "lowtgausshi" else 1)
        torch.testing.assert_close(model.gaussian_eps(x, t), want, rtol=1e-4, atol=1e-6)


def test_the_gaussian_alone_loads_as_a_model_whose_network_adds_nothing():
    model, sched, config = screen.load(screen.GAUSSIAN_ONLY, "cpu")
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([10, 800])
    with torch.no_grad():
        assert torch.equal(model(x, t), model.gaussian_eps(x, t)) and config["step"] == 0
    assert screen.shown(screen.GAUSSIAN_ONLY).startswith("ε*_N alone")
