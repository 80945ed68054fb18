"""Table 2 on MNIST: encode the 500 held-out digits with DDIM inversion (x_0 → x_T) and decode
them back with the same S; report the per-dimension MSE on [0, 1].

    python benchmarks/reconstruction.py                  # S ∈ {10, 20, 50, 100, 200, 500, 1000}
    python benchmarks/reconstruction.py --quick          # 100 digits, S ∈ {10, 20, 50}
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from common import ROOT, Timer, de, hardware, load, markdown_table, model_step, write_results

PAPER_CIFAR10 = de.course.paper.TABLE2_CIFAR10_MSE  # the paper's Table 2: {S: MSE}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "mnist"))
    p.add_argument("--steps", default="10,20,50,100,200,500,1000")
    p.add_argument("--n", type=int, default=500, help="held-out digits to reconstruct (at most 500)")
    p.add_argument("--device", default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(ROOT / "results" / "table2_mnist"))
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.steps = 100, "10,20,50"
    a.step_list = [int(s) for s in a.steps.split(",")]
    return a


def main(argv=None):
    a = parse(argv)
    device = torch.device(a.device) if a.device else de.env.device()
    # inversion compounds every rounding error: keep convolutions in full float32 (no TF32) on CUDA
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model, sched, config = load(a.checkpoint, device)
    x0 = de.data.load_mnist("test")[0][: a.n].to(device)
    classifier = de.evaluation.load_classifier(device=device)
    mse, seconds, survival = {}, {}, {}
    for S in a.step_list:
        with Timer(device) as tm:
            z = de.ddim_invert(model, x0, sched, steps=S, progress=False)
            x_rec = de.ddim_sample(model, z, sched, steps=S, progress=False)
        mse[S] = float(de.evaluation.reconstruction_mse(x_rec, x0))
        seconds[S] = tm.seconds
        kept = de.evaluation.class_survival(x0, x_rec, classifier)
        survival[S] = {"value": kept.value, "stderr": kept.stderr}
        print(f"S={S:>5}  MSE={mse[S]:.6f}  class kept {kept.value:.1%} ± {kept.stderr:.1%}  ({tm.seconds:.1f} s)",
              flush=True)
    rows = [[S, mse[S], f"{survival[S]['value']:.1%} ± {survival[S]['stderr']:.1%}", PAPER_CIFAR10.get(S, float("nan"))]
            for S in a.step_list]
    body = (f"Per-dimension MSE on [0, 1] after DDIM inversion and decoding with S steps each, "
            f"{a.n} held-out digits, model step {model_step(config)}, {hardware(device)}; "
            "and the share of digits the course classifier puts in the same class before and after "
            "(± binomial standard error).\n\n"
            + markdown_table(["S", "MSE (MNIST, ours)", "class kept", "MSE (CIFAR-10, paper Table 2)"], rows) + "\n")
    data = {"n": a.n, "device": hardware(device), "checkpoint_step": model_step(config),
            "mse": {str(S): v for S, v in mse.items()},
            "class_survival": {str(S): v for S, v in survival.items()},
            "seconds": {str(S): v for S, v in seconds.items()}}
    write_results(Path(a.out), "Table 2 on MNIST: reconstruction error by S", body, data)
    return data


if __name__ == "__main__":
    main()
