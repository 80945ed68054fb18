"""Two changes to the training pairs (x_t, target) screened on the laptop preset through speedrun.py. Neither
helped, so neither is in the package (results/speedrun/grid4_notes.md, section "Other training pairs"):

    python benchmarks/screen_targets.py immiscible --minutes 10 --separate --threads 2 --tag avx2
    python benchmarks/screen_targets.py stf --steps 2437 --threads 2 --tag avx2 [--stf-reference 1024]

``immiscible`` (Li et al. 2024, "Immiscible Diffusion: Accelerating Diffusion Training with Noise
Assignment"): each batch's noise draws are given to its images by the linear assignment that minimises
Σ_i ‖x0_i − ε_π(i)‖² (scipy's linear_sum_assignment), so each image is noised towards a nearby draw. The
target is still the ε that made x_t, but ε is no longer independent of x0, so the optimum is E[ε | x_t] of
that coupling, not of DDPM's q (eq. 4).

``stf`` (Xu et al. 2023, "Stable Target Field for Reduced Variance Score Estimation in Diffusion Models",
eq. 6 in ε form): x_t = √ᾱ_t x0_i + √(1−ᾱ_t) ε as usual, but the target is the average of the ε that each
image x0_j of a reference set (the batch, own image included, and --stf-reference more training digits)
would need to make this x_t, weighted by how likely each makes it,

    ε̄_i = Σ_j w_ij (x_t,i − √ᾱ_t x0_j)/√(1−ᾱ_t),   w_ij ∝ exp(−‖x_t,i − √ᾱ_t x0_j‖² / (2(1−ᾱ_t))),

a lower-variance estimate of the same optimum E[ε | x_t] (exactly it when the reference is the whole
training set: the ε* of a mixture of point masses at the training digits, tests/test_screen_targets.py).

Every other argument goes to speedrun.py. The recipe trained is speedrun's SHIPPED_RECIPE (the laptop preset)
under the name lowtimm / lowtstf; the draws of t and ε are those the preset's own run would make.
"""
from __future__ import annotations

import contextlib
import sys

import torch

import speedrun
from common import de
import ddim_edu.train.trainer as trainer
from ddim_edu.train import loss as L
from ddim_edu.validation import check_model_output

NAMES = {"immiscible": "lowtimm", "stf": "lowtstf"}


def assign_noise(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``noise`` [B, ...] reordered so that Σ_i ‖x0_i − noise_i‖² is least (Immiscible Diffusion's assignment)."""
    from scipy.optimize import linear_sum_assignment
    cost = torch.cdist(x0.double().flatten(1), noise.double().flatten(1)).pow(2)
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
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


@contextlib.contextmanager
def installed(variant: str, n_ref: int = 1024):
    """speedrun.py trains ``variant``'s loss under the recipe name NAMES[variant] inside the block."""
    train_kw, net_kw, _ = speedrun.RECIPES[speedrun.SHIPPED_RECIPE]
    text = {"immiscible": "the laptop preset with each batch's noise assigned to its images by a linear "
                          "assignment on squared distance (Immiscible Diffusion, Li et al. 2024)",
            "stf": f"the laptop preset with Stable Target Field targets (Xu et al. 2023): each x_t's target the "
                   f"posterior-weighted eps over its batch and {n_ref} more training digits"}[variant]
    old_loss, old_init = trainer.diffusion_loss, trainer.Trainer.__init__

    def init(self, *a, **k):                                  # the trainer's data is the STF reference
        old_init(self, *a, **k)
        trainer.diffusion_loss = stf_loss(self.data, n_ref, torch.Generator().manual_seed(12345))

    speedrun.RECIPES[NAMES[variant]] = (train_kw, net_kw, text)
    if variant == "immiscible":
        trainer.diffusion_loss = immiscible_loss
    else:
        trainer.Trainer.__init__ = init
    try:
        yield
    finally:
        trainer.diffusion_loss, trainer.Trainer.__init__ = old_loss, old_init
        speedrun.RECIPES.pop(NAMES[variant])


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in NAMES:
        raise SystemExit(f"usage: screen_targets.py {{{','.join(NAMES)}}} [--stf-reference N] SPEEDRUN-OPTIONS")
    variant, rest, n_ref = argv[0], argv[1:], 1024
    if "--stf-reference" in rest:
        i = rest.index("--stf-reference")
        n_ref, rest = int(rest[i + 1]), rest[:i] + rest[i + 2:]
    with installed(variant, n_ref):
        return speedrun.main(["--recipes", NAMES[variant], *rest])


if __name__ == "__main__":
    main()
