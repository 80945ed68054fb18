"""Where along the chain does a model fit its training digits better than new ones? L_simple per
stretch of t, on held-out and on training digits, for several models on the same (t, ε).

    python benchmarks/loss_by_t.py --checkpoint checkpoints/mnist --checkpoint runs/speedrun/A

For each stretch of t ([0, 25), [25, 100), then every 100 steps) and each of the two sets (the 500
held-out digits, the first 500 training digits), one draw of t uniform in the stretch and one ε per
digit, the same for every model (seed 0): the mean of ‖ε − ε_θ(x_t, t)‖² over pixels and digits, and
the mean over t (each stretch weighted by its length). A held-out loss that rises between two
checkpoints of one recipe while the training loss keeps falling is the model fitting its own digits.
Writes results/loss_by_t.json and .md (thread count and hardware included).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from common import ROOT, de, load, machine_name, markdown_table, model_step, shown, write_results

EDGES = [0, 25, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", action="append", default=None,
                   help="a model's folder (repeat for several; default: checkpoints/mnist)")
    p.add_argument("--n", type=int, default=500, help="digits per set (at most 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--out", default=str(ROOT / "results" / "loss_by_t"))
    return p.parse_args(argv)


@torch.no_grad()
def losses(models: dict, x0: torch.Tensor, sched, seed: int, batch: int) -> dict:
    """{model: [L_simple per stretch of EDGES]} on ``x0``, every model on the same t and ε."""
    gen, out = torch.Generator().manual_seed(seed), {name: [] for name in models}
    for lo, hi in zip(EDGES[:-1], EDGES[1:]):
        t = torch.randint(lo, hi, (len(x0),), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        x_t = sched.q_sample(x0, t, eps)
        for name, model in models.items():
            pred = torch.cat([model(x_t[i:i + batch], t[i:i + batch]) for i in range(0, len(x0), batch)])
            out[name].append((pred.float() - eps).pow(2).mean().item())
    return out


def main(argv=None):
    a = parse(argv)
    torch.set_num_threads(a.threads)
    start, paths = time.perf_counter(), a.checkpoint or [str(ROOT / "checkpoints" / "mnist")]
    models, steps, sched = {}, {}, None
    for path in paths:
        model, sched, config = load(path, torch.device("cpu"))
        models[shown(path)], steps[shown(path)] = model.eval(), model_step(config)
    sets = {"held-out": de.data.load_mnist("test")[0][:a.n], "training": de.data.load_mnist("train")[0][:a.n]}
    res = {name: losses(models, x0, sched, a.seed, a.batch) for name, x0 in sets.items()}
    weights = [(hi - lo) / EDGES[-1] for lo, hi in zip(EDGES[:-1], EDGES[1:])]
    mean = {s: {m: sum(w * v for w, v in zip(weights, r[m])) for m in models} for s, r in res.items()}
    hw = machine_name("cpu")
    data = {"n": a.n, "seed": a.seed, "threads": torch.get_num_threads(), "hardware": hw, "edges": EDGES,
            "steps": steps, "loss": res, "mean_over_t": mean, "seconds_total": time.perf_counter() - start}
    names = list(models)
    head = ["t"] + [f"{s}: model {i + 1}" for s in sets for i in range(len(names))]
    rows = [[f"{lo}–{hi - 1}"] + [f"{res[s][m][k]:.5f}" for s in sets for m in names]
            for k, (lo, hi) in enumerate(zip(EDGES[:-1], EDGES[1:]))]
    rows.append(["mean over t"] + [f"{mean[s][m]:.5f}" for s in sets for m in names])
    legend = "\n".join(f"- model {i + 1}: `{m}` (step {steps[m]})" for i, m in enumerate(names))
    body = (f"L_simple, the mean of ‖ε − ε_θ(x_t, t)‖² over pixels, on the first {a.n} held-out and the first {a.n} "
            f"training digits; per stretch of t one t and one ε per digit, the same for every model (seed {a.seed}). "
            f"{hw}, {data['threads']} thread(s), {data['seconds_total']:.0f} s in all.\n\n{legend}\n\n"
            + markdown_table(head, rows))
    write_results(Path(a.out), "L_simple per stretch of t: held-out and training digits", body, data)
    return data


if __name__ == "__main__":
    main()
