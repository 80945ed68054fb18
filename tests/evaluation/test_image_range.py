"""Images in the wrong value range are refused by the metrics (ddim_edu.validation.check_image_range):
[0, 1] or 0–255 images used to give silently wrong classifier-FID (1.9 in [−1, 1], 844 in [0, 1],
334,945 in 0–255 for the same digits), reconstruction MSE and bits/dim."""
from __future__ import annotations

import pytest
import torch

import ddim_edu as de
from ddim_edu.data import load_mnist
from ddim_edu.evaluation.metrics import (classifier_accuracy, classifier_features, classifier_fid, predict_labels,
                                         reconstruction_mse)
from ddim_edu.train.pretrained import checkpoints_dir
from ddim_edu.validation import PIXEL_SCALE_LIMIT, check_image_range


@pytest.fixture(scope="module")
def digits(held_out_digits):
    x, y = held_out_digits
    return x[:64], y[:64]


def _wrong_ranges(x):
    """(label, images, words the message must contain) for the ranges that must be refused."""
    return [("[0, 1]", (x + 1) / 2, r"\[-1, 1\].*2 \* x - 1"),
            ("0-255 float", (x + 1) * 127.5, r"\[-1, 1\].*x / 127.5 - 1"),
            ("0-255 rounded", ((x + 1) * 127.5).round(), r"\[-1, 1\].*x / 127.5 - 1")]


def test_course_data_and_noise_pass(digits):
    x, _ = digits
    full, _ = load_mnist("all")
    for ok in (x, full, load_mnist("test", pad=True)[0], x[:1], torch.rand(16, 1, 28, 28) * 2 - 1,
               torch.full((4, 1, 28, 28), -1.0), torch.zeros(4, 1, 28, 28), (x + 0.5).clamp(-1, 1),
               x * 1.05, x.double(), x.half()):
        assert check_image_range("x", ok) is ok


def test_wrong_ranges_refused(digits):
    x, _ = digits
    for label, bad, msg in _wrong_ranges(x):
        with pytest.raises(ValueError, match=msg):
            check_image_range("x", bad)
        with pytest.raises(ValueError, match=msg):
            check_image_range("x", bad[:1])            # even a single digit
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        check_image_range("x", 3 * x)                   # standardised-looking data beyond ±2


def test_the_encoders_limit_refuses_pixels_and_lets_noise_through(digits):
    """The encoder's check (``limit=PIXEL_SCALE_LIMIT``): 0-255 and [0, 1] digits are refused as by the metrics;
    Gaussian noise and its multiples, which the full check refuses beyond ±2, pass."""
    x, _ = digits
    for label, bad, msg in _wrong_ranges(x):
        with pytest.raises(ValueError, match=msg):
            check_image_range("x", bad, limit=PIXEL_SCALE_LIMIT)
    for ok in (x, torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)), 3 * x):
        assert check_image_range("x", ok, limit=PIXEL_SCALE_LIMIT) is ok
    pixels = (x + 1) * 127.5
    for bad in (2 * pixels - 1, pixels - 127.5, torch.cat([x, pixels[:1]])):   # pixels converted wrongly, or one left
        with pytest.raises(ValueError, match=r"\[-1, 1\]"):
            check_image_range("x", bad, limit=PIXEL_SCALE_LIMIT)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        check_image_range("x", torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("which", range(3))
def test_classifier_metrics_refuse_wrong_range(digits, random_classifier, which):
    x, y = digits
    label, bad, msg = _wrong_ranges(x)[which]
    with pytest.raises(ValueError, match="samples must be images in " + msg):
        classifier_fid(bad, x, classifier=random_classifier)
    with pytest.raises(ValueError, match="reference must be images in " + msg):
        classifier_fid(x, bad, classifier=random_classifier)
    with pytest.raises(ValueError, match="x must be images in " + msg):
        classifier_features(bad, random_classifier)
    with pytest.raises(ValueError, match="x must be images in " + msg):
        predict_labels(bad, random_classifier)
    with pytest.raises(ValueError, match="x must be images in " + msg):
        classifier_accuracy(bad, y, random_classifier)
    with pytest.raises(ValueError, match="x must be images in " + msg):
        reconstruction_mse(bad, bad)
    with pytest.raises(ValueError, match="y must be images in " + msg):
        reconstruction_mse(x, bad)


def test_metrics_still_accept_course_data(digits, random_classifier):
    x, y = digits
    assert classifier_fid(x[:32], x[32:], classifier=random_classifier) > 0
    assert predict_labels(x, random_classifier).shape == (64,)
    assert 0.0 <= classifier_accuracy(x, y, random_classifier) <= 1.0
    assert reconstruction_mse(x, x.flip(0)) > 0


MNIST_MODEL = checkpoints_dir() / "mnist"


@pytest.mark.skipif(not (MNIST_MODEL / "model.safetensors").is_file(), reason="shipped MNIST model not found")
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_model_samples_pass(eta):
    """DDIM-10 samples overshoot ±1 a little (measured on the shipped model: [−1.029, 1.005] for η = 0,
    [−1.038, 1.035] for η = 1); they must pass, and their [0, 1] version must not."""
    torch.manual_seed(0)
    model, sched = de.load_pretrained("mnist")
    g = de.env.generator(0)
    x_T = de.env.randn((4, 1, 28, 28), g)
    s = de.diffusion.samplers.ddim_sample(model, x_T, sched, steps=10, eta=eta, generator=g, progress=False)
    check_image_range("samples", s)
    assert reconstruction_mse(s, s) == 0.0
    with pytest.raises(ValueError, match=r"2 \* x - 1"):
        check_image_range("samples", (s + 1) / 2)
