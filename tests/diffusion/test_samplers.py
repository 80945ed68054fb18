"""DDIM / DDPM samplers and inversion against closed forms, an exact model and diffusers."""
import math

import pytest
import torch

import ddim_edu as de

GOLDEN_SIGMA2 = [((420, 400), 0.14771), ((980, 960), 0.32460), ((487, 486), 0.00979), ((999, 998), 0.02)]


class Recorder(torch.nn.Module):
    """A linear ε-model that remembers every timestep it was given."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, t):
        self.seen.append(t.clone())
        return 0.1 * x + 1e-4 * t.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))


# --------------------------------------------------------------------------- the formulas
@pytest.mark.parametrize("pair, value", GOLDEN_SIGMA2)
def test_eta_one_variance_golden_values(sched, pair, value):
    t, t_prev = pair
    sigma = de.ddim_sigma(sched.alpha_bar_at(t), sched.alpha_bar_at(t_prev), 1.0)
    assert sigma ** 2 == pytest.approx(value, abs=1e-5)  # golden values have 5 digits


def test_eta_one_on_consecutive_steps_is_ddpm_posterior_variance(sched):
    for t in range(1, sched.T):
        s2 = de.ddim_sigma(sched.alpha_bar_at(t), sched.alpha_bar_at(t - 1), 1.0) ** 2
        assert s2 == pytest.approx(sched.posterior_variance[t].item(), rel=1e-9)


def test_ddim_step_written_out(sched):
    gen = torch.Generator().manual_seed(0)
    x, eps, z = (torch.randn(3, 5, generator=gen, dtype=torch.float64) for _ in range(3))
    t, tp, eta = 500, 450, 0.5
    a, ap = sched.alpha_bar[t].item(), sched.alpha_bar[tp].item()
    x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
    sigma = eta * math.sqrt((1 - ap) / (1 - a) * (1 - a / ap))
    want = math.sqrt(ap) * x0 + math.sqrt(1 - ap - sigma ** 2) * eps + sigma * z
    got, x0_got = de.ddim_step(x, eps, t, tp, sched, eta, z)
    assert torch.allclose(got, want, atol=1e-12) and torch.allclose(x0_got, x0, atol=1e-12)


def test_last_step_returns_x0_pred(sched):
    """Pitfall 1: the last update goes to ᾱ = 1, so it returns x̂_0 exactly (for any η)."""
    gen = torch.Generator().manual_seed(0)
    x, eps = torch.randn(4, 2, generator=gen), torch.randn(4, 2, generator=gen)
    for eta in (0.0, 1.0):
        x_prev, x0 = de.ddim_step(x, eps, 20, -1, sched, eta)
        assert torch.equal(x_prev, x0)


def test_clipping_recomputes_eps(sched):
    x = torch.tensor([[3.0, -0.2]], dtype=torch.float64)
    eps = torch.tensor([[-1.0, 0.1]], dtype=torch.float64)
    t, tp = 100, 50
    a, ap = sched.alpha_bar_at(t), sched.alpha_bar_at(tp)
    x0c = ((x - math.sqrt(1 - a) * eps) / math.sqrt(a)).clamp(-1, 1)
    eps_c = (x - math.sqrt(a) * x0c) / math.sqrt(1 - a)
    got, x0 = de.ddim_step(x, eps, t, tp, sched, clip_x0=True)
    assert torch.allclose(x0, x0c) and torch.allclose(got, math.sqrt(ap) * x0c + math.sqrt(1 - ap) * eps_c)


def test_sigma_hat_variance(sched):
    """Appendix D.3: σ̂ = √(1 − ᾱ_t/ᾱ') with the ε coefficient of η = 1 kept."""
    gen = torch.Generator().manual_seed(0)
    x, eps, z = (torch.randn(2, 3, generator=gen, dtype=torch.float64) for _ in range(3))
    t, tp = 600, 500
    a, ap = sched.alpha_bar_at(t), sched.alpha_bar_at(tp)
    mean, _ = de.ddim_step(x, eps, t, tp, sched, 1.0, torch.zeros_like(z))
    got, _ = de.ddim_step(x, eps, t, tp, sched, 0.0, z, variance="sigma_hat")
    assert torch.allclose(got - mean, math.sqrt(1 - a / ap) * z, atol=1e-12)
    last, x0 = de.ddim_step(x, eps, t, -1, sched, 0.0, None, variance="sigma_hat")
    assert torch.equal(last, x0)


# --------------------------------------------------------------------------- the loops
def test_model_receives_the_original_timesteps(sched):
    model = Recorder()
    de.ddim_sample(model, torch.randn(3, 2), sched, steps=7, skip="quadratic", progress=False)
    seen = [int(t[0]) for t in model.seen]
    assert seen == de.make_timesteps(1000, 7, "quadratic").flip(0).tolist()
    assert all(t.dtype == torch.long and t.shape == (3,) for t in model.seen)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sampler_keeps_dtype_and_device(sched, mixture, device, dtype):
    model = mixture.eps_model(sched)
    x_T = de.env.randn((16, 2), de.env.generator(0), dtype=dtype, device=device)
    for info in de.SAMPLERS.values():
        out = info(model, x_T, sched, steps=5, generator=de.env.generator(1), progress=False)
        assert out.dtype == dtype and out.device.type == device.type and out.shape == x_T.shape, info.label


def test_eta_zero_is_deterministic_and_eta_positive_follows_the_generator(sched, mixture, device):
    model = mixture.eps_model(sched)
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(device)
    a = de.ddim_sample(model, x_T, sched, steps=20, generator=de.env.generator(1), progress=False)
    b = de.ddim_sample(model, x_T, sched, steps=20, generator=de.env.generator(2), progress=False)
    assert torch.equal(a, b)
    c = de.ddim_sample(model, x_T, sched, steps=20, eta=1.0, generator=de.env.generator(1), progress=False)
    d = de.ddim_sample(model, x_T, sched, steps=20, eta=1.0, generator=de.env.generator(1), progress=False)
    e = de.ddim_sample(model, x_T, sched, steps=20, eta=1.0, generator=de.env.generator(2), progress=False)
    assert torch.equal(c, d) and not torch.allclose(c, e)


def test_cpu_generator_gives_the_same_samples_on_every_device(sched, mixture, device):
    model = mixture.eps_model(sched)
    x_T = torch.randn(32, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = de.ddim_sample(model, x_T, sched, steps=20, eta=1.0, generator=de.env.generator(3), progress=False)
    got = de.ddim_sample(model, x_T.to(device), sched, steps=20, eta=1.0, generator=de.env.generator(3), progress=False)
    assert torch.allclose(got.cpu(), ref, atol=1e-8)


def test_ddpm_ancestral_equals_ddim_eta_one_over_all_steps(sched, mixture):
    """DDPM's eq. (11) with β̃ and DDIM's eq. (12) with η = 1, S = T are the same sampler."""
    model = mixture.eps_model(sched)
    x_T = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = de.ddpm_sample(model, x_T, sched, generator=de.env.generator(5), progress=False)
    b = de.ddim_sample(model, x_T, sched, steps=1000, eta=1.0, generator=de.env.generator(5), progress=False)
    assert torch.allclose(a, b, atol=1e-9)


def test_trajectory_and_callback(sched, mixture):
    model = mixture.eps_model(sched)
    x_T = torch.randn(8, 2, dtype=torch.float64)
    calls, traj = [], de.diffusion.Trajectory()

    def callback(info):
        calls.append((info["i"], info["t"], info["t_next"]))
        traj(info)
    x0 = de.ddim_sample(model, x_T, sched, steps=5, progress=False, callback=callback)
    xs, x0s = traj.stacked()
    assert xs.shape == (6, 8, 2) and x0s.shape == (5, 8, 2)
    assert traj.timesteps == [800, 600, 400, 200, 0, -1]
    assert torch.equal(xs[0], x_T) and torch.equal(xs[-1], x0) and torch.equal(x0s[-1], x0)
    assert calls == [(0, 800, 600), (1, 600, 400), (2, 400, 200), (3, 200, 0), (4, 0, -1)]


def test_inversion_callback_starts_at_clean_data(sched, mixture):
    traj = de.diffusion.Trajectory()
    x0 = mixture.sample(4, torch.Generator().manual_seed(0))
    z = de.ddim_invert(mixture.eps_model(sched), x0, sched, steps=4, callback=traj, progress=False)
    assert traj.timesteps == [-1, 0, 250, 500, 750]
    assert torch.equal(traj.xs[0], x0) and torch.equal(traj.xs[-1], z) and torch.equal(traj.x0_preds[0], x0)


def test_ddpm_on_a_sub_sequence_is_ddim_eta_one(sched, mixture):
    """DDIM eq. (16): ancestral sampling on τ is DDIM with η = 1 (σ̂: the paper's σ̂ row)."""
    model = mixture.eps_model(sched)
    x_T = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for var, kw in (("eta", {"eta": 1.0}), ("sigma_hat", {"variance": "sigma_hat"})):
        a = de.ddpm_sample(model, x_T, sched, steps=20, variance=var, generator=de.env.generator(4), progress=False)
        b = de.ddim_sample(model, x_T, sched, steps=20, generator=de.env.generator(4), progress=False, **kw)
        assert torch.equal(a, b)


# --------------------------------------------------------------------------- the exact model
def test_inversion_then_sampling_returns_x0_with_falling_error(sched, mixture):
    x0 = mixture.sample(256, torch.Generator().manual_seed(0))
    model = mixture.eps_model(sched)
    errors = []
    for S in (10, 20, 50, 100, 200):
        z = de.ddim_invert(model, x0, sched, steps=S, progress=False)
        x0_rec = de.ddim_sample(model, z, sched, steps=S, progress=False)
        errors.append(((x0_rec - x0) ** 2).mean().item())
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    # a first-order method: the squared error should fall by far more than 20x from S = 10 to 200
    assert errors[-1] < errors[0] / 20, errors


# --------------------------------------------------------------------------- against diffusers
@pytest.mark.parametrize("S", [10, 50, 100, 1000])
def test_ddim_equals_diffusers_ddim_scheduler(sched, mixture, S):
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02,
                                        beta_schedule="linear", clip_sample=False, set_alpha_to_one=True,
                                        timestep_spacing="leading", steps_offset=0)
    scheduler.alphas_cumprod = sched.alpha_bar.clone()          # both in float64: compare algorithms
    scheduler.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    scheduler.set_timesteps(S)
    model = mixture.eps_model(sched)
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(S), dtype=torch.float64)
    x = x_T
    for t in scheduler.timesteps:
        eps = model(x, torch.full((64,), int(t), dtype=torch.long))
        x = scheduler.step(eps, int(t), x, eta=0.0).prev_sample
    ours = de.ddim_sample(model, x_T, sched, steps=S, progress=False)
    assert scheduler.timesteps.flip(0).tolist() == de.make_timesteps(1000, S).tolist()
    assert torch.allclose(ours, x, atol=1e-10, rtol=0)


