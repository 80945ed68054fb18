"""Table 1 on MNIST: classifier-FID of DDIM samples for η ∈ {0, 0.2, 0.5, 1, σ̂} × S.

    python benchmarks/quality.py                         # full grid, 2,000 samples a cell
    python benchmarks/quality.py --quick                 # 200 samples, S ∈ {10, 20}
    python benchmarks/quality.py --etas 0,1 --steps 10,20,50,100,1000 --n 1000 --record-config

Every cell starts from the same x_T, so cells differ only by the sampler. The reference set
is the 500 held-out digits; the "real" row is the metric's floor: n training digits drawn at
random against the same reference, mean ± sd over five draws (what a perfect sampler would
score with n samples). Each cell also reports the FIDs of its two halves, a gauge of its noise. η = 1 at S = T is DDPM's ancestral sampler (tests prove the two equal).
With --record-config the numbers are also stored in the checkpoint's config.json.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from common import ROOT, Timer, ck, de, features, fid_from_features, fixed_noise, hardware, load, markdown_table, \
    model_step, sample_batched, shown, write_results

PAPER_S = list(de.course.paper.TABLE1_STEPS)   # the paper's Table 1 (CIFAR-10): its columns S and {η key: [FID]}
PAPER_CIFAR10 = {eta: [fids[S] for S in PAPER_S] for eta, fids in de.course.paper.TABLE1_CIFAR10_FID.items()}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "mnist"))
    p.add_argument("--n", type=int, default=2000, help="samples per cell")
    p.add_argument("--etas", default="0,0.2,0.5,1,hat", help="comma list; 'hat' is the paper's σ̂ row")
    p.add_argument("--steps", default="10,20,50,100,1000")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip", default="uniform", choices=["uniform", "quadratic"],
                   help="the sub-sequence τ (appendix D.2); the paper used quadratic for CIFAR-10")
    p.add_argument("--device", default=None)
    p.add_argument("--channels-last", action="store_true",
                   help="the network's weights in channels-last memory order: faster on a CPU, the same numbers "
                        "up to float32 rounding")
    p.add_argument("--quick", action="store_true", help="200 samples, S ∈ {10, 20}, η ∈ {0, 1}")
    p.add_argument("--out", default=str(ROOT / "results" / "table1_mnist"))
    p.add_argument("--record-config", action="store_true", help="store the FIDs in the checkpoint's config.json")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="write one table from the JSONs of runs that measured parts of it (e.g. one η each, side by "
                        "side on one GPU; same model, n, τ and seed); samples nothing")
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.etas, a.steps = 200, "0,1", "10,20"
    a.eta_list = a.etas.split(",")
    a.step_list = [int(s) for s in a.steps.split(",")]
    return a


def sampler(model, sched, eta: str, S: int, seed: int, skip: str = "uniform"):
    """The cell's sampler, called once per batch. One noise generator per cell, continued from
    batch to batch: a generator made afresh for each batch would give every batch the same noise."""
    gen = de.env.generator(seed + 1)
    kw = {"variance": "sigma_hat"} if eta == "hat" else {"eta": float(eta)}
    return lambda x: de.ddim_sample(model, x, sched, steps=S, skip=skip, generator=gen, progress=False, **kw)


def real_floor(classifier, train, ref, n: int, device, draws: int = 5) -> tuple[float, float]:
    """FID of n random training digits against the reference: mean and sd over ``draws`` draws."""
    f = features(classifier, train, device)
    g = torch.Generator().manual_seed(1234)
    vals = torch.tensor([fid_from_features(f[torch.randperm(len(f), generator=g)[:n]], ref) for _ in range(draws)])
    return float(vals.mean()), float(vals.std())


def halves(f: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    h = len(f) // 2
    return fid_from_features(f[:h], ref), fid_from_features(f[h:], ref)


def plot(a, fids, floor, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for eta in a.eta_list:
        name = "σ̂" if eta == "hat" else f"η = {eta}"
        axes[0].plot(a.step_list, [fids[(eta, S)] for S in a.step_list], "o-", label=name)
        if eta in PAPER_CIFAR10:
            axes[1].plot(PAPER_S, PAPER_CIFAR10[eta], "o-", label=name)
    axes[0].axhline(floor, color="gray", ls="--", label="real digits")
    axes[0].set_title(f"MNIST (ours), classifier-FID, n = {a.n}")
    axes[1].set_title("CIFAR-10 (paper, Table 1), FID")
    for ax in axes:
        ax.set_xscale("log"), ax.set_yscale("log"), ax.set_xlabel("sampling steps S"), ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def report(a, fids: dict, split: dict, seconds: dict, floor: float, floor_sd: float, floor_n: int, step,
           device: str) -> dict:
    """Write the table (markdown, JSON, plot) of the cells ``fids[(η, S)]``; record it in the
    checkpoint's config.json with --record-config. Returns the JSON's data."""
    fids = {(e, S): fids[(e, S)] for e in a.eta_list for S in a.step_list}
    label = {"hat": "σ̂", "0": "0.0 (DDIM)"}
    header = ["η \\ S"] + [str(S) for S in a.step_list]
    rows = [[label.get(e, e)] + [fids[(e, S)] for S in a.step_list] for e in a.eta_list]
    rows.append([f"real digits (floor, n={floor_n}, ± {floor_sd:.2g})"] + [floor] * len(a.step_list))
    half_rows = [[label.get(e, e)] + [" / ".join(f"{v:.3g}" for v in split[(e, S)]) for S in a.step_list]
                 for e in a.eta_list]
    paper_rows = [[label.get(e, e)] + PAPER_CIFAR10[e] for e in a.eta_list if e in PAPER_CIFAR10]
    body = (f"Classifier-FID (lower is better) of {a.n} samples per cell against the 500 held-out digits, "
            f"model `{shown(a.checkpoint)}` (step {step}), "
            f"{a.skip} τ, {device}.\n\n"
            + markdown_table(header, rows)
            + f"\n\nThe same cells scored on each half of their samples (n = {a.n // 2} each; the spread "
              "shows the metric's noise, and halves score higher than the whole because FID's bias grows "
              "as n shrinks):\n\n"
            + markdown_table(header, half_rows)
            + "\n\nThe paper's CIFAR-10 FIDs (Table 1, S = 10, 20, 50, 100, 1000) for comparison of shape:\n\n"
            + markdown_table(["η \\ S", *map(str, PAPER_S)], paper_rows)
            + "\n\nSampling time per cell (s): "
            + ", ".join(f"η={e} S={S}: {seconds[(e, S)]:.1f}" for e in a.eta_list for S in a.step_list) + "\n")
    data = {"checkpoint": shown(a.checkpoint), "n": a.n, "skip": a.skip, "seed": a.seed, "device": device,
            "checkpoint_step": step, "floor": floor, "floor_sd": floor_sd, "floor_n": floor_n,
            "halves": {f"eta={e},S={S}": v for (e, S), v in split.items()},
            "fid": {f"eta={e},S={S}": v for (e, S), v in fids.items()},
            "seconds": {f"eta={e},S={S}": v for (e, S), v in seconds.items()}}
    write_results(Path(a.out), "Table 1 on MNIST: classifier-FID by η and S", body, data)
    plot(a, fids, floor, Path(a.out + ".png"))
    if a.record_config:
        ck.record_results(a.checkpoint, "classifier_fid", {**data["fid"], "floor": floor, "n": a.n, "skip": a.skip,
                                                             "device": data["device"]})
        print(f"recorded in {Path(a.checkpoint) / 'config.json'}")
    return data


def merge(a) -> dict:
    """One table from parts measured apart (--merge): the same model, n, τ, seed and floor."""
    parts = [json.loads(Path(p).read_text()) for p in a.merge]
    same = ("checkpoint", "n", "skip", "seed", "checkpoint_step")
    for p, part in zip(a.merge[1:], parts[1:]):
        # the floor is the same draw of training digits; a part measured on another device scores it
        # up to that device's float32 rounding
        if (any(part.get(k) != parts[0].get(k) for k in same)
                or not math.isclose(part["floor"], parts[0]["floor"], rel_tol=1e-3)):
            raise SystemExit(f"{p} is not a part of the same table as {a.merge[0]} (they differ in "
                             f"{same + ('floor',)})")
    cell = lambda key: (key.split(",")[0][4:], int(key.split(",")[1][2:]))  # "eta=0.2,S=10" -> ("0.2", 10)
    fids, split, seconds = {}, {}, {}
    for part in parts:
        for key in part["fid"]:
            c = cell(key)
            fids[c], split[c], seconds[c] = part["fid"][key], part["halves"][key], part["seconds"][key]
    order = ["0", "0.2", "0.5", "1", "hat"]
    a.eta_list = sorted({e for e, _ in fids}, key=lambda e: order.index(e) if e in order else len(order))
    a.step_list = sorted({S for _, S in fids})
    missing = [f"eta={e},S={S}" for e in a.eta_list for S in a.step_list if (e, S) not in fids]
    if missing:
        raise SystemExit(f"the parts leave cells unmeasured: {', '.join(missing)}")
    a.n, a.skip, a.seed = parts[0]["n"], parts[0]["skip"], parts[0].get("seed", a.seed)
    a.checkpoint = parts[0].get("checkpoint", a.checkpoint)
    return report(a, fids, split, seconds, parts[0]["floor"], parts[0]["floor_sd"], parts[0].get("floor_n", a.n),
                  parts[0]["checkpoint_step"], " and ".join(dict.fromkeys(part["device"] for part in parts)))


def main(argv=None):
    a = parse(argv)
    if a.merge:
        return merge(a)
    device = torch.device(a.device) if a.device else de.env.device()
    model, sched, config = load(a.checkpoint, device, a.channels_last)
    classifier = de.evaluation.load_classifier(device=device)
    batch = a.batch or (1000 if device.type == "cuda" else 250)
    held_out, _ = de.data.load_mnist("test")
    train, _ = de.data.load_mnist("train")
    shape = tuple(held_out.shape[1:])
    ref = features(classifier, held_out, device)
    floor, floor_sd = real_floor(classifier, train, ref, a.n, device)
    print(f"real-vs-real floor (n={min(a.n, len(train))}): {floor:.3f} ± {floor_sd:.3f}")
    x_T = fixed_noise(a.n, shape, a.seed)
    fids, split, seconds, firsts = {}, {}, {}, []
    for eta in a.eta_list:
        for S in a.step_list:
            with Timer(device) as tm:
                x0 = sample_batched(sampler(model, sched, eta, S, a.seed, a.skip), x_T, batch, device)
            f = features(classifier, x0.clamp(-1, 1), device)
            fids[(eta, S)], split[(eta, S)] = fid_from_features(f, ref), halves(f, ref)
            firsts.append(x0[:8].clamp(-1, 1))
            seconds[(eta, S)] = tm.seconds
            print(f"eta={eta:>4} S={S:>5}  FID={fids[(eta, S)]:8.3f}  halves {split[(eta, S)][0]:.3f} "
                  f"{split[(eta, S)][1]:.3f}  ({tm.seconds:.1f} s)", flush=True)
    data = report(a, fids, split, seconds, floor, floor_sd, min(a.n, len(train)), model_step(config),
                  hardware(device, a.channels_last))
    # the first 8 samples of every cell (rows: η outer, S inner), all from the same x_T
    de.viz.grids.save_grid((torch.cat(firsts) + 1) / 2, Path(a.out + "_samples.png"), nrow=8)
    return data


if __name__ == "__main__":
    main()
