"""kid_difference against the difference of two kernel_distance values, a delete-one jackknife
recomputed from scratch, and the spread of the difference over many independent draws."""
import math

import numpy as np
import pytest
import torch

from ddim_edu.evaluation.compare import kid_difference, scaled_difference_stderr
from ddim_edu.evaluation.kernel import kernel_distance
from ddim_edu.evaluation.mmd import mmd2


def paired_sets(seed, n=12, m=15, d=4):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g, dtype=torch.float64)
    b = a + 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64) + 0.2     # b_i made from a_i
    ref = torch.randn(m, d, generator=g, dtype=torch.float64)
    return a, b, ref


@pytest.mark.parametrize("stratified", [False, True])
def test_value_is_the_difference_of_the_two_kids(stratified):
    a, b, ref = paired_sets(0)
    labels = torch.arange(15) % 3 if stratified else None
    est = kid_difference(a, b, ref, labels_ref=labels)
    ka = kernel_distance(a, ref, subsets=0, labels_b=labels)
    kb = kernel_distance(b, ref, subsets=0, labels_b=labels)
    assert est.value == pytest.approx(ka.value - kb.value, rel=1e-12, abs=1e-15) and est.n == 12
    from_numpy = kid_difference(a.numpy(), b.numpy(), ref.numpy(), labels_ref=labels)
    assert (from_numpy.value, from_numpy.stderr) == (est.value, est.stderr)


def test_stderr_is_the_delete_one_jackknife_of_pairs_and_reference_rows():
    a, b, ref = paired_sets(1)
    n, m = len(a), len(ref)
    D = lambda A, B, R: mmd2(A, R) - mmd2(B, R)                                   # noqa: E731
    drop = lambda x, i: torch.cat([x[:i], x[i + 1:]])                             # noqa: E731
    by_pair = np.array([D(drop(a, i), drop(b, i), ref) for i in range(n)])        # a pair leaves together
    by_ref = np.array([D(a, b, drop(ref, j)) for j in range(m)])
    var = (n - 1) / n * ((by_pair - by_pair.mean()) ** 2).sum() + (m - 1) / m * ((by_ref - by_ref.mean()) ** 2).sum()
    assert kid_difference(a, b, ref).stderr == pytest.approx(math.sqrt(var), rel=1e-10)


def _kid_fixed_shares(x, ref, labels, shares):
    """MMD²_u(x, ref) written out pair by pair, the reference's class shares given (held fixed when
    a reference row is left out): x's mean over its distinct pairs, plus Σ w_c w_c' times the mean
    over reference pairs with one row in c and one in c', minus twice Σ_c w_c · the mean of k over
    x and the rows of c."""
    k = lambda u, v: (u @ v.T / u.shape[1] + 1.0) ** 3                                   # noqa: E731
    kxx = k(x, x)
    value = float((kxx.sum() - kxx.diagonal().sum()) / (len(x) * (len(x) - 1)))
    for c, wc in shares.items():
        rc = ref[labels == c]
        value -= 2 * wc * float(k(x, rc).mean())
        for c2, wc2 in shares.items():
            block = k(rc, ref[labels == c2])
            pairs = block.numel() - (len(rc) if c == c2 else 0)
            value += wc * wc2 * float(block.sum() - (block.diagonal().sum() if c == c2 else 0)) / pairs
    return value


@pytest.mark.parametrize("scale", [0.0, 0.5, 1.0, 3.0])
def test_scaled_difference_against_kernel_distance_and_a_jackknife_from_scratch(scale):
    """KID(A) − c·KID(B) with a stratified reference: the value from two kernel_distance calls, the
    error from leaving out each pair, and each reference row within its class (shares held fixed),
    and recomputing everything."""
    a, b, ref = paired_sets(5)
    labels = torch.arange(15) % 3
    est = kid_difference(a, b, ref, labels_ref=labels, scale=scale)
    ka = kernel_distance(a, ref, subsets=0, labels_b=labels)
    kb = kernel_distance(b, ref, subsets=0, labels_b=labels)
    assert est.value == pytest.approx(ka.value - scale * kb.value, rel=1e-12, abs=1e-15)
    shares = {c: 1 / 3 for c in range(3)}
    D = lambda A, B, R, L: _kid_fixed_shares(A, R, L, shares) - scale * _kid_fixed_shares(B, R, L, shares)  # noqa: E731
    assert D(a, b, ref, labels) == pytest.approx(est.value, rel=1e-12, abs=1e-15)
    drop = lambda x, i: torch.cat([x[:i], x[i + 1:]])                                     # noqa: E731
    n = len(a)
    by_pair = np.array([D(drop(a, i), drop(b, i), ref, labels) for i in range(n)])
    var_pairs, var_ref = (n - 1) / n * ((by_pair - by_pair.mean()) ** 2).sum(), 0.0
    for c in range(3):
        rows = torch.nonzero(labels == c).flatten().tolist()
        out = np.array([D(a, b, drop(ref, j), drop(labels, j)) for j in rows])
        var_ref += (len(rows) - 1) / len(rows) * ((out - out.mean()) ** 2).sum()
    assert est.stderr == pytest.approx(math.sqrt(var_pairs + var_ref), rel=1e-10)
    assert (est.stderr_samples, est.stderr_reference) == pytest.approx((math.sqrt(var_pairs), math.sqrt(var_ref)),
                                                                       rel=1e-10)
    if scale == 0.0:                               # A's KID alone, with its own error
        assert (est.value, est.stderr) == pytest.approx((ka.value, ka.stderr), rel=1e-10)


