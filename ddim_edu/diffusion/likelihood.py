r"""The likelihood view: DDPM's variational bound and bits per dimension.

Sohl-Dickstein et al. (2015) trained a diffusion model as a latent-variable model: the reverse
Markov chain p_θ(x_{0:T}) = p(x_T) ∏_t p_θ(x_{t−1} | x_t) is fitted by maximising a bound on
log p_θ(x_0). Ho et al. (2020, eq. 5) write the negative bound as a sum of closed-form terms

    L_vlb = L_T + Σ_{t>1} L_{t−1} + L_0
    L_T     = KL( q(x_T | x_0) ‖ N(0, I) )                                  ("prior")
    L_{t−1} = KL( q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t) ),  x_t ~ q(x_t | x_0)
    L_0     = −log p_θ(x_0 | x_1)                                           ("decoder")

with q(x_{t−1} | x_t, x_0) = N(μ̃_t(x_t, x_0), β̃_t I) (DDPM eq. 7) and p_θ(x_{t−1} | x_t) =
N(μ_θ(x_t, t), σ_t² I), μ_θ = μ̃_t(x_t, x̂_0) = (x_t − β_t/√(1−ᾱ_t) ε_θ) / √α_t (DDPM eq. 11),
σ_t² = β̃_t or β_t (DDPM section 3.2). E_q[L_vlb] ≥ E_q[−log p_θ(x_0)] ≥ H(q(x_0)).

Index convention: code timesteps are t ∈ {0, …, T−1} = DDPM's t − 1. So code t ≥ 1 holds
DDPM's L_{t}, code t = 0 holds the decoder L_0 (−log p_θ(clean x_0 | x at code t = 0)).
There β̃ = 0, so the β̃ option uses β̃ at code t = 1 for the decoder, as Ho et al.'s code does
(``posterior_log_variance_clipped``); the β option keeps σ² = β everywhere, as the paper writes
it (Ho et al.'s code also uses β̃ at code t = 1 there, for "a better decoder likelihood").

For 8-bit images in [−1, 1] the decoder is a discretised Gaussian (DDPM section 3.3, eq. 13):
the probability of the bin [x − 1/255, x + 1/255], with the edge bins extended to ±∞. Bits
per dimension = nats / (D · ln 2), D = numbers per example.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from .. import env
from .schedule import NoiseSchedule
from ..validation import check_choice, check_generator, check_image_range, check_int, check_model_output, \
    check_same_shape, check_tensor, check_timesteps

VARIANCES = ("beta_tilde", "beta")
DECODERS = ("discrete", "gaussian")
BIN = 1.0 / 255.0   # half the width of one 8-bit bin on [−1, 1]


# ----------------------------------------------------------------------------- closed forms
def gaussian_kl(mean1, var1, mean2, var2) -> torch.Tensor:
    r"""KL( N(mean1, var1) ‖ N(mean2, var2) ) per element, in nats (diagonal Gaussians):
    ½ (log(var2/var1) + (var1 + (mean1 − mean2)²)/var2 − 1). Arguments broadcast; variances > 0."""
    m1, v1, m2, v2 = (torch.as_tensor(a) for a in (mean1, var1, mean2, var2))
    for name, v in (("var1", v1), ("var2", v2)):
        if v.numel() and not bool((v > 0).all()):
            raise ValueError(f"{name} must be positive, got minimum {float(v.min())}")
    return 0.5 * (torch.log(v2) - torch.log(v1) + (v1 + (m1 - m2) ** 2) / v2 - 1.0)


def _log_ndtr_diff(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(Φ(b) − Φ(a)) for a < b, stable in both tails (uses Φ(b) − Φ(a) = Φ(−a) − Φ(−b))."""
    flip = a > 0
    lo, hi = torch.where(flip, -b, a), torch.where(flip, -a, b)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return log_hi + torch.log(-torch.expm1(log_lo - log_hi))


