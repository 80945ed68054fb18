"""The DDPM variational bound (ddim_edu.diffusion.likelihood) against Monte-Carlo estimates and closed forms."""
import math

import pytest
import torch

import ddim_edu as de
from ddim_edu.diffusion import likelihood as lk


def _mc_kl(m1, v1, m2, v2, n=200_000, seed=0):
    """Monte-Carlo KL(N(m1, v1) ‖ N(m2, v2)) summed over the last axis, with its standard error."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn((n,) + m1.shape, generator=g, dtype=torch.float64)
    x = m1 + v1.sqrt() * z
    logq = -0.5 * (torch.log(2 * math.pi * v1) + (x - m1) ** 2 / v1)
    logp = -0.5 * (torch.log(2 * math.pi * v2) + (x - m2) ** 2 / v2)
    d = (logq - logp).sum(-1)
    return d.mean(0), d.std(0) / math.sqrt(n)


def test_gaussian_kl_matches_monte_carlo_and_is_zero_for_equal():
    m1 = torch.tensor([[0.0, 0.5, -1.0]], dtype=torch.float64)
    v1 = torch.tensor([[1.0, 0.3, 2.0]], dtype=torch.float64)
    m2 = torch.tensor([[0.2, -0.1, -0.4]], dtype=torch.float64)
    v2 = torch.tensor([[0.8, 0.5, 1.0]], dtype=torch.float64)
    exact = lk.gaussian_kl(m1, v1, m2, v2).sum(-1)
    mc, se = _mc_kl(m1, v1, m2, v2)
    assert torch.all((exact - mc).abs() < 4 * se + 1e-4), (exact, mc, se)
    assert torch.allclose(lk.gaussian_kl(m1, v1, m1, v1), torch.zeros_like(m1), atol=1e-12)
    assert bool((lk.gaussian_kl(m1, v1, m2, v2) >= 0).all())


@pytest.mark.parametrize("variance", lk.VARIANCES)
def test_each_kl_term_matches_monte_carlo(sched, variance):
    torch.manual_seed(0)
    model = de.MLPDenoiser(dim=2, hidden=32, num_layers=2).eval()   # small, untrained
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, 2, generator=g)
    noise = torch.randn(3, 2, generator=g)
    for s in (1, 7, 300, 999):
        t = torch.full((3,), s, dtype=torch.long)
        got = lk.vlb_terms(model, x0, sched, variance, t=[s], noise=noise, progress=False)[0]
        # written out from the paper: DDPM eq. 7 (posterior) and eq. 11 (μ_θ from ε)
        ab, ab_prev, beta = sched.alpha_bar[s], sched.alpha_bar_prev[s], sched.betas[s]
        x_t = (ab.sqrt().float() * x0 + (1 - ab).sqrt().float() * noise)   # the model runs in float32
        eps = model(x_t, t).detach().double()
        x_t, x0d = x_t.double(), x0.double()
        mu_theta = (x_t - beta / (1 - ab).sqrt() * eps) / (1 - beta).sqrt()
        mu_q = ab_prev.sqrt() * beta / (1 - ab) * x0d + (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab) * x_t
        var_q = (1 - ab_prev) / (1 - ab) * beta
        var_p = var_q if variance == "beta_tilde" else beta
        mc, se = _mc_kl(mu_q, var_q.expand(3, 2), mu_theta, var_p.expand(3, 2), n=100_000, seed=s)
        assert torch.all((got - mc).abs() < 5 * se + 1e-6 * mc.abs()), (s, got, mc, se)


def test_prior_kl_closed_form_linear(sched):
    x0 = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(3, 4)
    ab = sched.alpha_bar[-1]
    want = (0.5 * (ab * x0 ** 2 + (1 - ab) - 1 - torch.log(1 - ab))).sum(1)
    assert torch.allclose(lk.prior_kl(x0, sched), want, rtol=1e-10)
    assert float(want.max()) < 1e-3   # ᾱ_T ≈ 4e-5: L_T is tiny


@pytest.mark.parametrize("mean", [-1.3, -0.99, 0.0, 0.37, 1.0, 1.5])
@pytest.mark.parametrize("var", [1e-5, 6e-5, 1e-2, 1.0])
def test_discretized_decoder_sums_to_one(mean, var):
    x = (torch.arange(256, dtype=torch.float64) / 127.5 - 1.0)
    logp = lk.discretized_gaussian_log_likelihood(x, torch.full_like(x, mean), var)
    assert torch.isfinite(logp).all() or var < 1e-4   # far bins may be -inf only for tiny variances
    assert abs(float(logp.exp().sum()) - 1.0) < 1e-9


def test_bound_above_entropy_of_gaussian_mixture(sched, mixture):
    """With the exact ε (Tweedie), E[L_vlb] ≥ E[−log p_θ] ≥ H(q). Measured (2,000 points, T = 1000):
    σ² = β is tight, gap ≈ 0.003 ± 0.001 nats/dim; σ² = β̃ gives a gap ≈ 0.56, nearly all from the
    first steps, where the true reverse variance is ≈ β but β̃_t ≈ β (t − 1)/t is too small: the
    extra ½(β/β̃ − 1 − log(β/β̃)) per step sums to ≈ 0.5 nats/dim over small t."""
    model = mixture.eps_model(sched)
    g = torch.Generator().manual_seed(0)
    x0 = mixture.sample(2000, generator=g)
    nll = -mixture.log_prob(x0) / 2                          # nats/dim, paired with each example
    gaps = {}
    for variance in lk.VARIANCES:
        r = lk.bits_per_dim(model, x0, sched, variance, "all", decoder="gaussian", generator=g,
                            batch_size=2000, progress=False)
        gap = r.per_example * math.log(2) - nll
        gaps[variance] = (float(gap.mean()), float(gap.std() / math.sqrt(len(gap))))
    m, se = gaps["beta"]
    assert -3 * se < m < 0.03 + 3 * se, gaps
    m, se = gaps["beta_tilde"]
    assert 0.3 < m < 0.7, gaps
    assert gaps["beta_tilde"][0] > gaps["beta"][0]


def test_stratified_estimate_agrees_with_full_sum(sched, mixture):
    model = mixture.eps_model(sched)
    g = torch.Generator().manual_seed(3)
    x0 = mixture.sample(1000, generator=g)
    full = lk.bits_per_dim(model, x0, sched, "beta", "all", decoder="gaussian", generator=g, batch_size=1000,
                           progress=False)
    strat = lk.bits_per_dim(model, x0, sched, "beta", 40, decoder="gaussian", generator=g, batch_size=1000,
                            progress=False)
    assert abs(full.total - strat.total) < 3 * math.hypot(full.stderr, strat.stderr), (full, strat)
    assert strat.terms.shape == (40, 1000) and float(strat.weights.sum()) == sched.T - 1
    t, terms = full.per_t()
    assert t.tolist() == list(range(1, sched.T)) and bool((terms >= 0).all())
    with pytest.raises(ValueError, match="per_t"):
        strat.per_t()


def test_bad_inputs(sched, mixture):
    model = mixture.eps_model(sched)
    x0 = mixture.sample(4)
    with pytest.raises(ValueError, match="variance"):
        lk.vlb_terms(model, x0, sched, "sigma")
    with pytest.raises(ValueError, match="decoder"):
        lk.vlb_terms(model, x0, sched, decoder="laplace")
    with pytest.raises(ValueError, match="t must be in"):
        lk.vlb_terms(model, x0, sched, t=[5, 1000])
    with pytest.raises(ValueError, match="t must be in"):
        lk.vlb_terms(model, x0, sched, t=-1)
    with pytest.raises(TypeError, match="floating"):
        lk.vlb_terms(model, x0.long(), sched, t=3)
    with pytest.raises(TypeError, match="sched"):
        lk.prior_kl(x0, "linear")
    with pytest.raises(TypeError, match="model"):
        lk.vlb_terms("model", x0, sched, t=3)
    with pytest.raises(ValueError, match="shape of x_t"):
        lk.vlb_terms(lambda x, t: x[:, :1], x0, sched, t=3)
    for bad in (0, sched.T, "some", 2.5):
        with pytest.raises((ValueError, TypeError), match="timesteps"):
            lk.bits_per_dim(model, x0, sched, timesteps=bad)
    with pytest.raises(ValueError, match="var1"):
        lk.gaussian_kl(0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="T >= 2"):
        lk.prior_kl(x0, de.NoiseSchedule.linear(T=1))


def test_discrete_decoder_refuses_wrong_image_range(sched):
    """The 8-bit decoder's bins assume images in [−1, 1]: [0, 1] and 0–255 digits are refused."""
    x, _ = de.data.load_mnist("test")
    x = x[:2]
    zero = lambda x_t, t: torch.zeros_like(x_t)   # noqa: E731
    for bad, msg in (((x + 1) / 2, r"x0 must be images in \[-1, 1\].*2 \* x - 1"),
                     ((x + 1) * 127.5, r"x0 must be images in \[-1, 1\].*x / 127.5 - 1")):
        with pytest.raises(ValueError, match=msg):
            lk.bits_per_dim(zero, bad, sched, timesteps=1, progress=False)
        with pytest.raises(ValueError, match=msg):
            lk.vlb_terms(zero, bad, sched, t=0, progress=False)
        with pytest.raises(ValueError, match=msg):
            lk.term_at(zero, bad, torch.zeros(2, dtype=torch.long), sched)
    r = lk.bits_per_dim(zero, x, sched, timesteps=1, batch_size=2, progress=False)   # [−1, 1] digits pass
    assert r.per_example.shape == (2,)
    # the Gaussian decoder is for continuous data, and t ≥ 1 terms do not use the decoder: no range check
    lk.bits_per_dim(zero, (x + 1) / 2, sched, timesteps=1, decoder="gaussian", progress=False)
    lk.vlb_terms(zero, (x + 1) / 2, sched, t=[5], progress=False)


