"""The files of a run directory: a :class:`TrainerState` — everything a run needs to continue
bit-for-bit — written as one file, state.safetensors, beside the EMA weights for users
(model.safetensors + config.json); the Trainer makes and applies the state, this module
only writes and reads it.

Layout of the resume state (``ddim_edu/1``; see also :mod:`ddim_edu.train.checkpoints`)::

    state.safetensors   "model.<key>" raw weights, "ema.<key>" EMA weights,
                        "optim.<i>.<name>" AdamW tensors, "rng.<rank>.<torch|cuda|data|noise>"
                        RNG states (uint8); metadata "step" and "state": the JSON record —
                        format, step, world_size, optimizer (param_groups and scalars),
                        ema_n_averaged, wall_time_s, history, commands, training, init
                        (covered by the file's metadata checksum)

One file, replaced atomically: a kill at any instant leaves the previous or the new state,
never a mix. Runs written before this layout kept the JSON record in a separate state.json;
:func:`load_state` still reads them, and the next save folds it into state.safetensors.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from .. import env
from .checkpoints import (FORMAT, STATE_FILE, STATE_JSON, _dumps, load_model, load_tensors, read_json, recover,
                          save_model_dir, save_tensors)
from .state_dicts import prefixed


def flatten_optimizer(opt_state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors ("optim.<i>.<name>") and JSON metadata."""
    tensors, scalars = {}, {}
    for idx, st in opt_state["state"].items():
        for name, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{idx}.{name}"] = v
            else:
                scalars.setdefault(str(idx), {})[name] = v
    return tensors, {"param_groups": opt_state["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            idx, name = key[len("optim."):].split(".", 1)
            state.setdefault(int(idx), {})[name] = v
    for idx, d in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(d)
    return {"state": state, "param_groups": meta["param_groups"]}


@dataclasses.dataclass
class TrainerState:
    """The whole state of a :class:`~ddim_edu.train.trainer.Trainer` between two steps.

    ``model``/``ema``: state dicts of the raw and the EMA network (float tensors, the model's
    shapes); ``optimizer``: ``torch.optim.AdamW.state_dict()``; ``ema_n_averaged``: the EMA's
    update count (sets its warm-up); ``rng``: one dict per rank of RNG states as uint8
    tensors — "torch" (CPU), "data" and "noise" (the trainer's generators) and, on CUDA,
    "cuda"; ``init``: where a warm-started run began (None for a fresh run).
    """
    step: int
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    optimizer: dict
    ema_n_averaged: int
    rng: list[dict[str, torch.Tensor]]
    history: list[dict] = dataclasses.field(default_factory=list)
    wall_time_s: float = 0.0
    commands: list[str] = dataclasses.field(default_factory=list)
    init: dict | None = None

    @property
    def world_size(self) -> int:
        """The number of processes that trained the run (one RNG record each)."""
        return len(self.rng)


def model_config(state: TrainerState, *, training: dict, schedule: dict, run_info: dict,
                 stopped: str | None = None) -> dict:
    """config.json of the EMA weights in ``state``: model, schedule, data, step, how they were
    trained (``training``: the TrainConfig fields plus world_size; the commands, hardware, wall
    time, ``stopped``: why the run stopped early, the loss history), the rest of ``run_info``
    (e.g. the CLI's "args") and the totals "steps_total" and "wall_time_total_s": this run's
    steps and seconds plus, for a warm-started run, those of the runs it started from."""
    info, init = dict(run_info), state.init or {}
    totals = {"steps_total": state.step + int(init.get("steps_total") or 0),
              "wall_time_total_s": round(state.wall_time_s + float(init.get("wall_time_total_s") or 0.0), 2)}
    return {
        "model": info.pop("model", None), "schedule": schedule, "dataset": info.pop("dataset", None),
        "step": state.step,
        "weights": f"EMA of the weights, decay {training['ema_decay']}"
                   + (" with warm-up min(d, (1+n)/(10+n))" if training["ema_warmup"] else ""),
        "training": training,
        "command": state.commands[0] if state.commands else None,
        "commands": state.commands,
        "wall_time_s": round(state.wall_time_s, 2),
        "hardware": env.describe(),
        "stopped_early": stopped,
        **totals,
        **info,
        "loss_history": state.history,
    }


def save_state(run_dir, state: TrainerState, training: dict) -> None:
    """Write state.safetensors — tensors and, in its metadata, the JSON record — into ``run_dir``
    atomically (and drop a state.json left by an older version). ``training`` is the run's
    hyper-parameters, recorded for reference. ``ValueError`` (nothing written) for non-finite
    weights or optimizer state."""
    run_dir = Path(run_dir)
    tensors = {f"model.{k}": v for k, v in state.model.items()}
    tensors.update({f"ema.{k}": v for k, v in state.ema.items()})
    opt_tensors, opt_meta = flatten_optimizer(state.optimizer)
    tensors.update(opt_tensors)
    for r, states in enumerate(state.rng):
        tensors.update({f"rng.{r}.{k}": v for k, v in states.items()})
    record = _dumps({
        "format": FORMAT, "step": state.step, "world_size": state.world_size, "optimizer": opt_meta,
        "ema_n_averaged": int(state.ema_n_averaged), "wall_time_s": round(state.wall_time_s, 2),
        "history": state.history, "commands": state.commands, "training": training, "init": state.init})
    save_tensors(run_dir / STATE_FILE, tensors, {"step": state.step, "state": record})
    (run_dir / STATE_JSON).unlink(missing_ok=True)        # an older version's record, now stale


def read_record(run_dir) -> dict:
    """The JSON record of the resume state in ``run_dir`` (see :func:`load_state`), without the tensors."""
    return _read(Path(run_dir))[1]


def _read(run_dir: Path, require_checksum: bool = True):
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} not found: expected a folder with "
                                f"{STATE_FILE} written by a training run")
    try:
        recover(run_dir)                     # finish a model.safetensors + config.json pair a kill interrupted
    except OSError:
        pass
    tensors, meta = load_tensors(run_dir / STATE_FILE, with_metadata=True, require_checksum=require_checksum)
    if "state" in meta:
        try:
            record = json.loads(meta["state"])
        except json.JSONDecodeError as e:
            raise ValueError(f"{run_dir / STATE_FILE} is corrupt: its state record is not valid JSON: {e}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{run_dir / STATE_FILE} is corrupt: its state record is not a JSON object")
        where = run_dir / STATE_FILE
    else:                                    # written by an older version: the record is in state.json
        if "meta_sha256" in meta and require_checksum:
            raise ValueError(f"{run_dir / STATE_FILE} is corrupt: it has no state record")
        record = read_json(run_dir / STATE_JSON, "the resume state state.json (of a run from an older version)")
        where = run_dir / STATE_JSON
    if str(meta.get("step")) != str(record.get("step")):
        raise ValueError(f"{run_dir} is inconsistent: {STATE_FILE} is from step {meta.get('step')} but "
                         f"{where.name} says step {record.get('step')}")
    return tensors, record, where