def discretized_gaussian_log_likelihood(x0: torch.Tensor, mean: torch.Tensor, var) -> torch.Tensor:
    r"""log p(x0) per element for 8-bit data in [−1, 1] under N(mean, var) integrated over
    x0's bin [x0 − 1/255, x0 + 1/255]; the bins at −1 and +1 extend to −∞ and +∞
    (DDPM section 3.3, eq. 13). Over the 256 values k/127.5 − 1 the probabilities sum to 1."""
    check_tensor("x0", x0, floating=True, min_dim=0)
    check_same_shape("mean", mean, "x0", x0)
    std = torch.as_tensor(var, dtype=torch.float64).sqrt()
    c = x0.to(torch.float64) - mean.to(torch.float64)
    lo, hi = (c - BIN) / std, (c + BIN) / std
    x = x0.to(torch.float64)
    inner = _log_ndtr_diff(lo, hi)
    return torch.where(x < -0.999, torch.special.log_ndtr(hi),
                       torch.where(x > 0.999, torch.special.log_ndtr(-lo), inner))


def prior_kl(x0: torch.Tensor, sched: NoiseSchedule) -> torch.Tensor:
    r"""L_T = KL( q(x_T | x_0) ‖ N(0, I) ) per example, in nats (Ho et al. 2020 eq. 5), with
    q(x_T | x_0) = N(√ᾱ_T x_0, (1 − ᾱ_T) I): per dim ½(ᾱ_T x_0² + (1 − ᾱ_T) − 1 − log(1 − ᾱ_T))."""
    _check_sched(sched)
    check_tensor("x0", x0, floating=True, min_dim=1)
    ab = sched.alpha_bar[-1]
    x = x0.to(torch.float64)
    kl = gaussian_kl(ab.sqrt() * x, 1.0 - ab, torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64))
    return kl.flatten(1).sum(1) if x.dim() > 1 else kl.sum()[None]


# ----------------------------------------------------------------------------- terms of the bound
def _check_sched(sched) -> None:
    if not isinstance(sched, NoiseSchedule):
        raise TypeError(f"sched must be a NoiseSchedule, got {type(sched).__name__}")
    if sched.T < 2:
        raise ValueError(f"the bound needs a schedule with T >= 2, got T = {sched.T}")


def reverse_variance(sched: NoiseSchedule, variance: str = "beta_tilde") -> torch.Tensor:
    """σ_t² of p_θ(x_{t−1} | x_t) for every code t (float64, [T]): β̃_t or β_t (DDPM section 3.2).
    β̃ at t = 0 (the decoder's) is 0 and is replaced by β̃ at t = 1, as in Ho et al.'s code."""
    check_choice("variance", variance, VARIANCES)
    if variance == "beta":
        return sched.betas.clone()
    v = sched.posterior_variance.clone()
    v[0] = v[1]
    return v


