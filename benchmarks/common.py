"""Shared pieces of the benchmark scripts: loading the shipped model, batched sampling from
fixed x_T, classifier features, and writing Markdown/JSON results."""
from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ddim_edu as de  # noqa: E402
from ddim_edu.train import checkpoints as ck  # noqa: E402
from ddim_edu.evaluation import metrics  # noqa: E402


def load(checkpoint: str, device, channels_last: bool = False, weights: str = "ema"):
    """The checkpoint's model, schedule and config; ``channels_last`` stores the network's weights in
    channels-last memory order, which makes a CPU's convolutions 1.3-1.5x faster (the shipped
    UNet, batch 250) and changes the outputs only by float32 rounding. ``weights``: "ema"
    (model.safetensors) or "raw" (a run folder's last optimiser iterate, state.safetensors)."""
    model, sched, config = ck.load_model(checkpoint, device=device, weights=weights)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, sched, config


def shown(checkpoint) -> str:
    """A checkpoint folder as results/ names it: relative to the repository when inside it (no machine paths)."""
    path = Path(checkpoint).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(checkpoint)


def model_step(config: dict) -> int | None:
    """Training steps behind a checkpoint: the total over warm starts when recorded, else its own."""
    return config.get("steps_total", config.get("step"))


def fixed_noise(n: int, shape, seed: int) -> torch.Tensor:
    """The same x_T for every cell of a table (common random numbers: cells differ only by sampler)."""
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed))


def sample_batched(fn, x_T: torch.Tensor, batch: int, device) -> torch.Tensor:
    outs = []
    for i in range(0, len(x_T), batch):
        outs.append(fn(x_T[i:i + batch].to(device)).float().cpu())
    return torch.cat(outs)


def ddim_samples(model, sched, x_T: torch.Tensor, steps: int, eta: float, seed: int, batch: int, device) -> torch.Tensor:
    """DDIM samples from ``x_T`` in [−1, 1] (clamped), float32 on the CPU, their noise (η > 0) drawn from seed + 100:
    the samples kid_table.py scores, so memorisation.py and centring.py look at the same ones."""
    gen = torch.Generator().manual_seed(seed + 100)
    return sample_batched(lambda xb: de.ddim_sample(model, xb, sched, steps=steps, eta=eta, generator=gen,
                                                   progress=False).clamp(-1, 1), x_T, batch, device)


def features(classifier, x: torch.Tensor, device, batch: int = 1000) -> torch.Tensor:
    """Classifier features (float64, CPU); the classifier already sits on ``device``."""
    return metrics.classifier_features(x, classifier, batch_size=batch)


def kid_scores(classifier, x: torch.Tensor, ref: torch.Tensor, ref_labels: torch.Tensor, device):
    """Samples ``x`` scored against the reference features ``ref`` (the held-out digits, with their labels):
    (their features, {kid, kid_se, fid, confident, confident_se}), the cells of kid_table.py and swap_steps.py."""
    f = features(classifier, x, device)
    kid = de.evaluation.kernel_distance(f, ref, subsets=0, labels_b=ref_labels)
    conf = de.evaluation.confident_share(x, classifier)
    return f, {"kid": kid.value, "kid_se": kid.stderr, "fid": fid_from_features(f, ref),
               "confident": conf.value, "confident_se": conf.stderr}


def fid_from_features(f1: torch.Tensor, f2: torch.Tensor) -> float:
    mu1, c1 = metrics.feature_statistics(f1)
    mu2, c2 = metrics.feature_statistics(f2)
    return float(metrics.frechet_distance(mu1, c1, mu2, c2))


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class Timer:
    def __init__(self, device):
        self.device = device

    def __enter__(self):
        sync(self.device)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        sync(self.device)
        self.seconds = time.perf_counter() - self.t0


def alternating_times(fns: dict, device, rounds: int) -> tuple[dict, dict]:
    """Time every function in ``fns`` once per round, after one warm-up call each (which also
    compiles); the order flips every round so that none always runs on a warmer machine and
    a busy machine slows all alike. Returns ({name: [seconds]}, {name: last output})."""
    out = {name: fn() for name, fn in fns.items()}
    times = {name: [] for name in fns}
    for r in range(rounds):
        for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            with Timer(device) as tm:
                out[name] = fns[name]()
            times[name].append(tm.seconds)
    return times, out


def markdown_table(header: list, rows: list) -> str:
    def fmt(v):
        if isinstance(v, float):
            return "—" if math.isnan(v) else (f"{v:.4g}" if abs(v) < 1000 else f"{v:.0f}")
        return str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(out: Path, title: str, body: str, data: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(f"# {title}\n\n{body}\n")
    out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


def hardware(device, channels_last: bool = False) -> str:
    d = torch.device(device)
    if d.type == "cuda":
        return torch.cuda.get_device_name(d) + (", channels_last" if channels_last else "")
    return f"CPU ({torch.get_num_threads()} threads{', channels_last' if channels_last else ''})"


def machine_name(device) -> str:
    """The machine a results file was measured on: the GPU's name on CUDA, else the CPU's cores and architecture
    (the thread count goes in the file's own ``threads``)."""
    if torch.device(device).type == "cuda":
        return hardware(device)
    return f"CPU, {os.cpu_count()} cores ({platform.machine()})"
