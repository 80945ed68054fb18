"""The registry of samplers: what each one is, and how many network calls (NFE) it makes for S steps.

Tests, benchmarks and notebooks iterate over :data:`SAMPLERS` instead of naming samplers; a new
sampler is one function following :mod:`.contract` plus one entry here.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from .ode import dpmpp_2m_sample, dpmpp_3m_sample, euler_sample, heun_sample
from .samplers import ddim_invert, ddim_sample, ddpm_sample


@dataclass(frozen=True)
class SamplerInfo:
    """One sampler. ``nfe(S)``: network evaluations for S steps; ``order``: convergence order to the
    exact ODE solution (None for a stochastic sampler); ``deterministic``: with default options the
    output depends on x alone; ``alias_of``: the registry key of the same algorithm (not rerun by
    comparisons); ``inverts``: maps data to noise (x_0 → x_T) instead of noise to data;
    :attr:`default_skip`: the timestep grid it walks unless told otherwise."""
    fn: Callable
    label: str
    nfe: Callable[[int], int]
    order: int | None
    deterministic: bool
    reference: str
    alias_of: str | None = None
    inverts: bool = False

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    @property
    def default_skip(self) -> str | None:
        """The default of the sampler's ``skip`` (``"uniform"``; ``"log_snr"`` for DPM-Solver++,
        whose multistep extrapolation wants even steps in log σ); None if it takes no ``skip``."""
        p = inspect.signature(self.fn).parameters.get("skip")
        return None if p is None else p.default

    def steps_for_nfe(self, nfe: int) -> int:
        """The most steps S with nfe(S) ≤ ``nfe`` (at least 1)."""
        S = 1
        while self.nfe(S + 1) <= nfe:
            S += 1
        return S


def _one_call_per_step(S: int) -> int:
    return S


def _heun_calls(S: int) -> int:
    return 2 * S - 1


class Registry(dict):
    """A dict of samplers whose missing key names the ones it has."""

    def __missing__(self, key):
        raise KeyError(f"no sampler named {key!r}; the registry has {', '.join(map(repr, self))}")


SAMPLERS: Registry = Registry({
    "ddim": SamplerInfo(ddim_sample, "DDIM (Euler)", _one_call_per_step, 1, True, "DDIM eqs. (12), (16)"),
    "ddpm": SamplerInfo(ddpm_sample, "DDPM (ancestral)", _one_call_per_step, None, False,
                        "DDPM Algorithm 2; on a sub-sequence DDIM eq. (16) with η = 1"),
    "euler": SamplerInfo(euler_sample, "Euler in σ", _one_call_per_step, 1, True, "DDIM eqs. (13)-(14)",
                         alias_of="ddim"),
    "heun": SamplerInfo(heun_sample, "Heun", _heun_calls, 2, True, "Karras et al. 2022, Algorithm 1"),
    "dpmpp_2m": SamplerInfo(dpmpp_2m_sample, "DPM-Solver++(2M)", _one_call_per_step, 2, True,
                            "Lu et al. 2022b, Algorithm 2; log-SNR grid, lower order after short steps"),
    "dpmpp_3m": SamplerInfo(dpmpp_3m_sample, "DPM-Solver++(3M)", _one_call_per_step, 3, True,
                            "Lu et al. 2022b, multistep third order; log-SNR grid"),
    "ddim_invert": SamplerInfo(ddim_invert, "DDIM inversion", _one_call_per_step, 1, True,
                               "DDIM section 4.3 (encoding), Table 2", inverts=True),
})


def ode_solvers() -> dict[str, SamplerInfo]:
    """The distinct deterministic noise → data solvers of the probability-flow ODE (eq. 14), in
    registry order: what a solver comparison runs."""
    return {k: v for k, v in SAMPLERS.items() if v.deterministic and not v.inverts and v.alias_of is None}
