r"""The training objective: L_simple (Ho et al. 2020, eq. 14), DDIM's L_γ (eq. 5) with all
γ_t = 1 — DDIM keeps the DDPM training and changes only sampling:

    L_simple(θ) = E_{t ~ U{0..T-1}, x_0, ε ~ N(0, I)} ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖²,

and the same loss on held-out data with fixed draws (a validation curve), or paired with training
data to measure how much better a model fits the images it was trained on (:func:`loss_gap`).

A reweighted loss E_t[w_t ‖ε − ε_θ(x_t, t)‖²] is DDIM's L_γ with γ_t = w_t: by DDIM's Theorem 1
every L_γ (γ_t > 0) has the same optimum ε_θ(·, t) for each t when the parameters are not
shared across t, so the weights change only how the shared network's capacity and gradient
steps are spread over t. :func:`loss_weights` gives min-SNR-γ (Hang et al. 2023, "Efficient
Diffusion Training via Min-SNR Weighting Strategy", eq. (8) for ε-prediction):

    SNR_t = ᾱ_t / (1 − ᾱ_t),    w_t = min(SNR_t, γ) / SNR_t,

which is 1 at noisy t (SNR_t ≤ γ) and γ/SNR_t < 1 at nearly clean t, where L_simple's
ε-targets are hardest to predict and matter least for the samples. On the linear schedule that is
5 × 10⁻⁴ at t = 0 for γ = 5, so ε_θ(·, t) near t = 0 is barely trained — yet DDIM's encoder
(section 4.3) evaluates ε at t = 0 on the data itself, and Heun's corrector and the variational
bound's decoder term use it too. A floor w_min keeps some weight there:

    w_t = max(min(SNR_t, γ)/SNR_t, w_min),

still positive at every t, so still an L_γ of Theorem 1 (w_min = 0 is plain min-SNR-γ).

Drawing t from another distribution π instead of U{0..T−1} reweights the same way:
E_{t~π}[w_t ‖ε − ε_θ‖²] is L_γ with γ_t = T π_t w_t. :func:`sample_timesteps` offers the
logit-normal t of Esser et al. 2024 ("Scaling Rectified Flow Transformers for High-Resolution Image
Synthesis", section 3.1, m = 0, s = 1), t = ⌊T·sigmoid(z)⌋ with z ~ N(0, 1), which draws the middle
of the chain more often than either end:

    π_t = Φ(logit((t+1)/T)) − Φ(logit(t/T)),    logit(u) = log(u/(1 − u)),  Φ the normal CDF,

positive at every t, so still an L_γ of Theorem 1.

Stratified t keeps π uniform and only spreads each batch over the chain: the n draws of a batch
take one each from n equal strata of [0, T), in a random order k_1, …, k_n of the strata,

    t_i = ⌊T (k_i + u_i) / n⌋,    u_i ~ U[0, 1),

so every t_i on its own is U{0..T−1} (T(k_i + u_i)/n is uniform on [0, T)), the batch mean of
w_t ‖ε − ε_θ‖² is still an unbiased estimate of L_γ, and a batch never leaves a stretch of the
chain untrained by chance (the low-discrepancy draw of Kingma et al. 2021, "Variational Diffusion
Models", appendix I.2, there for continuous time).

Asymmetric t draws the noisy end of the chain less often (the "asymmetric sampling" of Wang et al.
2024, "A Closer Look at Time Steps is Worthy of Triple Speed-Up for Diffusion Model Training"
(SpeeD), which draws less often the steps after the point where √(1−ᾱ_t) has all but stopped
changing). With a split τ = ⌊T·s⌋ and a share p of the draws at or above it,

    π_t = (1 − p)/τ  for t < τ,      π_t = p/(T − τ)  for t ≥ τ,

uniform within each part; s = 1/2 with p = 1/2 is U{0..T−1}. Near x_T the target ε is almost
x_t itself (x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε with ᾱ_t → 0), so a model learns it early and spends
the rest of the draws there for little. π_t > 0 at every t, so this too is an L_γ of Theorem 1."""
from __future__ import annotations

import torch

from .. import env
from ..validation import check_choice, check_finite, check_float, check_generator, check_int, check_model_output, \
    check_same_shape, check_tensor, check_timesteps

WEIGHTINGS = ("none", "min_snr")
T_SAMPLINGS = ("uniform", "stratified", "logit_normal", "asymmetric")


