"""Changes screened on the laptop preset through speedrun.py that are not in the package:
two to the training pairs (x_t, target), two to the network, one to the optimiser and one added loss term
(results/speedrun/grid4_notes.md, sections "Other training pairs", "Fourier features of the input", "Lion in
place of AdamW", "A Gaussian's exact ε under the UNet" and "A dispersive term on the middle block"):

    python benchmarks/screen.py immiscible --minutes 10 --separate --threads 2 --tag avx2
    python benchmarks/screen.py stf --minutes 10 --separate --threads 2 --tag avx2 [--stf-reference 1024]
    python benchmarks/screen.py fourier --steps 2437 --threads 2 --tag avx2
    python benchmarks/screen.py lion --steps 2437 --threads 1 --tag avx2lr2e4 [--lion-lr 2e-4]
    python benchmarks/screen.py gauss --steps 2437 --threads 2 --tag avx2
    python benchmarks/screen.py gausshi --steps 2437 --threads 2 --tag avx2
    python benchmarks/screen.py disperse --steps 2437 --threads 2 --tag avx2 [--disperse-weight 0.5]
    python benchmarks/screen.py kid --checkpoint runs/speedrun/A --against runs/speedrun/B --n 2000 ...
    python benchmarks/screen.py loss_by_t --checkpoint runs/speedrun/A --checkpoint gaussian
    python benchmarks/screen.py swap_steps --checkpoint runs/speedrun/A --with gaussian --switch-at 600 --reverse

``immiscible`` (Li et al. 2024, "Immiscible Diffusion: Accelerating Diffusion Training with Noise
Assignment"): each batch's noise draws are given to its images by the linear assignment that minimises
Σ_i ‖x0_i − ε_π(i)‖² (scipy's linear_sum_assignment; squared distances, a variant of the paper's
assignment on distances), so each image is noised towards a nearby draw. The
target is still the ε that made x_t, but ε is no longer independent of x0, so the optimum is E[ε | x_t] of
that coupling, not of DDPM's q (eq. 4).

``stf`` (Xu et al. 2023, "Stable Target Field for Reduced Variance Score Estimation in Diffusion Models",
eq. 6 in ε form): x_t = √ᾱ_t x0_i + √(1−ᾱ_t) ε as usual, but the target is the average of the ε that each
image x0_j of a reference set (the batch, own image included, and --stf-reference more training digits)
would need to make this x_t, weighted by how likely each makes it,

    ε̄_i = Σ_j w_ij (x_t,i − √ᾱ_t x0_j)/√(1−ᾱ_t),   w_ij ∝ exp(−‖x_t,i − √ᾱ_t x0_j‖² / (2(1−ᾱ_t))),

a lower-variance estimate of the same optimum E[ε | x_t], self-normalised and so biased for a finite
reference (exactly E[ε | x_t] when the reference is the whole training set: the ε* of a mixture of point
masses at the training digits, tests/test_screen.py).

``fourier`` (Kingma et al. 2021, "Variational Diffusion Models", appendix C): the first convolution also
sees sin(2^k π x) and cos(2^k π x) of every input value, k = 5, 6, 7 (periods 1/16, 1/32 and 1/64 in x;
a pixel's 8-bit step is 1/127.5), so the fine detail of x_t that the last, nearly clean steps
must read (DDIM-50 evaluates ε at t = 0, where x_t's noise is 0.01) is visible to the first layer. The
network is still ε_θ(x_t, t) and the loss is the preset's.

``lion`` (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2): the optimiser is
Lion instead of AdamW, from the ``lion-pytorch`` package: each step moves every weight by ±lr, the sign of
an interpolation of its momentum and its gradient (β1 = 0.9), and the momentum decays with β2 = 0.99. Its
authors found it ahead of AdamW on diffusion models (the U-Net of Dhariwal & Nichol 2021 on ImageNet) with up
to 2.3× less training compute, at a learning rate 3–10× smaller than AdamW's (``--lion-lr``, default 2e-4,
the preset's 2e-3 over 10, and another rate is added to the run's --tag, so two rates never share a run
folder; its warm-up and cosine as the preset's), and its gain growing with the batch (the
preset's is 64). Loss, network, draws and EMA are the preset's; no weight decay, as in the preset.

``gauss`` (the linear part of the denoiser in closed form): the network is ε*_N(x_t, t) + UNet(x_t, t), where
ε*_N = √(1−ᾱ_t)(ᾱ_t Σ + (1−ᾱ_t) I)⁻¹(x_t − √ᾱ_t μ) is the exact E[ε | x_t] for digits drawn from N(μ, Σ), the
mean and covariance of the 4,500 training digits (the best predictor of ε affine in x_t; the Gaussian
approximation of Wang & Vastola 2023, "The Hidden Linear Structure in Score-Based Models"). Near x_T the
Gaussian is almost the whole answer, and wherever the digits do not vary (the always-black border) it is exact
at every t; the UNet, whose last conv starts at zero, learns only what the digits add. Still ε_θ(x_t, t), trained
by the preset's loss; the samplers run on it unchanged. ``gausshi`` weights ε*_N by 1/(1 + (SNR_t/0.1)²): whole
near x_T, half at SNR_t = 0.1 (t ≈ 485), under 3% below t = 300, where the Gaussian predicts ε far worse than a
trained network.

``disperse`` (Wang & He 2025, "Diffuse and Disperse: Image Generation with Representation Regularization",
the InfoNCE form of their Dispersive Loss): the loss is the preset's plus λ·log[(1/B²) Σ_ij exp(−‖z_i − z_j‖²/τ)],
where z_i is the middle block's output for the batch's i-th x_t, flattened and scaled to unit length (this
screen's choice, not the paper's: the term cannot fall by merely inflating the states, and is their cosine form at
τ/2), τ = 0.5 and λ = ``--disperse-weight`` (default 0.5; another weight is added to the run's --tag). The term
has no positive pairs: it only pushes the batch's hidden states apart, a self-contained stand-in for aligning
them with a pretrained encoder (REPA). It leaves ε_θ(x_t, t), L_simple's target and the samplers as they are;
it is outside DDIM's L_γ family (not a weighting over t), so the preset would keep it only for a large gain.

``kid``, ``loss_by_t`` and ``swap_steps`` are kid_table.py, loss_by_t.py and swap_steps.py with such runs loaded by
this module (a ``fourier`` run's first convolution, and a ``gauss`` run's Gaussian, are not what its config.json
describes), and ``gaussian`` as a checkpoint: ε*_N alone.

Every other argument goes to speedrun.py. The recipe trained is speedrun's SHIPPED_RECIPE (the laptop preset)
under the name lowtimm / lowtstf / lowtfourier / lowtlion / lowtgauss / lowtgausshi / lowtdisp; the draws of t
and ε are those the preset's own run would make.
"""
from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path

