import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("DDIM_EDU_OFFLINE", "1")

import ddim_edu as de  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture(scope="session")
def sched():
    return de.NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)


@pytest.fixture(scope="session")
def mixture():
    """Two unequal, overlapping 2-D components: smooth enough for clean convergence orders."""
    return de.GaussianMixture([[1.0, 0.5], [-1.0, -0.5]], [0.4, 0.6], [0.3, 0.7])


@pytest.fixture(scope="session")
def ring():
    """Eight well-separated modes: the classic toy set, for the sample statistics."""
    return de.GaussianMixture.ring(k=8, radius=2.0, std=0.15)
