"""Solvers of the probability-flow ODE (DDIM section 4.3): error against the exact solution
versus the number of network calls (NFE), and classifier-FID at 10 and 20 NFE on MNIST.

    python benchmarks/solvers.py            # exact-error study + MNIST FID (1,000 samples)
    python benchmarks/solvers.py --quick    # fewer points and samples

The exact model is the Gaussian mixture whose optimal ε is known in closed form; its ODE is
solved to 1e-9 by RK4 (``GaussianMixture.ode_solution``). Every run starts at t = T − 1 and walks
timesteps round(linspace(0, T−1, S)). The solvers are the registry's
(``de.diffusion.ode_solvers()``), so a new registered solver appears here by itself.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from common import ROOT, Timer, de, features, fid_from_features, fixed_noise, hardware, markdown_table, \
    sample_batched, write_results

SOLVERS = {info.label: info for info in de.diffusion.ode_solvers().values()}   # label → SamplerInfo


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--n", type=int, default=1000, help="MNIST samples per FID cell")
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "mnist"))
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=str(ROOT / "results" / "solvers"))
    a = p.parse_args(argv)
    if a.quick:
        a.n = min(a.n, 100)
    return a


def exact_study(quick: bool):
    sched = de.NoiseSchedule.linear()
    mixture = de.GaussianMixture([[1.0, 0.5], [-1.0, -0.5]], [0.4, 0.6], [0.3, 0.7])
    x_T = torch.randn(64 if quick else 256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = mixture.ode_solution(x_T, de.diffusion.sigma_from_alpha_bar(sched.alpha_bar_at(999)), n_steps=1000)
    steps = [5, 10, 20, 40, 80] if quick else [5, 10, 20, 40, 80, 160]  # finer grids hit the floor of the final Euler step
    out = {}
    for name, info in SOLVERS.items():
        errs = []
        for S in steps:
            grid = torch.round(torch.linspace(0, 999, S)).long()
            x = info(mixture.eps_model(sched), x_T, sched, timesteps=grid, progress=False)
            errs.append((x - exact).norm(dim=1).mean().item())
        out[name] = {"steps": steps, "nfe": [info.nfe(S) for S in steps], "error": errs,
                     "order": -de.viz.loglog_slope(steps[-3:], errs[-3:])}
        print(f"{name:18s} order {out[name]['order']:.2f}  errors {['%.2e' % e for e in errs]}", flush=True)
    return out


def mnist_fid(a, device):
    model, sched, config = de.train.checkpoints.load_model(a.checkpoint, device=device)
    classifier = de.evaluation.load_classifier(device=device)
    ref = features(classifier, de.data.load_mnist("test")[0], device)
    x_T = fixed_noise(a.n, (1, 28, 28), 0)
    batch = 1000 if device.type == "cuda" else 250
    out = {}
    for name, info in SOLVERS.items():
        for nfe in (10, 20):
            S = info.steps_for_nfe(nfe)
            with Timer(device) as tm:
                x0 = sample_batched(lambda x: info(model, x, sched, steps=S, progress=False), x_T, batch, device)
            out[f"{name}, NFE≈{nfe}"] = fid_from_features(features(classifier, x0.clamp(-1, 1), device), ref)
            print(f"{name:18s} NFE≈{nfe}: FID {out[f'{name}, NFE≈{nfe}']:.3f} ({tm.seconds:.0f} s)", flush=True)
    return out


def plot(study, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, r in study.items():
        ax.loglog(r["nfe"], r["error"], "o-", label=f"{name} (order {r['order']:.1f})")
    nfe = study["DDIM (Euler)"]["nfe"]
    e0 = study["DDIM (Euler)"]["error"][0]
    ax.loglog(nfe, [e0 * nfe[0] / n for n in nfe], "k:", lw=1, label="slope −1")
    ax.loglog(nfe, [e0 * (nfe[0] / n) ** 2 for n in nfe], "k--", lw=1, label="slope −2")
    ax.set_xlabel("network calls (NFE)"), ax.set_ylabel("mean error vs exact ODE solution")
    ax.set_title("Gaussian mixture, exact ε"), ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    a = parse(argv)
    device = torch.device(a.device) if a.device else de.env.device()
    study = exact_study(a.quick)
    fids = mnist_fid(a, device)
    rows = [[name, r["order"]] + [f"{e:.2e}" for e in r["error"]] for name, r in study.items()]
    steps = study["DDIM (Euler)"]["steps"]
    body = ("Error of each solver against the exact probability-flow ODE solution (Gaussian mixture with "
            "its exact ε), mean over points, by steps S (Heun uses 2S − 1 network calls). The order is "
            "the fitted slope over the three finest grids.\n\n"
            + markdown_table(["solver", "order"] + [f"S={S}" for S in steps], rows)
            + f"\n\nClassifier-FID on MNIST ({a.n} samples, shipped model, {hardware(device)}):\n\n"
            + markdown_table(["solver, NFE", "FID"], [[k, v] for k, v in fids.items()]) + "\n")
    write_results(Path(a.out), "ODE solvers: convergence order and FID at equal NFE", body,
                  {"exact": study, "fid": fids, "n": a.n, "device": hardware(device)})
    plot(study, Path(a.out + ".png"))


if __name__ == "__main__":
    main()
