"""class_survival, mean_estimate and share_estimate against direct computations (numpy, a hand-made classifier)."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from ddim_edu.evaluation.survival import class_survival, mean_estimate, share_estimate


class Brightness(nn.Module):
    """A transparent 'classifier': class 1 when the mean pixel is above 0, else class 0."""
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def features(self, x):
        return x.flatten(1).mean(1, keepdim=True) * self.scale

    def forward(self, x):
        m = self.features(x)[:, 0]
        return torch.stack([-m, m], dim=1)


def test_class_survival_counts_and_binomial_error():
    g = torch.Generator().manual_seed(0)
    originals = torch.rand((40, 1, 28, 28), generator=g) * 2 - 1
    decoded = originals.clone()
    decoded[:10] = -originals[:10]           # brightness sign flips: class changes (unless mean is 0)
    res = class_survival(originals, decoded, Brightness())
    before = (originals.flatten(1).mean(1) > 0).long()
    after = (decoded.flatten(1).mean(1) > 0).long()
    k = int((before == after).sum())
    assert k == 30 and res.n == 40 and res.value == k / 40
    assert math.isclose(res.stderr, math.sqrt(0.75 * 0.25 / 40))
    assert torch.equal(res.kept, before == after) and torch.equal(res.before, before)
    assert torch.equal(res.after, after)


def test_class_survival_never_claims_certainty_and_clamps():
    x = torch.full((5, 1, 28, 28), 0.5)
    x[:, :, :14] = -1                                  # a dark half, as real images have
    res = class_survival(x, x * 1.5, Brightness())      # decoded overshoots [-1, 1]: clamped, same class
    assert res.value == 1.0 and 0 < res.stderr < 1 / 5


def test_class_survival_with_the_shipped_classifier_keeps_real_digits(held_out_digits):
    x, _ = held_out_digits
    res = class_survival(x[:50], x[:50].clone())
    assert res.value == 1.0 and res.n == 50


def test_class_survival_refuses_bad_input():
    x = torch.zeros(3, 1, 28, 28)
    with pytest.raises(ValueError, match="decoded"):
        class_survival(x, torch.zeros(2, 1, 28, 28), Brightness())
    with pytest.raises(TypeError, match="originals"):
        class_survival(x.numpy(), x, Brightness())


def test_mean_estimate_matches_numpy():
    v = np.random.default_rng(0).normal(size=37)
    est = mean_estimate(torch.tensor(v))
    assert math.isclose(est.value, v.mean(), rel_tol=1e-12)
    assert math.isclose(est.stderr, v.std(ddof=1) / math.sqrt(37), rel_tol=1e-12)
    assert est.n == 37 and mean_estimate(list(v)).value == est.value


def test_mean_estimate_error_covers_the_truth():
    """Over many draws, |mean − μ| < 2 standard errors about 95% of the time (t-distribution, n = 30)."""
    rng = np.random.default_rng(1)
    errs = [mean_estimate(rng.exponential(size=30)) for _ in range(2000)]
    cover = np.mean([abs(e.value - 1.0) < 2 * e.stderr for e in errs])
    assert 0.9 < cover < 0.97, cover


def test_mean_estimate_refuses_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        mean_estimate([1.0])
    with pytest.raises(ValueError, match="finite"):
        mean_estimate([1.0, float("nan")])


def test_share_estimate_is_the_binomial_error():
    """Inside (0, n): √(p(1−p)/n), as numpy computes it from the 0/1 outcomes (ddof = 0)."""
    outcomes = np.array([1] * 37 + [0] * 13, dtype=float)
    est = share_estimate(37, 50)
    assert est.value == 37 / 50 and est.n == 50
    assert math.isclose(est.stderr, outcomes.std(ddof=0) / math.sqrt(50), rel_tol=1e-12)


@pytest.mark.parametrize("k", [0, 30])
def test_share_estimate_never_claims_certainty(k):
    """All or none: the plain formula gives 0; the estimate gives about 0.7/n, the error of (k ± ½)/(n + 1)."""
    est = share_estimate(k, 30)
    assert est.value == k / 30
    assert math.isclose(est.stderr, math.sqrt(0.5 / 31 * 30.5 / 31 / 30), rel_tol=1e-12)
    assert 0.5 / 30 < est.stderr < 1.0 / 30


def test_share_estimate_refuses_bad_input():
    with pytest.raises(ValueError, match=r"k must be in \[0, 10\], got 11"):
        share_estimate(11, 10)
    with pytest.raises(ValueError, match="n must be in"):
        share_estimate(0, 0)
    with pytest.raises(TypeError, match="k must be an int, got 0.5"):
        share_estimate(0.5, 10)
