"""Tests for ddim_edu.data: the shipped MNIST subset, dataset loading and 2-D toy sets.
No network: full datasets are only exercised through the offline / failed-download paths."""
import warnings

import numpy as np
import pytest
import torch

from ddim_edu import data
from ddim_edu.diffusion.analytic import GaussianMixture


# ----------------------------------------------------------------------------- MNIST subset
def test_mnist_arrays_raw():
    images, labels = data.mnist_arrays()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [500] * 10
    assert images.max() == 255 and images.min() == 0


def test_subset_file_is_small():
    assert data.MNIST_SUBSET_PATH.stat().st_size < 3_000_000


def test_load_mnist_all_shape_dtype_range():
    x, y = data.load_mnist("all")
    assert x.shape == (5000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (5000,) and y.dtype == torch.long
    assert x.min() == -1.0 and x.max() == 1.0
    assert torch.bincount(y, minlength=10).tolist() == [500] * 10


@pytest.mark.parametrize("split, n", [("train", 450), ("test", 50)])
def test_load_mnist_split_sizes(split, n):
    x, y = data.load_mnist(split)
    assert x.shape == (10 * n, 1, 28, 28)
    assert torch.bincount(y, minlength=10).tolist() == [n] * 10


def test_split_disjoint_and_covers_all():
    train, _ = data.mnist_arrays("train")
    test, _ = data.mnist_arrays("test")
    every, _ = data.mnist_arrays("all")
    train_set = {img.tobytes() for img in train}
    assert len(train_set) == 4500
    assert not any(img.tobytes() in train_set for img in test)
    assert train_set | {img.tobytes() for img in test} == {img.tobytes() for img in every}


def test_split_is_fixed():
    a, la = data.load_mnist("test")
    b, lb = data.load_mnist("test")
    assert torch.equal(a, b) and torch.equal(la, lb)


def test_pad_gives_32_with_background_border():
    x, _ = data.load_mnist("test")
    p, _ = data.load_mnist("test", pad=True)
    assert p.shape == (500, 1, 32, 32)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert torch.all(p[:, :, border] == -1.0)
    assert torch.equal(p[:, :, 2:30, 2:30], x)


def test_to_uint8_inverts_scaling_and_to_unit():
    x, _ = data.load_mnist("test")
    raw, _ = data.mnist_arrays("test")
    assert np.array_equal(data.to_uint8(x)[:, 0].numpy(), raw)
    u = data.to_unit(x)
    assert u.min() == 0.0 and u.max() == 1.0
    assert torch.allclose(u, torch.from_numpy(raw[:, None] / 255.0).float(), atol=1e-6)


def test_load_mnist_rejects_bad_split():
    with pytest.raises(ValueError, match=r"split must be one of 'train', 'test', 'all', got 'val'"):
        data.load_mnist("val")


def test_load_mnist_rejects_non_bool_pad():
    with pytest.raises(TypeError, match=r"pad must be True or False, got 2"):
        data.load_mnist(pad=2)


# ----------------------------------------------------------------------------- load_dataset
def test_load_dataset_subset():
    x, y = data.load_dataset("mnist-subset", split="train", pad=True)
    assert x.shape == (4500, 1, 32, 32) and y.shape == (4500,)


def test_offline_mnist_falls_back_with_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("DDIM_EDU_OFFLINE", "1")
    with pytest.warns(UserWarning, match=r"full MNIST is not available: offline mode.*shipped 5,000-digit subset"):
        x, y = data.load_dataset("mnist", split="test", root=tmp_path)
    sx, sy = data.load_mnist("test")
    assert torch.equal(x, sx) and torch.equal(y, sy)


def test_failed_download_mnist_falls_back(monkeypatch, tmp_path):
    monkeypatch.delenv("DDIM_EDU_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")
    monkeypatch.setattr(data, "_torchvision_split", no_network)
    with pytest.warns(UserWarning, match=r"the download to .* failed \(RuntimeError: Error downloading"):
        x, _ = data.load_dataset("mnist", root=tmp_path, pad=True)
    assert x.shape == (4500, 1, 32, 32)


@pytest.mark.parametrize("name", ["fashion-mnist", "cifar10"])
def test_offline_other_datasets_raise(monkeypatch, tmp_path, name):
    monkeypatch.setenv("DDIM_EDU_OFFLINE", "1")
    with pytest.raises(RuntimeError, match=rf"'{name}' needs a network connection.*'mnist-subset'"):
        data.load_dataset(name, root=tmp_path)


def test_load_dataset_uses_torchvision_result(monkeypatch, tmp_path):
    """The conversion of a (faked) torchvision split: uint8 → [-1, 1], labels long, pad."""
    calls = []

    def fake(name, train, root, download):
        calls.append((name, train, download))
        return torch.full((3, 28, 28), 255, dtype=torch.uint8), torch.tensor([1, 2, 3])
    monkeypatch.setattr(data, "_torchvision_split", fake)
    monkeypatch.setenv("DDIM_EDU_OFFLINE", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, y = data.load_dataset("fashion-mnist", split="all", root=tmp_path, pad=True)
    assert calls == [("fashion-mnist", True, False), ("fashion-mnist", False, False)]
    assert x.shape == (6, 1, 32, 32) and y.dtype == torch.long
    assert torch.all(x[:, :, 2:30, 2:30] == 1.0) and torch.all(x[:, :, 0] == -1.0)


def test_load_dataset_unknown_name():
    with pytest.raises(ValueError, match=r"name must be one of 'mnist-subset', 'mnist', 'fashion-mnist', 'cifar10', got 'svhn'"):
        data.load_dataset("svhn")


def test_load_dataset_bad_split():
    with pytest.raises(ValueError, match=r"split must be one of 'train', 'test', 'all', got 'validation'"):
        data.load_dataset("mnist-subset", split="validation")


def test_load_dataset_cifar_pad_rejected():
    with pytest.raises(ValueError, match=r"cifar10 is already 32×32: use pad=False"):
        data.load_dataset("cifar10", pad=True)


# ----------------------------------------------------------------------------- toy sets
@pytest.mark.parametrize("name", ["gmm", "moons", "swiss_roll"])
def test_toy_shape_determinism_and_spread(name):
    x = data.toy_dataset(name, 2000, seed=3)
    assert x.shape == (2000, 2) and x.dtype == torch.float32
    assert torch.equal(x, data.toy_dataset(name, 2000, seed=3))
    assert not torch.equal(x, data.toy_dataset(name, 2000, seed=4))
    spread = x.std(0)
    assert torch.all(spread > 0.5) and torch.all(spread < 2.0)
    assert x.abs().max() < 5


def test_toy_mixture_is_the_ring():
    mix = data.toy_mixture()
    ring = GaussianMixture.ring()
    assert isinstance(mix, GaussianMixture)
    assert torch.equal(mix.means, ring.means) and torch.equal(mix.stds, ring.stds)


def test_gmm_samples_match_mixture_statistics():
    mix = data.toy_mixture()
    x = data.toy_dataset("gmm", 40_000, seed=0).double()
    # mean 0, covariance (r²/2 + s²) I for a ring of equal components
    r, s = mix.means.norm(dim=1)[0], mix.stds[0]
    assert torch.allclose(x.mean(0), torch.zeros(2, dtype=torch.float64), atol=0.03)
    cov = torch.cov(x.T)
    assert torch.allclose(cov, (r ** 2 / 2 + s ** 2) * torch.eye(2, dtype=torch.float64), atol=0.05)
    # each point lies near a component, and every component gets about 1/8 of the points
    nearest = torch.cdist(x, mix.means).argmin(1)
    assert torch.all(torch.cdist(x, mix.means).min(1).values < 6 * s)
    frac = torch.bincount(nearest, minlength=8).double() / len(x)
    assert torch.allclose(frac, torch.full((8,), 1 / 8, dtype=torch.float64), atol=0.01)
    # average log-likelihood under the mixture matches the mixture's own samples
    ref = mix.sample(40_000, generator=torch.Generator().manual_seed(1))
    assert abs(float(mix.log_prob(x).mean() - mix.log_prob(ref).mean())) < 0.05


def test_toy_unknown_name():
    with pytest.raises(ValueError, match=r"name must be one of 'gmm', 'moons', 'swiss_roll', got 'circles'"):
        data.toy_dataset("circles", 10)


def test_toy_bad_n():
    with pytest.raises(ValueError, match=r"n must be in \[1, inf\], got 0"):
        data.toy_dataset("gmm", 0)


def test_toy_bad_seed():
    with pytest.raises(ValueError, match=r"seed must be a non-negative int, got -1"):
        data.toy_dataset("moons", 10, seed=-1)


def test_to_unit_rejects_integer_tensor():
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor"):
        data.to_unit(torch.zeros(3, dtype=torch.uint8))
