"""Kernel distance (KID ± standard error) beside classifier-FID for DDIM on MNIST, η ∈ {0, 1}.

    python benchmarks/kid_table.py                      # 1,000 samples a cell, S ∈ {10, 20, 50}
    python benchmarks/kid_table.py --n 200 --steps 10   # a quick look

Samples of the shipped model against the 500 held-out digits, on the course classifier's
features: KID (unbiased, ``de.evaluation.kernel_distance``, jackknife standard error) and the
Fréchet distance of the same features (biased upwards at small n), plus the share of samples
classified with confidence > 0.9. Every cell starts from the same x_T. The "real digits" row is
n random training digits against the same reference (KID ≈ 0 within its error: the floor).
The η = 1 minus η = 0 difference is reported with the standard error √(se₀² + se₁²), which
overstates the error of a difference of two KIDs against the same reference (they are
positively correlated), so the margins in standard errors are conservative.
Writes results/kid_mnist.json and .md (thread count, sample count and hardware included).
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import torch

from common import ROOT, de, features, fid_from_features, fixed_noise, hardware, load, markdown_table, model_step, \
    sample_batched, write_results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "mnist"), help="the model's folder")
    p.add_argument("--n", type=int, default=1000, help="samples per cell")
    p.add_argument("--steps", default="10,20,50")
    p.add_argument("--etas", default="0,1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--device", default=None, help="default: CUDA when present, else the CPU")
    p.add_argument("--out", default=str(ROOT / "results" / "kid_mnist"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device) if a.device else (de.env.device("cpu") if not torch.cuda.is_available()
                                                      else de.env.device())
    steps = [int(s) for s in a.steps.split(",")]
    etas = [float(e) for e in a.etas.split(",")]
    model, sched, config = load(a.checkpoint, device)
    classifier = de.evaluation.load_classifier(device=device)
    held_out, held_out_labels = de.data.load_mnist("test")     # 50 of each class: KID takes the labels
    ref = features(classifier, held_out, device)
    train = de.data.load_mnist("train")[0]
    real = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(a.seed + 1))[:a.n]]
    x_T = fixed_noise(a.n, (1, 28, 28), a.seed)
    cells, start = {}, time.perf_counter()

    def score(x):
        f = features(classifier, x, device)
        kid = de.evaluation.kernel_distance(f, ref, subsets=0, labels_b=held_out_labels)
        conf = de.evaluation.confident_share(x, classifier)
        return {"kid": kid.value, "kid_se": kid.stderr, "fid": fid_from_features(f, ref),
                "confident": conf.value, "confident_se": conf.stderr}

    for eta in etas:
        for S in steps:
            t0 = time.perf_counter()
            gen = torch.Generator().manual_seed(a.seed + 100)
            x = sample_batched(lambda xb: de.ddim_sample(model, xb, sched, steps=S, eta=eta, generator=gen,
                                                        progress=False).clamp(-1, 1), x_T, a.batch, device)
            cells[f"eta={eta:g},S={S}"] = {**score(x), "seconds": time.perf_counter() - t0}
            print(f"η = {eta:g}, S = {S}: {cells[f'eta={eta:g},S={S}']}", flush=True)
    floor = score(real)
    diffs = {}
    for S in steps:
        c0, c1 = cells.get(f"eta=0,S={S}"), cells.get(f"eta=1,S={S}")
        if c0 and c1:
            d, se = c1["kid"] - c0["kid"], math.hypot(c0["kid_se"], c1["kid_se"])
            diffs[str(S)] = {"diff": d, "se": se, "z": d / se}
    hw = (hardware(device) if torch.device(device).type == "cuda"
          else f"CPU, {os.cpu_count()} cores ({platform.machine()})")
    data = {"n": a.n, "reference": "500 held-out MNIST digits", "threads": torch.get_num_threads(), "device": str(device),
            "hardware": hw, "checkpoint": a.checkpoint, "checkpoint_step": model_step(config), "seed": a.seed,
            "steps": steps, "etas": etas, "cells": cells, "floor": floor,
            "eta1_minus_eta0": diffs, "seconds_total": time.perf_counter() - start}
    rows = [[f"η = {eta:g}", S, f"{c['kid'] * 1e3:.2f} ± {c['kid_se'] * 1e3:.2f}", c["fid"],
             f"{c['confident']:.3f} ± {c['confident_se']:.3f}"]
            for (eta, S), c in ((tuple(float(v.split('=')[1]) if i == 0 else int(v.split('=')[1])
                                       for i, v in enumerate(k.split(','))), c) for k, c in cells.items())]
    rows.append(["real digits (floor)", "–", f"{floor['kid'] * 1e3:.2f} ± {floor['kid_se'] * 1e3:.2f}", floor["fid"],
                 f"{floor['confident']:.3f} ± {floor['confident_se']:.3f}"])
    body = (f"{a.n} samples per cell from `{a.checkpoint}` (step {model_step(config)}) against the 500 held-out "
            f"digits, course classifier features; {hw}, {data['threads']} thread(s), seed {a.seed}, {data['seconds_total']:.0f} s in all. "
            "KID ×10³ ± its jackknife standard error (unbiased: ≈ 0 for real digits); classifier-FID of the same "
            "features (biased upwards at this n); share classified with confidence > 0.9.\n\n"
            + markdown_table(["sampler", "S", "KID ×10³", "classifier-FID", "confident share"], rows)
            + "\n\nη = 1 minus η = 0 (KID ×10³, conservative standard error √(se₀² + se₁²)):\n\n"
            + markdown_table(["S", "difference", "in standard errors"],
                             [[S, f"{d['diff'] * 1e3:.2f} ± {d['se'] * 1e3:.2f}", f"{d['z']:.1f}"] for S, d in diffs.items()]))
    write_results(Path(a.out), "Kernel distance (KID) on MNIST, η = 0 against η = 1", body, data)


if __name__ == "__main__":
    main()
