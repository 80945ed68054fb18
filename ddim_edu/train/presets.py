r"""Named training recipes: a network and the :class:`~.config.TrainConfig` options that go with it,
chosen by measurement (``benchmarks/speedrun.py``, ``results/speedrun_cpu.md``).

``laptop`` — legible MNIST digits from a few minutes of CPU training:

* the course's UNet (widths 32/64/128, two blocks per level) on 2×2 pixel patches
  (``patch_size=2``): the same network run at 14/7/4 instead of 28/14/7, about 3× cheaper a
  step on a CPU;
* batch 64 and a 4× larger learning rate (2e-3 after a 100-step warm-up), decayed to 0 by a cosine
  at the last step: at ``steps``, or, for a run given only a time budget, at the step where the
  run's own speed, measured over its first minute at most and again at 10%, 25%, 50% and 75% of
  the budget (each time over the steps since the previous measurement), says the budget will run
  out (:mod:`~ddim_edu.train.schedules`). Against a constant rate the decay lowered the kernel
  distance by about a quarter over 5,000 steps at two seeds, and by a third over 10 minutes
  (4,900 steps) of a 2-core CPU (``results/speedrun/grid4_notes.md``);
* min-SNR-5 loss weighting, w_t = min(SNR_t, 5)/SNR_t (Hang et al. 2023), which is DDIM's L_γ
  (eq. 5) with γ_t ∝ w_t: by Theorem 1 the same optimum as L_simple when parameters are not shared
  across t, so every sampler of the course applies unchanged;
* EMA 0.999 with warm-up (the warm-up's d_n = (1+n)/(10+n) keeps it short early on);
* the time embedding as a scale and shift after each residual block's second GroupNorm
  (``scale_shift=True``, ADM's adaptive GroupNorm) and AdamW's β2 = 0.99 (not 0.999). Each alone
  lowered the kernel distance after 10 minutes by about a sixth; together, over 30 minutes of the same
  2-core CPU, by 40% against the preset without them: KID 0.0027 against 0.0045 on 2,000 DDIM-50
  samples from the same x_T, −3.0 standard errors of the paired difference
  (``results/speedrun/grid4_notes.md``, section "Scale-shift and AdamW β2 0.99");
* t drawn from the noisier half of the chain (t ≥ 500) a fifth of the time, not half
  (``t_sampling="asymmetric"``, the asymmetric sampling of Wang et al. 2024): near x_T the target ε
  is almost x_t itself and is learnt early, so the draws go where the digit's shape is decided.
  Still DDIM's L_γ (:mod:`~ddim_edu.train.loss`). After 10 minutes of the 2-core CPU it lowered the
  kernel distance by a fifth to a third (0.0061 and 0.0085 against 0.0097 and 0.0108 on 2,000 samples,
  two seeds, −4.5 and −2.9 standard errors of the paired differences); after 30 minutes by 0% and 27%
  (−0.0 and −1.7 standard errors), with 3–4 points more confident digits (``results/speedrun/grid4_notes.md``,
  section "Where the draws of t go");
* no loss weight below 0.05 (``min_snr_floor=0.05``): min-SNR-5 alone weights t = 0, DDIM's last step,
  by 5/SNR_0 ≈ 0.0005, and the floor raises only t < 27 (SNR_t > 100), among DDIM-50's steps t = 0
  and 20. Still L_γ. On a 2-core AMD EPYC (no AMX), on 2,000 paired samples each, it lowered the
  kernel distance at equal steps by 0.0010 ± 0.0005 at 13,611 steps (0.0017 against 0.0027, seed 0),
  by 0.0007 ± 0.0004 at 13,611 steps (0.0025 against 0.0032, seed 1) and by 0.0009 ± 0.0005 at 11,991
  (0.0032 against 0.0041, seed 0). At equal time it was −0.0010 ± 0.0004 at 40 minutes (one pair, seed 0:
  18,740 steps against 18,031 of a run that also measured its speed in its first minute only) and
  +0.0004 ± 0.0005 at 30 (11,991 steps, the end its slow first minute set, against the other run's 13,611). Three
  30-minute runs of the preset as it is (seeds 0, 1, 2: 13,739, 12,670 and 13,178 steps) scored 2.9×, 4.2×
  and 4.4× the shipped model's KID there, three 40-minute runs (seeds 0, 1, 2: 18,740, 20,177 and 19,775
  steps) 2.3×, 2.1× and 3.2×. In float32 on a 2-core AVX2 CPU without bf16 units, 60 minutes bought
  11,055 steps and scored 4.6×, just above the spread of the 30-minute runs on the EPYC (11,991–13,739
  steps, 2.9–4.4×; section "A CPU without bf16 units").
  A floor of 0.2, which also raises t = 40, did not help (``results/speedrun/grid4_notes.md``,
  sections "A floor of 0.05 under the loss weights" and "40 minutes of the preset, three seeds").

``mnist`` — the full-length MNIST recipe of ``results/retrain_mnist`` (hours on a CPU, minutes on a GPU):

* the course's UNet at full resolution (widths 32/64/128, two blocks per level, 28/14/7) with
  dropout 0.2 in its residual blocks (at 0.1 the held-out ε-loss turned up after 7,000 steps);
* 12,000 steps at batch 256 (3.1 million images drawn from the 4,500 training digits);
* learning rate 1e-3 after a 100-step warm-up, decayed to 0 by a cosine at the last step;
* min-SNR-5 loss weighting, as ``laptop``, and EMA 0.9995.

The shipped ``mnist`` weights are this preset followed by two short runs from its EMA weights (commands
of their own, not part of the preset): a second anneal, ``python -m ddim_edu.train --init runs/mnist
--steps 2000 --lr 3.5e-4 --lr-warmup 100 --lr-schedule cosine --out runs/mnist_anneal``, then, on a GPU,
1,485 steps at batch 1,024 whose loss weights never fall below 0.2, ``python -m ddim_edu.train --init
runs/mnist_anneal --steps 1600 --batch-size 1024 --lr 3.5e-4 --lr-schedule cosine --min-snr-floor 0.2
--max-minutes 1.4 --out runs/mnist_floor`` (``--init`` keeps the run's other options and moves the seed
on by one; ``checkpoints/README.md``).

Use it from Python (``model = preset_model("laptop")``, ``de.train.train(model, images, sched,
steps, **preset_training("laptop"))``) or from the command line (``python -m ddim_edu.train --preset
laptop --minutes 10 --out runs/laptop``; ``python -m ddim_edu.train --preset mnist --dataset mnist --seed 1
--out runs/mnist``), where options typed on the command line win. A preset does not choose the
device, the seed or bf16 autocast (on by default on CUDA; ``--bf16`` on a CPU with AMX or AVX-512 BF16;
on an x86 CPU without them bf16 is emulated, about 15× slower than float32 on a 2-core AVX2 CPU, and the
trainer warns).
"""
from __future__ import annotations

