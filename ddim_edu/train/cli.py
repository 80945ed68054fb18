"""Train a noise predictor from the command line; resumable, data-parallel with torchrun.

    python -m ddim_edu.train --preset laptop --minutes 10 --out runs/laptop   # a laptop CPU
    python -m ddim_edu.train --dataset mnist --steps 5000 --out runs/mnist
    python -m ddim_edu.train --resume runs/mnist --steps 10000      # continue the run
    python -m ddim_edu.train --init checkpoints/mnist --steps 5000 --out runs/more   # warm start
    torchrun --nproc_per_node 4 -m ddim_edu.train --dataset mnist --out runs/m4   # DDP

The training options (--steps, --lr, --ema, ...) are generated from :class:`~.config.TrainConfig`
(their defaults and help); data, model and schedule options are written here. Writes the run
directory of :mod:`ddim_edu.train.state`. The MNIST subset ships with the package: no network.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
from pathlib import Path

import torch

from . import checkpoints as ck
from .. import env
from .datasets import DATASETS, load_data
from .presets import PRESETS, preset_cli_defaults, preset_training
from .config import (UNLIMITED_STEPS, TrainConfig, _int_at_least, _pos_int, _widths, check_saved_args, cli_dest,
                     cli_flag, cli_negated, field_type)


# options that may change when a run is resumed (the TrainConfig fields marked resumable, and
# these); everything else must match the saved run
RESUMABLE = {"device", "data_root", "resume", "out"} | {
    cli_dest(f) for f in dataclasses.fields(TrainConfig) if f.metadata["resumable"]}
# options a warm start (--init) does not take from the model it starts from (bf16: a property of the
# hardware, like the device: a CPU without bf16 units would emulate it, slowly)
NOT_INHERITED = RESUMABLE | {"init", "seed", "bf16"}


def add_config_options(parser) -> None:
    """One option per :class:`~ddim_edu.train.config.TrainConfig` field, with its default and help
    (``parser`` is an ``argparse.ArgumentParser`` or argument group)."""
    for f in dataclasses.fields(TrainConfig):
        m, kind, flag, dest = f.metadata, field_type(f), cli_flag(f), cli_dest(f)
        flags = (flag, *m["aliases"])
        if kind is bool:
            negated = cli_negated(f)                # stored as no_<name>: True turns the option off
            store_true = negated or not flag.startswith("--no-")
            parser.add_argument(*flags, dest=dest, action="store_true" if store_true else "store_false",
                                default=(not f.default) if negated else f.default,
                                help=f"{m['help']}; {flag} turns it off" if flag.startswith("--no-") else m["help"])
            continue
        if kind is str:
            parser.add_argument(*flags, dest=dest, choices=m["choices"], default=f.default,
                                help=m["help"] + f" (default {f.default})")
            continue
        parse = _int_at_least(m["lo"]) if kind is int and m["lo"] is not None else kind
        parser.add_argument(*flags, dest=dest, type=parse, default=f.default, metavar="N" if kind is int else "X",
                            help=m["help"] + ("" if f.default is None else f" (default {f.default})"))


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The validated :class:`~ddim_edu.train.config.TrainConfig` that parsed ``args`` describe
    (``TypeError``/``ValueError`` naming the field for a value out of range)."""
    values = {}
    for f in dataclasses.fields(TrainConfig):
        v = getattr(args, cli_dest(f))
        values[f.name] = (not v) if cli_negated(f) else v
    return TrainConfig(**values).validate()


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m ddim_edu.train`` parser: data, model and schedule options written here,
    the training options generated from :class:`~ddim_edu.train.config.TrainConfig`."""
    ds_help = "\n".join(f"  {k:<14} {v}" for k, v in DATASETS.items())
    p = argparse.ArgumentParser(
        prog="python -m ddim_edu.train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train an epsilon-prediction model with the simplified DDPM loss (the training DDIM uses) "
                    "or a reweighting of it over t (DDIM's L_gamma, --loss-weighting).",
        epilog=f"datasets:\n{ds_help}\n\nexamples:\n"
               "  python -m ddim_edu.train --preset laptop --minutes 10 --out runs/laptop\n"
               "  python -m ddim_edu.train --dataset mnist --steps 5000 --out runs/mnist\n"
               "  python -m ddim_edu.train --dataset gmm --steps 3000 --out runs/toy\n"
               "  python -m ddim_edu.train --resume runs/mnist --steps 10000\n"
               "  python -m ddim_edu.train --init checkpoints/mnist --steps 5000 --out runs/more\n"
               "  torchrun --nproc_per_node 2 -m ddim_edu.train --dataset mnist --out runs/ddp")
    a = p.add_argument_group("data").add_argument
    a("--dataset", default="mnist", choices=list(DATASETS), help="training data (see below; default mnist = 4,500 shipped digits)")
    a("--data-root", default=None, help="folder for torchvision datasets")
    a("--pad", action="store_true", help="pad 28x28 digits to 32x32 with 2 background pixels per side")
    a("--toy-n", type=_pos_int, default=20000, help="points in a 2-D toy set (default 20000)")
    a = p.add_argument_group("model").add_argument
    a("--model", choices=["unet", "mlp"], default=None, help="default: unet for images, mlp for toy sets")
    a("--widths", type=_widths, default=[32, 64, 128], help="UNet channel widths per level (default 32,64,128)")
    a("--num-res-blocks", type=_pos_int, default=2, help="residual blocks per UNet level (default 2)")
    a("--patch-size", type=_pos_int, default=1,
      help="UNet on p x p pixel patches folded into channels (2: runs at 14x14 for MNIST, ~3x cheaper; default 1)")
    a("--attention", action="store_true", help="self-attention at the lowest UNet resolution")
    a("--scale-shift", action=argparse.BooleanOptionalAction, default=False,
      help="the time embedding scales and shifts each residual block's second GroupNorm (ADM); default off, "
           "on in --preset laptop")
    a("--conditional", action="store_true", help="class-conditional UNet (labels, --p-uncond) for guidance")
    a("--dropout", type=float, default=0.0, help="dropout in the residual blocks (default 0)")
    a("--groups", type=_pos_int, default=8, help="GroupNorm groups (must divide every width; default 8)")
    a("--mlp-hidden", type=_pos_int, default=128, help="hidden width of the MLP (default 128)")
    a("--mlp-layers", type=_pos_int, default=3, help="residual layers of the MLP (default 3)")
    a = p.add_argument_group("noise schedule").add_argument
    a("--schedule", choices=["linear", "cosine"], default="linear")
    a("--T", type=_pos_int, default=1000, help="number of diffusion steps (default 1000)")
    a("--beta-start", type=float, default=1e-4, help="linear schedule: beta_1 (default 1e-4)")
    a("--beta-end", type=float, default=0.02, help="linear schedule: beta_T (default 0.02)")
    add_config_options(p.add_argument_group("training (ddim_edu.train.TrainConfig)"))
    a = p.add_argument_group("run").add_argument
    a("--preset", choices=list(PRESETS), default=None,
      help="a measured recipe (ddim_edu.train.presets): its network and training options, unless typed here; "
           "laptop = patched UNet with scale-shift, batch 64, lr 2e-3 decayed by a cosine to 0 at the end of --steps "
           "or of the time budget, AdamW beta2 0.99, min-SNR-5 with no weight below 0.05, t >= 500 drawn a fifth of "
           "the time, for CPU runs of minutes; mnist = full UNet, "
           "dropout 0.2, 12,000 steps at batch 256, lr 1e-3 with a cosine decay, min-SNR-5, EMA 0.9995")
    a("--out", default=None, help="run directory (e.g. runs/mnist)")
    a("--resume", default=None, metavar="RUN_DIR", help="continue the run saved in RUN_DIR exactly")
    a("--init", default=None, metavar="MODEL_DIR",
      help="warm start: a new run beginning from the EMA weights in MODEL_DIR (e.g. checkpoints/mnist), "
           "with its dataset, model and training options unless given here; fresh optimiser and step count")
    a("--device", choices=["cpu", "cuda", "mps"], default=None, help="default: CUDA, then MPS, then CPU")
    return p


def _explicit(parser: argparse.ArgumentParser, argv) -> set[str]:
    """The options actually typed on the command line."""
    quiet = build_parser()
    for action in quiet._actions:
        action.default = argparse.SUPPRESS
    return set(vars(quiet.parse_args(argv)))


def _inherit(parser, args, typed: set[str]) -> argparse.Namespace:
    """--init: untyped options come from the model it starts from (its saved "args"); the seed moves on by one."""
    saved = _saved_args(parser, Path(args.init), "--init")
    keep = {k: v for k, v in saved.items() if k not in typed and k not in NOT_INHERITED and k in vars(args)}
    if "seed" not in typed:
        keep["seed"] = int(saved.get("seed", 0)) + 1      # new batches and noise, not a replay of the first run
    return argparse.Namespace(**{**vars(args), **keep})


def _saved_args(parser, run_dir: Path, opt: str) -> dict:
    """The "args" saved in ``run_dir``'s config.json, checked like the command line (a parser error if not)."""
    where = run_dir / ck.CONFIG_FILE
    try:
        ck.recover(run_dir)                                  # a checkpoint a kill interrupted
        saved = ck.read_json(where, f"the {opt} run's config.json").get("args")
        if saved is None:
            raise ValueError(f"{where} has no saved 'args' (not written by python -m ddim_edu.train)")
        return check_saved_args(parser, saved, where)
    except (OSError, ValueError) as e:
        parser.error(f"{opt} {run_dir}: {e}")


