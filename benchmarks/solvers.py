"""Solvers of the probability-flow ODE (DDIM section 4.3): error against the exact solution
versus the number of network calls (NFE) on two 2-D mixtures, and classifier-FID at 10 and 20
NFE on MNIST.

    python benchmarks/solvers.py            # exact-error study + MNIST FID (1,000 samples)
    python benchmarks/solvers.py --quick    # fewer points, grids and samples

The exact models are Gaussian mixtures whose optimal ε is known in closed form: the course's
8-Gaussian ring (``de.data.toy_mixture()``, std 0.1) and two wide, unequal components (the
smooth mixture of notebook 04 and the tests). Each solver runs on its own default grid
(``SamplerInfo.default_skip``: ``"uniform"`` for DDIM and Heun, ``"log_snr"`` for DPM-Solver++),
and is compared with the exact ODE solution from the same x_T at the grid's first timestep (the
uniform grid τ_i = i⌊T/S⌋ starts below t = 999), solved by RK4 (``GaussianMixture.ode_solution``).
The solvers are the registry's (``de.diffusion.ode_solvers()``), so a new registered solver
appears here by itself.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from common import ROOT, Timer, de, features, fid_from_features, fixed_noise, hardware, markdown_table, \
    sample_batched, write_results

SOLVERS = {info.label: info for info in de.diffusion.ode_solvers().values()}   # label → SamplerInfo
TOYS = {"ring": ("8-Gaussian ring (std 0.1)", de.data.toy_mixture),
        "two": ("two-component mixture", lambda: de.GaussianMixture([[1.0, 0.5], [-1.0, -0.5]], [0.4, 0.6],
                                                                     [0.3, 0.7]))}


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
    """{toy: {label: {steps, nfe, grid, error, order}}}: mean ‖x − x_exact‖ over the points."""
    sched = de.NoiseSchedule.linear()
    x_T = torch.randn(32 if quick else 256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    steps = [10, 20, 40] if quick else [5, 10, 20, 40, 80, 160]
    out = {}
    for toy, (title, make) in TOYS.items():
        mixture, exact = make(), {}
        out[toy] = {}
        for name, info in SOLVERS.items():
            errs = []
            for S in steps:
                t_start = int(de.make_timesteps(sched.T, S, info.default_skip, sched.alpha_bar)[-1])
                if t_start not in exact:     # the exact end point from x_T at the grid's first noise level
                    sigma = de.diffusion.sigma_from_alpha_bar(sched.alpha_bar_at(t_start))
                    exact[t_start] = mixture.ode_solution(x_T, sigma, n_steps=500 if quick else 1000)
                x = info(mixture.eps_model(sched), x_T, sched, steps=S, progress=False)
                errs.append((x - exact[t_start]).norm(dim=1).mean().item())
            out[toy][name] = {"steps": steps, "nfe": [info.nfe(S) for S in steps], "grid": info.default_skip,
                              "error": errs, "order": -de.viz.loglog_slope(steps[-3:], errs[-3:])}
            print(f"{toy:5s} {name:18s} order {out[toy][name]['order']:.2f}  errors {['%.2e' % e for e in errs]}",
                  flush=True)
    return out


def mnist_fid(a, device):
    """{label, NFE: (FID of all n, FID of each half)}; every solver on its default grid, the same x_T."""
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
            f = features(classifier, x0.clamp(-1, 1), device)
            h = len(f) // 2
            key = f"{name}, NFE {info.nfe(S)} (S = {S})"
            out[key] = [fid_from_features(f, ref), fid_from_features(f[:h], ref), fid_from_features(f[h:], ref)]
            print(f"{key:36s}: FID {out[key][0]:.3f} (halves {out[key][1]:.3f}, {out[key][2]:.3f}; "
                  f"{tm.seconds:.0f} s)", flush=True)
    return out


def plot(study, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(study), figsize=(5.2 * len(study), 4))
    for ax, (toy, res) in zip(axes, study.items()):
        for name, r in res.items():
            ax.loglog(r["nfe"], r["error"], "o-", label=f"{name}, {r['grid']} grid (order {r['order']:.1f})")
        nfe, e0 = res["DDIM (Euler)"]["nfe"], res["DDIM (Euler)"]["error"][0]
        ax.loglog(nfe, [e0 * nfe[0] / n for n in nfe], "k:", lw=1, label="slope −1")
        ax.loglog(nfe, [e0 * (nfe[0] / n) ** 2 for n in nfe], "k--", lw=1, label="slope −2")
        ax.set_xlabel("network calls (NFE)"), ax.set_ylabel("mean error vs exact ODE solution")
        ax.set_title(f"{TOYS[toy][0]}, exact ε"), ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    a = parse(argv)
    device = torch.device(a.device) if a.device else de.env.device()
    study = exact_study(a.quick)
    fids = mnist_fid(a, device)
    body = ("Error of each solver against the exact probability-flow ODE solution (a Gaussian mixture with "
            "its exact ε; 256 float64 points, mean ‖x − x_exact‖), by steps S (Heun uses 2S − 1 network "
            "calls). Each solver runs on its default grid (DDIM and Heun `skip=\"uniform\"`, τ_i = i⌊T/S⌋, "
            "which starts below t = 999; DPM-Solver++ `skip=\"log_snr\"`, uniform in log σ) and is compared "
            "with the exact solution from the same x_T at its grid's first timestep (RK4, "
            "`GaussianMixture.ode_solution`, 1000 steps). DPM-Solver++ takes a lower-order step after a "
            "step shorter than half the current one in log σ (`LOWER_ORDER_RATIO`). The order is the "
            "fitted slope over the three finest grids. On the ring it means little: DPM-Solver++ levels off "
            "at a few 1e-4 (the steps near t = 0 cannot be shorter than one timestep; notebook 04, Try it) "
            "and Heun's 160-step point falls below that by a cancellation of errors. Machine: " + hardware(torch.device("cpu")) + ".\n\n")
    for toy, res in study.items():
        steps = next(iter(res.values()))["steps"]
        rows = [[name, r["grid"], f"{r['order']:.2f}"] + [f"{e:.2e}" for e in r["error"]] for name, r in res.items()]
        body += f"**{TOYS[toy][0]}**\n\n" + markdown_table(["solver", "grid", "order"] + [f"S={S}" for S in steps],
                                                           rows) + "\n\n"
    body += (f"Classifier-FID on MNIST ({a.n} samples from the same x_T per cell, shipped model, "
             f"{hardware(device)}; each solver on its default grid). The two halves ({a.n // 2} samples each) show "
             "the noise; FID is biased upwards at small n, so compare cells, not absolute values, and only "
             "differences larger than the spread between halves mean anything:\n\n"
             + markdown_table(["solver, NFE", "FID", "FID, first half", "FID, second half"],
                              [[k] + [f"{x:.3f}" for x in v] for k, v in fids.items()]) + "\n")
    write_results(Path(a.out), "ODE solvers: convergence order and FID at equal NFE", body,
                  {"exact": study["two"], "exact_ring": study["ring"], "fid": fids, "n": a.n,   # "exact": as before
                   "device": hardware(device)})
    plot(study, Path(a.out + ".png"))


if __name__ == "__main__":
    main()