def test_scaled_error_from_the_three_plain_errors():
    """var(KID_A − c·KID_B) = (1 − c)·se_A² + (c² − c)·se_B² + c·se_D² (se_D: c = 1): what a table of
    se_A, se_B and se_D allows without the features."""
    a, b, ref = paired_sets(6)
    se_a, se_b = (kernel_distance(x, ref, subsets=0).stderr for x in (a, b))
    se_d = kid_difference(a, b, ref).stderr
    for c in (2.0, 3.0):
        se = kid_difference(a, b, ref, scale=c).stderr
        assert se == pytest.approx(math.sqrt((1 - c) * se_a ** 2 + (c * c - c) * se_b ** 2 + c * se_d ** 2), rel=1e-10)
        assert scaled_difference_stderr(se_a, se_b, se_d, c) == pytest.approx(se, rel=1e-10)
    with pytest.raises(ValueError, match="se_b must be in"):
        scaled_difference_stderr(se_a, -1.0, se_d, 3)
    with pytest.raises(ValueError, match="scale must be a finite number"):
        scaled_difference_stderr(se_a, se_b, se_d, float("inf"))


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_stderr_matches_the_spread_over_independent_draws_and_beats_the_unpaired_error(scale):
    """400 independent draws of paired sets and a stratified reference (4 classes of 8): the
    jackknife error is about the standard deviation of KID_A − c·KID_B over the draws (conservative
    by ~10%), and at c = 1 several times smaller than √(se_A² + se_B²) of two separate KIDs."""
    g = torch.Generator().manual_seed(1)
    means = 0.75 * torch.randn(4, 3, generator=g, dtype=torch.float64)
    labels = torch.arange(4).repeat_interleave(8)
    values, errors, unpaired = [], [], []
    for rep in range(400):
        a = torch.randn(60, 3, generator=g, dtype=torch.float64) + 0.3
        b = 0.9 * a + 0.3 * torch.randn(60, 3, generator=g, dtype=torch.float64)
        ref = torch.randn(32, 3, generator=g, dtype=torch.float64) + means[labels]
        est = kid_difference(a, b, ref, labels_ref=labels, scale=scale)
        values.append(est.value)
        errors.append(est.stderr)
        if rep < 40:
            se = [kernel_distance(x, ref, subsets=0, labels_b=labels).stderr for x in (a, b)]
            unpaired.append(math.hypot(*se))
    spread, rms_error = float(np.std(values, ddof=1)), float(np.sqrt(np.mean(np.square(errors))))
    assert 0.85 < rms_error / spread < 1.4, (rms_error, spread)
    if scale == 1.0:
        assert np.mean(unpaired) > 3 * rms_error


def test_identical_sets_differ_by_exactly_zero():
    a, _, ref = paired_sets(2)
    est = kid_difference(a, a.clone(), ref)
    assert est.value == 0.0 and est.stderr == 0.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_every_float_dtype_and_device(dtype, device):
    a, b, ref = (x.to(dtype) for x in paired_sets(3))
    want = kid_difference(a.double(), b.double(), ref.double())
    got = kid_difference(a.to(device), b.to(device), ref.to(device))
    assert got.value == pytest.approx(want.value, rel=1e-12) and got.stderr == pytest.approx(want.stderr, rel=1e-12)


def test_bad_input_is_refused_by_name():
    a, b, ref = paired_sets(4)
    with pytest.raises(ValueError, match="features_b must be paired row by row"):
        kid_difference(a, b[:-1], ref)
    with pytest.raises(ValueError, match="reference must have the feature dimension"):
        kid_difference(a, b, ref[:, :2])
    with pytest.raises(ValueError, match="features_a must have at least 3 rows"):
        kid_difference(a[:2], b[:2], ref)
    with pytest.raises(TypeError, match="features_b must hold floating-point"):
        kid_difference(a, b.long(), ref)
    with pytest.raises(TypeError, match="reference must be a torch.Tensor or numpy array"):
        kid_difference(a, b, ref.tolist())
    bad = b.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="features_b must be finite"):
        kid_difference(a, bad, ref)
    with pytest.raises(ValueError, match="labels_ref must have one label per row"):
        kid_difference(a, b, ref, labels_ref=torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="labels_ref must be an integer tensor"):
        kid_difference(a, b, ref, labels_ref=torch.zeros(15))
    with pytest.raises(ValueError, match="labels_ref: every class needs at least 3 rows"):
        kid_difference(a, b, ref, labels_ref=torch.tensor([0] * 13 + [1] * 2))
    with pytest.raises(ValueError, match=r"scale must be in \[0.0, inf\), got -1.0"):
        kid_difference(a, b, ref, scale=-1)
    with pytest.raises(ValueError, match="scale must be a finite number"):
        kid_difference(a, b, ref, scale=float("inf"))
    with pytest.raises(ValueError, match="scale must be a number in .*, got nan"):
        kid_difference(a, b, ref, scale=float("nan"))
    for bad in ("3", True, None):
        with pytest.raises(TypeError, match="scale must be a number"):
            kid_difference(a, b, ref, scale=bad)
