"""Checkpoints without pickle: safetensors for tensors, JSON for everything else.

A run directory (what ``python -m ddim_edu.train --out DIR`` writes)::

    DIR/model.safetensors   EMA weights: what users load (load_model, load_pretrained)
    DIR/config.json         model and schedule config, dataset, steps done, the exact
                            command, wall time, hardware, free-form "results" (FIDs, ...)
    DIR/state.safetensors   for resuming: raw weights ("model."), EMA weights ("ema."),
                            AdamW tensors ("optim.<param>.<name>"), RNG states ("rng.") as uint8,
                            and in its metadata ("state") the JSON record: step, optimizer
                            param_groups, EMA n_averaged, ... — one file, so a kill at any
                            instant leaves the previous or the new state (older runs: state.json)

Every file is written to a temporary name and moved into place with ``os.replace``, so a
crash never leaves half a file; model.safetensors and config.json are committed together
(through a sibling folder renamed in one step: :func:`save_model_dir`, :func:`recover`). Each
safetensors file carries the SHA-256 of its tensors ("sha256") and of its other metadata
("meta_sha256"); model.safetensors also that of config.json's content ("config_sha256").
Loading checks them all and refuses non-finite weights; a file without a checksum is
refused unless ``require_checksum=False`` (hand-made files).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as _st_load, save as _st_save

from .state_dicts import few_names, load_state_checked, prefixed

FORMAT = "ddim_edu/1"
MODEL_FILE, CONFIG_FILE = "model.safetensors", "config.json"
STATE_FILE, STATE_JSON = "state.safetensors", "state.json"
NEW_DIR, READY_DIR = ".checkpoint.new", ".checkpoint.ready"    # see save_model_dir


# ----------------------------------------------------------------- atomic low-level I/O
def _atomic_write(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k]
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _meta_digest(meta: dict[str, str]) -> str:
    """SHA-256 of the metadata other than the two checksums themselves."""
    rest = {k: v for k, v in meta.items() if k not in ("sha256", "meta_sha256")}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def config_digest(config: dict) -> str:
    """SHA-256 of a config's canonical JSON (key order and indentation do not matter)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, allow_nan=False, default=_json_default,
                                     separators=(",", ":")).encode()).hexdigest()


def non_finite_keys(tensors: dict[str, torch.Tensor]) -> list[str]:
    """The keys of the floating-point tensors holding NaN or infinity."""
    return sorted(k for k, v in tensors.items()
                  if (v.is_floating_point() or v.is_complex()) and v.numel() and not bool(torch.isfinite(v).all()))


def check_finite(tensors: dict[str, torch.Tensor], what: str) -> None:
    bad = non_finite_keys(tensors)
    if bad:
        raise ValueError(f"{what} holds non-finite values (NaN or inf) in: {few_names(bad)}")