def term_at(model, x0: torch.Tensor, t: torch.Tensor, sched: NoiseSchedule, variance: str = "beta_tilde",
            decoder: str = "discrete", noise: torch.Tensor | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """One term of L_vlb per example, in nats, at timesteps ``t`` (LongTensor [B], one per
    example): the KL L_{t} for t ≥ 1 and the decoder −log p_θ(x_0 | x_t) for t = 0.
    x_t = q_sample(x0, t, noise); ``noise`` defaults to a draw from ``generator``."""
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t), got {type(model).__name__}")
    _check_sched(sched)
    check_tensor("x0", x0, floating=True, min_dim=2)
    check_choice("variance", variance, VARIANCES)
    check_choice("decoder", decoder, DECODERS)
    check_generator("generator", generator)
    t = check_timesteps("t", t, x0.shape[0], sched.T, device=x0.device)
    if decoder == "discrete" and bool((t == 0).any()):
        check_image_range("x0", x0)     # the 8-bit decoder's bins assume [−1, 1]: refuse [0, 1] and 0–255
    if noise is None:
        noise = env.randn(x0.shape, generator, dtype=x0.dtype, device=x0.device)   # the package's one noise policy
    check_same_shape("noise", noise, "x0", x0)
    x_t = sched.q_sample(x0, t, noise)
    with torch.no_grad():
        eps = check_model_output(model(x_t, t), x_t)
    x64, xt64, eps64 = x0.to(torch.float64), x_t.to(torch.float64), eps.to(torch.float64)
    mean = sched.posterior_mean(sched.predict_x0(xt64, t, eps64), xt64, t)        # DDPM eq. 11
    var = sched._gather(reverse_variance(sched, variance), t, xt64)
    # t ≥ 1: KL( N(μ̃_t(x_t, x_0), β̃_t) ‖ N(μ_θ, σ_t²) )
    safe_t = t.clamp(min=1)
    true_mean = sched.posterior_mean(x64, xt64, safe_t)
    true_var = sched._gather(sched.posterior_variance, safe_t, xt64)
    kl = gaussian_kl(true_mean, true_var, mean, var).flatten(1).sum(1)
    # t = 0: −log p_θ(x_0 | x_t)
    if decoder == "discrete":
        logp = discretized_gaussian_log_likelihood(x64, mean, var)
    else:
        logp = -0.5 * (torch.log(2 * math.pi * var) + (x64 - mean) ** 2 / var)
    nll = -logp.flatten(1).sum(1)
    return torch.where(t == 0, nll, kl)


def vlb_terms(model, x0: torch.Tensor, sched: NoiseSchedule, variance: str = "beta_tilde", t=None, *,
              decoder: str = "discrete", noise: torch.Tensor | None = None,
              generator: torch.Generator | None = None, progress: bool | None = None) -> torch.Tensor:
    r"""The terms of L_vlb (Ho et al. 2020 eq. 5), in nats per example, shape [len(t), B].

    ``t``: None (every t = 0 … T−1), an int, or a sequence / 1-D LongTensor of timesteps, the
    same for every example. Row k is L_{t_k} = KL(q(x_{t−1}|x_t,x0) ‖ p_θ(x_{t−1}|x_t)) for
    t_k ≥ 1 (one draw of x_t each) and the decoder L_0 for t_k = 0. L_T is :func:`prior_kl`.
    ``variance``: "beta_tilde" (σ² = β̃) or "beta" (σ² = β); ``decoder``: "discrete" for
    8-bit data or "gaussian" for continuous data."""
    _check_sched(sched)
    check_tensor("x0", x0, floating=True, min_dim=2)
    ts = _timesteps(t, sched.T)
    check_choice("decoder", decoder, DECODERS)
    if decoder == "discrete" and bool((ts == 0).any()):
        check_image_range("x0", x0)     # the 8-bit decoder's bins assume [−1, 1]: refuse [0, 1] and 0–255
    B = x0.shape[0]
    rows = []
    for s in env.progress_bar(ts.tolist(), progress, "L_vlb terms"):
        tb = torch.full((B,), s, dtype=torch.long, device=x0.device)
        rows.append(term_at(model, x0, tb, sched, variance, decoder, noise, generator))
    return torch.stack(rows)


def _timesteps(t, T: int) -> torch.Tensor:
    if t is None:
        return torch.arange(T)
    if isinstance(t, numbers.Integral) and not isinstance(t, bool):
        return torch.tensor([check_int("t", t, lo=0, hi=T - 1)])
    ts = torch.as_tensor(t)
    if ts.dim() != 1 or ts.numel() == 0:
        raise ValueError(f"t must be None, an int or a non-empty 1-D sequence of timesteps, got {t!r}")
    return check_timesteps("t", ts.cpu(), ts.numel(), T)


