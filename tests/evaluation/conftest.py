"""Fixtures shared by the evaluation tests: held-out digits and an untrained (seeded) classifier."""
import pytest
import torch

from ddim_edu.data import load_mnist
from ddim_edu.evaluation.classifier import MNISTClassifier


@pytest.fixture(scope="session")
def held_out_digits():
    """The first 300 held-out MNIST digits and their labels."""
    x, y = load_mnist("test")
    return x[:300], y[:300]


@pytest.fixture(scope="session")
def random_classifier():
    """An untrained classifier with fixed weights: features that depend on the input, no checkpoint."""
    torch.manual_seed(0)
    return MNISTClassifier().eval()