def _check_out_dir(parser, out: Path) -> None:
    """--out must be a folder, or a path where one can be made, before any training starts."""
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out} is an existing file, not a folder: choose a run directory")
    parent = out if out.exists() else next(p for p in out.parents if p.exists())
    if not parent.is_dir():
        parser.error(f"--out {out}: {parent} is a file, so the run directory cannot be made")
    if not os.access(parent, os.W_OK):
        parser.error(f"--out {out}: {parent} is not writable")


def model_from_args(args, data: torch.Tensor):
    """The network the options describe for ``data`` [N, C, H, W] (a UNet) or [N, D] (an MLP)."""
    from ..nets import MLPDenoiser
    from ..nets.build import unet_from_widths
    kind = args.model or ("mlp" if data.dim() == 2 else "unet")
    if kind == "mlp":
        if data.dim() != 2:
            raise SystemExit(f"--model mlp needs vector data; {args.dataset} has shape {tuple(data.shape[1:])}")
        return MLPDenoiser(dim=data.shape[1], hidden=args.mlp_hidden, num_layers=args.mlp_layers)
    if data.dim() != 4:
        raise SystemExit(f"--model unet needs images; {args.dataset} has shape {tuple(data.shape[1:])}")
    patch = getattr(args, "patch_size", 1)
    if data.shape[-2] % patch or data.shape[-1] % patch:
        raise ValueError(f"--patch-size must divide the images' height and width {tuple(data.shape[-2:])} "
                         f"of {args.dataset}, got {patch}")
    return unet_from_widths(args.widths, args.num_res_blocks, patch, data.shape[1],
                            num_classes=10 if getattr(args, "conditional", False) else None,
                            attention=args.attention, dropout=args.dropout, groups=args.groups,
                            scale_shift=bool(getattr(args, "scale_shift", False)))


