"""Helpers used only by the tests. The exact ODE solution they compare samplers with is
``GaussianMixture.ode_solution`` (RK4 on DDIM eq. 14, independent of the samplers)."""
import math

import torch


def fit_slope(xs, ys):
    """Least-squares slope of log y against log x (the empirical order of convergence)."""
    lx = torch.tensor([math.log(v) for v in xs], dtype=torch.float64)
    ly = torch.tensor([math.log(v) for v in ys], dtype=torch.float64)
    lx, ly = lx - lx.mean(), ly - ly.mean()
    return float((lx * ly).sum() / (lx * lx).sum())
