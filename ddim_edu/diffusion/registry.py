"""The registry of samplers: what each one is, and how many network calls (NFE) it makes for S steps.

Tests, benchmarks and notebooks iterate over :data:`SAMPLERS` instead of naming samplers; a new
sampler is one function following :mod:`.contract` plus one entry here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .ode import dpmpp_2m_sample, dpmpp_3m_sample, euler_sample, heun_sample
from .samplers import ddim_invert, ddim_sample, ddpm_sample


@dataclass(frozen=True)
class SamplerInfo:
    """One sampler. ``nfe(S)``: network evaluations for S steps; ``order``: convergence order to the
    exact ODE solution (None for a stochastic sampler); ``deterministic``: with default options the
    output depends on x alone; ``alias_of``: the registry key of the same algorithm (not rerun by
    comparisons); ``inverts``: maps data to noise (x_0 → x_T) instead of noise to data."""
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


SAMPLERS: dict[str, SamplerInfo] = {
    "ddim": SamplerInfo(ddim_sample, "DDIM (Euler)", _one_call_per_step, 1, True, "DDIM eqs. (12), (16)"),
    "ddpm": SamplerInfo(ddpm_sample, "DDPM (ancestral)", _one_call_per_step, None, False,
                        "DDPM Algorithm 2; on a sub-sequence DDIM eq. (16) with η = 1"),
    "euler": SamplerInfo(euler_sample, "Euler in σ", _one_call_per_step, 1, True, "DDIM eqs. (13)-(14)",
                         alias_of="ddim"),
    "heun": SamplerInfo(heun_sample, "Heun", _heun_calls, 2, True, "Karras et al. 2022, Algorithm 1"),
    "dpmpp_2m": SamplerInfo(dpmpp_2m_sample, "DPM-Solver++(2M)", _one_call_per_step, 2, True,
                            "Lu et al. 2022b, Algorithm 2"),
    "dpmpp_3m": SamplerInfo(dpmpp_3m_sample, "DPM-Solver++(3M)", _one_call_per_step, 3, True,
                            "Lu et al. 2022b, multistep third order"),
    "ddim_invert": SamplerInfo(ddim_invert, "DDIM inversion", _one_call_per_step, 1, True,
                               "DDIM section 4.3 (encoding), Table 2", inverts=True),
}


def ode_solvers() -> dict[str, SamplerInfo]:
    """The distinct deterministic noise → data solvers of the probability-flow ODE (eq. 14), in
    registry order: what a solver comparison runs."""
    return {k: v for k, v in SAMPLERS.items() if v.deterministic and not v.inverts and v.alias_of is None}