def _until(args) -> str:
    """How long the run trains, as the start line says it: a time budget alone, steps, or both."""
    if args.steps >= UNLIMITED_STEPS:
        return f"for {args.max_minutes:g} min"
    budget = f" or {args.max_minutes:g} min, whichever comes first" if args.max_minutes is not None else ""
    return f"to step {args.steps}{budget}"


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns 0, or exits with status 2
    and a message naming the option for bad options."""
    from ..diffusion.schedule import NoiseSchedule
    from .labels import load_labels
    from .trainer import Trainer

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.preset:                                   # the preset's values become the defaults; typed options win
        parser.set_defaults(**preset_cli_defaults(args.preset))
        args = parser.parse_args(argv)
    typed = _explicit(parser, argv)
    fixed_steps = "steps" in typed or (args.preset and "steps" in preset_training(args.preset))
    if args.max_minutes is not None and not fixed_steps and not args.resume:
        args.steps = UNLIMITED_STEPS                  # a time budget alone: stop at the budget, not at --steps
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    prog = f"torchrun --nproc_per_node {world} -m ddim_edu.train" if world > 1 else "python -m ddim_edu.train"
    command = " ".join([prog] + [shlex.quote(x) for x in argv])

    if args.resume:
        run_dir = Path(args.resume)
        if args.out and Path(args.out).resolve() != run_dir.resolve():
            parser.error(f"--out {args.out} differs from --resume {args.resume}; a resumed run stays in its folder")
        saved = _saved_args(parser, run_dir, "--resume")
        clash = sorted(k for k in typed - RESUMABLE if k in saved and saved[k] != vars(args)[k])
        if clash:
            parser.error(f"--resume keeps the saved run's settings; these differ: {', '.join(clash)} "
                         f"(only {', '.join(sorted(RESUMABLE - {'resume', 'out'}))} may change)")
        args = argparse.Namespace(**{**vars(args), **{k: v for k, v in saved.items() if k not in typed}})
        args.resume, args.out = str(run_dir), str(run_dir)
    elif not args.out:
        parser.error("--out RUN_DIR is required (or --resume RUN_DIR)")
    elif (Path(args.out) / ck.STATE_FILE).exists() or (Path(args.out) / ck.STATE_JSON).exists():
        parser.error(f"{args.out} already holds a run; use --resume {args.out} to continue it, or another --out")
    else:
        _check_out_dir(parser, Path(args.out))
    if args.init and not args.resume:
        args = _inherit(parser, args, typed)

    device = torch.device(args.device) if args.device else env.device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if world > 1:
        import torch.distributed as dist
        if device.type == "cuda":
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        try:
            cfg = config_from_args(args)
        except (TypeError, ValueError) as e:
            bad = {f.name: " / ".join((cli_flag(f), *f.metadata["aliases"]))      # every spelling of it
                   for f in dataclasses.fields(TrainConfig)}.get(str(e).split()[0])
            parser.error(f"{bad}: {e}" if bad else str(e))
        data, dataset_info = load_data(args)
        torch.manual_seed(args.seed)
        try:
            model = model_from_args(args, data)
            sched = (NoiseSchedule.linear(args.T, args.beta_start, args.beta_end) if args.schedule == "linear"
                     else NoiseSchedule.cosine(args.T))
        except (TypeError, ValueError) as e:
            parser.error(str(e))
        saved_args = {k: v for k, v in vars(args).items() if k not in ("resume", "out")}
        labels = load_labels(args) if getattr(args, "conditional", False) else None
        tr = Trainer(model, sched, data, cfg, out_dir=args.out, device=device, labels=labels,
                     run_info={"model": model.config, "dataset": dataset_info, "args": saved_args})
        if args.resume:
            tr.restore(args.resume)
        elif args.init:
            try:
                tr.warm_start(args.init)
            except (FileNotFoundError, ValueError) as e:
                parser.error(str(e))
        tr.commands = tr.commands + [command]
        if rank == 0:
            n_par = sum(p.numel() for p in model.parameters())
            start = (f"resuming at step {tr.step}" if args.resume else
                     f"warm start from {args.init} ({tr.run_info['init']['steps_total']} steps)" if args.init else "training")
            print(f"{start}: {type(model).__name__} "
                  f"({n_par / 1e6:.2f}M parameters) on {dataset_info['name']} ({dataset_info['n']} examples), "
                  f"{device}, {world} process(es), {_until(args)} -> {args.out}", flush=True)
        tr.fit()
        if args.sample_every and tr.step % args.sample_every:
            tr.save_samples()
        if rank == 0:
            last = tr.history[-1]["loss"] if tr.history else float("nan")
            print(f"done: step {tr.step}, loss {last:.4f}, {tr.wall_time() / 60:.1f} min in total -> {args.out}")
    finally:
        if world > 1:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
