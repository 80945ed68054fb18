"""Small-sample metrics (ddim_edu.evaluation.kernel): KID against a double loop and torchmetrics,
its unbiasedness and the honesty of its standard error, the confident share and class histogram
against hand counts, dtypes and bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import ddim_edu as de
from ddim_edu.evaluation.kernel import (ClassHistogram, Estimate, class_histogram, classifier_kid,
                                        confident_share, kernel_distance)
from ddim_edu.evaluation.metrics import classifier_features, predict_labels, predict_proba


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny matrices: one thread avoids oversubscription on a shared CPU (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _k(x, y, d):
    return (sum(a * b for a, b in zip(x, y)) / d + 1.0) ** 3


def _mmd2_loop(X, Y):
    """Unbiased MMD² with k(x, y) = (xᵀy/d + 1)³, written out pair by pair (Gretton et al. 2012, eq. 3)."""
    n, m, d = len(X), len(Y), len(X[0])
    xx = sum(_k(X[i], X[j], d) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(_k(Y[i], Y[j], d) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(_k(X[i], Y[j], d) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def _jackknife_loop(X, Y):
    """Two-sample delete-one jackknife standard error, recomputing the estimate with each row left out."""
    def var(rows, other, first):
        loo = [_mmd2_loop(rows[:i] + rows[i + 1:], other) if first else _mmd2_loop(other, rows[:i] + rows[i + 1:])
               for i in range(len(rows))]
        mean = sum(loo) / len(loo)
        return (len(rows) - 1) / len(rows) * sum((v - mean) ** 2 for v in loo)
    return math.sqrt(var(X, Y, True) + var(Y, X, False))


def _gauss(n, d, g, shift=0.0):
    return torch.randn(n, d, generator=g, dtype=torch.float64) + shift * torch.linspace(0, 1, d, dtype=torch.float64)


# ------------------------------------------------------------------ KID: the formula
@pytest.mark.parametrize("n,m,d,shift", [(7, 9, 3, 0.0), (8, 8, 3, 0.7), (5, 11, 2, 2.0)])
def test_kid_equals_double_loop(n, m, d, shift):
    g = torch.Generator().manual_seed(n * m)
    a, b = _gauss(n, d, g), _gauss(m, d, g, shift)
    X, Y = a.tolist(), b.tolist()
    est = kernel_distance(a, b, subsets=3, subset_size=4, generator=g)
    ref = _mmd2_loop(X, Y)
    assert abs(est.value - ref) <= 1e-12 * max(1.0, abs(ref))
    assert est.stderr == pytest.approx(_jackknife_loop(X, Y), rel=1e-9, abs=1e-12)
    assert (est.n, est.n_b, est.subsets, est.subset_size) == (n, m, 3, 4)


def test_kid_subset_statistics_are_those_of_the_drawn_subsets():
    a, b = _gauss(12, 3, torch.Generator().manual_seed(0)), _gauss(10, 3, torch.Generator().manual_seed(1), 1.0)
    est = kernel_distance(a, b, subsets=4, subset_size=5, generator=torch.Generator().manual_seed(7))
    g, runs = torch.Generator().manual_seed(7), []
    for _ in range(4):
        ia, ib = torch.randperm(12, generator=g)[:5], torch.randperm(10, generator=g)[:5]
        runs.append(_mmd2_loop(a[ia].tolist(), b[ib].tolist()))
    assert est.subset_mean == pytest.approx(np.mean(runs), abs=1e-12)
    assert est.subset_std == pytest.approx(np.std(runs), abs=1e-12)
    skipped = kernel_distance(a, b, subsets=0)
    assert skipped.value == est.value and math.isnan(skipped.subset_mean) and math.isnan(skipped.subset_std)
    assert math.isnan(kernel_distance(a[:2], b, subsets=0).stderr)      # n = 2: no leave-one-out pair


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_agrees_with_torchmetrics():
    kid_mod = pytest.importorskip("torchmetrics.image.kid")
    g = torch.Generator().manual_seed(3)
    a, b = _gauss(60, 8, g), _gauss(50, 8, g, 0.5)

    def torchmetrics_kid(real, fake, subsets, subset_size, seed):
        metric = kid_mod.KernelInceptionDistance(feature=nn.Identity(), subsets=subsets, subset_size=subset_size)
        metric.update(real, real=True)
        metric.update(fake, real=False)
        torch.manual_seed(seed)                   # torchmetrics draws from the global generator
        mean, std = metric.compute()
        return float(mean), float(std)

    ours = kernel_distance(a, b, subsets=20, subset_size=25, generator=torch.Generator().manual_seed(11))
    mean, std = torchmetrics_kid(a, b, 20, 25, 11)      # the same permutations, in the same order
    assert ours.subset_mean == pytest.approx(mean, rel=1e-10) and ours.subset_std == pytest.approx(std, rel=1e-10)
    # full sets: one "subset" of all rows (torchmetrics' formula needs equal sizes)
    full = kernel_distance(a[:50], b, subsets=0)
    assert full.value == pytest.approx(torchmetrics_kid(a[:50], b, 1, 50, 0)[0], rel=1e-10)


# ------------------------------------------------------------------ KID: statistics
def test_kid_is_unbiased_at_small_n():
    g = torch.Generator().manual_seed(5)
    same = torch.tensor([kernel_distance(_gauss(10, 4, g), _gauss(12, 4, g), subsets=0).value for _ in range(200)])
    sem = float(same.std()) / math.sqrt(200)
    assert abs(float(same.mean())) < 3 * sem
    # shifted: the mean of 200 ten-sample estimates matches one 2,000-sample estimate (no small-n bias)
    shifted = torch.tensor([kernel_distance(_gauss(10, 4, g), _gauss(12, 4, g, 1.5), subsets=0).value
                            for _ in range(200)])
    big = kernel_distance(_gauss(2000, 4, g), _gauss(2000, 4, g, 1.5), subsets=0)
    sem = float(shifted.std()) / math.sqrt(200)
    assert big.value > 10 * big.stderr
    assert abs(float(shifted.mean()) - big.value) < 3 * math.hypot(sem, big.stderr)
    one = kernel_distance(_gauss(200, 4, g), _gauss(200, 4, g, 1.5), subsets=0)
    assert one.value > 5 * one.stderr


@pytest.mark.parametrize("shift,lo,hi", [(0.5, 1 / 1.5, 1.5),     # distributions differ: jackknife ≈ exact
                                         (0.0, 1.0, 1.8)])       # equal: conservative, up to about √2
def test_kid_stderr_is_honest(shift, lo, hi):
    g = torch.Generator().manual_seed(9)
    runs = [kernel_distance(_gauss(60, 8, g), _gauss(70, 8, g, shift), subsets=0) for _ in range(250)]
    spread = float(np.std([r.value for r in runs], ddof=1))
    reported = float(np.mean([r.stderr for r in runs]))
    assert lo < reported / spread < hi, (reported, spread)


@pytest.mark.parametrize("dtype,rel", [(torch.float16, 5e-3), (torch.bfloat16, 4e-2), (torch.float32, 1e-6),
                                       (torch.float64, 0.0)])
def test_kid_dtypes(dtype, rel):
    g = torch.Generator().manual_seed(4)
    a, b = _gauss(40, 16, g), _gauss(30, 16, g, 1.0)
    exact = kernel_distance(a, b, subsets=5, subset_size=10, generator=torch.Generator().manual_seed(0))
    low = kernel_distance(a.to(dtype), b.to(dtype), subsets=5, subset_size=10, generator=torch.Generator().manual_seed(0))
    rounded = kernel_distance(a.to(dtype).double(), b.to(dtype).double(), subsets=5, subset_size=10,
                              generator=torch.Generator().manual_seed(0))
    assert low == rounded                           # computed in float64 after the inputs' own rounding
    assert low.value == pytest.approx(exact.value, rel=rel, abs=1e-15)
    assert low.stderr == pytest.approx(exact.stderr, rel=max(rel, 1e-12) * 5)


def test_kid_numpy_and_other_devices():
    g = torch.Generator().manual_seed(2)
    a, b = _gauss(20, 5, g), _gauss(25, 5, g, 0.3)
    ref = kernel_distance(a, b, subsets=0)
    assert kernel_distance(a.numpy(), b.numpy().astype(np.float32), subsets=0).value == \
        pytest.approx(kernel_distance(a, b.float(), subsets=0).value, abs=1e-15)
    assert kernel_distance(a.numpy()[::-1], b.numpy(), subsets=0).value == pytest.approx(ref.value, rel=1e-12)
    if torch.cuda.is_available():
        assert kernel_distance(a.cuda(), b.cuda(), subsets=0).value == pytest.approx(ref.value, rel=1e-12)


def test_estimate_reads_and_converts():
    est = Estimate(value=0.0123, stderr=0.0021, n=300)
    assert str(est) == "0.0123 ± 0.0021" and float(est) == 0.0123 and f"{est:.3f}" == "0.012 ± 0.002"
    assert np.float64(est) == 0.0123 and math.isclose(float(est) / 2, 0.00615)
    with pytest.raises(AttributeError):
        est.value = 1.0                           # frozen
    assert de.evaluation.kernel_distance is kernel_distance and de.evaluation.Estimate is Estimate


@pytest.mark.parametrize("a,b,kw,err,match", [
    (torch.zeros(1, 3), torch.zeros(5, 3), {}, ValueError, "features_a.*at least 2 rows"),
    (torch.zeros(5), torch.zeros(5, 3), {}, ValueError, "features_a.*2-D"),
    (torch.zeros(5, 3), torch.tensor([[0.0, math.nan, 0.0]] * 4), {}, ValueError, "features_b.*finite"),
    (torch.zeros(5, 3), torch.zeros(5, 4), {}, ValueError, "features_b.*dimension"),
    (torch.zeros(5, 3, dtype=torch.long), torch.zeros(5, 3), {}, TypeError, "features_a.*floating"),
    (np.zeros((5, 3), dtype=np.int64), torch.zeros(5, 3), {}, TypeError, "features_a.*floating"),
    ([[0.0] * 3] * 5, torch.zeros(5, 3), {}, TypeError, "features_a.*numpy"),
    (torch.zeros(5, 3), torch.zeros(6, 3), {"subset_size": 6}, ValueError, r"subset_size must be in \[2, 5\], got 6"),
    (torch.zeros(5, 3), torch.zeros(6, 3), {"subsets": -1}, ValueError, "subsets"),
    (torch.zeros(5, 3), torch.zeros(6, 3), {"subsets": 2.5}, TypeError, "subsets"),
    (torch.zeros(5, 3), torch.zeros(6, 3), {"generator": 0}, TypeError, "generator"),
])
def test_kid_bad_input(a, b, kw, err, match):
    with pytest.raises(err, match=match):
        kernel_distance(a, b, **kw)


# ------------------------------------------------------------------ classifier metrics
class FakeClassifier(nn.Module):
    """Logits = 10 × the first 10 pixels of each image's top row, so a test sets them by hand."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def features(self, x):
        return x[:, 0, 0, :10] + x[:, 0, 1, :10]

    def forward(self, x):
        return 10 * x[:, 0, 0, :10]


