"""Does more training still help? Classifier-FID and ε-loss along a training run.

    python -m ddim_edu.train --init checkpoints/mnist ... --snapshot-every 1000 --out runs/more
    python benchmarks/training_curve.py --run runs/more --before checkpoints/mnist
    python benchmarks/training_curve.py --quick ...        # 200 samples, DDIM S ∈ {10, 20} only
    python benchmarks/training_curve.py --run runs/more --pick results/training_curve_mnist.json
    python benchmarks/training_curve.py --join runs_a.json runs_b.json --run runs/mnist   # one training, two runs

Every point is one set of EMA weights: earlier models (--before, e.g. the one the run started
from), each snapshot the run kept (RUN/snapshots/step_N, written by --snapshot-every) and the
run's last weights.
For each it reports the classifier-FID of n samples for the cells in --cells (η:S; all from the
same x_T, so points differ only by the weights) and L_simple on 500 training and on the 500
held-out digits with t and ε fixed (each digit --loss-repeats times), so the points are comparable.
A falling training loss with a flat held-out loss is memorisation, not progress; flat FIDs
(within the halves' spread) mean training has stopped paying.

Each cell also gets its kernel distance (KID ± jackknife standard error, unbiased at small n).
--pick prints the run's point (a snapshot or the last weights, never an earlier model) with the
lowest DDIM (η = 0) KID summed over the curve's η = 0 cells: early stopping. --best does the same
over several runs' curves (a recipe race: each curve's own points only). The curve draws its x_T with another seed
than Table 1 (benchmarks/quality.py), so that a Table 1 of the picked point is not biased by the pick.
--join writes one curve from the curves of a training continued over several runs (each run
warm-started from the last weights of the one before, every curve measured alike); nothing is
sampled again.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from common import ROOT, de, features, fid_from_features, fixed_noise, hardware, load, markdown_table, model_step, \
    sample_batched, write_results
from quality import halves, real_floor, sampler


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=None, help="a run directory written by python -m ddim_edu.train")
    p.add_argument("--before", nargs="+", default=[], metavar="DIR",
                   help="earlier checkpoints, oldest first (e.g. the one the run was warm-started from)")
    p.add_argument("--n", type=int, default=2000, help="samples per cell")
    p.add_argument("--cells", default="0:10,0:20,1:10,1:20,0:50", help="comma list of η:S")
    p.add_argument("--loss-repeats", type=int, default=8, help="fixed (t, ε) draws per digit for the losses")
    p.add_argument("--seed", type=int, default=1, help="x_T's seed (Table 1 uses 0)")
    p.add_argument("--pick", default=None, metavar="JSON", help="print the run's best point in a curve's JSON; nothing else")
    p.add_argument("--best", nargs="+", default=None, metavar="JSON",
                   help="print the best point of several runs' curves (each its own run's points); nothing else")
    p.add_argument("--join", nargs="+", default=None, metavar="JSON",
                   help="curves of one training continued run after run, oldest first: one curve (--run names it)")
    p.add_argument("--device", default=None)
    p.add_argument("--quick", action="store_true", help="200 samples, cells 0:10,0:20, 2 loss repeats")
    p.add_argument("--out", default=str(ROOT / "results" / "training_curve_mnist"))
    a = p.parse_args(argv)
    if a.run is None and a.best is None and a.join is None:
        p.error("--run is required (or --best, --join)")
    if a.quick:
        a.n, a.cells, a.loss_repeats = 200, "0:10,0:20", 2
    a.cell_list = [(e, int(S)) for e, S in (c.split(":") for c in a.cells.split(","))]
    if a.n < 4 or a.loss_repeats < 1:
        p.error("--n must be at least 4 and --loss-repeats at least 1")
    return a


def checkpoints(run: Path, before: list[str]) -> list[Path]:
    """The curve's points in training order: earlier models, the snapshots, the run's final weights."""
    snaps = sorted((run / "snapshots").glob("step_*")) if (run / "snapshots").is_dir() else []
    points = [Path(b) for b in before] + snaps
    last = de.train.checkpoints.read_json(run / "config.json")["step"]
    if not snaps or int(snaps[-1].name.split("_")[1]) != last:
        points.append(run)
    return points


def own_points(curve: dict, run: Path) -> list[dict]:
    """The curve's points that belong to ``run``: its snapshots and its last weights."""
    return [p for p in curve["points"] if Path(p["checkpoint"]) == run or Path(p["checkpoint"]).parent == run / "snapshots"]


