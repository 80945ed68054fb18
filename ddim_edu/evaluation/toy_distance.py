r"""How far samples are from a known Gaussian mixture: an exact, cheap distance for the 2-D toy.

On the analytic mixture (:class:`~ddim_edu.diffusion.analytic.GaussianMixture`) the noise
predictor is exact, so the only error left in a sampler's output is the sampler's own. This
module measures that error as the squared maximum mean discrepancy (MMD², Gretton et al. 2012,
JMLR) between the samples x_1..x_n and the mixture p itself, with the Gaussian kernel
k(x, y) = exp(−|x − y|² / (2ℓ²)) of bandwidth ℓ:

    MMD² = E k(x, x') − 2 E k(x, y) + E k(y, y'),   x, x' ~ samples' law, y, y' ~ p.

The two expectations under p are Gaussian integrals, known in closed form for a mixture with
components N(μ_c, s_c² I) in d dimensions:

    m(x) = E_y k(x, y) = Σ_c w_c (ℓ² / (ℓ² + s_c²))^{d/2} exp(−|x − μ_c|² / (2(ℓ² + s_c²))),
    E k(y, y') = Σ_{c,c'} w_c w_c' (ℓ² / (ℓ² + s_c² + s_c'²))^{d/2} exp(−|μ_c − μ_c'|² / (2(ℓ² + s_c² + s_c'²))).

Only the first term needs the samples: the unbiased U-statistic Σ_{i≠j} k(x_i, x_j) / (n(n−1)).
So the estimate is unbiased (≈ 0, possibly < 0, for exact samples of p) and has no reference-set
noise. Its standard error is the first-order (Hoeffding) one of a one-sample U-statistic,
2·sd(u_i)/√n with u_i = Σ_{j≠i} k(x_i, x_j)/(n−1) − m(x_i). ℓ sets the scale the distance sees:
about the components' width makes it sensitive to how sharp the modes are.

:func:`sampler_grid_distances` runs DDIM (``de.ddim_sample``, η and S) with the mixture's exact
ε on n fresh draws of x_T per cell and returns each cell's distance with its error.
"""
from __future__ import annotations

import math

import torch

from ..validation import check_float, check_int
from .kernel import Estimate

__all__ = ["mixture_mmd", "sampler_grid_distances"]


def _kernel_row_means(x: torch.Tensor, bandwidth: float, chunk: int = 1024) -> torch.Tensor:
    """Σ_{j≠i} k(x_i, x_j) / (n − 1) for each i, in row blocks (no n × n matrix at once)."""
    n = x.shape[0]
    out = []
    for i in range(0, n, chunk):
        block = torch.cdist(x[i:i + chunk], x).pow_(2).mul_(-0.5 / bandwidth ** 2).exp_()   # in place: less memory
        rows = torch.arange(block.shape[0])
        block[rows, rows + i] = 0.0
        out.append(block.sum(1) / (n - 1))
    return torch.cat(out)


def _expected_kernel(x: torch.Tensor, mixture, bandwidth: float) -> torch.Tensor:
    """m(x_i) = E_{y ~ mixture} k(x_i, y), in closed form (module docstring)."""
    d, l2 = x.shape[1], bandwidth ** 2
    v = l2 + mixture.stds ** 2                                                  # [K]
    sq = torch.cdist(x, mixture.means).pow(2)                                   # [n, K]
    return (mixture.weights * (l2 / v) ** (d / 2) * torch.exp(-sq / (2 * v))).sum(1)


def _expected_kernel_pp(mixture, bandwidth: float) -> float:
    """E k(y, y') for two independent draws of the mixture, in closed form."""
    d, l2, s2 = mixture.dim, bandwidth ** 2, mixture.stds ** 2
    v = l2 + s2[:, None] + s2[None, :]
    sq = torch.cdist(mixture.means, mixture.means).pow(2)
    w = mixture.weights[:, None] * mixture.weights[None, :]
    return float((w * (l2 / v) ** (d / 2) * torch.exp(-sq / (2 * v))).sum())


def mixture_mmd(x: torch.Tensor, mixture, bandwidth: float = 0.1) -> Estimate:
    """Unbiased MMD² between samples ``x`` [n, d] (n >= 3) and the Gaussian ``mixture`` itself.

    Gaussian kernel of bandwidth ``bandwidth`` (> 0); computed in float64 on the CPU. Returns an
    :class:`~ddim_edu.evaluation.kernel.Estimate` (value ± standard error, n). ≈ 0 within its error
    for exact samples of the mixture; larger is farther. Raises TypeError/ValueError naming ``x``
    or ``bandwidth``."""
    bandwidth = check_float("bandwidth", bandwidth, lo=0.0, lo_open=True)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point torch.Tensor of samples [n, d], got {type(x).__name__}"
                        + (f" of {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    if x.dim() != 2 or x.shape[1] != mixture.dim or x.shape[0] < 3:
        raise ValueError(f"x must have shape [n, {mixture.dim}] with n >= 3, got {tuple(x.shape)}")
    x = x.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x must be finite, but it contains nan or inf")
    n = x.shape[0]
    r, m = _kernel_row_means(x, bandwidth), _expected_kernel(x, mixture, bandwidth)
    value = float(r.mean() - 2 * m.mean()) + _expected_kernel_pp(mixture, bandwidth)
    u = r - m
    return Estimate(value=value, stderr=float(2 * u.std() / math.sqrt(n)), n=n)


def sampler_grid_distances(mixture, schedule, etas, steps, n: int, generator: torch.Generator,
                           bandwidth: float = 0.1, return_samples: bool = False):
    """Distance to the mixture of DDIM samples with its exact ε, for every (η, S) cell.

    Each cell draws its own n x_T ~ N(0, I) (float64) from ``generator`` and samples with
    ``de.ddim_sample(exact_eps_model, x_T, schedule, steps=S, eta=η, generator=generator)``, so
    cells are independent and their errors add in quadrature. Returns {(η, S): Estimate}
    (and {(η, S): samples} too with ``return_samples``)."""
    from ..diffusion.samplers import ddim_sample
    n = check_int("n", n, lo=3)
    model = mixture.eps_model(schedule)
    dist, samples = {}, {}
    for eta in etas:
        for S in steps:
            x_T = torch.randn(n, mixture.dim, generator=generator, dtype=torch.float64)
            with torch.no_grad():
                x = ddim_sample(model, x_T, schedule, steps=S, eta=eta, generator=generator, progress=False)
            dist[eta, S] = mixture_mmd(x, mixture, bandwidth)
            samples[eta, S] = x
    return (dist, samples) if return_samples else dist
