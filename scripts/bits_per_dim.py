"""Bits/dim (the DDPM variational bound, Ho et al. 2020 eq. 5) of the shipped MNIST model on
the 500 held-out digits, for the reverse variances σ² = β̃ and σ² = β.

    python scripts/bits_per_dim.py                       # 500 digits, every t (slow on a CPU)
    python scripts/bits_per_dim.py --quick               # 100 digits, 50 stratified t
    OMP_NUM_THREADS=1 nice python scripts/bits_per_dim.py --n 250 --timesteps 100

Writes results/likelihood_mnist.md and .json (with the sample sizes). Both variances see the
same digits, the same stratified t and the same noise, so their difference is paired.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ddim_edu as de  # noqa: E402
import ddim_edu.data  # noqa: E402,F401
from ddim_edu.diffusion import likelihood as lk  # noqa: E402

PAPER = [  # Ho et al. 2020 (arXiv:2006.11239), Table 1, CIFAR-10 NLL test (train), bits/dim
    ("DDPM, trained on L_simple (fixed isotropic Σ)", "≤ 3.75 (3.72)"),
    ("DDPM, trained on the true bound L (fixed isotropic Σ)", "≤ 3.70 (3.69)"),
]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="100 digits and 50 stratified t")
    p.add_argument("--n", type=int, default=None, help="held-out digits to use (default 500; 100 with --quick)")
    p.add_argument("--timesteps", default=None,
                   help="'all' or k stratified t (default all; 50 with --quick)")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "mnist"), help="the model's folder")
    p.add_argument("--out", default=str(ROOT / "results" / "likelihood_mnist"))
    a = p.parse_args(argv)
    n = a.n if a.n is not None else (100 if a.quick else 500)
    ts = a.timesteps if a.timesteps is not None else (50 if a.quick else "all")
    ts = ts if ts == "all" else int(ts)

    model, sched, config = de.train.checkpoints.load_model(a.checkpoint)
    x, _ = de.data.load_mnist("test")
    if not 1 <= n <= len(x):
        raise SystemExit(f"--n must be in [1, {len(x)}], got {n}")
    x = x[:n]
    rows, t0 = {}, time.time()
    for variance in lk.VARIANCES:
        g = torch.Generator().manual_seed(a.seed)   # same t draws and noise for both variances
        start = time.time()
        r = lk.bits_per_dim(model, x, sched, variance, ts, generator=g, batch_size=a.batch_size, progress=True)
        kl_small = float((r.weights[:10, None] * r.terms[:10]).sum(0).mean())
        rows[variance] = {"bits_per_dim": r.total, "stderr": r.stderr, "prior_L_T": r.prior,
                          "decoder_L_0": r.decoder, "sum_KL": r.total - r.prior - r.decoder,
                          "sum_KL_first_10_strata": kl_small, "seconds": time.time() - start}
        print(f"{variance:>10}: {r.total:.4f} ± {r.stderr:.4f} bits/dim  (L_T {r.prior:.2e}, "
              f"L_0 {r.decoder:.4f}, ΣKL {rows[variance]['sum_KL']:.4f})  {time.time() - start:.0f} s", flush=True)
    result = {"model": "shipped 'mnist' UNet (EMA), linear schedule T = 1000",
              "trained_on": trained_on(config.get("args", {}), bool(config.get("init"))),
              "data": "held-out MNIST subset split 'test', 28x28, [-1, 1], 8-bit discretised decoder",
              "n_digits": n, "timesteps": ts, "strata": (sched.T - 1) if ts == "all" else ts,
              "seed": a.seed, "results": rows, "seconds": time.time() - t0,
              "torch": torch.__version__, "machine": platform.platform(),
              "command": "python scripts/bits_per_dim.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    return result


def trained_on(args: dict, warm_started: bool = False) -> str:
    """The loss the model was trained on, in words, from its config.json's args (those of its last
    command: ``warm_started`` says so, for a run that began from other weights)."""
    last = " in its last run" if warm_started else ""
    if args.get("loss_weighting", "none") == "min_snr":
        floor = args.get("min_snr_floor", 0) or 0
        return (f"min-SNR-{args.get('min_snr_gamma', 5):g} weights"
                + (f" with a floor of {floor:g}" if floor > 0 else "")
                + f"{last} (DDIM's L_γ with another γ_t than L_simple's)")
    return "L_simple" + last


def markdown(r: dict) -> str:
    how = ("every t (exact sum, one x_t draw per digit and t)" if r["timesteps"] == "all" else
           f"{r['timesteps']} stratified t per digit (unbiased estimate of the sum over t = 1…999)")
    lines = [
        "# Bits/dim of the shipped MNIST model (DDPM variational bound)", "",
        f"Sample sizes: **{r['n_digits']} held-out digits**, {how}; L_T exact, decoder L_0 at t = 0.",
        f"Seed {r['seed']}; both variances use the same digits, t draws and noise. "
        f"Run time {r['seconds']:.0f} s on a CPU ({r['machine']}, torch {r['torch']}).",
        f"Command: `{r['command'].strip()}`", "",
        "| reverse variance σ_t² | bits/dim (± s.e. over digits) | L_T | L_0 (decoder) | Σ KL terms |",
        "|---|---|---|---|---|",
    ]
    for v, name in (("beta_tilde", "β̃_t (posterior)"), ("beta", "β_t")):
        x = r["results"][v]
        lines.append(f"| {name} | {x['bits_per_dim']:.3f} ± {x['stderr']:.3f} | {x['prior_L_T']:.1e} | "
                     f"{x['decoder_L_0']:.3f} | {x['sum_KL']:.3f} |")
    lines += ["", "For comparison (CIFAR-10, 32×32×3, a different and harder data set; "
              "Ho et al. 2020, arXiv:2006.11239, Table 1, NLL test (train) in bits/dim):", ""]
    lines += [f"- {name}: {val}" for name, val in PAPER]
    lines += ["", "MNIST digits are mostly background, so their bits/dim are far below CIFAR-10's; the "
              f"numbers are upper bounds on −log₂ p_θ(x₀)/D, and the model was trained on "
              f"{r.get('trained_on', 'L_simple')}, not on the bound.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
