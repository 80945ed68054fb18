"""The schedule and the forward process, checked against closed forms and the Markov chain."""
import math

import pytest
import torch

import ddim_edu as de


def test_linear_schedule_matches_definition(sched):
    assert sched.T == 1000 and sched.betas.dtype == torch.float64 and sched.alpha_bar.dtype == torch.float64
    assert sched.betas[0].item() == pytest.approx(1e-4) and sched.betas[-1].item() == pytest.approx(0.02)
    # ᾱ_t = ∏ (1 − β_s), computed here with a plain Python loop
    prod, ab = 1.0, []
    for k in range(1000):
        prod *= 1 - (1e-4 + (0.02 - 1e-4) * k / 999)
        ab.append(prod)
    assert torch.allclose(sched.alpha_bar, torch.tensor(ab, dtype=torch.float64), rtol=1e-10, atol=0)
    assert sched.alpha_bar[-1].item() == pytest.approx(4.0358e-5, rel=1e-3)   # ᾱ_T is not 0
    assert sched.alpha_bar_at(-1) == 1.0


def test_cosine_schedule_follows_nichol_dhariwal():
    T, s = 1000, 0.008
    sched = de.NoiseSchedule.cosine(T=T)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    for t in [0, 10, 500, 900]:
        assert sched.alpha_bar[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert bool((sched.betas <= 0.999).all()) and bool((sched.alpha_bar[1:] < sched.alpha_bar[:-1]).all())


def test_snr_and_sigma(sched):
    t = torch.tensor([0, 250, 999])
    ab = sched.alpha_bar[t]
    assert torch.allclose(sched.snr(t), ab / (1 - ab))
    assert torch.allclose(sched.sigma(t), ((1 - ab) / ab).sqrt())
    assert bool((sched.log_snr()[1:] < sched.log_snr()[:-1]).all())


def test_config_round_trip(sched):
    again = de.NoiseSchedule.from_config(sched.to_config())
    assert torch.equal(again.alpha_bar, sched.alpha_bar)
    cos = de.NoiseSchedule.cosine(T=50)
    assert torch.equal(de.NoiseSchedule.from_config(cos.to_config()).betas, cos.betas)


@pytest.mark.parametrize("t", [0, 9, 199, 999])
def test_q_sample_matches_iterating_the_chain(sched, t):
    """x_t from the closed form (eq. 4) and from t+1 steps of q(x_s | x_{s−1}) have the same law."""
    n, gen = 100_000, torch.Generator().manual_seed(t)
    x0 = torch.full((n, 1), 0.7, dtype=torch.float64)
    x = x0
    for s in range(t + 1):
        x = sched.q_step(x, torch.full((n,), s), torch.randn(n, 1, generator=gen, dtype=torch.float64))
    closed = sched.q_sample(x0, torch.full((n,), t), torch.randn(n, 1, generator=gen, dtype=torch.float64))
    ab = sched.alpha_bar[t].item()
    se_mean = math.sqrt((1 - ab) / n)
    for sample in (x, closed):
        assert abs(sample.mean().item() - math.sqrt(ab) * 0.7) < 5 * se_mean + 1e-12
        assert sample.var().item() == pytest.approx(1 - ab, rel=0.03, abs=1e-6)


def test_posterior_matches_bayes_rule(sched):
    """q(x_{t−1} | x_t, x_0) ∝ q(x_t | x_{t−1}) q(x_{t−1} | x_0): product of two Gaussians."""
    gen = torch.Generator().manual_seed(0)
    t = torch.tensor([1, 50, 500, 999])
    x0 = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    xt = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    a, b = sched.alphas[t], sched.betas[t]
    ab_prev = sched.alpha_bar[t - 1]
    precision = a / b + 1 / (1 - ab_prev)
    mean = (a.sqrt()[:, None] * xt / b[:, None] + ab_prev.sqrt()[:, None] * x0 / (1 - ab_prev)[:, None]) / precision[:, None]
    assert torch.allclose(sched.posterior_variance[t], 1 / precision, rtol=1e-10)
    assert torch.allclose(sched.posterior_mean(x0, xt, t), mean, rtol=1e-10)
    assert sched.posterior_variance[0].item() == 0.0


def test_predict_x0_inverts_q_sample(sched):
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(5, 1, 4, 4, generator=gen, dtype=torch.float64)
    eps = torch.randn(5, 1, 4, 4, generator=gen, dtype=torch.float64)
    t = torch.tensor([0, 1, 100, 600, 999])
    xt = sched.q_sample(x0, t, eps)
    assert torch.allclose(sched.predict_x0(xt, t, eps), x0, atol=1e-9)
    assert torch.allclose(sched.predict_eps(xt, t, x0), eps, atol=1e-9)


def test_dtype_follows_the_data(sched):
    x = torch.zeros(2, 3)
    out = sched.q_sample(x, torch.tensor([1, 2]), torch.ones(2, 3))
    assert out.dtype == torch.float32
    assert sched.alpha_bar.dtype == torch.float64  # the schedule itself never leaves float64


@pytest.mark.parametrize("kwargs, message", [
    (dict(T=0), "T must be in"),
    (dict(beta_start=-0.1), "beta_start must be in"),
    (dict(beta_end=1.5), "beta_end must be in"),
    (dict(T=2.5), "T must be an int"),
])
def test_bad_schedule_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        de.NoiseSchedule.linear(**kwargs)


@pytest.mark.parametrize("t, message", [
    (torch.tensor([0, 1, 2]), r"t must have shape \[2\]"),
    (torch.tensor([0.0, 1.0]), "integer timesteps"),
    (torch.tensor([0, 1000]), r"t must be in \[0, 999\]"),
    (torch.tensor([-1, 3]), r"t must be in \[0, 999\]"),
    ([0, 1], "LongTensor"),
])
def test_bad_timesteps(sched, t, message):
    with pytest.raises((ValueError, TypeError), match=message):
        sched.q_sample(torch.zeros(2, 3), t, torch.zeros(2, 3))


def test_bad_noise_shape(sched):
    with pytest.raises(ValueError, match="noise must have the shape of x0"):
        sched.q_sample(torch.zeros(2, 3), torch.tensor([0, 1]), torch.zeros(2, 4))


def test_integer_data_rejected(sched):
    with pytest.raises(TypeError, match="x0 must be a floating-point tensor"):
        sched.q_sample(torch.zeros(2, 3, dtype=torch.long), torch.tensor([0, 1]), torch.zeros(2, 3))


def test_unknown_config_name():
    with pytest.raises(ValueError, match="config\\['name'\\] must be one of"):
        de.NoiseSchedule.from_config({"name": "sigmoid"})


UNIT_ROUNDOFF = {torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8, torch.float32: 2.0 ** -24}


@pytest.mark.parametrize("dtype", list(UNIT_ROUNDOFF))
def test_coefficients_are_combined_in_float64_then_cast(sched, dtype):
    """In float16 ᾱ_0 = 0.9999 rounds to 1, so a schedule cast before
    the arithmetic adds no noise at t = 0 and divides by zero in the posterior. Each method is a
    sum of two terms c·u; in a low dtype it must be as accurate as rounding allows: within a few
    unit roundoffs of the sum of |c·u| (what float64 gives on the same rounded inputs)."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(6, 4, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(6, 4, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 1, 3, 10, 500, 999])
    x_t = sched.q_sample(x0, t, eps)
    cases = {   # name: (function of (x0, x_t, ε), signs that make every term positive)
        "q_sample": (lambda a, b, e: sched.q_sample(a, t, e), (1, 1, 1)),
        "q_step": (lambda a, b, e: sched.q_step(a, t, e), (1, 1, 1)),
        "predict_x0": (lambda a, b, e: sched.predict_x0(b, t, e), (1, 1, -1)),
        "predict_eps": (lambda a, b, e: sched.predict_eps(b, t, a), (-1, 1, 1)),
        "posterior_mean": (lambda a, b, e: sched.posterior_mean(a, b, t), (1, 1, 1)),
    }
    u = UNIT_ROUNDOFF[dtype]
    for name, (fn, signs) in cases.items():
        low = [v.to(dtype) for v in (x0, x_t, eps)]
        got = fn(*low)
        assert got.dtype == dtype and torch.isfinite(got).all(), name
        want = fn(*[v.double() for v in low])
        size = fn(*[s * v.double().abs() for s, v in zip(signs, low)])
        assert ((got.double() - want).abs() <= 4 * u * size + 1e-12).all(), name


def test_half_precision_noise_at_t0(sched):
    """The reproduction from the issue: 0.0100 everywhere, not 0."""
    out = sched.q_sample(torch.zeros(1, 4).half(), torch.zeros(1, dtype=torch.long), torch.ones(1, 4).half())
    assert torch.allclose(out.double(), torch.full((1, 4), (1 - sched.alpha_bar[0].item()) ** 0.5, dtype=torch.float64),
                          rtol=1e-3)
