"""The published numbers the course quotes, from Song, Meng & Ermon, "Denoising Diffusion
Implicit Models" (ICLR 2021, arXiv 2010.02502), in one place and one key convention.

Rows of Table 1 are keyed by η as the benchmarks and the ``results/`` files write it — ``"0"``,
``"0.2"``, ``"0.5"``, ``"1"`` — and ``"hat"`` for the σ̂ row (DDPM's larger variance, appendix
D.3); every row and Table 2 map the number of steps S (an int) to the value, in increasing S::

    de.course.paper.TABLE1_CIFAR10_FID["1"][10]   # 41.07
    de.course.paper.TABLE2_CIFAR10_MSE[20]        # 0.0065
"""
from __future__ import annotations

TABLE1_STEPS = (10, 20, 50, 100, 1000)
"""The columns of Table 1: the number of sampling steps S (dim(τ))."""

TABLE1_CIFAR10_FID = {
    eta: dict(zip(TABLE1_STEPS, fids)) for eta, fids in {
        "0": (13.36, 6.84, 4.67, 4.16, 4.04),          # η = 0: DDIM
        "0.2": (14.04, 7.11, 4.77, 4.25, 4.09),
        "0.5": (16.66, 8.35, 5.25, 4.46, 4.29),
        "1": (41.07, 18.36, 8.01, 5.78, 4.73),         # η = 1: DDPM's posterior variance β̃
        "hat": (367.43, 133.37, 32.72, 9.99, 3.17),    # σ̂: the "DDPM" row
    }.items()}
"""Table 1, CIFAR-10 32×32: FID of 50,000 samples (lower is better), {η key: {S: FID}}."""

TABLE2_CIFAR10_MSE = {10: 0.014, 20: 0.0065, 50: 0.0023, 100: 0.0009, 200: 0.0004, 500: 0.0001, 1000: 0.0001}
"""Table 2, CIFAR-10 test set: per-dimension MSE on [0, 1] after encoding x_0 → x_T and decoding
back with S steps each, {S: MSE}."""