def save_tensors(path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` (moved to CPU, made contiguous) to a safetensors file, atomically.
    Raises ``ValueError`` (and writes nothing) if a floating-point tensor is not finite."""
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise TypeError("tensors must be a dict of str -> torch.Tensor")
    cpu = {str(k): v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    check_finite(cpu, f"refusing to save {path}: it")
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta["format"] = FORMAT
    meta["sha256"] = _digest(cpu)
    meta["meta_sha256"] = _meta_digest(meta)
    _atomic_write(Path(path), _st_save(cpu, metadata=meta))


def _require(path: Path, what: str) -> Path:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} not found: expected {what}")
    return Path(path)


def load_tensors(path, device="cpu", with_metadata: bool = False, require_checksum: bool = True):
    """Read a safetensors file written by :func:`save_tensors`, checking the sha256 of its tensors
    stored in its metadata (and of the metadata, where the file has one). A truncated, corrupt or
    altered file raises ``ValueError``, and so do non-finite floating-point values and a file
    without a checksum (not written by ddim_edu) unless ``require_checksum=False``."""
    path = _require(Path(path), "a safetensors weights file")
    raw = path.read_bytes()
    try:
        tensors = _st_load(raw)
        n = int.from_bytes(raw[:8], "little")
        meta = json.loads(raw[8:8 + n]).get("__metadata__") or {}
    except (SafetensorError, ValueError, UnicodeDecodeError, RuntimeError) as e:
        raise ValueError(f"{path} is corrupt or truncated (not a readable safetensors file): {e}") from None
    if "sha256" not in meta and require_checksum:
        raise ValueError(f"{path} has no sha256 checksum in its metadata (not written by ddim_edu, or altered), "
                         "so its integrity cannot be checked; load it with require_checksum=False if you trust it")
    if "sha256" in meta and meta["sha256"] != _digest(tensors):
        raise ValueError(f"{path} is corrupt: its tensors do not match the checksum stored in the file")
    if "meta_sha256" in meta and meta["meta_sha256"] != _meta_digest(meta):
        raise ValueError(f"{path} is corrupt: its metadata does not match the checksum stored in the file")
    check_finite(tensors, f"{path} is corrupt:")
    tensors = {k: v.to(device) for k, v in tensors.items()}
    return (tensors, meta) if with_metadata else tensors


def write_json(path, obj: dict) -> None:
    """Write ``obj`` as indented JSON, atomically (refuses NaN and non-JSON types)."""
    _atomic_write(Path(path), (_dumps(obj) + "\n").encode())


def _dumps(obj, indent: str = "") -> str:
    """Indented JSON, but lists of numbers and small records stay on one line each."""
    flat = json.dumps(obj, allow_nan=False, default=_json_default)
    if not isinstance(obj, (dict, list)) or len(flat) + len(indent) <= 100:
        return flat
    inner = indent + "  "
    if isinstance(obj, dict):
        items = [f"{inner}{json.dumps(str(k))}: {_dumps(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    return "[\n" + ",\n".join(inner + _dumps(v, inner) for v in obj) + "\n" + indent + "]"


def _json_default(o):
    if isinstance(o, torch.Tensor) and o.numel() == 1:
        return o.item()
    if isinstance(o, (Path, torch.device, torch.dtype)):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def read_json(path, what: str = "a JSON config") -> dict:
    path = _require(Path(path), what)
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is corrupt (not valid JSON): {e}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} is corrupt: expected a JSON object, got {type(obj).__name__}")
    return obj


# ----------------------------------------------------------------- run directories
def recover(run_dir) -> None:
    """Finish a checkpoint that a kill interrupted: a committed ``.checkpoint.ready`` folder is
    moved into place (its files replace the old pair), an uncommitted ``.checkpoint.new`` is
    dropped (the previous pair is intact). Idempotent; nothing to do in a clean folder."""
    run_dir = Path(run_dir)
    ready, new = run_dir / READY_DIR, run_dir / NEW_DIR
    if ready.is_dir():
        for name in (MODEL_FILE, CONFIG_FILE):
            if (ready / name).is_file():
                os.replace(ready / name, run_dir / name)
        shutil.rmtree(ready)
    if new.exists():
        shutil.rmtree(new)


def save_model_dir(run_dir, weights: dict[str, torch.Tensor], config: dict) -> None:
    """Write ``model.safetensors`` and ``config.json``; "results" already in config.json
    (e.g. FIDs added later) are kept unless ``config`` brings its own. Both files are written
    into ``.checkpoint.new``, which is renamed ``.checkpoint.ready`` (the commit) and then moved
    into place, so a kill at any instant leaves the previous pair or the new one (:func:`recover`)."""
    run_dir = Path(run_dir)
    recover(run_dir)
    config = {"format": FORMAT, **config}
    try:
        prev = json.loads((run_dir / CONFIG_FILE).read_text())
        config["results"] = {**(prev.get("results") or {}), **(config.get("results") or {})}
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        pass
    config.setdefault("results", {})
    json.dumps(config, allow_nan=False, default=_json_default)        # fail before writing anything
    new = run_dir / NEW_DIR
    try:
        save_tensors(new / MODEL_FILE, weights, {"step": config.get("step", ""), "config_sha256": config_digest(config)})
        write_json(new / CONFIG_FILE, config)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    os.replace(new, run_dir / READY_DIR)                               # the commit point
    recover(run_dir)


def record_results(run_dir, key: str, value) -> None:
    """Store ``value`` (JSON-able) under ``config["results"][key]`` of a folder written by
    :func:`save_model_dir`, and re-sign: config.json is rewritten with its weights, so the checksum
    in model.safetensors matches it again (editing config.json by hand breaks loading). Raises
    ``ValueError`` if the folder does not load (see :func:`read_model_dir`)."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"key must be a non-empty string, got {key!r}")
    config, weights, _ = read_model_dir(run_dir)
    config.setdefault("results", {})[key] = value
    save_model_dir(run_dir, weights, config)


def read_model_dir(run_dir, require_checksum: bool = True, what: str = "the run's"):
    """``(config, weights, weights_path)`` of a folder written by :func:`save_model_dir`, with
    config.json checked against the checksum that model.safetensors carries. ``ValueError`` if
    they disagree, or if there is no checksum (a hand-made folder) unless ``require_checksum=False``."""
    run_dir = Path(run_dir)
    try:
        recover(run_dir)
    except OSError:                  # a read-only folder: read a committed checkpoint where it lies
        if (run_dir / READY_DIR / CONFIG_FILE).is_file() and (run_dir / READY_DIR / MODEL_FILE).is_file():
            run_dir = run_dir / READY_DIR
    config = read_json(run_dir / CONFIG_FILE, f"{what} config.json")
    path = _require(run_dir / MODEL_FILE, "the EMA weights model.safetensors")
    weights, meta = load_tensors(path, with_metadata=True, require_checksum=require_checksum)
    want = meta.get("config_sha256")
    if want is None and require_checksum:
        raise ValueError(f"{path} has no checksum of {run_dir / CONFIG_FILE} (hand-made, or written before ddim_edu "
                         "checked config.json): its integrity cannot be checked; load it with require_checksum=False if you trust it")
    if want is not None and want != config_digest(config):
        raise ValueError(f"{run_dir / CONFIG_FILE} is corrupt or was edited: it does not match the checksum stored in {path}")
    return config, weights, path


def load_model(run_dir, device=None, weights: str = "ema", require_checksum: bool = True):
    """Rebuild (model, schedule, config) from a run directory; model in eval mode.

    ``weights="ema"`` reads model.safetensors (the EMA weights everyone should use);
    ``"raw"`` reads the last optimiser iterate from state.safetensors. config.json must match
    the checksum in model.safetensors (``require_checksum=False`` accepts a folder without one).
    The model carries its training schedule as ``model.schedule_config``, so a sampler handed a
    different schedule refuses it instead of feeding the network times it never saw."""
    from ..nets import build_model
    from ..diffusion.schedule import NoiseSchedule
    from ..validation import check_choice, check_device
    check_choice("weights", weights, ("ema", "raw"))
    if device is not None:
        device = check_device("device", device)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"checkpoint directory {run_dir} not found: expected a folder with "
                                f"{MODEL_FILE} and {CONFIG_FILE} (written by python -m ddim_edu.train)")
    config, ema_state, ema_path = read_model_dir(run_dir, require_checksum, "the run's")
    for key in ("model", "schedule"):
        if not isinstance(config.get(key), dict):
            raise ValueError(f"{run_dir / CONFIG_FILE} is corrupt: it has no '{key}' section")
    try:
        model = build_model(config["model"])
        sched = NoiseSchedule.from_config(config["schedule"])
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{run_dir / CONFIG_FILE} has an invalid model or schedule config: {e}") from None
    if weights == "ema":
        path, state = ema_path, ema_state
    else:
        path = _require(run_dir / STATE_FILE, "the resume state state.safetensors")
        state = prefixed(load_tensors(path, require_checksum=require_checksum), "model.")
    load_state_checked(model, state, str(path))
    model.schedule_config = sched.to_config()    # the samplers refuse another schedule (diffusion.contract)
    return model.to(torch.device(device) if device is not None else "cpu").eval(), sched, config

