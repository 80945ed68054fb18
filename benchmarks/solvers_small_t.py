"""Why Heun falls behind on the shipped MNIST model: its ε-error near t = 0, and Heun with and without
a corrected step into t = 0.

    python benchmarks/solvers_small_t.py --n 500 [--compare PATH ...] [--eps-only]

Part 1: L_simple's per-t error E‖ε − ε_θ(x_t, t)‖²/D on the held-out digits at a few t, the same
x_t for every checkpoint (``--compare``: more checkpoint folders beside the shipped one). Part 2
(skipped with ``--eps-only``):
classifier-FID of Heun with S = 10 (19 network calls) from the same x_T on the default uniform grid
τ = 0, 100, …, 900, whose last corrected step evaluates ε at t = 0, and on τ = 20, 100, …, 900,
which stops correcting at t = 20. Writes results/solvers_small_t.md and .json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from common import ROOT, Timer, de, features, fid_from_features, fixed_noise, hardware, load, sample_batched, shown

TS = (0, 1, 5, 20, 50, 100, 200, 500)
GRIDS = {"uniform, τ = 0, 100, …, 900": None, "τ = 20, 100, …, 900": [20] + list(range(100, 1000, 100))}


def eps_error(model, sched, x0: torch.Tensor, seed: int) -> dict[int, float]:
    """{t: mean (ε − ε_θ)² over the digits and pixels}, one fixed draw of ε per t."""
    g, out = torch.Generator().manual_seed(seed), {}
    for t in TS:
        tt = torch.full((len(x0),), t, dtype=torch.long)
        with torch.no_grad():
            out[t] = float(de.train.diffusion_loss(model, x0, sched, t=tt, noise=torch.randn(x0.shape, generator=g)))
    return out


def heun_fids(model, sched, n: int) -> dict[str, float]:
    device = torch.device("cpu")
    classifier = de.evaluation.load_classifier(device=device)
    ref = features(classifier, de.data.load_mnist("test")[0], device)
    x_T, out = fixed_noise(n, (1, 28, 28), 0), {}
    for name, grid in GRIDS.items():
        kw = {"timesteps": grid} if grid else {"skip": "uniform"}
        with Timer(device) as tm, torch.no_grad():
            x0 = sample_batched(lambda x: de.diffusion.ode.heun_sample(model, x, sched, steps=10, progress=False, **kw),
                                x_T, 250, device)
        out[name] = fid_from_features(features(classifier, x0.clamp(-1, 1), device), ref)
        print(f"Heun, 19 NFE, {name}: FID {out[name]:.3f} ({tm.seconds:.0f} s)", flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500, help="held-out digits for part 1, samples for part 2")
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "mnist"))
    p.add_argument("--compare", nargs="*", default=[], help="more checkpoint folders for part 1")
    p.add_argument("--eps-only", action="store_true", help="part 1 only: no Heun samples")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "results" / "solvers_small_t"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    x0 = de.data.load_mnist("test")[0]
    if not 2 <= a.n <= len(x0):
        p.error(f"--n must be in [2, {len(x0)}] (held-out digits; Heun samples), got {a.n}")
    x0 = x0[:a.n]
    paths = [a.checkpoint] + list(a.compare)
    loaded = {path: load(path, "cpu")[:2] for path in paths}
    errors = {shown(path): eps_error(*loaded[path], x0, seed=0) for path in paths}
    for name, e in errors.items():
        print(name, {t: round(v, 4) for t, v in e.items()}, flush=True)
    model, sched = loaded[a.checkpoint]
    result = {"n": a.n, "eps_mse": errors, "heun_fid": None if a.eps_only else heun_fids(model, sched, a.n),
              "hardware": hardware(torch.device("cpu")), "checkpoint": shown(a.checkpoint)}
    out = Path(a.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {out}.md and {out}.json")


def markdown(r: dict) -> str:
    lines = ["# Heun and the ε-model near t = 0", "",
             f"{r['n']} held-out digits, one fixed ε per t, the same x_t for every checkpoint; {r['hardware']}.", "",
             "| checkpoint | " + " | ".join(f"t = {t}" for t in TS) + " |", "|---|" + "---|" * len(TS)]
    for name, e in r["eps_mse"].items():
        lines.append(f"| `{name}` | " + " | ".join(f"{e[t]:.4f}" for t in TS) + " |")
    lines += ["", "Mean (ε − ε_θ(x_t, t))² by t: L_simple's error at that t.", ""]
    if r["heun_fid"] is None:
        return "\n".join(lines)
    lines += [f"Classifier-FID of {r['n']} Heun samples with S = 10 (19 network calls) from the same x_T, "
              f"`{r['checkpoint']}`, against the 500 held-out digits:", "", "| grid | FID |", "|---|---|"]
    lines += [f"| {g} | {f:.3f} |" for g, f in r["heun_fid"].items()]
    lines += ["", "On the uniform grid Heun's last corrected step, from t = 100, evaluates ε at t = 0 and "
              "weights it by half the step in σ; DDIM only takes the final step from t = 0 to σ = 0 there, "
              "a step 0.01 long in σ.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
