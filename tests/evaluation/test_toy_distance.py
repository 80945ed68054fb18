"""The toy distance (ddim_edu.evaluation.toy_distance) against independent references: a direct
double loop with Monte-Carlo expectations, the null (exact samples score 0 within their error)
and the direction of known perturbations."""
import math

import pytest
import torch

import ddim_edu as de
from ddim_edu.diffusion.analytic import GaussianMixture
from ddim_edu.evaluation.toy_distance import mixture_mmd, sampler_grid_distances

MIX = GaussianMixture.ring(8, 1.0, 0.1)


def _direct(x, y_big, ell):
    """MMD² by brute force: U-statistic over the samples by a Python double loop, the mixture's
    expectations by Monte Carlo over many exact draws y_big (independent of the closed forms)."""
    k = lambda a, b: math.exp(-float(((a - b) ** 2).sum()) / (2 * ell ** 2))
    n = x.shape[0]
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = torch.exp(-torch.cdist(x, y_big).pow(2) / (2 * ell ** 2)).mean()
    half = y_big.shape[0] // 2
    kyy = torch.exp(-torch.cdist(y_big[:half], y_big[half:]).pow(2) / (2 * ell ** 2)).mean()
    return xx - 2 * float(kxy) + float(kyy)


@pytest.mark.parametrize("ell", [0.1, 0.4])
def test_matches_direct_double_loop_and_monte_carlo(ell):
    g = torch.Generator().manual_seed(0)
    x = MIX.sample(40, g) * 1.3 + 0.05           # a perturbed set: clearly nonzero distance
    y_big = MIX.sample(40_000, g)
    est = mixture_mmd(x, MIX, ell)
    assert est.value == pytest.approx(_direct(x, y_big, ell), abs=3e-3)
    assert est.value > 0 and est.n == 40


def test_exact_samples_score_zero_within_error():
    zs = []
    for seed in range(20):
        est = mixture_mmd(MIX.sample(400, torch.Generator().manual_seed(seed)), MIX, 0.1)
        zs.append(est.value / est.stderr)
        assert abs(zs[-1]) < 4
    assert abs(sum(zs) / len(zs)) < 3 / math.sqrt(len(zs)) * 1.5      # mean of the z's ≈ 0: unbiased


def test_wider_and_shifted_samples_are_farther():
    g = torch.Generator().manual_seed(1)
    exact = mixture_mmd(MIX.sample(1000, g), MIX, 0.1)
    wide = mixture_mmd(GaussianMixture.ring(8, 1.0, 0.15).sample(1000, g), MIX, 0.1)
    wider = mixture_mmd(GaussianMixture.ring(8, 1.0, 0.25).sample(1000, g), MIX, 0.1)
    assert wide.value - exact.value > 5 * math.hypot(wide.stderr, exact.stderr)
    assert wider.value > wide.value


def test_standard_error_matches_spread_over_draws():
    wide = GaussianMixture.ring(8, 1.0, 0.15)
    ests = [mixture_mmd(wide.sample(300, torch.Generator().manual_seed(s)), MIX, 0.1) for s in range(30)]
    spread = torch.tensor([e.value for e in ests]).std().item()
    mean_se = sum(e.stderr for e in ests) / len(ests)
    assert 0.6 < mean_se / spread < 1.6


def test_grid_cells_and_exact_eps_at_many_steps():
    sched = de.NoiseSchedule.linear(T=1000)
    dist, xs = sampler_grid_distances(MIX, sched, [0.0, 1.0], [5, 200], n=300,
                                      generator=torch.Generator().manual_seed(0), return_samples=True)
    assert set(dist) == {(0.0, 5), (0.0, 200), (1.0, 5), (1.0, 200)}
    assert xs[0.0, 5].shape == (300, 2) and xs[0.0, 5].dtype == torch.float64
    for eta in (0.0, 1.0):      # 5 steps are far off; 200 steps with the exact ε are close to the mixture
        assert dist[eta, 5].value > dist[eta, 200].value + 5 * dist[eta, 5].stderr
        assert abs(dist[eta, 200].value) < 5 * dist[eta, 200].stderr + 1e-3


def test_bad_input():
    with pytest.raises(ValueError, match="bandwidth"):
        mixture_mmd(MIX.sample(10), MIX, 0.0)
    with pytest.raises(ValueError, match="x must have shape"):
        mixture_mmd(torch.zeros(10, 3, dtype=torch.float64), MIX)
    with pytest.raises(TypeError, match="x must be"):
        mixture_mmd(torch.zeros(10, 2, dtype=torch.long), MIX)
    with pytest.raises(ValueError, match="finite"):
        mixture_mmd(torch.full((10, 2), float("nan")), MIX)
