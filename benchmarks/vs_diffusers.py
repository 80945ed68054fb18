"""Our DDIM loop against diffusers' DDIMScheduler loop driving the same UNet: same x_T, same
steps and batch, timed alternately in one run (so machine noise hits both), outputs compared.

    python benchmarks/vs_diffusers.py                 # S = 50, batch 64, 5 rounds
    python benchmarks/vs_diffusers.py --quick
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from common import ROOT, Timer, de, hardware, load, markdown_table, write_results


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "mnist"))
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--device", default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(ROOT / "results" / "vs_diffusers"))
    a = p.parse_args(argv)
    if a.quick:
        a.steps, a.batch, a.rounds = 10, 8, 2
    return a


def diffusers_loop(model, x_T, sched, steps):
    from diffusers import DDIMScheduler
    s = DDIMScheduler(num_train_timesteps=sched.T, beta_start=sched.params["beta_start"],
                      beta_end=sched.params["beta_end"], beta_schedule="linear", clip_sample=False,
                      set_alpha_to_one=True, timestep_spacing="leading", steps_offset=0)
    s.set_timesteps(steps)
    x = x_T
    with torch.no_grad():
        for t in s.timesteps:
            eps = model(x, torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device))
            x = s.step(eps, t, x, eta=0.0).prev_sample
    return x


def main(argv=None):
    a = parse(argv)
    device = torch.device(a.device) if a.device else de.env.device()
    model, sched, _ = load(a.checkpoint, device)
    x_T = torch.randn(a.batch, 1, 28, 28, generator=de.env.generator(0)).to(device)
    ours_fn = lambda: de.ddim_sample(model, x_T, sched, steps=a.steps, progress=False)  # noqa: E731
    theirs_fn = lambda: diffusers_loop(model, x_T, sched, a.steps)  # noqa: E731
    ours_fn(), theirs_fn()  # warm-up
    t_ours, t_theirs = [], []
    for _ in range(a.rounds):
        with Timer(device) as tm:
            x_ours = ours_fn()
        t_ours.append(tm.seconds)
        with Timer(device) as tm:
            x_theirs = theirs_fn()
        t_theirs.append(tm.seconds)
    diff = (x_ours - x_theirs).abs().max().item()
    ratio = min(t_ours) / min(t_theirs)
    print(f"ours {min(t_ours):.3f} s, diffusers {min(t_theirs):.3f} s, ratio {ratio:.3f}, max |Δx| {diff:.2e}")
    body = (f"DDIM-{a.steps}, batch {a.batch}, shipped MNIST UNet, {hardware(device)}, best of {a.rounds} "
            "alternating rounds.\n\n"
            + markdown_table(["loop", "best time (s)", "all times (s)"],
                             [["ddim_edu.ddim_sample", min(t_ours), " ".join(f"{t:.3f}" for t in t_ours)],
                              ["diffusers DDIMScheduler", min(t_theirs), " ".join(f"{t:.3f}" for t in t_theirs)]])
            + f"\n\nRatio ours / diffusers: **{ratio:.3f}** (goal: ≤ 1). Largest difference between the two "
              f"outputs: {diff:.1e} (float32; ᾱ in float64 here, float32 in diffusers).\n")
    write_results(Path(a.out + "_" + device.type), "Our DDIM loop vs diffusers' DDIMScheduler", body,
                  {"ours_s": t_ours, "diffusers_s": t_theirs, "ratio": ratio, "max_abs_diff": diff,
                   "device": hardware(device), "steps": a.steps, "batch": a.batch})


if __name__ == "__main__":
    main()