def sample_timesteps(T: int, n: int, generator: torch.Generator | None = None, method: str = "uniform",
                     device=None, split: float = 0.5, upper_share: float = 0.2) -> torch.Tensor:
    """``n`` timesteps (LongTensor [n] in {0, …, T−1}) on ``device`` (default: the CPU), drawn from
    ``generator`` (None: the global one) on its own device. ``"uniform"``: t ~ U{0..T−1} (DDPM's
    L_simple, Ho et al. 2020 eq. 14); ``"stratified"``: t_i = ⌊T(k_i + u_i)/n⌋, u_i ~ U[0, 1), k a random
    order of 0, …, n−1: one draw from each n-th of the chain, each still U{0..T−1} (Kingma et al. 2021,
    appendix I.2); ``"logit_normal"``: t = ⌊T·sigmoid(z)⌋, z ~ N(0, 1) (Esser et al. 2024, section 3.1;
    its probabilities π_t are in the module docstring); ``"asymmetric"``: t ≥ τ = ⌊T·``split``⌋ with
    probability ``upper_share``, else t < τ, uniform within each part (Wang et al. 2024, SpeeD;
    ``split`` and ``upper_share`` are used by this method only). ``ValueError`` for an unknown method,
    T, n < 1, ``split`` or ``upper_share`` outside (0, 1), or a split that leaves either part empty."""
    check_choice("method", method, T_SAMPLINGS)
    T, n = check_int("T", T, lo=1), check_int("n", n, lo=1)
    check_generator("generator", generator)
    gen_dev = generator.device if generator is not None else torch.device("cpu")
    if method == "uniform":
        t = torch.randint(0, T, (n,), generator=generator, device=gen_dev)
    elif method == "stratified":
        u = torch.rand(n, generator=generator, device=gen_dev, dtype=torch.float64)
        strata = torch.randperm(n, generator=generator, device=gen_dev).to(torch.float64)
        t = ((strata + u) * T / n).floor().clamp(0, T - 1).long()
    elif method == "asymmetric":
        tau = asymmetric_split(T, split)
        upper_share = check_float("upper_share", upper_share, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        upper = torch.rand(n, generator=generator, device=gen_dev) < upper_share
        below = torch.randint(0, tau, (n,), generator=generator, device=gen_dev)
        above = torch.randint(tau, T, (n,), generator=generator, device=gen_dev)
        t = torch.where(upper, above, below)
    else:
        z = torch.randn(n, generator=generator, device=gen_dev, dtype=torch.float64)
        t = (torch.sigmoid(z) * T).floor().clamp(0, T - 1).long()
    return t.to(device if device is not None else "cpu")


def asymmetric_split(T: int, split: float) -> int:
    """τ = ⌊T·``split``⌋ of :func:`sample_timesteps`' ``"asymmetric"`` draw; ``ValueError`` unless
    ``split`` is in (0, 1) and 1 ≤ τ ≤ T − 1 (both parts of the chain hold a timestep)."""
    split = check_float("split", split, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    tau = int(T * split)
    if not 1 <= tau <= T - 1:
        raise ValueError(f"split must leave timesteps on both sides of tau = floor(T*split) for T={T}, got {split}")
    return tau


def loss_weights(sched, t: torch.Tensor, weighting: str = "none", gamma: float = 5.0,
                 floor: float = 0.0) -> torch.Tensor:
    """The weight w_t of each timestep in ``t`` (LongTensor [B]) as float64 [B] on ``t``'s device:
    ``"none"`` gives 1 (L_simple); ``"min_snr"`` gives max(min(SNR_t, γ)/SNR_t, ``floor``) with
    SNR_t = ᾱ_t/(1 − ᾱ_t) (Hang et al. 2023, eq. (8), ε-prediction, with a floor at nearly clean t;
    see the module docstring). ``ValueError`` for an unknown weighting, γ ≤ 0 or a floor outside [0, 1]."""
    check_choice("weighting", weighting, WEIGHTINGS)
    floor = check_float("floor", floor, lo=0.0, hi=1.0)
    if weighting == "none":
        return torch.ones(t.shape, dtype=torch.float64, device=t.device)
    gamma = check_float("gamma", gamma, lo=0.0, lo_open=True)
    ab = sched.alpha_bar.to(t.device)[t]
    snr = ab / (1.0 - ab)
    return (snr.clamp(max=gamma) / snr).clamp(min=floor)


def diffusion_loss(model, x0: torch.Tensor, sched, generator: torch.Generator | None = None, *,
                   t: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                   per_example: bool = False, weighting: str = "none", min_snr_gamma: float = 5.0,
                   min_snr_floor: float = 0.0, t_sampling: str = "uniform", t_split: float = 0.5,
                   t_upper_share: float = 0.2):
    """L_simple (Ho et al. 2020 eq. 14 = DDIM eq. 5 with γ_t = 1), a Monte-Carlo estimate.

    Draws t ~ U{0, …, T−1} (or as ``t_sampling`` says, with ``t_split`` and ``t_upper_share`` for
    ``"asymmetric"``: :func:`sample_timesteps`) then ε ~ N(0, I)
    from ``generator`` (unless given), forms
    x_t = q_sample(x0, t, ε) and returns mean ‖ε_θ(x_t, t) − ε‖² over all dimensions.
    With ``per_example=True`` returns ``(losses [B], t [B])`` for "loss per t" plots.
    ``weighting="min_snr"`` multiplies each example's loss by :func:`loss_weights` (γ =
    ``min_snr_gamma``, floor ``min_snr_floor``) before the mean: DDIM's L_γ with other γ_t (Theorem 1: same optimum per t).
    """
    if not callable(model):
        raise TypeError(f"model must be a callable ε-model model(x_t, t), got {type(model).__name__}")
    if not hasattr(sched, "q_sample"):
        raise TypeError(f"sched must be a NoiseSchedule, got {type(sched).__name__}")
    check_tensor("x0", x0, floating=True, min_dim=2)
    check_generator("generator", generator)
    check_choice("t_sampling", t_sampling, T_SAMPLINGS)
    B = x0.shape[0]
    if t is None:
        t = sample_timesteps(sched.T, B, generator, t_sampling, device=x0.device, split=t_split,
                             upper_share=t_upper_share)
    else:
        t = check_timesteps("t", t, B, sched.T, device=x0.device)
    if noise is None:
        noise = env.randn(x0.shape, generator, dtype=torch.float32, device=x0.device).to(x0.dtype)
    x_t = sched.q_sample(x0, t, noise)
    eps = check_model_output(model(x_t, t), x_t)
    per = (eps.float() - noise.float()).pow(2).flatten(1).mean(1)
    if weighting != "none":
        per = per * loss_weights(sched, t, weighting, min_snr_gamma, min_snr_floor).to(per.dtype)
    return (per, t) if per_example else per.mean()


@torch.no_grad()
def held_out_loss(model, x0: torch.Tensor, sched, seed: int = 0, batch_size: int = 256) -> float:
    """L_simple (DDPM eq. 14) on held-out data with t and ε fixed by ``seed``: the same draws at
    every call, so values from different steps of a run are comparable (a validation curve).
    The model is evaluated in eval mode (no dropout) and its mode restored."""
    check_tensor("x0", x0, floating=True, min_dim=2)
    batch_size = check_int("batch_size", batch_size, lo=1)
    gen = torch.Generator().manual_seed(seed)
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    total = 0.0
    for i in range(0, x0.shape[0], batch_size):
        xb = x0[i:i + batch_size]
        total += float(diffusion_loss(model, xb, sched, gen)) * xb.shape[0]
    if was_training:
        model.train()
    return total / x0.shape[0]


@torch.no_grad()
def loss_gap(model, seen: torch.Tensor, new: torch.Tensor, sched, draws: int = 4,
             generator: torch.Generator | None = None):
    """Held-out minus training L_simple (DDPM eq. 14), paired: the i-th image of ``seen`` (images the
    model was trained on) and the i-th of ``new`` (images it never saw) get the same t_i ~ U{0..T−1}
    and ε_i ~ N(0, I), ``draws`` times, so the difference of a pair cancels most of the noise that t
    and ε add. ``seen`` and ``new``: [N, C, H, W] of one shape and floating dtype, N ≥ 2, on the
    model's device; draws from ``generator`` (a CPU generator, or None for the global one).

    Returns ``(seen, new, gap)``, three :class:`~ddim_edu.evaluation.Estimate`: the mean per-image
    loss (averaged over the draws) on each set, and the mean of the per-pair differences new − seen,
    each ± s/√N over the N images. A gap well above 0 says the model fits its training images better
    than new ones. Evaluates in eval mode (no dropout) and restores the mode. ``TypeError`` /
    ``ValueError`` name the argument."""
    from ..evaluation.survival import mean_estimate
    if not hasattr(sched, "q_sample"):
        raise TypeError(f"sched must be a NoiseSchedule, got {type(sched).__name__}")
    check_tensor("seen", seen, floating=True, min_dim=2)
    check_tensor("new", new, floating=True, min_dim=2)
    check_finite("seen", seen)
    check_finite("new", new)
    check_same_shape("new", new, "seen", seen)
    if new.dtype != seen.dtype or new.device != seen.device:
        raise ValueError(f"new must have the dtype and device of seen, {seen.dtype} on {seen.device}, "
                         f"got {new.dtype} on {new.device}")
    if seen.shape[0] < 2:
        raise ValueError(f"seen and new must hold at least 2 images each, got {seen.shape[0]}")
    draws = check_int("draws", draws, lo=1)
    check_generator("generator", generator)
    n = seen.shape[0]
    channels = getattr(model, "in_channels", None)
    if isinstance(channels, int) and seen.dim() == 4 and seen.shape[1] != channels:
        raise ValueError(f"seen and new must be [N, {channels}, H, W] images for this model (in_channels="
                         f"{channels}), got shape {list(seen.shape)}")
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    loss_seen = torch.zeros(n, dtype=torch.float64)
    loss_new = torch.zeros(n, dtype=torch.float64)
    try:
        for _ in range(draws):
            t = sample_timesteps(sched.T, n, generator, device=seen.device)
            noise = env.randn(seen.shape, generator, dtype=torch.float32, device=seen.device)
            loss_seen += diffusion_loss(model, seen, sched, t=t, noise=noise.to(seen.dtype),
                                        per_example=True)[0].double().cpu() / draws
            loss_new += diffusion_loss(model, new, sched, t=t, noise=noise.to(new.dtype),
                                       per_example=True)[0].double().cpu() / draws
    finally:
        if was_training:
            model.train()
    return mean_estimate(loss_seen), mean_estimate(loss_new), mean_estimate(loss_new - loss_seen)
