"""Does the MNIST model copy its 4,500 training digits? Nearest training digits of DDIM samples.

    python benchmarks/memorisation.py                    # 2,000 samples a cell, S ∈ {10, 50}, η = 0
    python benchmarks/memorisation.py --n 200 --steps 10 # a quick look

For every DDIM sample, the RMS pixel distance to its nearest training digit
(``de.evaluation.copy_share``), set against the same distance for the 500 held-out digits,
which are real digits the model never saw. The copy share is the share of samples nearer a
training digit than the closest 5% of held-out digits are (q = 0.05): about 0.05 for a model
whose samples are as new as unseen real digits, near 1 for one that hands back its training
set. Every cell starts from the same x_T as ``kid_table.py`` (seed 0), so the samples are the
ones its KID was measured on. The distance is in pixels, so it finds copies and near-copies; a
training digit redrawn a pixel to the side or a little thicker is as far away as a new digit.
Also writes a figure: the samples nearest a training digit, random samples and random held-out
digits, each above its nearest training digit.
Writes results/memorisation_mnist.json, .md and .png (thread count, sample count and hardware included).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from common import ROOT, ddim_samples, de, fixed_noise, load, machine_name, markdown_table, model_step, shown, \
    write_results


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "mnist"), help="the model's folder")
    p.add_argument("--n", type=int, default=2000, help="samples per cell")
    p.add_argument("--steps", default="10,50")
    p.add_argument("--eta", type=float, default=0.0)
    p.add_argument("--q", type=float, default=0.05, help="held-out quantile that sets the copy threshold")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--device", default=None, help="default: CUDA when present, else the CPU")
    p.add_argument("--out", default=str(ROOT / "results" / "memorisation_mnist"))
    return p.parse_args(argv)


def quantiles(d: torch.Tensor) -> list:
    return [float(v) for v in torch.quantile(d, torch.tensor([0.05, 0.5], dtype=d.dtype))]


def figure(x, train, held_out, res, path: Path, S: int, eta: float, k: int = 12):
    """Each panel: k images above their nearest training digits — the samples nearest a training
    digit, random samples, and random held-out digits (the calibration: real digits never seen)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    g = torch.Generator().manual_seed(1)
    rand, held = torch.randperm(len(x), generator=g)[:k], torch.randperm(len(held_out), generator=g)[:k]
    d_held, i_held = de.evaluation.nearest_distances(held_out[held], train)
    near = res.distances.argsort()[:k]
    panels = [(x[near], res.distances[near], res.indices[near], f"the {k} of {len(x)} samples nearest a training digit"),
              (x[rand], res.distances[rand], res.indices[rand], f"{k} random samples"),
              (held_out[held], d_held[:, 0], i_held[:, 0], f"{k} random held-out digits (never trained on)")]
    fig, axes = plt.subplots(3, 1, figsize=(9, 6.3))
    for ax, (images, d, idx, what) in zip(axes, panels):
        de.viz.image_rows({"image": images, "nearest\ntraining": train[idx]}, ax=ax,
                          title=f"{what}: distances {float(d.min()):.2f}–{float(d.max()):.2f}")
    fig.suptitle(f"DDIM (η = {eta:g}, S = {S}) samples and held-out digits above their nearest of the {len(train):,} "
                 f"training digits (copy threshold {res.threshold:.2f})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    a = parse(argv)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device) if a.device else (de.env.device("cpu") if not torch.cuda.is_available()
                                                      else de.env.device())
    steps = [int(s) for s in a.steps.split(",")]
    model, sched, config = load(a.checkpoint, device)
    train = de.data.load_mnist("train")[0]
    held_out = de.data.load_mnist("test")[0]
    x_T = fixed_noise(a.n, (1, 28, 28), a.seed)
    cells, start, out = {}, time.perf_counter(), Path(a.out)
    for S in steps:
        t0 = time.perf_counter()
        x = ddim_samples(model, sched, x_T, S, a.eta, a.seed, a.batch, device)
        res = de.evaluation.copy_share(x, train, held_out, q=a.q)
        d5, d50 = quantiles(res.distances)
        cells[str(S)] = {"copy_share": res.value, "copy_share_se": res.stderr, "threshold": res.threshold,
                         "distance_q05": d5, "distance_median": d50, "seconds": time.perf_counter() - t0}
        print(f"S = {S}: {cells[str(S)]}", flush=True)
        if S == max(steps):
            figure(x, train, held_out, res, out.with_suffix(".png"), S, a.eta)
    h5, h50 = quantiles(res.held_out_distances)
    hw = machine_name(device)
    data = {"n": a.n, "eta": a.eta, "q": a.q, "threads": torch.get_num_threads(), "device": str(device),
            "hardware": hw, "checkpoint": shown(a.checkpoint), "checkpoint_step": model_step(config), "seed": a.seed,
            "train": len(train), "held_out": {"n": len(held_out), "distance_q05": h5, "distance_median": h50},
            "cells": cells, "seconds_total": time.perf_counter() - start}
    rows = [[f"DDIM η = {a.eta:g}, S = {S}", f"{c['copy_share']:.3f} ± {c['copy_share_se']:.3f}",
             f"{c['distance_q05']:.3f}", f"{c['distance_median']:.3f}"] for S, c in cells.items()]
    rows.append([f"the {len(held_out)} held-out digits (never trained on)", f"{a.q:g} (by construction)",
                 f"{h5:.3f}", f"{h50:.3f}"])
    body = (f"{a.n} samples per cell from `{shown(a.checkpoint)}` (step {model_step(config)}), the x_T of `kid_table.py` "
            f"(seed {a.seed}); {hw}, {data['threads']} thread(s), {data['seconds_total']:.0f} s in all. Distance: RMS "
            f"over the pixels on the [−1, 1] scale to the nearest of the {len(train)} training digits. Copy share: "
            f"the share of samples nearer a training digit than {a.q:g} of the held-out digits are (threshold "
            f"{res.threshold:.3f}), ± its binomial standard error (the threshold's own error, from "
            f"{len(held_out)} held-out digits, not included). About {a.q:g} means the samples are as new as unseen "
            f"real digits; near 1, copies of the training set; well below {a.q:g}, samples farther from every "
            f"training digit than real digits are (blurred or malformed digits, not more original ones).\n\n"
            + markdown_table(["images", "copy share", "distance, 5% quantile", "distance, median"], rows)
            + f"\n\n![samples above their nearest training digits]({out.with_suffix('.png').name})")
    write_results(out, "Memorisation: DDIM samples against their nearest training digits", body, data)
    return data


if __name__ == "__main__":
    main()