def score(point: dict) -> float:
    """Early stopping's score of a point: its η = 0 KIDs summed over S (FIDs for curves without KID)."""
    metric = point.get("kid") or point["fid"]
    return sum(v[0] if isinstance(v, list) else v for k, v in metric.items() if k.startswith("eta=0,"))


def pick(curve: dict, run: Path) -> str:
    """Early stopping: of the run's own points, the one with the lowest :func:`score`."""
    own = own_points(curve, run)
    if not own:
        raise ValueError(f"the curve has no point of the run {run}")
    return min(own, key=score)["checkpoint"]


def best(curves: list[dict]) -> str:
    """A recipe race: of every curve's own run's points, the one with the lowest :func:`score`."""
    own = [p for c in curves for p in own_points(c, Path(c["run"]))]
    if not own:
        raise ValueError("the curves have no point of their runs")
    return min(own, key=score)["checkpoint"]


def join(curves: list[dict]) -> list[dict]:
    """The points of one training continued over several runs, in training order. Each curve must be measured
    alike (n, cells, loss repeats and the real digits' floor); a later curve's points at or before the
    earlier curves' last step (its first point is usually the weights it started from) are left out."""
    first = curves[0]
    for c in curves[1:]:
        for key in ("n", "cells", "loss_repeats", "floor"):
            if c[key] != first[key]:
                raise ValueError(f"curves measured differently cannot be joined: {key} is {first[key]!r} in "
                                 f"{first['run']} and {c[key]!r} in {c['run']}")
    points = list(first["points"])
    for c in curves[1:]:
        points += [p for p in c["points"] if p["step"] > points[-1]["step"]]
    return points


def losses(model, sched, train, held_out, repeats: int, device) -> tuple[float, float]:
    """L_simple on 500 training and the 500 held-out digits, the same (t, ε) draws at every point."""
    with torch.no_grad():
        return tuple(de.train.held_out_loss(model, x.repeat(repeats, 1, 1, 1).to(device), sched, seed=7,
                                              batch_size=1000) for x in (train[:len(held_out)], held_out))