from ..validation import check_choice, check_int

# name -> (network options, TrainConfig options); network options use the CLI's names
PRESETS: dict[str, tuple[dict, dict]] = {
    "laptop": ({"widths": [32, 64, 128], "num_res_blocks": 2, "patch_size": 2, "scale_shift": True},
               {"batch_size": 64, "lr": 2e-3, "lr_warmup": 100, "lr_schedule": "cosine", "adam_beta2": 0.99,
                "loss_weighting": "min_snr", "min_snr_gamma": 5.0, "ema_decay": 0.999,
                "min_snr_floor": 0.05, "t_sampling": "asymmetric", "t_split": 0.5, "t_upper_share": 0.2}),
    "mnist": ({"widths": [32, 64, 128], "num_res_blocks": 2, "patch_size": 1, "dropout": 0.2},
              {"steps": 12_000, "batch_size": 256, "lr": 1e-3, "lr_warmup": 100, "lr_schedule": "cosine",
               "loss_weighting": "min_snr", "min_snr_gamma": 5.0, "ema_decay": 0.9995}),
}

__all__ = ["PRESETS", "preset_model", "preset_training"]


def _get(name: str) -> tuple[dict, dict]:
    return PRESETS[check_choice("preset", name, tuple(PRESETS))]


def preset_model(name: str = "laptop", in_channels: int = 1):
    """A freshly initialised :class:`~ddim_edu.nets.UNet` of preset ``name`` for images with
    ``in_channels`` channels (H and W multiples of its patch size). ``ValueError`` for an unknown name."""
    from ..nets.build import unet_from_widths
    return unet_from_widths(in_channels=check_int("in_channels", in_channels, lo=1), **_get(name)[0])


def preset_training(name: str = "laptop") -> dict:
    """The :class:`~.config.TrainConfig` options of preset ``name`` (a new dict: change it freely).
    ``mnist``'s include ``steps`` (its cosine reaches 0 there), so pass no step count beside them:
    ``train(model, images, sched, **preset_training("mnist"))``."""
    return dict(_get(name)[1])


def preset_cli_defaults(name: str) -> dict:
    """Preset ``name`` as ``python -m ddim_edu.train`` option values, keyed by argparse ``dest``."""
    from .config import TrainConfig, cli_dest
    import dataclasses
    dest = {f.name: cli_dest(f) for f in dataclasses.fields(TrainConfig)}
    net, train = _get(name)
    return {**net, **{dest[k]: v for k, v in train.items()}}