def test_numpy_integer_timesteps(sched, mixture):
    np = pytest.importorskip("numpy")
    model = mixture.eps_model(sched)
    x0 = mixture.sample(4, generator=torch.Generator().manual_seed(0))
    got = lk.vlb_terms(model, x0, sched, t=np.int64(5), decoder="gaussian", progress=False)
    assert got.shape == (1, 4)
    r = lk.bits_per_dim(model, x0, sched, "beta", np.int64(3), decoder="gaussian", progress=False)
    assert r.terms.shape == (3, 4)


def test_bits_per_dim_script_names_the_training_loss():
    """scripts/bits_per_dim.py's report says which loss the model was trained on, from its config's args."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "scripts" / "bits_per_dim.py"
    spec = importlib.util.spec_from_file_location("_bits_per_dim", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.trained_on({}) == "L_simple"
    plain = script.trained_on({"loss_weighting": "min_snr", "min_snr_gamma": 5.0, "min_snr_floor": 0.0})
    assert plain.startswith("min-SNR-5 weights (") and "floor" not in plain
    floored = script.trained_on({"loss_weighting": "min_snr", "min_snr_gamma": 5.0, "min_snr_floor": 0.2})
    assert floored.startswith("min-SNR-5 weights with a floor of 0.2 (")
    assert script.trained_on({}, warm_started=True) == "L_simple in its last run"