def _images(classes, confident):
    """Black images whose top row encodes the logits: +1 at the class vs −1 (softmax ≈ 1), or
    0.1 vs 0 (top probability e/(e + 9) ≈ 0.23)."""
    x = -torch.ones(len(classes), 1, 28, 28)
    for i, (c, sure) in enumerate(zip(classes, confident)):
        x[i, 0, 0, :10] = -1.0 if sure else 0.0
        x[i, 0, 0, c] = 1.0 if sure else 0.1
    return x


CLASSES = [0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 7, 7]
SURE = [1, 1, 0, 1, 0, 1, 1, 1, 1, 0, 0, 1]


def test_confident_share_by_hand():
    x, fake = _images(CLASSES, SURE), FakeClassifier()
    assert math.e / (math.e + 9) == pytest.approx(float(predict_proba(x[2:3], fake).max()))
    est = confident_share(x, fake, threshold=0.9, batch_size=5)
    p = 8 / 12
    assert (est.value, est.n) == (p, 12) and est.stderr == pytest.approx(math.sqrt(p * (1 - p) / 12), rel=1e-12)
    assert confident_share(x, fake, threshold=0.2).value == 1.0      # everything beats 0.2
    all_sure = confident_share(x, fake, threshold=0.2)
    q = 12.5 / 13                                                   # the ½ rule at k = n
    assert all_sure.stderr == pytest.approx(math.sqrt(q * (1 - q) / 12), rel=1e-12)
    none = confident_share(x[[2, 4]], fake, threshold=0.5)
    assert none.value == 0.0 and none.stderr == pytest.approx(math.sqrt(0.5 / 3 * (2.5 / 3) / 2), rel=1e-12)


