"""Our DDIM loop against diffusers' DDIMScheduler loop driving the same UNet: same x_T, same
steps and batch, timed alternately in one run (so machine noise hits both), outputs compared.

    python benchmarks/vs_diffusers.py                 # S = 50, batch 64, 5 rounds
    python benchmarks/vs_diffusers.py --quick
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from common import ROOT, alternating_times, de, hardware, load, markdown_table, write_results


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


def alternate(model, x_T, sched, steps, rounds, device):
    """Both loops, timed alternately (``common.alternating_times``)."""
    times, out = alternating_times({"ours": lambda: de.ddim_sample(model, x_T, sched, steps=steps, progress=False),
                                    "theirs": lambda: diffusers_loop(model, x_T, sched, steps)}, device, rounds)
    return times["ours"], times["theirs"], out["ours"], out["theirs"]


def main(argv=None):
    a = parse(argv)
    device = torch.device(a.device) if a.device else de.env.device()
    model, sched, _ = load(a.checkpoint, device)
    x_T = torch.randn(a.batch, 1, 28, 28, generator=de.env.generator(0)).to(device)
    t_ours, t_theirs, x_ours, x_theirs = alternate(model, x_T, sched, a.steps, a.rounds, device)
    # the loops alone: an ε-model that returns a stored tensor, so only the schedulers' own work is timed
    with torch.no_grad():
        eps = model(x_T, torch.full((a.batch,), 500, dtype=torch.long, device=device))
    l_ours, l_theirs, _, _ = alternate(lambda x, t: eps, x_T, sched, a.steps, a.rounds, device)
    loop_ratio = min(l_ours) / min(l_theirs)
    diff = (x_ours - x_theirs).abs().max().item()
    ratio = min(t_ours) / min(t_theirs)
    print(f"ours {min(t_ours):.3f} s, diffusers {min(t_theirs):.3f} s, ratio {ratio:.3f}, max |Δx| {diff:.2e}")
    print(f"loops alone: ours {min(l_ours) * 1e3:.1f} ms, diffusers {min(l_theirs) * 1e3:.1f} ms, "
          f"ratio {loop_ratio:.3f}")
    body = (f"DDIM-{a.steps}, batch {a.batch}, shipped MNIST UNet, {hardware(device)}, best of {a.rounds} "
            "rounds, alternating which loop runs first.\n\n"
            + markdown_table(["loop", "best time (s)", "all times (s)"],
                             [["ddim_edu.ddim_sample", min(t_ours), " ".join(f"{t:.3f}" for t in t_ours)],
                              ["diffusers DDIMScheduler", min(t_theirs), " ".join(f"{t:.3f}" for t in t_theirs)],
                              ["ddim_edu loop alone (stored ε)", min(l_ours), " ".join(f"{t:.4f}" for t in l_ours)],
                              ["diffusers loop alone (stored ε)", min(l_theirs),
                               " ".join(f"{t:.4f}" for t in l_theirs)]])
            + f"\n\nRatio ours / diffusers: **{ratio:.3f}** (goal: ≤ 1). Largest difference between the two "
              f"outputs: {diff:.1e} (float32; ᾱ in float64 here, float32 in diffusers).\n\n"
              f"The loops alone (an ε-model returning a stored tensor, so the network's timing noise is "
              f"absent): ratio **{loop_ratio:.3f}**; they cost {100 * min(l_ours) / min(t_ours):.2f}% (ours) "
              f"and {100 * min(l_theirs) / min(t_theirs):.2f}% (diffusers) of a whole sampling run.\n")
    write_results(Path(a.out + "_" + device.type), "Our DDIM loop vs diffusers' DDIMScheduler", body,
                  {"ours_s": t_ours, "diffusers_s": t_theirs, "ratio": ratio,
                   "loop_only_ours_s": l_ours, "loop_only_diffusers_s": l_theirs, "loop_only_ratio": loop_ratio,
                   "max_abs_diff": diff,
                   "device": hardware(device), "steps": a.steps, "batch": a.batch})


if __name__ == "__main__":
    main()
