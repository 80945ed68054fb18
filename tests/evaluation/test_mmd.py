"""The stratified KID (ddim_edu.evaluation.mmd): against a double loop written from the formula,
a brute-force jackknife, and a simulation whose true MMD² is exactly 0 (one mixture on both sides)."""
import math

import pytest
import torch

import ddim_edu as de
from ddim_edu.evaluation.mmd import mmd2

C, D = 3, 4
MEANS = 2.0 * torch.eye(C, D, dtype=torch.float64)


def _k(x, y):
    return (sum(p * q for p, q in zip(x, y)) / len(x) + 1.0) ** 3


def _stratified_loop(a, b, la, lb, wa=None, wb=None):
    """The module docstring's estimator by plain loops: class-pair means of k within each set,
    weighted by the class shares (or the given weights), minus twice the mean over all cross pairs."""
    def within(x, lab, w):
        classes = sorted(set(lab))
        w = w or {c: lab.count(c) / len(lab) for c in classes}
        total = 0.0
        for c in classes:
            for c2 in classes:
                ks = [_k(x[i], x[j]) for i in range(len(x)) for j in range(len(x))
                      if i != j and lab[i] == c and lab[j] == c2]
                total += w[c] * w[c2] * sum(ks) / len(ks)
        return total

    def cross():
        wa_ = wa or {c: la.count(c) / len(la) for c in set(la)}
        wb_ = wb or {c: lb.count(c) / len(lb) for c in set(lb)}
        total = 0.0
        for c in wa_:
            for c2 in wb_:
                ks = [_k(a[i], b[j]) for i in range(len(a)) for j in range(len(b)) if la[i] == c and lb[j] == c2]
                total += wa_[c] * wb_[c2] * sum(ks) / len(ks)
        return total
    return within(a, la, wa) + within(b, lb, wb) - 2 * cross()


def _data(seed, n=18, m=15):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, D, generator=g, dtype=torch.float64)
    b = torch.randn(m, D, generator=g, dtype=torch.float64) + 0.3
    return a, b, torch.randint(0, C, (n,), generator=g), torch.arange(m) % C


def test_stratified_value_equals_the_double_loop():
    a, b, la, lb = _data(0)
    want = _stratified_loop(a.tolist(), b.tolist(), la.tolist(), lb.tolist())
    assert mmd2(a, b, la, lb) == pytest.approx(want, rel=1e-12)


def test_one_class_is_the_plain_estimator_value_and_stderr():
    a, b, _, _ = _data(1)
    plain = de.evaluation.kernel_distance(a, b, subsets=0)
    one = de.evaluation.kernel_distance(a, b, subsets=0, labels_a=torch.zeros(len(a), dtype=torch.long),
                                        labels_b=torch.full((len(b),), 7))
    assert one.value == pytest.approx(plain.value, rel=1e-12) and one.stderr == pytest.approx(plain.stderr, rel=1e-12)


def test_stratified_stderr_is_the_jackknife_within_classes():
    """Leave each row out, recompute with the class shares held fixed, and take the delete-one
    jackknife variance within each class of each set."""
    a, b, la, lb = _data(2)
    _, stderr = mmd2(a, b, la, lb, with_stderr=True)
    A, B, LA, LB = a.tolist(), b.tolist(), la.tolist(), lb.tolist()
    wa = {c: LA.count(c) / len(LA) for c in set(LA)}
    wb = {c: LB.count(c) / len(LB) for c in set(LB)}
    var = 0.0
    for first, rows, lab in [(True, A, LA), (False, B, LB)]:
        out = [(_stratified_loop(rows[:i] + rows[i + 1:], B, lab[:i] + lab[i + 1:], LB, wa, wb) if first else
                _stratified_loop(A, rows[:i] + rows[i + 1:], LA, lab[:i] + lab[i + 1:], wa, wb), lab[i])
               for i in range(len(rows))]
        for c in set(lab):
            th = [t for t, l in out if l == c]
            mean = sum(th) / len(th)
            var += (len(th) - 1) / len(th) * sum((t - mean) ** 2 for t in th)
    assert stderr == pytest.approx(math.sqrt(var), rel=1e-9)


