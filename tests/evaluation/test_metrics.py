"""Metrics: Fréchet distance against closed forms, classifier FID, reconstruction MSE, and
the classifier that provides the features."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import ddim_edu as de

from ddim_edu.evaluation.classifier import MNISTClassifier, load_classifier, random_shift
from ddim_edu.data import load_mnist
from ddim_edu.evaluation.metrics import (classifier_accuracy, classifier_features, classifier_fid, feature_statistics,
                              frechet_distance, predict_labels, reconstruction_mse)
from ddim_edu.train.pretrained import checkpoints_dir


def _random_cov(d, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


# ----------------------------------------------------------------- Fréchet distance
def test_identical_statistics_give_zero():
    mu, cov = torch.randn(16, dtype=torch.float64), _random_cov(16, 0)
    assert abs(frechet_distance(mu, cov, mu, cov)) < 1e-9


def test_diagonal_covariances_closed_form():
    g = torch.Generator().manual_seed(1)
    mu1, mu2 = torch.randn(8, generator=g), torch.randn(8, generator=g)
    a, b = torch.rand(8, generator=g) + 0.1, torch.rand(8, generator=g) + 0.1
    expected = float(((mu1 - mu2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum())
    got = frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b))
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_one_dimensional_is_wasserstein_of_gaussians():
    # W2²(N(m1, s1²), N(m2, s2²)) = (m1 − m2)² + (s1 − s2)²
    got = frechet_distance(torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([-0.5]), torch.tensor([[0.25]]))
    assert got == pytest.approx(1.5 ** 2 + 1.5 ** 2)


def test_symmetric_and_numpy_inputs():
    mu1, mu2 = np.random.default_rng(0).normal(size=(2, 12))
    c1, c2 = _random_cov(12, 2), _random_cov(12, 3)
    d12 = frechet_distance(mu1, c1.numpy(), mu2, c2.numpy())
    d21 = frechet_distance(mu2, c2, mu1, c1)
    assert d12 > 0 and d12 == pytest.approx(d21, rel=1e-9)
    # against the definition with eigenvalues of C1 C2 (a non-symmetric product)
    ev = torch.linalg.eigvals(c1 @ c2).real.clamp(min=0).sqrt().sum()
    ref = float(((torch.as_tensor(mu1) - torch.as_tensor(mu2)) ** 2).sum() + c1.trace() + c2.trace() - 2 * ev)
    assert d12 == pytest.approx(ref, rel=1e-8)


def test_singular_covariance_is_fine():
    v = torch.randn(6, 2, dtype=torch.float64)
    c = v @ v.T                                   # rank 2
    assert abs(frechet_distance(torch.zeros(6), c, torch.zeros(6), c)) < 1e-6


@pytest.mark.parametrize("args,err", [
    ((torch.zeros(3), torch.eye(3), torch.zeros(4), torch.eye(4)), ValueError),
    ((torch.zeros(3), torch.eye(2), torch.zeros(3), torch.eye(3)), ValueError),
    ((torch.zeros(3, 1), torch.eye(3), torch.zeros(3), torch.eye(3)), ValueError),
    ((torch.tensor([0.0, math.nan, 0.0]), torch.eye(3), torch.zeros(3), torch.eye(3)), ValueError),
    (([0.0, 0.0], torch.eye(2), torch.zeros(2), torch.eye(2)), TypeError),
])
def test_frechet_bad_input(args, err):
    with pytest.raises(err, match="mu1|mu2|cov1|cov2"):
        frechet_distance(*args)


def test_frechet_refuses_non_covariances():
    """A non-symmetric or indefinite "covariance" used to give 0.0 (the square roots symmetrise and clip)."""
    mu = torch.zeros(3, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64)
    upper = torch.tensor([[1.0, 5.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)  # not symmetric
    indefinite = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64))                     # not PSD
    negative = -eye
    with pytest.raises(ValueError, match="cov1 must be a symmetric"):
        frechet_distance(mu, upper, mu, eye)
    with pytest.raises(ValueError, match="cov2 must be a symmetric"):
        frechet_distance(mu, eye, mu, upper.numpy())
    for bad in (indefinite, negative):
        with pytest.raises(ValueError, match="cov1 must be positive semi-definite"):
            frechet_distance(mu, bad, mu, bad)
        with pytest.raises(ValueError, match="cov2 must be positive semi-definite"):
            frechet_distance(mu, eye, mu, bad)


def test_frechet_accepts_rounded_covariances():
    """float32 round-off (slight asymmetry, eigenvalues of −1e-9 for singular covariances) is fine."""
    f = torch.randn(20, 64, generator=torch.Generator().manual_seed(0))   # N < d: singular covariance
    mu, cov = feature_statistics(f)
    c32 = cov.float()
    c32[0, 1] += 1e-7 * float(c32.abs().max())
    assert frechet_distance(mu.float(), c32, mu, cov) < 1e-3


def test_feature_statistics_match_numpy():
    f = torch.randn(50, 5)
    mu, cov = feature_statistics(f)
    assert mu.dtype == torch.float64 and cov.shape == (5, 5)
    np.testing.assert_allclose(mu.numpy(), f.double().numpy().mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(f.double().numpy(), rowvar=False), rtol=1e-10)
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(torch.randn(1, 5))


# ----------------------------------------------------------------- classifier FID
@pytest.fixture(scope="module")
def digits(held_out_digits):
    return held_out_digits


def test_classifier_fid_self_and_shifted(digits, random_classifier):
    x, _ = digits
    clf = random_classifier
    a, b = x[:150], x[150:]
    base = classifier_fid(a, b, classifier=clf)          # two halves of the same data: sampling noise
    assert base > 0 and classifier_fid(x, x, classifier=clf) < 1e-6 * base
    shifted = (a + 0.5).clamp(-1, 1)
    noisy = (a + 0.5 * torch.randn(a.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    assert classifier_fid(shifted, b, classifier=clf) > 3 * base
    assert classifier_fid(noisy, b, classifier=clf) > 3 * base
    stats = feature_statistics(classifier_features(b, clf))
    assert classifier_fid(shifted, stats, classifier=clf) == pytest.approx(classifier_fid(shifted, b, classifier=clf))


def test_features_padding_and_batching(digits, random_classifier):
    x, _ = digits
    f = classifier_features(x[:40], random_classifier, batch_size=7)
    assert f.shape == (40, 128) and f.dtype == torch.float64
    padded = torch.nn.functional.pad(x[:40], (2, 2, 2, 2), value=-1.0)
    torch.testing.assert_close(classifier_features(padded, random_classifier), f)


@pytest.mark.parametrize("bad", [torch.zeros(4, 28, 28), torch.zeros(4, 3, 28, 28), torch.zeros(4, 1, 20, 20)])
def test_classifier_fid_bad_images(bad, random_classifier):
    with pytest.raises(ValueError, match="MNIST-like"):
        classifier_fid(bad, bad, classifier=random_classifier)


def test_random_shift():
    x = -torch.ones(3, 1, 28, 28)
    x[:, :, 14, 14] = 1.0
    g = torch.Generator().manual_seed(0)
    y = random_shift(x, 2, g)
    assert y.shape == x.shape
    for i in range(3):
        (r, c), = (y[i, 0] == 1).nonzero().tolist()
        assert abs(r - 14) <= 2 and abs(c - 14) <= 2
    torch.testing.assert_close(random_shift(x, 0, g), x)


# ----------------------------------------------------------------- reconstruction MSE
def test_reconstruction_mse_by_hand():
    x = torch.tensor([[-1.0, 1.0], [0.0, 0.5]])
    y = torch.tensor([[1.0, 1.0], [0.0, -0.5]])
    # on [0, 1]: x -> [[0, 1], [.5, .75]], y -> [[1, 1], [.5, .25]]; squared errors 1, 0, 0, .25
    assert reconstruction_mse(x, y) == pytest.approx(1.25 / 4)
    per = reconstruction_mse(x, y, reduction="none")
    torch.testing.assert_close(per, torch.tensor([0.5, 0.125], dtype=torch.float64))
    assert reconstruction_mse(x, x) == 0.0


def test_reconstruction_mse_bad_input():
    with pytest.raises(ValueError, match="shape"):
        reconstruction_mse(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(TypeError, match="y"):
        reconstruction_mse(torch.zeros(2, 3), [0.0, 1.0])
    with pytest.raises(ValueError, match="reduction"):
        reconstruction_mse(torch.zeros(2, 3), torch.zeros(2, 3), reduction="sum")


# ----------------------------------------------------------------- the shipped classifier
SHIPPED = checkpoints_dir() / "mnist_classifier"
needs_classifier = pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file(),
                                      reason=f"shipped classifier not trained yet ({SHIPPED}); "
                                             "run python -m ddim_edu.evaluation.classifier --out checkpoints/mnist_classifier")


@needs_classifier
def test_shipped_classifier_accuracy_and_default():
    x, y = load_mnist("test")
    clf = load_classifier()
    assert not clf.training and sum(p.numel() for p in clf.parameters()) <= 100_000
    assert classifier_accuracy(x, y) >= 0.97          # default classifier = the shipped one
    assert predict_labels(x[:10]).shape == (10,)
    assert classifier_fid(x[:200], x[:200]) < 1e-6


def test_load_classifier_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m ddim_edu.evaluation.classifier"):
        load_classifier(tmp_path / "nope")
    from ddim_edu.evaluation.classifier import save_classifier
    save_classifier(MNISTClassifier(), tmp_path / "c", {"held_out_accuracy": 0.0})
    assert isinstance(load_classifier(tmp_path / "c"), MNISTClassifier)
    (tmp_path / "c" / "model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ValueError, match="corrupt"):
        load_classifier(tmp_path / "c")


def test_held_out_loss_is_fixed_draws_of_l_simple():
    from ddim_edu.train.trainer import diffusion_loss
    sched = de.NoiseSchedule.linear(T=100)
    model = de.MLPDenoiser(dim=2, hidden=16, num_layers=1)
    x0 = torch.randn(10, 2)
    a = de.train.held_out_loss(model, x0, sched, seed=3, batch_size=4)
    assert a == de.train.held_out_loss(model, x0, sched, seed=3, batch_size=4)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        by_hand = sum(float(diffusion_loss(model, x0[i:i + 4], sched, g)) * len(x0[i:i + 4]) for i in (0, 4, 8)) / 10
    assert a == pytest.approx(by_hand, rel=1e-6)
    model.train()
    de.train.held_out_loss(model, x0, sched)
    assert model.training


def test_trainer_records_validation_loss():
    sched = de.NoiseSchedule.linear(T=100)
    data = de.data.toy_dataset("moons", 256, seed=0)
    tr = de.train.train(de.MLPDenoiser(dim=2, hidden=16, num_layers=1), data, sched, steps=6, log_every=3,
                           batch_size=32, progress=False, device="cpu", val_data=data[:64])
    assert [e["step"] for e in tr.history] == [3, 6] and all(e["val_loss"] > 0 for e in tr.history)