import torch

import common
import speedrun
from common import de
import ddim_edu.train.trainer as trainer
from ddim_edu.nets import UNet
from ddim_edu.nets.build import build_model
from ddim_edu.train import checkpoints as ck, loss as L, optim
from ddim_edu.train.state_dicts import load_state_checked
from ddim_edu.validation import check_model_output

NAMES = {"immiscible": "lowtimm", "stf": "lowtstf", "fourier": "lowtfourier", "lion": "lowtlion",
         "gauss": "lowtgauss", "gausshi": "lowtgausshi", "disperse": "lowtdisp"}
DISPERSE_WEIGHT, DISPERSE_TAU = 0.5, 0.5   # disperse: λ and τ of the dispersive term
GAUSS_SNR_HALF = 0.1              # gausshi: the Gaussian's weight 1/(1 + (SNR_t/0.1)²) is 1/2 where SNR_t = 0.1
FOURIER_KS = (5, 6, 7)
LION_LR = 2e-4                                             # Lion's default rate here: the preset's 2e-3 over 10
SCORERS = {"kid": "kid_table", "loss_by_t": "loss_by_t", "swap_steps": "swap_steps"}   # scripts that score a run


def assign_noise(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``noise`` [B, ...] reordered so that Σ_i ‖x0_i − noise_i‖² is least (Immiscible Diffusion's assignment)."""
    from scipy.optimize import linear_sum_assignment
    cost = torch.cdist(x0.double().flatten(1), noise.double().flatten(1)).pow(2)
    _, cols = linear_sum_assignment(cost.cpu().numpy())
    return noise[torch.as_tensor(cols, device=noise.device)]


def stable_target(x_t: torch.Tensor, t: torch.Tensor, sched, reference: torch.Tensor) -> torch.Tensor:
    """ε̄ [B, ...] (x_t's dtype): the posterior-weighted ε over the images ``reference`` [R, ...] (module docstring;
    computed in float64)."""
    ab = sched.alpha_bar.to(device=x_t.device, dtype=torch.float64)[t][:, None]
    xt, ref = x_t.flatten(1).double(), reference.flatten(1).double()
    d2 = xt.pow(2).sum(1, keepdim=True) - 2 * ab.sqrt() * (xt @ ref.T) + ab * ref.pow(2).sum(1)[None]
    w = torch.softmax(-d2 / (2 * (1 - ab)), dim=1)                       # [B, R]: p(x0_j | x_t,i)
    return ((xt - ab.sqrt() * (w @ ref)) / (1 - ab).sqrt()).view_as(x_t).to(x_t.dtype)


def _draws(x0, sched, generator, kw):
    """t and ε exactly as diffusion_loss draws them for these options."""
    t = L.sample_timesteps(sched.T, x0.shape[0], generator, kw.get("t_sampling", "uniform"), device=x0.device,
                           split=kw.get("t_split", 0.5), upper_share=kw.get("t_upper_share", 0.2))
    return t, de.env.randn(x0.shape, generator, dtype=torch.float32, device=x0.device).to(x0.dtype)


def immiscible_loss(model, x0, sched, generator=None, **kw):
    t, noise = _draws(x0, sched, generator, kw)
    return L.diffusion_loss(model, x0, sched, generator, t=t, noise=assign_noise(x0, noise), **kw)


def stf_loss(data: torch.Tensor, n_ref: int, ref_gen: torch.Generator):
    """The loss with Stable Target Field targets, its reference the batch and ``n_ref`` digits of ``data``."""
    def loss(model, x0, sched, generator=None, **kw):
        t, noise = _draws(x0, sched, generator, kw)
        x_t = sched.q_sample(x0, t, noise)
        extra = data[torch.randint(0, data.shape[0], (n_ref,), generator=ref_gen).to(data.device)]
        target = stable_target(x_t, t, sched, torch.cat([x0, extra.to(x0.dtype)]))
        per = (check_model_output(model(x_t, t), x_t).float() - target.float()).pow(2).flatten(1).mean(1)
        if kw.get("weighting", "none") != "none":
            per = per * L.loss_weights(sched, t, kw["weighting"], kw.get("min_snr_gamma", 5.0),
                                       kw.get("min_snr_floor", 0.0)).to(per.dtype)
        return per.mean()
    return loss


def dispersive_term(z: torch.Tensor, tau: float = DISPERSE_TAU) -> torch.Tensor:
    """log[(1/B²) Σ_ij exp(−‖ẑ_i − ẑ_j‖²/τ)] (float32, a scalar) for hidden states ``z`` [B, ...], each flattened
    and scaled to unit length (ẑ): 0 when all B coincide, lower as they spread apart (the pairs i = j keep it
    above −log B). Wang & He 2025, the InfoNCE-based Dispersive Loss."""
    with torch.autocast(z.device.type, enabled=False):                   # float32 under any autocast
        zn = torch.nn.functional.normalize(z.float().flatten(1), dim=1)
        d2 = (2 - 2 * zn @ zn.T).clamp_min(0)                           # ‖ẑ_i − ẑ_j‖² of unit vectors
        return torch.logsumexp((-d2 / tau).flatten(), 0) - 2 * math.log(z.shape[0])


def dispersive_loss(weight: float = DISPERSE_WEIGHT, tau: float = DISPERSE_TAU):
    """The preset's loss plus ``weight`` × :func:`dispersive_term` of the middle block's output (the last module of
    the UNet's ``mid``), caught by a forward hook for the one call the loss makes."""
    def loss(model, x0, sched, generator=None, **kw):
        mids = [m for name, m in model.named_modules() if name.split(".")[-1] == "mid"]
        if len(mids) != 1:
            raise TypeError(f"screen.py disperse needs a UNet with one middle block, got {type(model).__name__}")
        caught = []
        handle = mids[0][-1].register_forward_hook(lambda mod, inp, out: caught.append(out))
        try:
            base = L.diffusion_loss(model, x0, sched, generator, **kw)
        finally:
            handle.remove()
        return base + weight * dispersive_term(caught[0], tau).to(base.dtype)
    return loss


class FourierConv(torch.nn.Conv2d):
    """A 3×3 convolution of [x, sin(2^k π x), cos(2^k π x) for k in ``ks``] that replaces ``conv``."""

    def __init__(self, conv: torch.nn.Conv2d, ks=FOURIER_KS):
        super().__init__(conv.in_channels * (1 + 2 * len(ks)), conv.out_channels, 3, padding=1)
        self.register_buffer("freqs", torch.tensor([2.0 ** k * math.pi for k in ks]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x[:, None] * self.freqs.view(1, -1, 1, 1, 1).to(x.dtype)           # [B, K, C, H, W]
        return super().forward(torch.cat([x, f.sin().flatten(1, 2), f.cos().flatten(1, 2)], 1))


def with_fourier(model):
    """``model`` (a UNet) with :class:`FourierConv` as its first convolution."""
    model.conv_in = FourierConv(model.conv_in)
    return model


def gaussian_fit(data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(μ, U, λ), float64: the mean μ [D] of ``data`` [N, ...] (D values an example), and the eigenvectors U [D, D]
    (columns) and eigenvalues λ [D] (ascending, negative rounding clamped to 0) of its covariance Σ = UΛUᵀ
    (divisor N − 1)."""
    x = data.detach().double().flatten(1)
    mu = x.mean(0)
    lam, vecs = torch.linalg.eigh((x - mu).T @ (x - mu) / (x.shape[0] - 1))
    return mu, vecs, lam.clamp_min(0)


class GaussianSkipUNet(UNet):
    """ε_θ(x_t, t) = ε*_N(x_t, t) + the UNet's output, where ε*_N is the exact E[ε | x_t] had the training digits
    been drawn from N(μ, Σ), their own mean and covariance (:func:`with_gauss`):

        ε*_N(x_t, t) = √(1−ᾱ_t) (ᾱ_t Σ + (1−ᾱ_t) I)⁻¹ (x_t − √ᾱ_t μ) = U diag(c_t) Uᵀ (x_t − √ᾱ_t μ),
        c_t = √(1−ᾱ_t) / (ᾱ_t λ + 1 − ᾱ_t),

    (x_t and ε jointly Gaussian: Cov(ε, x_t) = √(1−ᾱ_t) I, Cov(x_t) = ᾱ_t Σ + (1−ᾱ_t) I). The UNet learns what
    the digits add to a Gaussian; it starts at ε*_N (its last conv is zero at initialisation)."""

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return super().forward(x, t) + self.gaussian_eps(x, t)

    def gaussian_eps(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """ε*_N(x_t, t) for ``x`` [B, C, H, W] and integer ``t`` [B], computed in float32 whatever x's dtype or an
        autocast (c_t reaches 1/√β_1 = 100 where the digits do not vary), returned in x's dtype."""
        buf = {k: getattr(self, f"gauss_{k}").float() for k in ("mu", "U", "c", "sqrt_ab")}
        with torch.autocast(x.device.type, enabled=False):
            y = x.reshape(x.shape[0], -1).float() - buf["sqrt_ab"][t, None] * buf["mu"]
            return (((y @ buf["U"]) * buf["c"][t]) @ buf["U"].T).reshape(x.shape).to(x.dtype)


def with_gauss(model, data: torch.Tensor, sched, snr_half: float | None = None):
    """``model`` (a :class:`~ddim_edu.nets.UNet`) as a :class:`GaussianSkipUNet` whose Gaussian is fitted to
    ``data`` [N, C, H, W] under ``sched``'s ᾱ; with ``snr_half``, ε*_N is weighted by g_t = 1/(1 + (SNR_t/snr_half)²)
    (SNR_t = ᾱ_t/(1−ᾱ_t)): whole at the noisy end, gone at the clean end. Its buffers (computed in float64,
    stored as float32) are not in the state dict: a run's saved weights are those of a plain UNet, and
    :func:`load` fits them again."""
    if type(model) is not UNet:
        raise TypeError(f"with_gauss needs a plain UNet, got {type(model).__name__}")
    mu, vecs, lam = gaussian_fit(data)
    ab = sched.alpha_bar.double()[:, None]
    c = (1 - ab).sqrt() / (ab * lam + 1 - ab)                              # [T, D]
    if snr_half is not None:
        c = c / (1 + (ab / (1 - ab) / snr_half) ** 2)
    for name, value in (("mu", mu), ("U", vecs), ("c", c), ("sqrt_ab", ab[:, 0].sqrt())):
        model.register_buffer(f"gauss_{name}", value.float(), persistent=False)
    model.__class__ = GaussianSkipUNet
    return model


def train_digits() -> torch.Tensor:
    """The 4,500 training digits speedrun.py trains on, [N, 1, 28, 28] in [−1, 1]."""
    return de.data.load_mnist("train")[0]


REBUILT = (NAMES["fourier"], NAMES["gauss"], NAMES["gausshi"])   # runs whose network is not their config.json's


def rebuilt(recipe: str, model, sched):
    """``model``, a plain UNet, changed as speedrun.py trained ``recipe`` (one of :data:`REBUILT`)."""
    if recipe == NAMES["fourier"]:
        return with_fourier(model)
    return with_gauss(model, train_digits(), sched, GAUSS_SNR_HALF if recipe == NAMES["gausshi"] else None)


GAUSSIAN_ONLY = "gaussian"        # screen.py loss_by_t --checkpoint gaussian: ε*_N alone, no network


def shown(checkpoint) -> str:
    """common.shown, and :data:`GAUSSIAN_ONLY`'s label."""
    return "ε*_N alone: the training digits' Gaussian" if str(checkpoint) == GAUSSIAN_ONLY else common.shown(checkpoint)


def load(checkpoint, device, channels_last: bool = False, weights: str = "ema"):
    """common.load, and the EMA weights of a ``fourier`` or ``gauss`` run's folder (checksum checked, as
    ``load_model`` does) with the network changed as in training first (:data:`REBUILT`); for
    :data:`GAUSSIAN_ONLY`, ε*_N alone (a new preset UNet, whose last conv is zero, under ``gauss``'s Gaussian)."""
    if str(checkpoint) == GAUSSIAN_ONLY:
        sched = speedrun.recipe_schedule(speedrun.SHIPPED_RECIPE)
        with torch.random.fork_rng():                   # build() seeds torch's generator; the caller's stays as it was
            net = speedrun.build(speedrun.SHIPPED_RECIPE, None, 1, 0)[0]
        model = with_gauss(net, train_digits(), sched)
        model.schedule_config = sched.to_config()
        model = model.to(device).eval()                 # no weights to choose: ``weights`` does not apply
        return (model.to(memory_format=torch.channels_last) if channels_last else model), sched, {"step": 0}
    config = ck.read_json(Path(checkpoint) / ck.CONFIG_FILE)
    recipe = config.get("speedrun", {}).get("recipe")
    if recipe not in REBUILT:
        return common.load(checkpoint, device, channels_last, weights)
    if weights != "ema":
        raise SystemExit(f"screen.py: a {recipe} run is scored on its EMA weights only")
    config, state, path = ck.read_model_dir(checkpoint)
    sched = de.NoiseSchedule.from_config(config["schedule"])
    model = build_model(config["model"])
    model = rebuilt(recipe, model, sched)
    load_state_checked(model, state, str(path))
    model.schedule_config = sched.to_config()            # as load_model: the samplers refuse another schedule
    model = model.to(device).eval()
    return (model.to(memory_format=torch.channels_last) if channels_last else model), sched, config


def make_lion(model: torch.nn.Module, options: dict, device) -> torch.optim.Optimizer:
    """Lion over ``model``'s parameters in place of ``ddim_edu.train.optim.make_adamw``: the run's lr and weight
    decay, β = (0.9, 0.99) (Lion's defaults)."""
    from lion_pytorch import Lion
    return Lion(model.parameters(), lr=options["lr"], betas=(0.9, 0.99), weight_decay=options["weight_decay"])


@contextlib.contextmanager
def installed(variant: str, n_ref: int = 1024, lion_lr: float = LION_LR, weight: float = DISPERSE_WEIGHT):
    """speedrun.py trains ``variant`` under the recipe name NAMES[variant] inside the block (``stf`` with ``n_ref``
    reference digits beside the batch, ``lion`` at learning rate ``lion_lr``, ``disperse`` with λ = ``weight``)."""
    train_kw, net_kw, _ = speedrun.RECIPES[speedrun.SHIPPED_RECIPE]
    text = {"immiscible": "the laptop preset with each batch's noise assigned to its images by a linear "
                          "assignment on squared distance (Immiscible Diffusion, Li et al. 2024)",
            "stf": f"the laptop preset with Stable Target Field targets (Xu et al. 2023): each x_t's target the "
                   f"posterior-weighted eps over its batch and {n_ref} more training digits",
            "fourier": f"the laptop preset with Fourier features sin/cos(2^k pi x), k in {FOURIER_KS}, of each input "
                       f"value beside it in the first conv (VDM)",
            "lion": f"the laptop preset with the Lion optimiser (Chen et al. 2023) at lr {lion_lr:g}, "
                    f"beta (0.9, 0.99), not AdamW at 2e-3",
            "gauss": "the laptop preset with the exact eps of a Gaussian fitted to the training digits (their "
                     "mean and covariance) added to the UNet's output",
            "gausshi": f"the laptop preset with the exact eps of a Gaussian fitted to the training digits added to "
                       f"the UNet's output, weighted by 1/(1 + (SNR_t/{GAUSS_SNR_HALF:g})^2)",
            "disperse": f"the laptop preset plus {weight:g} x the dispersive loss (Wang & He 2025, InfoNCE "
                        f"form, tau {DISPERSE_TAU:g}) of the middle block's unit-length output"}[variant]
    old_loss, old_init, old_build = trainer.diffusion_loss, trainer.Trainer.__init__, speedrun.build
    old_opt = optim.make_adamw

    def init(self, *a, **k):                                  # the trainer's data is the STF reference
        old_init(self, *a, **k)
        trainer.diffusion_loss = stf_loss(self.data, n_ref, torch.Generator().manual_seed(12345))

    def build(recipe, *a, **k):
        model, cfg, net = old_build(recipe, *a, **k)
        return (rebuilt(recipe, model, speedrun.recipe_schedule(recipe)) if recipe in REBUILT else model), cfg, net

    speedrun.RECIPES[NAMES[variant]] = ({**train_kw, "lr": lion_lr} if variant == "lion" else train_kw, net_kw, text)
    if variant == "immiscible":
        trainer.diffusion_loss = immiscible_loss
    elif variant == "stf":
        trainer.Trainer.__init__ = init
    elif variant == "lion":
        optim.make_adamw = make_lion
    elif variant == "disperse":
        trainer.diffusion_loss = dispersive_loss(weight)
    else:
        speedrun.build = build
    try:
        yield
    finally:
        trainer.diffusion_loss, trainer.Trainer.__init__, speedrun.build = old_loss, old_init, old_build
        optim.make_adamw = old_opt
        speedrun.RECIPES.pop(NAMES[variant])


def with_tag(args: list, part: str) -> list:
    """speedrun.py's ``args`` with ``part`` added to its --tag (the last part of a run's key), or as the tag."""
    args = list(args)
    for i, arg in enumerate(args):
        if arg == "--tag" and i + 1 < len(args):
            args[i + 1] = f"{args[i + 1]}_{part}" if args[i + 1] else part
            return args
        if arg.startswith("--tag="):
            args[i] = f"{arg}_{part}" if arg != "--tag=" else f"--tag={part}"
            return args
    return args + ["--tag", part]


def positive_option(rest: list, flag: str, variant: str, owner: str, default: float) -> tuple[float, list]:
    """The value of ``flag`` in ``rest`` (``default`` when absent) and ``rest`` without it; SystemExit unless it is
    a finite number > 0 given to screen.py ``owner``."""
    if flag not in rest:
        return default, rest
    i = rest.index(flag)
    value, rest = rest[i + 1:i + 2], rest[:i] + rest[i + 2:]
    if variant != owner:
        raise SystemExit(f"screen.py {variant}: {flag} is an option of screen.py {owner} only")
    try:
        got = float(value[0])
    except (IndexError, ValueError):
        got = math.nan
    if not (math.isfinite(got) and got > 0):
        raise SystemExit(f"screen.py {owner}: {flag} must be a finite number > 0, got {value[0] if value else None!r}")
    return got, rest


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in SCORERS:                 # a scoring script, with this module's load() and shown()
        import importlib
        scorer = importlib.import_module(SCORERS[argv[0]])
        old = scorer.load, scorer.shown
        scorer.load, scorer.shown = load, shown
        try:
            return scorer.main(argv[1:])
        finally:
            scorer.load, scorer.shown = old
    if not argv or argv[0] not in NAMES:
        raise SystemExit(f"usage: screen.py {{{','.join(NAMES)}}} [--stf-reference N] [--lion-lr LR] "
                         f"[--disperse-weight W] "
                         f"SPEEDRUN-OPTIONS, or screen.py {{{','.join(SCORERS)}}} OPTIONS-OF-THAT-SCRIPT")
    variant, rest, n_ref = argv[0], argv[1:], 1024
    if "--recipes" in rest:
        raise SystemExit(f"screen.py {variant} trains the laptop preset as {NAMES[variant]}: leave out --recipes")
    if "--stf-reference" in rest:
        i = rest.index("--stf-reference")
        n_ref, rest = int(rest[i + 1]), rest[:i] + rest[i + 2:]
    lion_lr, rest = positive_option(rest, "--lion-lr", variant, "lion", LION_LR)
    weight, rest = positive_option(rest, "--disperse-weight", variant, "disperse", DISPERSE_WEIGHT)
    if variant == "lion" and lion_lr != LION_LR:     # another rate is another run: its key (folder, files) names it
        rest = with_tag(rest, f"lr{lion_lr:.0e}")
    if variant == "disperse" and weight != DISPERSE_WEIGHT:
        rest = with_tag(rest, f"w{weight:.0e}")
    with installed(variant, n_ref, lion_lr, weight):
        return speedrun.main(["--recipes", NAMES[variant], *rest])


if __name__ == "__main__":
    main()