def plot(points, a, floor, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    steps = [p["step"] for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for eta, S in a.cell_list:
        key = f"eta={eta},S={S}"
        axes[0].plot(steps, [p["fid"][key] for p in points], "o-", label=f"η = {eta}, S = {S}")
    axes[0].axhline(floor, color="gray", ls="--", label="real digits")
    axes[0].set_yscale("log"), axes[0].set_title(f"classifier-FID, n = {a.n}")
    axes[1].plot(steps, [p["train_loss"] for p in points], "o-", label="training digits")
    axes[1].plot(steps, [p["held_out_loss"] for p in points], "o-", label="held-out digits")
    axes[1].set_title("L_simple, fixed (t, ε)")
    for ax in axes:
        ax.set_xlabel("training steps"), ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv=None):
    a = parse(argv)
    if a.pick:
        print(pick(json.loads(Path(a.pick).read_text()), Path(a.run)))
        return None
    if a.best:
        print(best([json.loads(Path(c).read_text()) for c in a.best]))
        return None
    if a.join:
        return joined(a)
    device = torch.device(a.device) if a.device else de.env.device()
    classifier = de.evaluation.load_classifier(device=device)
    held_out, held_out_labels = de.data.load_mnist("test")    # 50 of each class: KID takes the labels
    train, _ = de.data.load_mnist("train")
    ref = features(classifier, held_out, device)
    floor, _ = real_floor(classifier, train, ref, a.n, device)
    x_T = fixed_noise(a.n, tuple(held_out.shape[1:]), a.seed)
    batch = 1000 if device.type == "cuda" else 250
    points = []
    for path in checkpoints(Path(a.run), a.before):
        model, sched, config = load(str(path), device)
        point = {"checkpoint": str(path), "step": model_step(config), "fid": {}, "kid": {}, "halves": {}}
        point["train_loss"], point["held_out_loss"] = losses(model, sched, train, held_out, a.loss_repeats, device)
        for eta, S in a.cell_list:
            x0 = sample_batched(sampler(model, sched, eta, S, a.seed), x_T, batch, device).clamp(-1, 1)
            f = features(classifier, x0, device)
            key = f"eta={eta},S={S}"
            point["fid"][key], point["halves"][key] = fid_from_features(f, ref), halves(f, ref)
            kid = de.evaluation.kernel_distance(f, ref, subsets=0, labels_b=held_out_labels)
            point["kid"][key] = [kid.value, kid.stderr]
        points.append(point)
        print(f"step {point['step']:>6}  loss train {point['train_loss']:.5f} held-out {point['held_out_loss']:.5f}  "
              + "  ".join(f"{k} FID {v:.3f} KID {point['kid'][k][0] * 1e3:.1f}±{point['kid'][k][1] * 1e3:.1f}e-3"
                        for k, v in point["fid"].items()), flush=True)
    return report(points, a, floor, hardware(device), f"`{a.run}`")


def report(points, a, floor: float, device: str, source: str) -> dict:
    """Writes the curve: a.out + .json, .md and .png."""
    keys = [f"eta={e},S={S}" for e, S in a.cell_list]
    header = ["steps", "L train", "L held-out"] + [f"η={e} S={S}" for e, S in a.cell_list]
    rows = [[p["step"], p["train_loss"], p["held_out_loss"]]
            + [f"{p['fid'][k]:.3g} ({p['kid'][k][0] * 1e3:.1f} ± {p['kid'][k][1] * 1e3:.1f})" for k in keys] for p in points]
    best_steps = [min(points, key=lambda p: p["fid"][k])["step"] for k in keys]
    body = (f"{source}. Classifier-FID (and KID ×10³ ± its standard error) of {a.n} samples a cell (the same x_T "
            f"at every point) against the 500 held-out "
            f"digits, and L_simple with fixed (t, ε) on 500 training / the 500 held-out digits "
            f"({a.loss_repeats} draws each), {device}. Real digits score {floor:.3f}.\n\n"
            + markdown_table(header, rows)
            + "\n\nLowest FID at step: " + ", ".join(f"{h}: {s}" for h, s in zip(header[3:], best_steps))
            + "\n\nEach cell's halves (n = " + str(a.n // 2) + " each), the metric's noise:\n\n"
            + markdown_table(["steps"] + header[3:], [[p["step"]] + [" / ".join(f"{v:.3g}" for v in p["halves"][k])
                                                                      for k in keys] for p in points]) + "\n")
    data = {"run": a.run, "n": a.n, "cells": keys, "device": device, "floor": floor, "loss_repeats": a.loss_repeats,
            "points": points}
    write_results(Path(a.out), "Training curve on MNIST: quality against training steps", body, data)
    plot(points, a, floor, Path(a.out + ".png"))
    return data


def joined(a) -> dict:
    """--join: the curves of one training continued run after run, written as one curve."""
    curves = [json.loads(Path(c).read_text()) for c in a.join]
    points = join(curves)
    a.run = a.run or curves[-1]["run"]
    a.n, a.loss_repeats = curves[0]["n"], curves[0]["loss_repeats"]
    a.cell_list = [(k.split(",")[0][4:], int(k.split("S=")[1])) for k in curves[0]["cells"]]
    devices = list(dict.fromkeys(c["device"] for c in curves))
    if len(curves) > 1:
        source = (f"`{a.run}`: one training continued over {len(curves)} runs ("
                  + ", then ".join(f"`{c['run']}` to step {c['points'][-1]['step']:,}" for c in curves)
                  + ", each warm-started from the last weights of the one before)")
    else:
        source = f"`{a.run}`" + ("" if a.run == curves[0]["run"] else f" (measured as `{curves[0]['run']}`)")
    return report(points, a, curves[0]["floor"], "; ".join(devices), source)


if __name__ == "__main__":
    main()
