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


@pytest.fixture(scope="session")
def ode_problem(sched, mixture):
    """(exact ε-model, x_T at t = 999 [64, 2] float64, the exact ODE end point): the mixture's
    probability-flow ODE solved by RK4 (``GaussianMixture.ode_solution``), checked converged."""
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sigma_max = de.diffusion.sigma_from_alpha_bar(sched.alpha_bar_at(999))
    exact = mixture.ode_solution(x_T, sigma_max, n_steps=1000)
    assert (exact - mixture.ode_solution(x_T, sigma_max, n_steps=500)).abs().max() < 1e-7  # reference converged
    return mixture.eps_model(sched), x_T, exact