# ----------------------------------------------------------------------------- bits per dimension
@dataclass
class BitsPerDim:
    """L_vlb in bits/dim. ``total`` = mean over examples of prior + decoder + Σ_k weights[k]·terms[k];
    ``stderr`` its standard error over examples; ``per_example`` [B]; ``timesteps`` and ``terms``
    [K, B] (t ≥ 1, bits/dim) with ``weights`` [K] (1 for "all", stratum sizes when stratified)."""
    total: float
    stderr: float
    prior: float
    decoder: float
    per_example: torch.Tensor
    timesteps: torch.Tensor
    terms: torch.Tensor
    weights: torch.Tensor

    def per_t(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(t [T−1], mean term at t in bits/dim) — defined for timesteps="all" only."""
        if not bool((self.weights == 1).all()) or self.timesteps.shape[0] == 0:
            raise ValueError("per_t needs timesteps='all'; a stratified result has random t per example")
        return self.timesteps[:, 0], self.terms.mean(1)


def bits_per_dim(model, x0: torch.Tensor, sched: NoiseSchedule, variance: str = "beta_tilde",
                 timesteps="all", *, decoder: str = "discrete", generator: torch.Generator | None = None,
                 batch_size: int = 256, progress: bool | None = None) -> BitsPerDim:
    r"""L_vlb = L_T + Σ_{t≥1} L_{t−1} + L_0 in bits/dim: nats / (D ln 2), D = x0[0].numel().

    ``timesteps="all"`` sums every term (T model calls per example). An int k stratifies:
    {1, …, T−1} is cut into k contiguous strata of sizes n_j, one t is drawn uniformly in
    each stratum for each example, and Σ_j n_j L(t_j) is an unbiased estimate of the sum;
    L_T and the decoder are always computed exactly / at t = 0. Examples are processed in
    chunks of ``batch_size``."""
    _check_sched(sched)
    check_tensor("x0", x0, floating=True, min_dim=2)
    check_generator("generator", generator)
    batch_size = check_int("batch_size", batch_size, lo=1)
    T, B, D = sched.T, x0.shape[0], x0[0].numel()
    if timesteps == "all":
        edges = torch.arange(1, T + 1)
    elif isinstance(timesteps, numbers.Integral) and not isinstance(timesteps, bool):
        k = check_int("timesteps", timesteps, lo=1, hi=T - 1)
        edges = torch.linspace(1, T, k + 1).round().long()
    else:
        raise ValueError(f"timesteps must be 'all' or an int k in [1, {T - 1}], got {timesteps!r}")
    check_choice("decoder", decoder, DECODERS)
    if decoder == "discrete":
        check_image_range("x0", x0)     # the 8-bit decoder's bins assume [−1, 1]: refuse [0, 1] and 0–255
    lo, sizes = edges[:-1], edges[1:] - edges[:-1]
    ts = torch.empty(len(lo), B, dtype=torch.long)
    for j in range(len(lo)):
        ts[j] = lo[j] + torch.randint(int(sizes[j]), (B,), generator=generator)
    to_bits = 1.0 / (D * math.log(2))
    terms = torch.empty(len(lo), B, dtype=torch.float64)
    dec = torch.empty(B, dtype=torch.float64)
    chunks = [(a, min(a + batch_size, B)) for a in range(0, B, batch_size)]
    jobs = [(a, b, j) for a, b in chunks for j in range(-1, len(lo))]   # j = −1: the decoder at t = 0
    for a, b, j in env.progress_bar(jobs, progress, "bits/dim"):
        if j < 0:
            z = torch.zeros(b - a, dtype=torch.long, device=x0.device)
            dec[a:b] = term_at(model, x0[a:b], z, sched, variance, decoder, generator=generator).cpu()
        else:
            terms[j, a:b] = term_at(model, x0[a:b], ts[j, a:b].to(x0.device), sched, variance, decoder,
                                    generator=generator).cpu()
    prior = prior_kl(x0, sched).cpu() * to_bits
    dec, terms, w = dec * to_bits, terms * to_bits, sizes.to(torch.float64)
    per_example = prior + dec + (w[:, None] * terms).sum(0)
    stderr = float(per_example.std() / math.sqrt(B)) if B > 1 else float("nan")
    return BitsPerDim(float(per_example.mean()), stderr, float(prior.mean()), float(dec.mean()),
                      per_example, ts, terms, w)
