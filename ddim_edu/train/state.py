"""Save and restore a :class:`~ddim_edu.train.trainer.Trainer`'s whole state, so that an
interrupted run continues exactly as if it had never stopped (bit-for-bit on CPU).

What is saved (see ``checkpoints`` for the file layout): raw and EMA weights, the AdamW
state, the EMA's n_averaged, the step, the loss history, and each rank's RNG states
(torch CPU, CUDA, the data-index generator and the t/ε generator) as uint8 tensors.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.distributed as dist

from .. import env
from .checkpoints import (FORMAT, STATE_FILE, STATE_JSON, flatten_optimizer, load_model, load_state_checked,
                          load_tensors, prefixed, read_json, save_model_dir, save_tensors, unflatten_optimizer,
                          write_json)


def _rng_tensors(tr) -> dict[str, torch.Tensor]:
    out = {"torch": torch.get_rng_state(), "data": tr.data_gen.get_state(), "noise": tr.noise_gen.get_state()}
    if tr.cuda:
        out["cuda"] = torch.cuda.get_rng_state(tr.device)
    return out


def save_trainer(tr) -> None:
    """Write a :class:`~ddim_edu.train.trainer.Trainer`'s run directory (rank 0 writes; RNG states
    of every rank are gathered). Order: state.safetensors, state.json, model, config."""
    if tr.out_dir is None:
        return
    rng = _rng_tensors(tr)
    every = [rng]
    if tr.world > 1:
        every = [None] * tr.world
        dist.all_gather_object(every, {k: v.cpu() for k, v in rng.items()})
    if tr.rank == 0:
        tensors = {f"model.{k}": v for k, v in tr.model.state_dict().items()}
        tensors.update({f"ema.{k}": v for k, v in tr.ema.module.state_dict().items()})
        opt_tensors, opt_meta = flatten_optimizer(tr.opt.state_dict())
        tensors.update(opt_tensors)
        for r, states in enumerate(every):
            tensors.update({f"rng.{r}.{k}": v for k, v in states.items()})
        training = _training(tr)
        save_tensors(tr.out_dir / STATE_FILE, tensors, {"step": tr.step})
        write_json(tr.out_dir / STATE_JSON, {
            "format": FORMAT, "step": tr.step, "world_size": tr.world, "optimizer": opt_meta,
            "ema_n_averaged": int(tr.ema.n_averaged), "wall_time_s": round(tr.wall_time(), 2),
            "history": tr.history, "commands": tr.commands, "training": training,
            "init": tr.run_info.get("init")})
        save_model_dir(tr.out_dir, tr.ema.module.state_dict(), _model_config(tr))
    if tr.world > 1:
        dist.barrier()


def _training(tr) -> dict:
    return {**dataclasses.asdict(tr.cfg), "world_size": tr.world}


def _model_config(tr) -> dict:
    """config.json of the EMA weights: model, schedule, data, step, how they were trained."""
    info = dict(tr.run_info)
    totals = _totals(tr, info.get("init"))
    return {
        "model": info.pop("model", None) or getattr(tr.model, "config", None),
        "schedule": tr.sched.to_config(),
        "dataset": info.pop("dataset", None),
        "step": tr.step,
        "weights": f"EMA of the weights, decay {tr.cfg.ema_decay}"
                   + (" with warm-up min(d, (1+n)/(10+n))" if tr.cfg.ema_warmup else ""),
        "training": _training(tr),
        "command": tr.commands[0] if tr.commands else None,
        "commands": tr.commands,
        "wall_time_s": round(tr.wall_time(), 2),
        "hardware": env.describe(),
        "stopped_early": tr.stopped,
        **totals,
        **info,
        "loss_history": tr.history,
    }


def save_snapshot(tr) -> Path | None:
    """The EMA weights as they stand now, in ``out_dir/snapshots/step_NNNNNNN`` (a folder that
    ``load_model`` reads like any checkpoint): the points of a training curve (rank 0 writes)."""
    if tr.out_dir is None or tr.rank != 0:
        return None
    folder = tr.out_dir / "snapshots" / f"step_{tr.step:07d}"
    save_model_dir(folder, tr.ema.module.state_dict(), _model_config(tr))
    return folder


def _totals(tr, init: dict | None) -> dict:
    """For a warm-started run: steps and wall time counting the run it started from."""
    if not init:
        return {}
    return {"steps_total": tr.step + int(init.get("steps_total") or 0),
            "wall_time_total_s": round(tr.wall_time() + float(init.get("wall_time_total_s") or 0.0), 2)}


def warm_start_trainer(tr, run_dir) -> None:
    """Begin a *new* run from a saved model's EMA weights (``python -m ddim_edu.train --init``).

    Unlike :func:`restore_trainer` this is not a resume: only the EMA weights are shipped, so the
    raw weights and the EMA both start from them, the EMA at its full decay, while the AdamW
    state, the step count and the LR warm-up start afresh. config.json records where the run
    began under "init" and the totals under "steps_total" / "wall_time_total_s".
    """
    model, sched, config = load_model(run_dir)
    if sched.to_config() != tr.sched.to_config():
        raise ValueError(f"--init {run_dir}: its noise schedule {sched.to_config()} differs from this run's "
                         f"{tr.sched.to_config()}")
    state = model.state_dict()
    load_state_checked(tr.model, state, f"--init {run_dir}")
    load_state_checked(tr.ema.module, state, f"--init {run_dir}")
    step = int(config.get("step") or 0)
    tr.ema.n_averaged.fill_(max(step, 1))       # past the EMA's warm-up: keep averaging at full decay
    tr.run_info["init"] = {
        "from": str(run_dir), "step": step, "commands": config.get("commands", []),
        "steps_total": int(config.get("steps_total") or step),
        "wall_time_total_s": float(config.get("wall_time_total_s") or config.get("wall_time_s") or 0.0),
        "hardware": config.get("hardware"), "init": config.get("init")}


def restore_trainer(tr, run_dir) -> None:
    """Load model, EMA, optimizer, step, history and RNG states into a fresh Trainer."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} not found: expected a folder with "
                                f"{STATE_FILE} and {STATE_JSON} written by a training run")
    meta_json = read_json(run_dir / STATE_JSON, "the resume state state.json")
    tensors, meta = load_tensors(run_dir / STATE_FILE, with_metadata=True)
    if str(meta.get("step")) != str(meta_json.get("step")):
        raise ValueError(f"{run_dir} is inconsistent: {STATE_FILE} is from step {meta.get('step')} but "
                         f"{STATE_JSON} says step {meta_json.get('step')}")
    try:
        load_state_checked(tr.model, prefixed(tensors, "model."), str(run_dir / STATE_FILE))
        load_state_checked(tr.ema.module, prefixed(tensors, "ema."), str(run_dir / STATE_FILE))
        opt = unflatten_optimizer(tensors, meta_json["optimizer"])
        for g in opt["param_groups"]:
            if isinstance(g.get("betas"), list):
                g["betas"] = tuple(g["betas"])
        tr.opt.load_state_dict(opt)
        tr.ema.n_averaged.fill_(int(meta_json["ema_n_averaged"]))
        tr.step = int(meta_json["step"])
    except (KeyError, TypeError) as e:
        raise ValueError(f"{run_dir / STATE_JSON} is corrupt or from another version: missing {e}") from None
    tr.history = list(meta_json.get("history", []))
    tr.wall_before = float(meta_json.get("wall_time_s", 0.0))
    tr.commands = list(meta_json.get("commands", []))
    if meta_json.get("init"):
        tr.run_info["init"] = meta_json["init"]
    r = tr.rank
    if int(meta_json.get("world_size", 1)) == tr.world and f"rng.{r}.data" in tensors:
        torch.set_rng_state(tensors[f"rng.{r}.torch"])
        tr.data_gen.set_state(tensors[f"rng.{r}.data"])
        tr.noise_gen.set_state(tensors[f"rng.{r}.noise"])
        if tr.cuda and f"rng.{r}.cuda" in tensors:
            torch.cuda.set_rng_state(tensors[f"rng.{r}.cuda"], tr.device)
    else:  # a different number of processes: continue with fresh, step-dependent streams
        base = (tr.cfg.seed * 1000 + 2 * r) * 1_000_003 + tr.step
        tr.data_gen.manual_seed(base)
        tr.noise_gen.manual_seed(base + 1)
        if r == 0:
            print(f"note: resumed with {tr.world} process(es) instead of {meta_json.get('world_size')}; "
                  "the data and noise streams are re-seeded, so the run is not bit-identical to an uninterrupted one")
