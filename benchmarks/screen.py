"""Changes screened on the laptop preset through speedrun.py that are not in the package, none of which helped:
two to the training pairs (x_t, target), one to the network's input and one to the optimiser
(results/speedrun/grid4_notes.md, sections "Other training pairs", "Fourier features of the input" and "Lion in
place of AdamW"):

    python benchmarks/screen.py immiscible --minutes 10 --separate --threads 2 --tag avx2
    python benchmarks/screen.py stf --minutes 10 --separate --threads 2 --tag avx2 [--stf-reference 1024]
    python benchmarks/screen.py fourier --steps 2437 --threads 2 --tag avx2
    python benchmarks/screen.py lion --steps 2437 --threads 1 --tag avx2lr2e4 [--lion-lr 2e-4]
    python benchmarks/screen.py kid --checkpoint runs/speedrun/A --against runs/speedrun/B --n 2000 ...
    python benchmarks/screen.py loss_by_t --checkpoint runs/speedrun/A --checkpoint runs/speedrun/B

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

``kid`` and ``loss_by_t`` are kid_table.py and loss_by_t.py with such runs loaded by this module (a ``fourier``
run's first convolution is not the one its config.json describes).

Every other argument goes to speedrun.py. The recipe trained is speedrun's SHIPPED_RECIPE (the laptop preset)
under the name lowtimm / lowtstf / lowtfourier / lowtlion; the draws of t and ε are those the preset's own run
would make.
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
from ddim_edu.nets.build import build_model
from ddim_edu.train import checkpoints as ck, loss as L, optim
from ddim_edu.train.state_dicts import load_state_checked
from ddim_edu.validation import check_model_output

NAMES = {"immiscible": "lowtimm", "stf": "lowtstf", "fourier": "lowtfourier", "lion": "lowtlion"}
FOURIER_KS = (5, 6, 7)
LION_LR = 2e-4                                             # Lion's default rate here: the preset's 2e-3 over 10
SCORERS = {"kid": "kid_table", "loss_by_t": "loss_by_t"}      # the scripts that score a run's folder


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


def load(checkpoint, device, channels_last: bool = False, weights: str = "ema"):
    """common.load, and the EMA weights of a ``fourier`` run's folder (checksum checked, as ``load_model`` does)
    with its first convolution rebuilt first."""
    config = ck.read_json(Path(checkpoint) / ck.CONFIG_FILE)
    if config.get("speedrun", {}).get("recipe") != NAMES["fourier"]:
        return common.load(checkpoint, device, channels_last, weights)
    if weights != "ema":
        raise SystemExit("screen.py kid: a fourier run is scored on its EMA weights only")
    config, state, path = ck.read_model_dir(checkpoint)
    model = with_fourier(build_model(config["model"]))
    load_state_checked(model, state, str(path))
    sched = de.NoiseSchedule.from_config(config["schedule"])
    model.schedule_config = sched.to_config()            # as load_model: the samplers refuse another schedule
    model = model.to(device).eval()
    return (model.to(memory_format=torch.channels_last) if channels_last else model), sched, config


def make_lion(model: torch.nn.Module, options: dict, device) -> torch.optim.Optimizer:
    """Lion over ``model``'s parameters in place of ``ddim_edu.train.optim.make_adamw``: the run's lr and weight
    decay, β = (0.9, 0.99) (Lion's defaults)."""
    from lion_pytorch import Lion
    return Lion(model.parameters(), lr=options["lr"], betas=(0.9, 0.99), weight_decay=options["weight_decay"])


@contextlib.contextmanager
def installed(variant: str, n_ref: int = 1024, lion_lr: float = LION_LR):
    """speedrun.py trains ``variant`` under the recipe name NAMES[variant] inside the block (``stf`` with ``n_ref``
    reference digits beside the batch, ``lion`` at learning rate ``lion_lr``)."""
    train_kw, net_kw, _ = speedrun.RECIPES[speedrun.SHIPPED_RECIPE]
    text = {"immiscible": "the laptop preset with each batch's noise assigned to its images by a linear "
                          "assignment on squared distance (Immiscible Diffusion, Li et al. 2024)",
            "stf": f"the laptop preset with Stable Target Field targets (Xu et al. 2023): each x_t's target the "
                   f"posterior-weighted eps over its batch and {n_ref} more training digits",
            "fourier": f"the laptop preset with Fourier features sin/cos(2^k pi x), k in {FOURIER_KS}, of each input "
                       f"value beside it in the first conv (VDM)",
            "lion": f"the laptop preset with the Lion optimiser (Chen et al. 2023) at lr {lion_lr:g}, "
                    f"beta (0.9, 0.99), not AdamW at 2e-3"}[variant]
    old_loss, old_init, old_build = trainer.diffusion_loss, trainer.Trainer.__init__, speedrun.build
    old_opt = optim.make_adamw

    def init(self, *a, **k):                                  # the trainer's data is the STF reference
        old_init(self, *a, **k)
        trainer.diffusion_loss = stf_loss(self.data, n_ref, torch.Generator().manual_seed(12345))

    def build(recipe, *a, **k):
        model, cfg, net = old_build(recipe, *a, **k)
        return (with_fourier(model) if recipe == NAMES["fourier"] else model), cfg, net

    speedrun.RECIPES[NAMES[variant]] = ({**train_kw, "lr": lion_lr} if variant == "lion" else train_kw, net_kw, text)
    if variant == "immiscible":
        trainer.diffusion_loss = immiscible_loss
    elif variant == "stf":
        trainer.Trainer.__init__ = init
    elif variant == "lion":
        optim.make_adamw = make_lion
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


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in SCORERS:                 # kid_table.py / loss_by_t.py, fourier runs loaded here
        import importlib
        scorer = importlib.import_module(SCORERS[argv[0]])
        old, scorer.load = scorer.load, load
        try:
            return scorer.main(argv[1:])
        finally:
            scorer.load = old
    if not argv or argv[0] not in NAMES:
        raise SystemExit(f"usage: screen.py {{{','.join(NAMES)}}} [--stf-reference N] [--lion-lr LR] "
                         f"SPEEDRUN-OPTIONS, or screen.py {{{','.join(SCORERS)}}} OPTIONS-OF-THAT-SCRIPT")
    variant, rest, n_ref, lion_lr = argv[0], argv[1:], 1024, LION_LR
    if "--recipes" in rest:
        raise SystemExit(f"screen.py {variant} trains the laptop preset as {NAMES[variant]}: leave out --recipes")
    if "--stf-reference" in rest:
        i = rest.index("--stf-reference")
        n_ref, rest = int(rest[i + 1]), rest[:i] + rest[i + 2:]
    if "--lion-lr" in rest:
        i = rest.index("--lion-lr")
        value, rest = rest[i + 1:i + 2], rest[:i] + rest[i + 2:]
        if variant != "lion":
            raise SystemExit(f"screen.py {variant}: --lion-lr is an option of screen.py lion only")
        try:
            lion_lr = float(value[0])
        except (IndexError, ValueError):
            lion_lr = math.nan
        if not (math.isfinite(lion_lr) and lion_lr > 0):
            got = value[0] if value else None
            raise SystemExit(f"screen.py lion: --lion-lr must be a finite number > 0, got {got!r}")
    if variant == "lion" and lion_lr != LION_LR:     # another rate is another run: its key (folder, files) names it
        rest = with_tag(rest, f"lr{lion_lr:.0e}")
    with installed(variant, n_ref, lion_lr):
        return speedrun.main(["--recipes", NAMES[variant], *rest])


if __name__ == "__main__":
    main()