def test_class_histogram_by_hand():
    x, fake = _images(CLASSES, SURE), FakeClassifier()
    h = class_histogram(x, fake, batch_size=5)
    assert isinstance(h, ClassHistogram)
    expected = (3, 2, 1, 4, 0, 0, 0, 2, 0, 0)
    assert h.counts == expected and h.n == 12 and h.classes_present == 5
    assert h.shares == pytest.approx([k / 12 for k in expected], abs=1e-15)
    for k, se, sse in zip(expected, h.stderr, h.share_stderr):
        p = k / 12 if k else 0.5 / 13
        assert se == pytest.approx(math.sqrt(12 * p * (1 - p)), rel=1e-12) and sse == pytest.approx(se / 12)
    assert "5 of 10 classes present" in str(h) and "class 3:    4" in str(h)


def test_classifier_kid_uses_classifier_features(held_out_digits, random_classifier):
    x = held_out_digits[0]
    samples, reference = x[:60], x[100:180]
    est = classifier_kid(samples, reference, random_classifier, subsets=5, subset_size=20,
                         generator=torch.Generator().manual_seed(0))
    fa, fb = classifier_features(samples, random_classifier), classifier_features(reference, random_classifier)
    direct = kernel_distance(fa, fb, subsets=5, subset_size=20, generator=torch.Generator().manual_seed(0))
    assert est == direct
    assert classifier_kid(samples, fb, random_classifier, subsets=0).value == direct.value   # precomputed reference
    proba = predict_proba(samples, random_classifier)
    assert torch.allclose(proba.sum(1), torch.ones(60, dtype=torch.float64))
    assert torch.equal(proba.argmax(1), predict_labels(samples, random_classifier))