def test_eta_one_variance_equals_diffusers(sched):
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear",
                                        beta_start=1e-4, beta_end=0.02, set_alpha_to_one=True)
    scheduler.alphas_cumprod = sched.alpha_bar.clone()
    for (t, tp), _ in GOLDEN_SIGMA2:
        ours = de.ddim_sigma(sched.alpha_bar_at(t), sched.alpha_bar_at(tp), 1.0) ** 2
        assert ours == pytest.approx(float(scheduler._get_variance(t, tp)), rel=1e-9)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(steps=0), ValueError, r"steps must be in \[1, 1000\], got 0"),
    (dict(steps=1001), ValueError, r"steps must be in \[1, 1000\], got 1001"),
    (dict(eta=-0.1), ValueError, r"eta must be in \[0.0, 1.0\], got -0.1"),
    (dict(eta=1.5), ValueError, r"eta must be in \[0.0, 1.0\], got 1.5"),
    (dict(skip="log"), ValueError, "skip must be one of"),
    (dict(variance="big"), ValueError, "variance must be one of 'eta', 'sigma_hat'"),
    (dict(generator=123), TypeError, "generator must be a torch.Generator"),
    (dict(timesteps=[5, 3, 9]), ValueError, "timesteps must be strictly increasing"),
    (dict(timesteps=[0, 1000]), ValueError, r"timesteps must lie in \[0, 999\]"),
])
def test_ddim_sample_rejects_bad_arguments(sched, mixture, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        de.ddim_sample(mixture.eps_model(sched), torch.zeros(2, 2), sched, progress=False, **kwargs)


def test_model_with_wrong_output_shape(sched):
    with pytest.raises(ValueError, match=r"model must return ε with the shape of x_t \(2, 2\), got \(2, 3\)"):
        de.ddim_sample(lambda x, t: torch.zeros(2, 3), torch.zeros(2, 2), sched, steps=2, progress=False)


def test_model_returning_non_tensor(sched):
    with pytest.raises(TypeError, match="model must return a tensor"):
        de.ddpm_sample(lambda x, t: None, torch.zeros(2, 2), sched, progress=False)


def test_non_tensor_x_T(sched, mixture):
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        de.ddim_sample(mixture.eps_model(sched), [[0.0, 0.0]], sched)


def test_wrong_schedule_type(mixture, sched):
    with pytest.raises(TypeError, match="sched must be a NoiseSchedule"):
        de.ddim_sample(mixture.eps_model(sched), torch.zeros(2, 2), "linear")


def test_step_direction_checked(sched):
    with pytest.raises(ValueError, match=r"t_prev must be in \[-1, 99\], got 200"):
        de.ddim_step(torch.zeros(1, 2), torch.zeros(1, 2), 100, 200, sched)
    with pytest.raises(ValueError, match=r"t_from must be in \[-1, 99\], got 200"):
        de.ddim_invert_step(torch.zeros(1, 2), torch.zeros(1, 2), 200, 100, sched)


def test_noise_required_when_sigma_positive(sched):
    with pytest.raises(ValueError, match="noise is required when σ > 0"):
        de.ddim_step(torch.zeros(1, 2), torch.zeros(1, 2), 100, 50, sched, eta=1.0)


def test_ddpm_variance_choice(sched, mixture):
    with pytest.raises(ValueError, match="variance must be one of 'eta', 'sigma_hat', got 'beta_tilde'"):
        de.ddpm_sample(mixture.eps_model(sched), torch.zeros(2, 2), sched, variance="beta_tilde")


def test_noise_of_an_example_depends_on_the_batch_size(sched, mixture):
    """Documented in ddim_sample/ddpm_sample: one generator draws the whole batch's noise at each
    step, so with η > 0 example k's sample changes with the batch it is in (same seed, same x_T[k]);
    with η = 0 it depends on x_T[k] alone."""
    model = mixture.eps_model(sched)
    x_T = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def run(x, eta):
        return de.ddim_sample(model, x, sched, steps=10, eta=eta, generator=de.env.generator(1), progress=False)
    assert torch.allclose(run(x_T[:4], 0.0), run(x_T, 0.0)[:4], atol=1e-12, rtol=0)
    small, big = run(x_T[:4], 1.0), run(x_T, 1.0)[:4]
    assert not torch.allclose(small, big, atol=1e-3)
    assert torch.equal(small, run(x_T[:4], 1.0))          # reproducible at a fixed batch size


def test_a_trajectory_records_one_run(sched, mixture):
    """Reusing a Trajectory would splice two runs into one path: it refuses."""
    model, x = mixture.eps_model(sched), torch.randn(4, 2, dtype=torch.float64)
    traj = de.diffusion.Trajectory()
    de.ddim_sample(model, x, sched, steps=5, callback=traj, progress=False)
    assert len(traj.xs) == 6 and len(traj.x0_preds) == 5
    with pytest.raises(ValueError, match="fresh Trajectory"):
        de.ddim_sample(model, x, sched, steps=5, callback=traj, progress=False)
