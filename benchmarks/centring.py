"""Where do a model's digits sit? The centre of mass of DDIM samples against the held-out digits'.

    python benchmarks/centring.py --checkpoint runs/speedrun/A --checkpoint runs/speedrun/B --n 500

MNIST's digits are centred by their centre of mass, so a model that draws them off-centre has
learnt another distribution (a model trained on shifted digits does), and the course classifier,
trained on centred digits, is less sure of them. For each image the centre of mass of its ink
(pixels weighted by (x + 1)/2, in pixels from the top-left corner) and its distance from the
held-out digits' mean centre; per model, the median distance and the shares farther than 1 and
2 pixels, beside the same for the 500 held-out and the first 500 training digits. Every model
starts from the same x_T as ``kid_table.py`` (seed 0). Writes results/centring.json and .md
(thread count, sample count and hardware included).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from common import ROOT, ddim_samples, de, fixed_noise, load, machine_name, markdown_table, model_step, shown, \
    write_results


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", action="append", default=None,
                   help="a model's folder (repeat for several; default: checkpoints/mnist)")
    p.add_argument("--n", type=int, default=500, help="samples per model")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps S (η = 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--out", default=str(ROOT / "results" / "centring"))
    return p.parse_args(argv)


def centre_of_mass(x: torch.Tensor) -> torch.Tensor:
    """Images [B, 1, H, W] in [−1, 1] → their ink's centre of mass [B, 2] (row, column), in pixels."""
    w = ((x.clamp(-1, 1) + 1) / 2)[:, 0].double()
    rows, cols = (torch.arange(n, dtype=torch.float64) for n in w.shape[1:])
    mass = w.sum((1, 2)).clamp_min(1e-12)
    return torch.stack([(w.sum(2) * rows).sum(1) / mass, (w.sum(1) * cols).sum(1) / mass], 1)


def summary(c: torch.Tensor, centre: torch.Tensor) -> dict:
    d = (c - centre).norm(dim=1)
    return {"n": len(c), "mean_row": c[:, 0].mean().item(), "mean_col": c[:, 1].mean().item(),
            "median_distance": d.median().item(), "beyond_1px": (d > 1).double().mean().item(),
            "beyond_2px": (d > 2).double().mean().item()}


def main(argv=None):
    a = parse(argv)
    torch.set_num_threads(a.threads)
    start, device = time.perf_counter(), torch.device("cpu")
    held_out, train = de.data.load_mnist("test")[0], de.data.load_mnist("train")[0][:500]
    centre = centre_of_mass(held_out).mean(0)
    rows = {"the held-out digits": summary(centre_of_mass(held_out), centre),
            f"the first {len(train)} training digits": summary(centre_of_mass(train), centre)}
    x_T, steps = fixed_noise(a.n, (1, 28, 28), a.seed), {}
    for path in a.checkpoint or [str(ROOT / "checkpoints" / "mnist")]:
        model, sched, config = load(path, device)
        x = ddim_samples(model, sched, x_T, a.steps, 0.0, a.seed, a.batch, device)
        rows[f"`{shown(path)}`"], steps[shown(path)] = summary(centre_of_mass(x), centre), model_step(config)
        print(f"{shown(path)}: {rows[f'`{shown(path)}`']}", flush=True)
    hw = machine_name(device)
    data = {"n": a.n, "S": a.steps, "seed": a.seed, "threads": torch.get_num_threads(), "hardware": hw,
            "held_out_centre": centre.tolist(), "steps": steps, "rows": rows, "seconds_total": time.perf_counter() - start}
    table = markdown_table(["images", "median distance (px)", "farther than 1 px", "farther than 2 px"],
                           [[k, f"{r['median_distance']:.3f}", f"{r['beyond_1px']:.3f}", f"{r['beyond_2px']:.3f}"]
                            for k, r in rows.items()])
    body = (f"{a.n} DDIM samples a model (η = 0, S = {a.steps}, the x_T of `kid_table.py`, seed {a.seed}); {hw}, "
            f"{data['threads']} thread(s), {data['seconds_total']:.0f} s in all. Distance: from each image's centre "
            f"of mass (pixels weighted by (x + 1)/2) to the held-out digits' mean centre, row "
            f"{centre[0]:.2f}, column {centre[1]:.2f}.\n\n" + table)
    write_results(Path(a.out), "Centring: where the digits sit", body, data)
    return data


if __name__ == "__main__":
    main()