def _mixture(n, g, stratified):
    cls = torch.arange(n) % C if stratified else torch.randint(0, C, (n,), generator=g)
    return MEANS[cls] + torch.randn(n, D, generator=g, dtype=torch.float64), cls


def test_a_stratified_reference_biases_the_plain_estimator_and_not_the_stratified_one():
    """Both sides come from one equal-weight mixture, so MMD² = 0 exactly. The reference holds 8 rows
    of each class (as the held-out digits hold 50): the plain U-statistic is biased by
    (P(same class in the reference) − 1/C)(k̄_same − k̄_diff) (module docstring), about −0.28
    here, −10 standard errors of the mean over 1,500 draws; the stratified one is within noise of 0.
    """
    g = torch.Generator().manual_seed(0)
    plain, strat = [], []
    for _ in range(1500):
        a, _ = _mixture(24, g, stratified=False)
        b, lb = _mixture(3 * 8, g, stratified=True)
        plain.append(mmd2(a, b)), strat.append(mmd2(a, b, None, lb))
    plain, strat = torch.tensor(plain), torch.tensor(strat)
    se = lambda v: float(v.std() / math.sqrt(len(v)))
    assert abs(float(strat.mean())) < 3 * se(strat)
    assert float(plain.mean()) < -5 * se(plain)
    x, cx = _mixture(200_000, g, stratified=False)
    y, cy = _mixture(200_000, g, stratified=False)
    k, same = ((x * y).sum(1) / D + 1) ** 3, cx == cy
    predicted = (7 / 23 - 1 / C) * (float(k[same].mean()) - float(k[~same].mean()))
    assert abs(float(plain.mean()) - predicted) < 3 * se(plain)


@pytest.mark.parametrize("labels, error, match", [
    (torch.zeros(15), TypeError, r"labels_b must be an integer tensor of class labels \[15\] or None, got .*float32"),
    (torch.zeros(14, dtype=torch.long), ValueError,
     r"labels_b must have one label per row of features_b, shape \[15\], got \(14,\)"),
    (torch.tensor([0] * 14 + [1]), ValueError, r"labels_b: every class needs at least 2 rows .* single row of class 1"),
])
def test_bad_labels_are_refused_naming_the_argument(labels, error, match):
    a, b, _, _ = _data(3)
    with pytest.raises(error, match=match):
        de.evaluation.kernel_distance(a, b, subsets=0, labels_b=labels)


def test_classifier_kid_passes_the_reference_labels():
    g = torch.Generator().manual_seed(4)
    samples = torch.rand(12, 1, 28, 28, generator=g) * 2 - 1
    reference = torch.randn(9, 128, generator=g, dtype=torch.float64)
    labels = torch.arange(9) % 3
    got = de.evaluation.classifier_kid(samples, reference, subsets=0, reference_labels=labels)
    features = de.evaluation.classifier_features(samples)
    assert got.value == pytest.approx(mmd2(features.double(), reference, None, labels), rel=1e-12)


def test_stratified_stderr_matches_the_spread_over_redraws():
    """Redraw both sets 600 times (the reference stratified, the sample shifted so that MMD² > 0, where
    the jackknife is exact on average): the root-mean-square standard error matches the observed spread."""
    g = torch.Generator().manual_seed(1)
    values, stderrs = [], []
    for _ in range(600):
        a, _ = _mixture(60, g, stratified=False)
        b, lb = _mixture(60, g, stratified=True)
        v, se = mmd2(a + 0.5, b, None, lb, with_stderr=True)
        values.append(v), stderrs.append(se)
    ratio = float(torch.tensor(stderrs).pow(2).mean().sqrt() / torch.tensor(values).std())
    assert 0.85 < ratio < 1.25, ratio
