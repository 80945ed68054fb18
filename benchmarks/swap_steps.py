"""Which of DDIM's steps does a model lose on? Sample with one model below a switch point t_s and another above.

    python benchmarks/swap_steps.py --checkpoint runs/speedrun/A --switch-at 1,40 --n 2000 --threads 2

DDIM-S (η = 0, ``skip="uniform"``: τ_i = 0, T/S, 2T/S, ...) from the same x_T as kid_table.py, with a
composite ε-model, one network per range of t (as the "expert denoisers" of eDiff-I, Balaji et al. 2022,
here two different models): the ``--with`` model (default: the shipped one) answers every t < t_s, the
``--checkpoint`` model every t ≥ t_s; ``--reverse`` adds the opposite split. t_s = 1 swaps only DDIM's
last step (t = 0); t_s = 40 at S = 50 its last two (t = 20, 0). Each cell's KID against the 500 held-out
digits (course classifier features), and its paired difference from the ``--checkpoint`` model alone,
also after rounding both to the 256 grey levels of the MNIST files; the RMS per-pixel difference of the
two sample sets; and the share of exactly black pixels after rounding (held-out digits: 81%).
Both models must share one noise schedule. Writes results/swap_steps.json and .md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from common import ROOT, ddim_samples, de, kid_scores, features, fixed_noise, load, machine_name, \
    markdown_table, model_step, shown, write_results


def to_grey_levels(x: torch.Tensor) -> torch.Tensor:
    """Images in [−1, 1] rounded to the 256 levels of an 8-bit file (``data.to_uint8``), as MNIST's own
    digits are, and mapped back to [−1, 1] as the loaders map them."""
    return de.data.to_uint8(x).to(torch.float32) / 127.5 - 1


class SwappedModel(torch.nn.Module):
    """ε̂(x_t, t) = ``low``(x_t, t) for t < ``t_switch``, ``high``(x_t, t) for t ≥ ``t_switch``, row by row,
    in x's dtype. ``schedule_config`` (the models' common ``schedule_config``) keeps the samplers' check that
    the schedule they are given is the one the models were trained on."""

    def __init__(self, low, high, t_switch: int, schedule_config=None):
        super().__init__()
        self.low, self.high, self.t_switch = low, high, t_switch
        if schedule_config is not None:
            self.schedule_config = schedule_config

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        below = t < self.t_switch
        out = torch.empty_like(x)
        if below.any():
            out[below] = self.low(x[below], t[below]).to(x.dtype)
        if not below.all():
            out[~below] = self.high(x[~below], t[~below]).to(x.dtype)
        return out


def parse(argv=None):
    """The command line (``--help``)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="the model under study (answers t >= t_s)")
    p.add_argument("--with", dest="other", default=str(ROOT / "checkpoints" / "mnist"),
                   help="the model that answers t < t_s (default: the shipped one)")
    p.add_argument("--switch-at", default="1,40", help="comma-separated switch points t_s")
    p.add_argument("--reverse", action="store_true", help="also the opposite split (--checkpoint below t_s)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(ROOT / "results" / "swap_steps"))
    return p.parse_args(argv)


def main(argv=None):
    """Score every split; write ``--out``.json and .md; return the data written."""
    a = parse(argv)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    model, sched, config = load(a.checkpoint, device)
    other, other_sched, other_config = load(a.other, device)
    if not torch.equal(sched.alpha_bar, other_sched.alpha_bar):
        raise ValueError(f"--checkpoint {a.checkpoint} and --with {a.other} were trained on different noise "
                         "schedules; a swapped model needs one schedule")
    switches = list(dict.fromkeys(int(v) for v in a.switch_at.split(",")))     # each once, in the order given
    classifier = de.evaluation.load_classifier(device=device)
    held_out, labels = de.data.load_mnist("test")
    ref = features(classifier, held_out, device)
    x_T = fixed_noise(a.n, (1, 28, 28), a.seed)
    start = time.perf_counter()

    def cell(net):
        t0 = time.perf_counter()
        x = ddim_samples(net, sched, x_T, a.steps, 0.0, a.seed, a.batch, device)
        grey = to_grey_levels(x)
        f, scores = kid_scores(classifier, x, ref, labels, device)
        return x, f, features(classifier, grey, device), {
            **scores, "black": float((grey == -1).float().mean()), "seconds": time.perf_counter() - t0}

    x_alone, f_alone, g_alone, alone = cell(model)
    print(f"{shown(a.checkpoint)} alone: {alone}", flush=True)
    cells = {}
    splits = [(f"--with below {ts}", other, model, ts) for ts in switches]
    if a.reverse:
        splits += [(f"--checkpoint below {ts}", model, other, ts) for ts in switches]
    for name, low, high, ts in splits:
        x, f, g, c = cell(SwappedModel(low, high, ts, getattr(model, "schedule_config", None)))
        d = de.evaluation.kid_difference(f, f_alone, ref, labels_ref=labels)
        dg = de.evaluation.kid_difference(g, g_alone, ref, labels_ref=labels)
        cells[name] = {**c, "t_switch": ts, "minus_alone": d.value, "minus_alone_se": d.stderr,
                       "z": d.value / d.stderr if d.stderr > 0 else None,     # None: the same samples
                       "minus_alone_grey_levels": dg.value, "minus_alone_grey_levels_se": dg.stderr,
                       "rms_pixel_difference": float((x - x_alone).pow(2).mean().sqrt())}
        print(f"{name}: {cells[name]}", flush=True)
    hw = machine_name(device)
    data = {"checkpoint": shown(a.checkpoint), "checkpoint_step": model_step(config), "with": shown(a.other),
            "with_step": model_step(other_config), "steps": a.steps, "n": a.n, "seed": a.seed,
            "threads": torch.get_num_threads(), "hardware": hw, "alone": alone, "swapped": cells,
            "seconds_total": time.perf_counter() - start}
    rows = [["--checkpoint alone", "–", f"{alone['kid'] * 1e3:.2f} ± {alone['kid_se'] * 1e3:.2f}",
             f"{alone['confident']:.3f}", f"{alone['fid']:.3f}", "–", "–", "–", f"{alone['black']:.3f}"]]
    rows += [[name, c["t_switch"], f"{c['kid'] * 1e3:.2f} ± {c['kid_se'] * 1e3:.2f}", f"{c['confident']:.3f}",
              f"{c['fid']:.3f}", f"{c['minus_alone'] * 1e3:+.2f} ± {c['minus_alone_se'] * 1e3:.2f}"
              + (f" ({c['z']:+.1f})" if c["z"] is not None else " (the same samples)"),
              f"{c['minus_alone_grey_levels'] * 1e3:+.2f} ± {c['minus_alone_grey_levels_se'] * 1e3:.2f}",
              f"{c['rms_pixel_difference']:.4f}", f"{c['black']:.3f}"] for name, c in cells.items()]
    body = (f"DDIM-{a.steps} (η = 0, uniform τ_i, the last at t = 0) from the same {a.n} x_T; `--checkpoint` "
            f"`{shown(a.checkpoint)}` (step {model_step(config)}), `--with` `{shown(a.other)}` (step "
            f"{model_step(other_config)}); \"--with below t_s\": the --with model answers t < t_s, the --checkpoint "
            f"model t ≥ t_s (\"--checkpoint below t_s\": the other way round). KID ×10³ against the 500 held-out digits on the course classifier's features, ± its "
            f"jackknife standard error; the paired difference from the --checkpoint model alone (same x_T), ± its "
            f"standard error (in standard errors), and the same after rounding both sets to 256 grey levels; the "
            f"RMS per-pixel difference from the --checkpoint model's samples; the share of exactly black pixels "
            f"after rounding. {hw}, {data['threads']} thread(s), "
            f"{data['seconds_total']:.0f} s in all.\n\n"
            + markdown_table(["sampler's model", "t_s", "KID ×10³", "confident share", "classifier-FID",
                              "minus --checkpoint alone ×10³", "the same, 256 grey levels", "RMS pixel difference",
                              "black pixels"], rows))
    write_results(Path(a.out), "DDIM with two models: which steps a model loses on", body, data)
    return data


if __name__ == "__main__":
    main()
