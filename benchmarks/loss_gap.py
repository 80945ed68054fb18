"""How much better does the MNIST model fit its training digits than new ones? Notebook 02's paired
loss gap at several seeds.

    python benchmarks/loss_gap.py                  # ten seeds at notebook 02's full size and at its fast size
    python benchmarks/loss_gap.py --seeds 3        # a quick look

Each seed draws n of the 4,500 training digits and pairs them with the first n of the 500 held-out
digits; ``de.train.loss_gap`` gives the i-th digit of both sets the same (t, ε), ``draws`` times,
and reports held-out minus training L_simple with its paired standard error. Notebook 02 measures
one such seed at its full size (500 digits, 4 draws) or its fast size (125, 2) and asserts bounds
on it; this spread over seeds is what those bounds are set against.
Writes results/loss_gap_mnist.json and .md (thread count and hardware included).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from common import ROOT, de, load, machine_name, markdown_table, model_step, shown, write_results

SIZES = {"full": (500, 4), "fast": (125, 2)}   # notebook 02: digits per set, draws per digit


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "mnist"), help="the model's folder")
    p.add_argument("--seeds", type=int, default=10, help="seeds 0 … seeds − 1")
    p.add_argument("--sizes", default="full,fast", help="notebook 02's sizes to measure: full, fast")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(ROOT / "results" / "loss_gap_mnist"))
    a = p.parse_args(argv)
    a.sizes = [s.strip() for s in a.sizes.split(",")]
    if a.seeds < 1:
        p.error(f"--seeds must be at least 1, got {a.seeds}")
    if a.threads < 1:
        p.error(f"--threads must be at least 1, got {a.threads}")
    unknown = [s for s in a.sizes if s not in SIZES]
    if unknown:
        p.error(f"--sizes: {', '.join(map(repr, unknown))} is not one of notebook 02's sizes; "
                f"choose from {', '.join(SIZES)}")
    return a


def one_seed(model, sched, train, held_out, n: int, draws: int, seed: int, device) -> dict:
    gen = torch.Generator().manual_seed(seed)
    seen = train[torch.randperm(len(train), generator=gen)[:n]].to(device)
    seen_loss, new_loss, gap = de.train.loss_gap(model, seen, held_out[:n].to(device), sched, draws, gen)
    return {"seed": seed, "seen": seen_loss.value, "new": new_loss.value, "gap": gap.value, "gap_se": gap.stderr,
            "share": gap.value / seen_loss.value, "z": gap.value / gap.stderr}


def main(argv=None):
    a = parse(argv)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    model, sched, config = load(a.checkpoint, device)
    train, held_out = de.data.load_mnist("train")[0], de.data.load_mnist("test")[0]
    sizes, start, rows, summary = a.sizes, time.perf_counter(), [], {}
    for size in sizes:
        n, draws = SIZES[size]
        cells = [one_seed(model, sched, train, held_out, n, draws, seed, device) for seed in range(a.seeds)]
        for c in cells:
            print(f"{size} seed {c['seed']}: gap {c['share']:.1%} of the training loss, {c['z']:.1f} s.e.", flush=True)
        shares, zs = [c["share"] for c in cells], [c["z"] for c in cells]
        summary[size] = {"n": n, "draws": draws, "cells": cells, "share_min": min(shares), "share_max": max(shares),
                         "share_mean": sum(shares) / len(shares), "z_min": min(zs), "z_max": max(zs),
                         "z_mean": sum(zs) / len(zs)}
        s = summary[size]
        rows.append([f"{size}: {n} digits a set, {draws} draws", str(a.seeds),
                     f"{s['share_min']:.1%} – {s['share_max']:.1%} (mean {s['share_mean']:.1%})",
                     f"{s['z_min']:.1f} – {s['z_max']:.1f} (mean {s['z_mean']:.1f})"])
    hw = machine_name(device)
    data = {"checkpoint": shown(a.checkpoint), "checkpoint_step": model_step(config), "device": str(device),
            "hardware": hw, "threads": torch.get_num_threads(), "seeds": a.seeds, "sizes": summary,
            "seconds_total": time.perf_counter() - start}
    body = (f"`{shown(a.checkpoint)}` (step {model_step(config)}); {hw}, {data['threads']} thread(s), "
            f"{data['seconds_total']:.0f} s in all. Per seed: n random training digits and the first n held-out "
            f"digits, the i-th of each with the same (t, ε) per draw (`de.train.loss_gap`, notebook 02); the gap is "
            f"held-out minus training L_simple, as a share of the training loss and in its paired standard errors.\n\n"
            + markdown_table(["size", "seeds", "gap / training loss", "gap / its standard error"], rows))
    write_results(Path(a.out), "Held-out minus training ε-loss on MNIST, paired, over seeds", body, data)
    return data


if __name__ == "__main__":
    main()
