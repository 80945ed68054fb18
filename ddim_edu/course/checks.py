"""Self-checks for the notebook exercises (in the style of Kaggle's learntools)::

    from ddim_edu.course.checks import ex03
    ex03.sigma.check(my_sigma)     # prints "✓ correct" or the failing case, expected vs got, a hint
    ex03.sigma.hint()
    ex03.sigma.solution()          # prints the reference implementation (ddim_edu.course.solutions)

A check runs your function against the tested package on random inputs and edge cases
(t = 0, the last step t_prev = −1, η = 0 and 1, float64, a batch of one). It never raises:
a stub that still raises ``NotImplementedError`` is "not attempted", a crash is a failure.
Each verdict also prints ``[ddim_edu.check] exNN.name: pass|fail|not-attempted`` for the grader.
The exercises of notebooks 01–03 are defined here, those of 04–06 in :mod:`ddim_edu.course.checks_ode`.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from . import solutions as sol
from .engine import COS, LIN, Case, CheckResult, Exercise
from .engine import alpha_bar_by_index as _ab
from .engine import seeded_randn as _randn
from .checks_ode import ex04, ex05, ex06
from ..nets.models import timestep_embedding
from ..diffusion.samplers import ddim_sigma, ddim_step
from ..diffusion.schedule import NoiseSchedule
from ..train.trainer import diffusion_loss

__all__ = ["ex01", "ex02", "ex03", "ex04", "ex05", "ex06", "ALL", "Exercise", "CheckResult"]


class _ToyEps(torch.nn.Module):
    """A fixed, cheap ε-model that depends on x and t (for checking losses)."""
    def forward(self, x, t):
        return 0.7 * torch.tanh(x) + (t.to(x.dtype) / 1000).reshape(-1, *([1] * (x.dim() - 1)))


# ============================================================================= notebook 01
ex01 = SimpleNamespace(
    alpha_bar=Exercise(
        "ex01.alpha_bar", lambda b: torch.cumprod(1 - b, 0), solution=sol.alpha_bar, rtol=1e-10, atol=1e-14,
        cases=lambda: [Case("linear schedule, T = 1000", (LIN.betas,)), Case("cosine schedule", (COS.betas,)),
                       Case("a single step, T = 1", (torch.tensor([0.3], dtype=torch.float64),))],
        mistakes=[(lambda b: torch.cumprod(b, 0), "you multiplied the β's; ᾱ is the product of (1 − β_s)"),
                  (lambda b: torch.cumsum(1 - b, 0), "that is a running sum; ᾱ is a running product"),
                  (lambda b: torch.cat([b.new_ones(1), torch.cumprod(1 - b, 0)[:-1]]),
                   "off by one: the product runs over s ≤ t, so ᾱ_0 = 1 − β_0, not 1")],
        hint="ᾱ_t = ∏_{s ≤ t} (1 − β_s): torch.cumprod(1 - betas, dim=0), or a loop that multiplies as it goes."),
    q_sample=Exercise(
        "ex01.q_sample", lambda x0, t, n, s: s.q_sample(x0, t, n), solution=sol.q_sample,
        cases=lambda: [
            Case("images [5, 1, 8, 8], t = [0, 7, 120, 640, 999], float64",
                 (_randn(5, 1, 8, 8), torch.tensor([0, 7, 120, 640, 999]), _randn(5, 1, 8, 8, seed=1), LIN)),
            Case("batch of one at t = 0", (_randn(1, 1, 4, 4), torch.tensor([0]), _randn(1, 1, 4, 4, seed=2), LIN)),
            Case("2-D points [4, 2], float32, cosine schedule", (_randn(4, 2, dtype=torch.float32),
                 torch.tensor([999, 500, 3, 250]), _randn(4, 2, seed=3, dtype=torch.float32), COS))],
        mistakes=[(lambda x0, t, n, s: sol.q_sample(n, t, x0, s),
                   "√ᾱ and √(1 − ᾱ) are swapped: √ᾱ_t multiplies x_0, √(1 − ᾱ_t) multiplies ε"),
                  (lambda x0, t, n, s: (lambda a: a * x0 + (1 - a) * n)(
                      s.alpha_bar.to(x0.dtype)[t].reshape(-1, *([1] * (x0.dim() - 1)))),
                   "the coefficients need square roots: √ᾱ_t and √(1 − ᾱ_t)"),
                  (lambda x0, t, n, s: sol.q_sample(x0, t[:1].expand_as(t), n, s),
                   "every example used t[0]: index ᾱ with the whole t and reshape to [B, 1, 1, ...]")],
        hint="index ᾱ with t (shape [B]), reshape to [B, 1, …, 1] so it broadcasts, then √ᾱ·x0 + √(1−ᾱ)·noise."),
    posterior_variance=Exercise(
        "ex01.posterior_variance", lambda ab, b: NoiseSchedule(b).posterior_variance[1:],
        solution=sol.posterior_variance, rtol=1e-10, atol=1e-14,
        cases=lambda: [Case("linear schedule", (LIN.alpha_bar, LIN.betas)),
                       Case("cosine schedule", (COS.alpha_bar, COS.betas)),
                       Case("linear schedule, T = 10", (NoiseSchedule.linear(T=10).alpha_bar,
                                                        NoiseSchedule.linear(T=10).betas))],
        mistakes=[(lambda ab, b: (1 - ab[1:]) / (1 - ab[:-1]) * b[1:],
                   "the ratio is upside down: (1 − ᾱ_{t−1}) / (1 − ᾱ_t)"),
                  (lambda ab, b: (1 - ab[:-1]) / (1 - ab[1:]),
                   "you left out the factor β_t"),
                  (lambda ab, b: (1 - ab[:-1]) / (1 - ab[1:]) * b[:-1],
                   "β is off by one: use β_t = betas[1:], paired with ᾱ_t = alpha_bar[1:]")],
        hint="for t = 1 … T−1, ᾱ_{t−1} is alpha_bar[:-1], ᾱ_t is alpha_bar[1:], β_t is betas[1:] (length T − 1)."),
)

# ============================================================================= notebook 02
def _ema_adapt(fn):
    def run(ema_params, params, decay):
        fn(ema_params, params, decay)
        return ema_params
    return run


def _ema_ref(ema_params, params, decay):
    return [decay * e + (1 - decay) * p for e, p in zip(ema_params, params)]


def _ema_cases():
    e, p = [_randn(3, 4), _randn(3, seed=1)], [_randn(3, 4, seed=2), _randn(3, seed=3)]
    return [Case(f"two tensors, decay {d}", (e, p, d)) for d in (0.8, 0.999, 0.0, 1.0)]


ex02 = SimpleNamespace(
    loss=Exercise(
        "ex02.loss", lambda m, x0, t, n, s: diffusion_loss(m, x0, s, t=t, noise=n), solution=sol.loss,
        rtol=1e-4, atol=1e-7,
        cases=lambda: [
            Case("2-D points [64, 2]", (_ToyEps(), _randn(64, 2, dtype=torch.float32),
                                        torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(4)),
                                        _randn(64, 2, seed=5, dtype=torch.float32), LIN)),
            Case("images [3, 1, 8, 8], float64", (_ToyEps(), _randn(3, 1, 8, 8), torch.tensor([0, 500, 999]),
                                                  _randn(3, 1, 8, 8, seed=6), LIN)),
            Case("batch of one at t = 0", (_ToyEps(), _randn(1, 2), torch.tensor([0]), _randn(1, 2, seed=7), LIN))],
        mistakes=[(lambda m, x0, t, n, s: (m(x0, t) - n).pow(2).mean(),
                   "the model saw x_0: feed it the noisy x_t = √ᾱ x_0 + √(1 − ᾱ) ε"),
                  (lambda m, x0, t, n, s: (m(s.q_sample(x0, t, n), t) - x0).pow(2).mean(),
                   "the target is the noise ε, not x_0"),
                  (lambda m, x0, t, n, s: (m(s.q_sample(x0, t, n), t) - n).pow(2).sum(),
                   "you summed the squared errors: L_simple is their mean over batch and dimensions"),
                  (lambda m, x0, t, n, s: (m(s.q_sample(x0, t, n), t) - n).pow(2).sum(-1).mean(),
                   "average over every dimension too, not only over the batch")],
        hint="x_t = √ᾱ_t x0 + √(1−ᾱ_t) noise (ᾱ indexed by t and reshaped), then ((model(x_t, t) − noise)²).mean()."),
    embedding=Exercise(
        "ex02.embedding", timestep_embedding, solution=sol.timestep_embedding, rtol=1e-4, atol=1e-4,
        cases=lambda: [Case("t = [0, 1, 17, 500, 999], dim 32", (torch.tensor([0, 1, 17, 500, 999]), 32)),
                       Case("batch of one at t = 0, dim 2", (torch.tensor([0]), 2)),
                       Case("t = [3, 999], dim 128", (torch.tensor([3, 999]), 128))],
        mistakes=[(lambda t, d: timestep_embedding(t, d).roll(d // 2, 1), "sines first, then cosines"),
                  (lambda t, d: (lambda a: torch.cat([a.sin(), a.cos()], 1))(
                      t.float()[:, None] * torch.exp(-math.log(10000) * torch.arange(d // 2) / d)[None]),
                   "the exponent is k/(dim/2), not k/dim: ω_k = 10000^(−k/half)")],
        hint="half = dim // 2; ω_k = exp(−ln(10000)·k/half) for k < half; cat([sin(t ω), cos(t ω)], dim=1)."),
    ema=Exercise(
        "ex02.ema", _ema_ref, solution=sol.ema_update, adapt=_ema_adapt, cases=_ema_cases,
        mistakes=[(lambda e, p, d: [d * pi + (1 - d) * ei for ei, pi in zip(e, p)],
                   "the weights are swapped: the EMA keeps d of its own value, θ̄ ← d θ̄ + (1 − d) θ"),
                  (lambda e, p, d: e, "the EMA tensors did not change: update them in place "
                                      "(e.mul_(d).add_(p, alpha=1 − d)), rebinding a name has no effect")],
        hint="for e, p in zip(ema_params, params): e.mul_(decay).add_(p, alpha=1 - decay)"),
)

# ============================================================================= notebook 03
_PAIRS = [(420, 400), (980, 960), (487, 486), (999, 998), (999, 0), (50, -1), (0, -1)]


def _step_cases(etas, pairs=((900, 700), (100, -1), (0, -1), (1, 0))):
    out = []
    for t, tp in pairs:
        for eta in etas:
            out.append(Case(f"{t} → {tp}, η = {eta}, [3, 1, 8, 8] float64", (_randn(3, 1, 8, 8), _randn(
                3, 1, 8, 8, seed=1), t, tp, LIN, eta, _randn(3, 1, 8, 8, seed=2))))
    out.append(Case("900 → 850, η = 1, batch of one, float32", (_randn(1, 2, dtype=torch.float32), _randn(
        1, 2, seed=3, dtype=torch.float32), 900, 850, COS, 1.0, _randn(1, 2, seed=4, dtype=torch.float32))))
    return out


def _step_wrong(dir_sig2=True, last_one=True, noise=True):
    def step(x, e, t, tp, s, eta, z):
        ab, abp = s.alpha_bar_at(t), (s.alpha_bar_at(tp) if last_one else _ab(s, tp))
        sig = ddim_sigma(ab, abp, eta) if eta else 0.0
        x0 = (x - math.sqrt(1 - ab) * e) / math.sqrt(ab)
        return math.sqrt(abp) * x0 + math.sqrt(max(1 - abp - dir_sig2 * sig ** 2, 0)) * e + noise * sig * z
    return step


def _sigma_hat_dir_wrong(x, e, t, tp, s, z):
    """σ̂ step with σ̂² (instead of σ(1)²) in the ε coefficient."""
    ab, abp = s.alpha_bar_at(t), s.alpha_bar_at(tp)
    s_hat = math.sqrt(1 - ab / abp) if tp >= 0 else 0.0
    x0 = (x - math.sqrt(1 - ab) * e) / math.sqrt(ab)
    return math.sqrt(abp) * x0 + math.sqrt(max(1 - abp - s_hat ** 2, 0.0)) * e + s_hat * z


ex03 = SimpleNamespace(
    sigma=Exercise(
        "ex03.sigma", ddim_sigma, solution=sol.sigma, rtol=1e-9, atol=1e-12,
        cases=lambda: [Case(f"{t} → {tp}, η = {eta}", (LIN.alpha_bar_at(t), LIN.alpha_bar_at(tp), eta))
                       for t, tp in _PAIRS for eta in (1.0, 0.0, 0.3)],
        mistakes=[(lambda a, ap, eta: eta * (1 - ap) / (1 - a) * math.sqrt(1 - a / ap),
                   "the first factor needs its square root: √((1 − ᾱ')/(1 − ᾱ_t))"),
                  (lambda a, ap, eta: ddim_sigma(a, ap, eta) ** 2, "that is σ², the variance; return σ"),
                  (lambda a, ap, eta: eta * math.sqrt((1 - a) / (1 - ap)) * math.sqrt(1 - a / ap),
                   "the first ratio is upside down: (1 − ᾱ') over (1 − ᾱ_t), ᾱ' being the less noisy step")],
        hint="σ = η · √((1 − ᾱ')/(1 − ᾱ_t)) · √(1 − ᾱ_t/ᾱ') with ᾱ' = alpha_bar_prev; η = 0 gives 0."),
    ddim_step=Exercise(
        "ex03.ddim_step", lambda *a: ddim_step(*a)[0], solution=[sol.sigma, sol.ddim_step],
        cases=lambda: _step_cases((0.0, 0.5, 1.0)),
        mistakes=[(_step_wrong(dir_sig2=False), "the direction term is √(1 − ᾱ' − σ²) ε: you left out −σ²"),
                  (_step_wrong(last_one=False), "the last step (t_prev = −1) goes to ᾱ = 1: use "
                                                "sched.alpha_bar_at(t_prev), not sched.alpha_bar[t_prev]"),
                  (_step_wrong(noise=False), "the noise term σ z is missing")],
        hint="x̂0 = (x_t − √(1−ᾱ_t) ε)/√ᾱ_t; then √ᾱ' x̂0 + √(1 − ᾱ' − σ²) ε + σ z, ᾱ' = sched.alpha_bar_at(t_prev)."),
    sigma_hat_step=Exercise(
        "ex03.sigma_hat_step", lambda x, e, t, tp, s, z: ddim_step(x, e, t, tp, s, 1.0, z, variance="sigma_hat")[0],
        solution=[sol.sigma, sol.sigma_hat_step],
        cases=lambda: [Case(c.label.replace(", η = 1.0", ""), c.args[:5] + c.args[6:]) for c in _step_cases((1.0,))],
        mistakes=[(lambda x, e, t, tp, s, z: ddim_step(x, e, t, tp, s, 1.0, z)[0],
                   "that is the η = 1 step; σ̂ = √(1 − ᾱ_t/ᾱ') is larger than σ(1)"),
                  (lambda x, e, t, tp, s, z: sol.sigma_hat_step(x, e, t, tp, s, z) + (
                      tp < 0) * math.sqrt(1 - s.alpha_bar_at(t)) * z, "no noise on the last step (t_prev = −1)"),
                  (_sigma_hat_dir_wrong,
                   "the ε coefficient stays √(1 − ᾱ' − σ(1)²), with σ(1) of eq. (16), not σ̂")],
        hint="noise σ̂ = √(1 − ᾱ_t/ᾱ') (0 when t_prev = −1), direction √(1 − ᾱ' − σ(1)²) with σ(1) = ddim_sigma(·, ·, 1)."),
)

ALL = {f"{ns_name}.{k}": ex for ns_name, ns in
       [("ex01", ex01), ("ex02", ex02), ("ex03", ex03), ("ex04", ex04), ("ex05", ex05), ("ex06", ex06)]
       for k, ex in vars(ns).items()}