@pytest.mark.parametrize("call,err,match", [
    (lambda x, f: confident_share(x, f, threshold=1.5), ValueError, "threshold"),
    (lambda x, f: confident_share(x, f, threshold=1.0), ValueError, r"threshold must be in \(0, 1\)"),
    (lambda x, f: confident_share(x, f, threshold=0), ValueError, "threshold"),
    (lambda x, f: confident_share(x, f, threshold="0.9"), TypeError, "threshold"),
    (lambda x, f: confident_share((x + 1) * 127.5, f), ValueError, "x must be images in .* 0-255"),
    (lambda x, f: class_histogram((x + 1) / 2, f), ValueError, r"x must be images in .*\[0, 1\]"),
    (lambda x, f: class_histogram(x[:, 0], f), ValueError, "x must be MNIST-like"),
    (lambda x, f: class_histogram(x[:0], f), ValueError, "x must hold at least 1 image"),
    (lambda x, f: class_histogram(x, f, batch_size=0), ValueError, "batch_size"),
    (lambda x, f: classifier_kid(x[:1], x, f), ValueError, "samples.*at least 2 rows"),
    (lambda x, f: classifier_kid((x + 1) * 127.5, x, f), ValueError, "samples must be images"),
    (lambda x, f: classifier_kid(x, torch.zeros(5, 3), f), ValueError, "reference features"),
    (lambda x, f: classifier_kid(x, x.numpy(), f), TypeError, "reference must be a torch.Tensor"),
])
def test_classifier_metrics_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call(_images(CLASSES, SURE), FakeClassifier())
