"""The ODE view (section 4.3): DDIM is Euler in σ, and second-order solvers converge as 1/S²,
measured against an independent RK4 solution of the probability-flow ODE for the exact model."""
import math

import pytest
import torch

import ddim_edu as de
from reference import fit_slope, pf_ode_rk4

STEPS = [10, 20, 40, 80, 160]


@pytest.fixture(scope="module")
def problem(sched, mixture):
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sigma_max = de.diffusion.sigma_from_alpha_bar(sched.alpha_bar_at(999))
    exact = pf_ode_rk4(mixture, x_T, sigma_max, n_steps=1000)
    assert (exact - pf_ode_rk4(mixture, x_T, sigma_max, n_steps=500)).abs().max() < 1e-7  # reference converged
    return mixture.eps_model(sched), x_T, exact


def _errors(solver, problem, sched):
    model, x_T, exact = problem
    errs = []
    for S in STEPS:
        grid = torch.round(torch.linspace(0, 999, S)).long()   # every S starts at t = 999
        x = solver(model, x_T, sched, timesteps=grid, progress=False)
        errs.append((x - exact).norm(dim=1).mean().item())
    return errs


def test_change_of_variables(sched):
    ab = sched.alpha_bar_at(300)
    sigma = de.diffusion.sigma_from_alpha_bar(ab)
    assert de.diffusion.alpha_bar_from_sigma(sigma) == pytest.approx(ab)
    x = torch.randn(3, 2, dtype=torch.float64)
    assert torch.allclose(de.diffusion.from_xbar(de.diffusion.to_xbar(x, ab), ab), x)
    assert torch.allclose(de.diffusion.to_xbar(x, ab) / math.sqrt(sigma ** 2 + 1), x)


@pytest.mark.parametrize("skip", ["uniform", "quadratic"])
def test_ddim_is_euler_in_sigma(sched, mixture, device, skip):
    """Eq. (13): the DDIM update and an Euler step of eq. (14) are the same numbers."""
    model = mixture.eps_model(sched)
    x_T = torch.randn(128, 2, dtype=torch.float64).to(device)
    a = de.ddim_sample(model, x_T, sched, steps=25, skip=skip, progress=False)
    b = de.euler_sample(model, x_T, sched, steps=25, skip=skip, progress=False)
    assert torch.allclose(a, b, atol=1e-10)


def test_ddim_error_falls_as_one_over_s(problem, sched):
    errs = _errors(de.ddim_sample, problem, sched)
    assert -1.3 < fit_slope(STEPS, errs) < -0.8, errs


@pytest.mark.parametrize("solver", [de.heun_sample, de.dpmpp_2m_sample])
def test_second_order_error_falls_as_one_over_s_squared(problem, sched, solver):
    errs = _errors(solver, problem, sched)
    # the asymptotic regime (the finer grids) shows the order; the coarse grids may be pre-asymptotic
    assert fit_slope(STEPS[2:], errs[2:]) < -1.7, errs
    assert errs[-1] < _errors(de.ddim_sample, problem, sched)[-1] / 2


@pytest.mark.parametrize("solver, nfe", [(de.euler_sample, lambda S: S), (de.heun_sample, lambda S: 2 * S - 1),
                                         (de.dpmpp_2m_sample, lambda S: S)])
def test_nfe(sched, mixture, solver, nfe):
    model = mixture.eps_model(sched)
    solver(model, torch.zeros(4, 2, dtype=torch.float64), sched, steps=12, progress=False)
    assert model.calls == nfe(12)


def test_solver_trajectory(sched, mixture):
    x, traj = de.heun_sample(mixture.eps_model(sched), torch.randn(4, 2, dtype=torch.float64), sched,
                             steps=4, progress=False, return_trajectory=True)
    assert traj.timesteps == [750, 500, 250, 0, -1] and torch.equal(traj.xs[-1], x)


def test_solvers_reject_bad_steps(sched, mixture):
    with pytest.raises(ValueError, match=r"steps must be in \[1, 1000\]"):
        de.heun_sample(mixture.eps_model(sched), torch.zeros(2, 2), sched, steps=0)