def save_run(run_dir, state: TrainerState, config: dict) -> None:
    """A checkpoint: the resume state first (:func:`save_state`), then the EMA weights with
    ``config`` (see :func:`model_config`) as model.safetensors + config.json, so a crash never
    leaves weights newer than the state they came from."""
    save_state(run_dir, state, config["training"])
    save_model_dir(run_dir, state.ema, config)


def save_snapshot(run_dir, state: TrainerState, config: dict) -> Path:
    """The EMA weights of ``state`` in ``run_dir/snapshots/step_NNNNNNN`` (a folder that
    ``load_model`` reads like any checkpoint): one point of a training curve."""
    folder = Path(run_dir) / "snapshots" / f"step_{state.step:07d}"
    save_model_dir(folder, state.ema, config)
    return folder


def load_state(run_dir, require_checksum: bool = True) -> TrainerState:
    """Read the state that :func:`save_state` wrote (or an older version's state.safetensors +
    state.json). ``FileNotFoundError`` if the folder or a file is missing; ``ValueError`` if a
    file is corrupt, holds non-finite values, has no checksum (unless ``require_checksum=False``)
    or the tensors and the record disagree on the step."""
    run_dir = Path(run_dir)
    tensors, meta_json, where = _read(run_dir, require_checksum)
    try:
        optimizer = unflatten_optimizer(tensors, meta_json["optimizer"])
        for g in optimizer["param_groups"]:
            if isinstance(g.get("betas"), list):          # JSON has no tuples; AdamW wants one
                g["betas"] = tuple(g["betas"])
        world = int(meta_json.get("world_size", 1))
        rng = [prefixed(tensors, f"rng.{r}.") for r in range(world)]
        return TrainerState(
            step=int(meta_json["step"]), model=prefixed(tensors, "model."), ema=prefixed(tensors, "ema."),
            optimizer=optimizer, ema_n_averaged=int(meta_json["ema_n_averaged"]),
            rng=rng if all(rng) else [{} for _ in range(world)],
            history=list(meta_json.get("history", [])), wall_time_s=float(meta_json.get("wall_time_s", 0.0)),
            commands=list(meta_json.get("commands", [])), init=meta_json.get("init") or None)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{where} is corrupt or from another version: missing {e}") from None


def load_init(run_dir, schedule: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """What a warm start (``--init``) takes from the model saved in ``run_dir``: ``(weights, init)``
    — its EMA state dict and the record of where the new run begins ("from", "step",
    "commands", "steps_total", "wall_time_total_s", "hardware", "init"). Raises like
    :func:`~ddim_edu.train.checkpoints.load_model`, and ``ValueError`` if the saved noise
    schedule is not ``schedule`` (this run's ``NoiseSchedule.to_config()``)."""
    model, sched, config = load_model(run_dir)
    if sched.to_config() != schedule:
        raise ValueError(f"--init {run_dir}: its noise schedule {sched.to_config()} differs from this run's {schedule}")
    step = int(config.get("step") or 0)
    init = {"from": str(run_dir), "step": step, "commands": config.get("commands", []),
            "steps_total": int(config.get("steps_total") or step),
            "wall_time_total_s": float(config.get("wall_time_total_s") or config.get("wall_time_s") or 0.0),
            "hardware": config.get("hardware"), "init": config.get("init")}
    return model.state_dict(), init
