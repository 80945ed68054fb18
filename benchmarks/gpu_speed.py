"""Speed of the shipped MNIST model: DDIM-50 images per second and training steps per second.

    python benchmarks/gpu_speed.py                 # on CUDA: fp32, bf16 + channels_last, + torch.compile
    python benchmarks/gpu_speed.py --device cpu --batch 64 --no-compile

Also the sampler's overhead: the wall time of DDIM-S over S bare forward passes of the same
network on the same batch (goal: within 5%).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
from pathlib import Path

import torch

from common import ROOT, Timer, alternating_times, de, hardware, load, markdown_table, write_results


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "mnist"))
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default=None)
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--train-batch", type=int, default=128, help="batch for the training-speed measurement")
    p.add_argument("--out", default=str(ROOT / "results" / "speed_mnist"))
    return p.parse_args(argv)


def autocast(device, bf16: bool):
    if bf16:
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def best_time(fn, device, repeats):
    fn()  # warm-up (and compilation)
    times = []
    for _ in range(repeats):
        with Timer(device) as tm:
            fn()
        times.append(tm.seconds)
    return min(times)


def overhead(net, sched, x, t, steps, device, repeats):
    """The sampler's cost beyond the network, measured two ways.

    ``ratio``: DDIM-S over S bare forward passes, median of alternating pairs.
    ``loop_only``: DDIM-S driven by an ε-model that returns a stored tensor (no network), over
    the S bare forward passes: the sampler's own arithmetic, free of the network's timing noise.
    """
    eps = net(x, t).clone()     # a copy: a CUDA-graph variant reuses its output buffer on the next call
    times, _ = alternating_times({"ddim": lambda: de.ddim_sample(net, x, sched, steps=steps, progress=False),
                                  "bare": lambda: [net(x, t) for _ in range(steps)]}, device, repeats)
    ddim, bare = times["ddim"], times["bare"]
    loop = best_time(lambda: de.ddim_sample(lambda x_t, t_b: eps, x, sched, steps=steps, progress=False),
                     device, repeats)
    ratios = sorted(d / b for d, b in zip(ddim, bare))
    return {"ddim_s": min(ddim), "forward_s": min(bare), "overhead_ratio": ratios[len(ratios) // 2],
            "loop_only_s": loop, "loop_only_fraction": loop / min(bare)}


def main(argv=None):
    a = parse(argv)
    device = torch.device(a.device) if a.device else de.env.device()
    model, sched, _ = load(a.checkpoint, device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True      # fixed shapes: let cuDNN pick the fastest convolutions
    x_T = torch.randn(a.batch, 1, 28, 28).to(device)
    t = torch.full((a.batch,), 500, dtype=torch.long, device=device)
    variants = [("fp32", model, False, False)]
    if cuda:
        # a copy: .to(memory_format=…) works in place and would turn the fp32 row's weights channels_last too
        cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        variants.append(("bf16 + channels_last", cl_model, True, True))
        if not a.no_compile:
            variants.append(("bf16 + channels_last + torch.compile", torch.compile(cl_model), True, True))
            variants.append(("bf16 + channels_last + torch.compile + CUDA graphs",
                             torch.compile(cl_model, mode="reduce-overhead"), True, True))
    rows, data = [], {"device": hardware(device), "batch": a.batch, "steps": a.steps}
    for name, net, bf16, cl in variants:
        x = x_T.to(memory_format=torch.channels_last) if cl else x_T
        try:
            with torch.no_grad(), autocast(device, bf16):
                m = overhead(net, sched, x, t, a.steps, device, a.repeats)
        except Exception as err:     # one variant failing (a compiler error, say) must not lose the others
            print(f"{name:40s} failed: {type(err).__name__}: {str(err)[:200]}", flush=True)
            continue
        ips = a.batch / m["ddim_s"]
        rows.append([name, ips, m["ddim_s"], m["forward_s"], m["overhead_ratio"], m["loop_only_fraction"]])
        data[name] = {"images_per_s": ips, **m}
        print(f"{name:40s} DDIM-{a.steps}: {ips:10.1f} img/s   overhead ratio {m['overhead_ratio']:.3f}"
              f"   loop alone {100 * m['loop_only_fraction']:.2f}% of the forwards", flush=True)
    # training steps per second with the shipped recipe's batch size
    train_model = de.nets.build_model(model.config).to(device)
    opt = torch.optim.AdamW(train_model.parameters(), lr=5e-4)
    data_x = torch.randn(a.train_batch, 1, 28, 28, device=device)

    def train_steps(n=20):
        for _ in range(n):
            with autocast(device, cuda):
                loss = de.train.diffusion_loss(train_model, data_x, sched)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    tsec = best_time(train_steps, device, a.repeats) / 20
    data[f"train_steps_per_s_batch{a.train_batch}"] = 1 / tsec
    print(f"training: {1 / tsec:.1f} steps/s at batch {a.train_batch}", flush=True)
    body = (f"{hardware(device)}, batch {a.batch}, DDIM-{a.steps}, best of {a.repeats} alternating rounds.\n\n"
            + markdown_table(["variant", "images/s", f"DDIM-{a.steps} (s)", f"{a.steps} forwards (s)",
                              "sampler / bare forwards (median pair)", "loop alone / forwards"], rows)
            + "\n\n*Loop alone*: the same DDIM-S driven by an ε-model that returns a stored tensor, i.e. "
              "the sampler's own arithmetic and bookkeeping without the network.\n"
            + f"\n\nTraining: {1 / tsec:.1f} steps/s at batch {a.train_batch} ({'bf16 autocast' if cuda else 'fp32'}).\n")
    tag = "cuda" if cuda else "cpu"
    write_results(Path(a.out + "_" + tag), f"Speed on {hardware(device)}", body, data)
    return data


if __name__ == "__main__":
    main()
