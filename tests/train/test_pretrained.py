"""The shipped weights do what the course promises: legible digits in seconds on a CPU, and a
2-D model that has learned the toy mixture (checked against the mixture itself)."""

import pytest
import torch

import ddim_edu as de

needs = pytest.mark.skipif(not {"mnist", "toy"} <= set(de.available_pretrained()),
                           reason="shipped weights missing: see checkpoints/README.md")


@needs
def test_mnist_ddim20_digits_are_recognised():
    model, sched = de.load_pretrained("mnist")
    x_T = torch.randn(16, 1, 28, 28, generator=de.env.generator(0))
    x0 = de.ddim_sample(model, x_T, sched, steps=20, progress=False)
    assert x0.shape == (16, 1, 28, 28) and torch.isfinite(x0).all()
    classifier = de.evaluation.load_classifier()
    with torch.no_grad():
        probs = classifier(x0.clamp(-1, 1)).softmax(1)
    # the classifier is trained with label smoothing: 84% of real held-out digits get p > 0.9
    confident = (probs.max(1).values > 0.7).sum().item()
    assert confident >= 8, f"only {confident} of 16 samples are recognised as digits with probability > 0.7"
    assert len(set(probs.argmax(1).tolist())) >= 4, "samples should cover several classes"


@needs
def test_mnist_samples_look_like_data_not_noise():
    """Background pixels dominate real digits: samples must share that (noise would not)."""
    model, sched = de.load_pretrained("mnist")
    x0 = de.ddim_sample(model, torch.randn(8, 1, 28, 28, generator=de.env.generator(1)), sched, steps=10,
                        progress=False)
    real, _ = de.data.load_mnist("test")
    frac = lambda x: (x < -0.9).float().mean().item()  # noqa: E731
    assert abs(frac(x0) - frac(real)) < 0.1


@needs
def test_toy_model_learned_the_ring():
    model, sched = de.load_pretrained("toy")
    mixture = de.data.toy_mixture()
    x0 = de.ddim_sample(model, torch.randn(2000, 2, generator=de.env.generator(0)), sched, steps=50,
                        progress=False)
    radius = mixture.means.norm(dim=1).mean().item()
    assert abs(x0.norm(dim=1).median().item() - radius) < 0.1
    labels = ((x0.double()[:, None] - mixture.means[None]) ** 2).sum(-1).argmin(1)
    counts = torch.bincount(labels, minlength=len(mixture.means)).double() / len(x0)
    K = len(mixture.means)
    assert (counts - 1 / K).abs().max() < 0.05, counts
    # most samples lie on a mode, as the data do
    assert mixture.log_prob(x0.double()).median() > mixture.log_prob(mixture.sample(2000)).median() - 1.0
