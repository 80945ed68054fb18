"""Independent references used only by the tests: an RK4 solver of the probability-flow ODE
for the Gaussian mixture, written from the ODE (DDIM eq. 14) without the package's solvers."""
import math

import torch


def pf_ode_rk4(mixture, x_start, sigma_start, n_steps=4000, rho=3.0):
    """Solve dx̄/dσ = ε*(x̄/√(σ²+1), ᾱ = 1/(1+σ²)) from σ_start down to σ = 0 with classical
    RK4 on a grid σ_k = σ_start·(1 − k/n)^ρ (dense near σ = 0). Returns x at σ = 0."""
    def f(xbar, sigma):
        ab = 1.0 / (1.0 + sigma ** 2)
        return mixture.eps(xbar * math.sqrt(ab), ab)

    xbar = x_start * math.sqrt(1 + sigma_start ** 2)
    grid = [sigma_start * (1 - k / n_steps) ** rho for k in range(n_steps + 1)]
    for s0, s1 in zip(grid[:-1], grid[1:]):
        h = s1 - s0
        k1 = f(xbar, s0)
        k2 = f(xbar + 0.5 * h * k1, s0 + 0.5 * h)
        k3 = f(xbar + 0.5 * h * k2, s0 + 0.5 * h)
        k4 = f(xbar + h * k3, s1)
        xbar = xbar + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return xbar


def fit_slope(xs, ys):
    """Least-squares slope of log y against log x (the empirical order of convergence)."""
    lx = torch.tensor([math.log(v) for v in xs], dtype=torch.float64)
    ly = torch.tensor([math.log(v) for v in ys], dtype=torch.float64)
    lx, ly = lx - lx.mean(), ly - ly.mean()
    return float((lx * ly).sum() / (lx * lx).sum())
