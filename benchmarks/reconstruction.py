"""Table 2 on MNIST: encode the 500 held-out digits with DDIM inversion (x_0 → x_T) and decode
them back with the same S; report the per-dimension MSE on [0, 1].

    python benchmarks/reconstruction.py                  # S ∈ {10, 20, 50, 100, 200, 500, 1000}
    python benchmarks/reconstruction.py --quick          # 100 digits, S ∈ {10, 20, 50}
    python benchmarks/reconstruction.py --resume         # keep the S already in --out's JSON
    python benchmarks/reconstruction.py --skip quadratic --out results/table2_mnist_quadratic

The table is written after every S, so a long run on a CPU (S = 1000 is 2,000 network calls a
digit) can be stopped and continued with --resume: an S already measured for the same model
step, n and τ (--skip) is kept, not measured again.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from common import ROOT, Timer, de, hardware, load, markdown_table, model_step, write_results

PAPER_CIFAR10 = de.course.paper.TABLE2_CIFAR10_MSE  # the paper's Table 2: {S: MSE}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "mnist"))
    p.add_argument("--steps", default="10,20,50,100,200,500,1000")
    p.add_argument("--n", type=int, default=500, help="held-out digits to reconstruct (at most 500)")
    p.add_argument("--skip", default="uniform", choices=["uniform", "quadratic"],
                   help="the sub-sequence τ of both the encoder and the decoder (appendix D.2); the paper used "
                        "quadratic for CIFAR-10")
    p.add_argument("--device", default=None)
    p.add_argument("--channels-last", action="store_true",
                   help="the network's weights in channels-last memory order: faster on a CPU, the same numbers "
                        "up to float32 rounding")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(ROOT / "results" / "table2_mnist"))
    p.add_argument("--resume", action="store_true",
                   help="keep the S that --out's JSON already holds for this model step, n and --skip")
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.steps = 100, "10,20,50"
    a.step_list = [int(s) for s in a.steps.split(",")]
    return a


def earlier(a, step) -> tuple[dict, str | None]:
    """The cells of --out's JSON when --resume asks for them and it measured the same model step, n and τ,
    and the hardware that measured them (None when none is kept)."""
    path = Path(a.out + ".json")
    if not (a.resume and path.exists()):
        return {"mse": {}, "class_survival": {}, "seconds": {}}, None
    data = json.loads(path.read_text())
    was = (data.get("checkpoint_step"), data.get("n"), data.get("skip", "uniform"))
    if was != (step, a.n, a.skip):
        raise SystemExit(f"--resume: {path} measured step {was[0]} with n = {was[1]} and a {was[2]} τ, "
                         f"not step {step} with n = {a.n} and a {a.skip} τ; give another --out or leave out --resume")
    keys = ("mse", "class_survival", "seconds")
    done = set.intersection(*(set(data.get(k, {})) for k in keys))      # an S is kept only whole
    return {k: {S: v for S, v in data[k].items() if S in done} for k in keys}, (data.get("device") if done else None)


def report(a, cells: dict, step, device) -> dict:
    """Write the table (markdown and JSON) of every S measured so far, by S: those kept by --resume
    stay in the table even when --steps leaves them out."""
    order = sorted(cells["mse"], key=int)
    cells = {k: {S: v[S] for S in order} for k, v in cells.items()}
    rows = [[S, cells["mse"][S], f"{cells['class_survival'][S]['value']:.1%} ± "
             f"{cells['class_survival'][S]['stderr']:.1%}", PAPER_CIFAR10.get(int(S), float("nan"))] for S in order]
    body = (f"Per-dimension MSE on [0, 1] after DDIM inversion and decoding with S steps each "
            f"({a.skip} τ), {a.n} held-out digits, model step {step}, {device}; "
            "and the share of digits the course classifier puts in the same class before and after "
            "(± binomial standard error).\n\n"
            + markdown_table(["S", "MSE (MNIST, ours)", "class kept", "MSE (CIFAR-10, paper Table 2)"], rows) + "\n")
    data = {"n": a.n, "skip": a.skip, "device": device, "checkpoint_step": step, **cells}
    write_results(Path(a.out), "Table 2 on MNIST: reconstruction error by S", body, data)
    return data


def main(argv=None):
    a = parse(argv)
    device = torch.device(a.device) if a.device else de.env.device()
    # inversion compounds every rounding error: keep convolutions in full float32 (no TF32) on CUDA
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model, sched, config = load(a.checkpoint, device, a.channels_last)
    step = model_step(config)
    cells, kept_on = earlier(a, step)
    here = hardware(device, a.channels_last)

    def shown_on(measured_here: bool) -> str:
        """The hardware of the table's cells: the kept cells' and, once one is measured here, this one."""
        kept = kept_on.split(" and ") if kept_on else []
        return " and ".join(dict.fromkeys(kept + ([here] if measured_here else [])))

    x0 = de.data.load_mnist("test")[0][: a.n].to(device)
    classifier = de.evaluation.load_classifier(device=device)
    data = None
    for S in a.step_list:
        if str(S) in cells["mse"]:
            print(f"S={S:>5}  kept from {a.out}.json", flush=True)
            continue
        with Timer(device) as tm:
            z = de.ddim_invert(model, x0, sched, steps=S, skip=a.skip, progress=False)
            x_rec = de.ddim_sample(model, z, sched, steps=S, skip=a.skip, progress=False)
        kept = de.evaluation.class_survival(x0, x_rec, classifier)
        cells["mse"][str(S)] = float(de.evaluation.reconstruction_mse(x_rec, x0))
        cells["class_survival"][str(S)] = {"value": kept.value, "stderr": kept.stderr}
        cells["seconds"][str(S)] = tm.seconds
        print(f"S={S:>5}  MSE={cells['mse'][str(S)]:.6f}  class kept {kept.value:.1%} ± {kept.stderr:.1%}  "
              f"({tm.seconds:.1f} s)", flush=True)
        data = report(a, cells, step, shown_on(True))   # after every S: a stopped run keeps it
    return data if data is not None else report(a, cells, step, shown_on(False) or here)


if __name__ == "__main__":
    main()
