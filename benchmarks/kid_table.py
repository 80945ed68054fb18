"""Kernel distance (KID ± standard error) beside classifier-FID for DDIM on MNIST, η ∈ {0, 1}.

    python benchmarks/kid_table.py                      # 1,000 samples a cell, S ∈ {10, 20, 50}
    python benchmarks/kid_table.py --n 200 --steps 10   # a quick look

Samples of the shipped model against the 500 held-out digits, on the course classifier's
features: KID (unbiased, ``de.evaluation.kernel_distance``, jackknife standard error) and the
Fréchet distance of the same features (biased upwards at small n), plus the share of samples
classified with confidence > 0.9. Every cell starts from the same x_T. The "real digits" row is
n random training digits against the same reference (KID ≈ 0 within its error: the floor).
The η = 1 minus η = 0 difference at each S is reported with the standard error of the paired
difference (``de.evaluation.kid_difference``: the i-th samples of the two cells share their
x_T), beside √(se₀² + se₁²), the error two separate KIDs would allow. With ``--against
CHECKPOINT`` the same cells (same x_T and noise) are also sampled from a second model, each
model with the noise schedule it was trained on, and this model minus that one is reported per
cell, paired the same way; with ``--ratio C`` also this model's KID minus C times that one's
(``kid_difference(scale=C)``: negative means within C× of it, e.g. the own-run target's 3× of the
shipped model's), with the same paired error. With ``--weights raw`` the model is a run folder's last optimiser
iterate (state.safetensors) instead of its EMA weights; ``--against`` always takes the EMA.
Writes results/kid_mnist.json and .md (thread count, sample count and hardware included).
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from common import ROOT, ddim_samples, de, kid_scores, features, fixed_noise, load, machine_name, \
    markdown_table, model_step, shown, write_results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "mnist"), help="the model's folder")
    p.add_argument("--weights", choices=("ema", "raw"), default="ema",
                   help="which weights of --checkpoint: its EMA (model.safetensors) or, for a run folder, the last "
                        "optimiser iterate (state.safetensors); --against always takes the EMA")
    p.add_argument("--n", type=int, default=1000, help="samples per cell")
    p.add_argument("--steps", default="10,20,50")
    p.add_argument("--etas", default="0,1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--device", default=None, help="default: CUDA when present, else the CPU")
    p.add_argument("--against", default=None, help="a second model's folder: its cells on the same x_T (with its "
                   "own noise schedule), and this model minus it, paired")
    p.add_argument("--ratio", type=float, default=None, help="with --against: also this model's KID minus RATIO "
                   "times the other's, paired (negative: within RATIO x of it)")
    p.add_argument("--out", default=str(ROOT / "results" / "kid_mnist"))
    a = p.parse_args(argv)
    if a.ratio is not None and not a.against:
        p.error("--ratio compares with the --against model: give --against too")
    if a.ratio is not None and not (math.isfinite(a.ratio) and a.ratio >= 0):
        p.error(f"--ratio must be a finite number >= 0, got {a.ratio}")
    torch.set_num_threads(a.threads)
    device = torch.device(a.device) if a.device else (de.env.device("cpu") if not torch.cuda.is_available()
                                                      else de.env.device())
    steps = [int(s) for s in a.steps.split(",")]
    etas = [float(e) for e in a.etas.split(",")]
    model, sched, config = load(a.checkpoint, device, weights=a.weights)
    other, other_sched = load(a.against, device)[:2] if a.against else (None, None)   # each its own schedule
    classifier = de.evaluation.load_classifier(device=device)
    held_out, held_out_labels = de.data.load_mnist("test")     # 50 of each class: KID takes the labels
    ref = features(classifier, held_out, device)
    train = de.data.load_mnist("train")[0]
    real = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(a.seed + 1))[:a.n]]
    x_T = fixed_noise(a.n, (1, 28, 28), a.seed)
    cells, feats, start = {}, {}, time.perf_counter()

    def score(x):
        return kid_scores(classifier, x, ref, held_out_labels, device)

    def cell(net, net_sched, eta, S):
        t0 = time.perf_counter()
        x = ddim_samples(net, net_sched, x_T, S, eta, a.seed, a.batch, device)
        f, c = score(x)
        return f, {**c, "seconds": time.perf_counter() - t0}

    def paired(fa, fb, ca, cb):
        d = de.evaluation.kid_difference(fa, fb, ref, labels_ref=held_out_labels)
        return {"diff": d.value, "se": d.stderr, "z": d.value / d.stderr if d.stderr > 0 else math.nan,
                "se_unpaired": math.hypot(ca["kid_se"], cb["kid_se"])}

    def within_ratio(fa, fb):
        d = de.evaluation.kid_difference(fa, fb, ref, labels_ref=held_out_labels, scale=a.ratio)
        return {"ratio": a.ratio, "diff": d.value, "se": d.stderr, "z": d.value / d.stderr if d.stderr > 0 else math.nan,
                "se_samples": d.stderr_samples, "se_reference": d.stderr_reference}

    against = {}
    for eta in etas:
        for S in steps:
            key = f"eta={eta:g},S={S}"
            feats[key], cells[key] = cell(model, sched, eta, S)
            print(f"η = {eta:g}, S = {S}: {cells[key]}", flush=True)
            if other is not None:
                f_other, c_other = cell(other, other_sched, eta, S)
                against[key] = {"cell": c_other, **paired(feats[key], f_other, cells[key], c_other)}
                d = against[key]
                print(f"   {a.against}: {c_other}; this minus it {d['diff']:+.3e} ± {d['se']:.3e} (paired, "
                      f"{d['z']:+.1f} s.e.; unpaired ± {d['se_unpaired']:.3e})", flush=True)
                if a.ratio is not None:
                    d["minus_ratio"] = r = within_ratio(feats[key], f_other)
                    print(f"   this minus {a.ratio:g}× it {r['diff']:+.3e} ± {r['se']:.3e} ({r['z']:+.1f} s.e.)", flush=True)
    floor = score(real)[1]
    diffs = {}
    for S in steps:
        k0, k1 = f"eta=0,S={S}", f"eta=1,S={S}"
        if k0 in cells and k1 in cells:
            diffs[str(S)] = paired(feats[k1], feats[k0], cells[k1], cells[k0])
    hw = machine_name(device)
    data = {"n": a.n, "reference": "500 held-out MNIST digits", "threads": torch.get_num_threads(), "device": str(device),
            "hardware": hw, "checkpoint": shown(a.checkpoint), "weights": a.weights, "checkpoint_step": model_step(config),
            "seed": a.seed,
            "steps": steps, "etas": etas, "cells": cells, "floor": floor,
            "eta1_minus_eta0": diffs, "against": a.against, "minus_against": against,
            "seconds_total": time.perf_counter() - start}
    rows = [[f"η = {eta:g}", S, f"{c['kid'] * 1e3:.2f} ± {c['kid_se'] * 1e3:.2f}", c["fid"],
             f"{c['confident']:.3f} ± {c['confident_se']:.3f}"]
            for (eta, S), c in ((tuple(float(v.split('=')[1]) if i == 0 else int(v.split('=')[1])
                                       for i, v in enumerate(k.split(','))), c) for k, c in cells.items())]
    rows.append(["real digits (floor)", "–", f"{floor['kid'] * 1e3:.2f} ± {floor['kid_se'] * 1e3:.2f}", floor["fid"],
                 f"{floor['confident']:.3f} ± {floor['confident_se']:.3f}"])
    which = "" if a.weights == "ema" else ", its raw weights (the last optimiser iterate, not the EMA)"
    body = (f"{a.n} samples per cell from `{shown(a.checkpoint)}` (step {model_step(config)}{which}) against the 500 held-out "
            f"digits, course classifier features; {hw}, {data['threads']} thread(s), seed {a.seed}, "
            f"{data['seconds_total']:.0f} s in all. "
            "KID ×10³ ± its jackknife standard error (unbiased: ≈ 0 for real digits); classifier-FID of the same "
            "features (biased upwards at this n); share classified with confidence > 0.9.\n\n"
            + markdown_table(["sampler", "S", "KID ×10³", "classifier-FID", "confident share"], rows))
    if diffs:       # both η at some S (--etas 0 alone measures DDIM's cells only)
        body += ("\n\nη = 1 minus η = 0 (KID ×10³ ± the standard error of the paired difference, the samples of "
                 "both cells sharing their x_T; beside it √(se₀² + se₁²), the error of two separate KIDs):\n\n"
                 + markdown_table(["S", "difference", "in standard errors", "unpaired error"],
                                  [[S, f"{d['diff'] * 1e3:.2f} ± {d['se'] * 1e3:.2f}", f"{d['z']:.1f}",
                                    f"{d['se_unpaired'] * 1e3:.2f}"] for S, d in diffs.items()]))
    if against:
        body += (f"\n\nThis model minus `{a.against}`, the same x_T and noise (KID ×10³, paired standard error; "
                 "negative: this model nearer the held-out digits):\n\n"
                 + markdown_table(["cell", f"KID ×10³ of `{a.against}`", "difference", "in standard errors",
                                   "unpaired error"],
                                  [[k, f"{d['cell']['kid'] * 1e3:.2f} ± {d['cell']['kid_se'] * 1e3:.2f}",
                                    f"{d['diff'] * 1e3:.2f} ± {d['se'] * 1e3:.2f}", f"{d['z']:.1f}",
                                    f"{d['se_unpaired'] * 1e3:.2f}"] for k, d in against.items()]))
    if a.ratio is not None and against:
        body += (f"\n\nThis model's KID minus {a.ratio:g}× that of `{a.against}` (KID ×10³, the same x_T, paired "
                 f"standard error; negative: within {a.ratio:g}× of it). Its error is at least |{a.ratio:g}·se of "
                 "the other − se of this one|: the other's own error, multiplied. Its two parts: from the "
                 f"{a.n} pairs of samples (it shrinks as 1/√n with more) and from the 500 held-out digits (it does not):\n\n"
                 + markdown_table(["cell", f"this minus {a.ratio:g}× the other", "in standard errors",
                                   "error from the samples", "error from the held-out digits"],
                                  [[k, f"{d['minus_ratio']['diff'] * 1e3:.2f} ± {d['minus_ratio']['se'] * 1e3:.2f}",
                                    f"{d['minus_ratio']['z']:.1f}", f"{d['minus_ratio']['se_samples'] * 1e3:.2f}",
                                    f"{d['minus_ratio']['se_reference'] * 1e3:.2f}"] for k, d in against.items()]))
    write_results(Path(a.out), "Kernel distance (KID) on MNIST" + (", η = 0 against η = 1" if diffs else ""), body, data)
    return data


if __name__ == "__main__":
    main()
