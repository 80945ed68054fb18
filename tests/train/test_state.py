"""A run's state and files: save/load round trips, the Trainer's state_dict, resuming
bit-for-bit, warm starts, corrupt or missing files, data-parallel runs, and the
pretrained loader."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ddim_edu.nets import MLPDenoiser
from ddim_edu.train import checkpoints as ck
from ddim_edu.train import state as files
from ddim_edu.train.pretrained import PRETRAINED, available_pretrained, checkpoints_dir, load_pretrained
from ddim_edu.train.trainer import TrainerState
from train_helpers import ROOT, SCHED, SUB_ENV, equal_states, tiny_unet, toy_data, trainer


# ----------------------------------------------------------------- checkpoints
def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    tr = trainer(MLPDenoiser(hidden=32), toy_data(), tmp_path / "run", steps=5).fit()
    model, sched, config = ck.load_model(tmp_path / "run")
    assert equal_states(model, tr.ema_model) and not model.training
    assert equal_states(ck.load_model(tmp_path / "run", weights="raw")[0], tr.model)
    assert sched.to_config() == SCHED.to_config() and config["step"] == 5
    assert config["model"] == tr.model.config and "hardware" in config and config["results"] == {}
    # results written later survive a new checkpoint of the same run
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    cfg["results"] = {"fid": 12.5}
    (tmp_path / "run" / "config.json").write_text(json.dumps(cfg))
    tr.save()
    assert ck.read_json(tmp_path / "run" / "config.json")["results"] == {"fid": 12.5}


def run_split(out: Path, steps_total: int, split: int | None, **kw):
    """Train a tiny UNet with dropout straight to ``steps_total``, or stop at ``split`` and resume."""
    data = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def make(steps):
        torch.manual_seed(1)
        return trainer(tiny_unet(dropout=0.2), data, out, batch_size=4, steps=steps, log_every=1, **kw)
    if split is None:
        return make(steps_total).fit()
    make(split).fit()
    return make(steps_total).restore(out).fit()


def test_resume_is_bit_identical(tmp_path):
    torch.manual_seed(0)
    a = run_split(tmp_path / "a", 6, None)
    b = run_split(tmp_path / "b", 6, 3)
    assert equal_states(a.model, b.model)
    assert equal_states(a.ema_model, b.ema_model) and int(a.ema.n_averaged) == int(b.ema.n_averaged)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    sa, sb = a.opt.state_dict()["state"], b.opt.state_dict()["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)


@pytest.fixture()
def saved_run(tmp_path):
    torch.manual_seed(0)
    trainer(MLPDenoiser(hidden=16), toy_data(), tmp_path / "run", steps=2).fit()
    return tmp_path / "run"


def test_missing_files_are_named(saved_run, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ck.load_model(tmp_path / "nowhere")
    (saved_run / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        ck.load_model(saved_run)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_weights_fail_clearly(saved_run, damage):
    path = saved_run / "model.safetensors"
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":
        raw[-10] ^= 0xFF                       # inside the tensor data: caught by the checksum
    else:
        raw = b"not a safetensors file at all"
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt"):
        ck.load_model(saved_run)


def test_weights_without_checksum_are_refused_unless_asked(saved_run, tmp_path):
    """A safetensors file from elsewhere (no sha256 in its metadata) is not loaded unchecked."""
    from safetensors.torch import save_file
    tensors = ck.load_tensors(saved_run / "model.safetensors")
    save_file(tensors, str(saved_run / "model.safetensors"))          # plain safetensors, no metadata
    with pytest.raises(ValueError, match="no sha256 checksum.*require_checksum=False"):
        ck.load_model(saved_run)
    again = ck.load_tensors(saved_run / "model.safetensors", require_checksum=False)
    assert all(torch.equal(again[k], tensors[k]) for k in tensors)


def test_corrupt_json_and_mismatched_weights(saved_run):
    cfg_path = saved_run / "config.json"
    good = cfg_path.read_text()
    cfg_path.write_text(good[:40])
    with pytest.raises(ValueError, match="corrupt"):
        ck.load_model(saved_run)
    cfg = json.loads(good)
    cfg["model"]["hidden"] = 24
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="config.json is corrupt or was edited"):
        ck.load_model(saved_run)
    from safetensors.torch import save_file          # a hand-made folder: no checksums, checked by shape only
    save_file(ck.load_tensors(saved_run / "model.safetensors"), str(saved_run / "model.safetensors"))
    with pytest.raises(ValueError, match="do not match.*shape mismatches: .*weight"):
        ck.load_model(saved_run, require_checksum=False)
    cfg["model"] = {"type": "mlp", "hidden": 16, "num_layers": 4}
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="missing keys"):
        ck.load_model(saved_run, require_checksum=False)


def test_inconsistent_resume_state(saved_run):
    from test_checkpoint_safety import make_legacy
    make_legacy(saved_run)                           # the older layout: state.safetensors + state.json
    state = json.loads((saved_run / "state.json").read_text())
    state["step"] = 99
    (saved_run / "state.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match="inconsistent"):
        trainer(MLPDenoiser(hidden=16), toy_data(), saved_run, steps=4).restore(saved_run)


def test_warm_start_begins_at_the_saved_ema_and_keeps_full_decay(tmp_path):
    torch.manual_seed(0)
    first = trainer(MLPDenoiser(hidden=16), toy_data(), tmp_path / "a", steps=6, ema_decay=0.9).fit()
    torch.manual_seed(1)
    tr = trainer(MLPDenoiser(hidden=16), toy_data(), tmp_path / "b", steps=3, ema_decay=0.9).warm_start(tmp_path / "a")
    assert tr.step == 0 and equal_states(tr.model, first.ema_model) and equal_states(tr.ema_model, first.ema_model)
    start = {k: v.clone() for k, v in tr.ema_model.state_dict().items()}
    tr.train_step()
    raw = tr.model.state_dict()
    for k, v in tr.ema_model.state_dict().items():     # EMA update at the full decay d = 0.9, no warm-up
        torch.testing.assert_close(v, 0.9 * start[k] + 0.1 * raw[k])
    tr.fit()
    cfg = ck.read_json(tmp_path / "b" / "config.json")
    assert cfg["step"] == 3 and cfg["steps_total"] == 9 and cfg["init"]["step"] == 6
    with pytest.raises(ValueError, match="shape"):
        trainer(MLPDenoiser(hidden=8), toy_data(), steps=1).warm_start(tmp_path / "a")


# ----------------------------------------------------------------- data-parallel (gloo, 2 CPU processes)
DDP_SCRIPT = textwrap.dedent("""
    import sys, torch, torch.distributed as dist
    from ddim_edu.nets import MLPDenoiser
    from ddim_edu.diffusion.schedule import NoiseSchedule
    from ddim_edu.train.trainer import Trainer, TrainConfig
    from ddim_edu.train.checkpoints import save_tensors
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(rank)                       # different init on purpose: DDP broadcasts rank 0's
    data = torch.randn(256, 2) + rank             # and a different data stream per rank
    tr = Trainer(MLPDenoiser(hidden=32), NoiseSchedule.linear(1000), data,
                 TrainConfig(steps=5, batch_size=32, log_every=5, ckpt_every=0, progress=False),
                 out_dir=sys.argv[1], device="cpu")
    tr.fit()
    save_tensors(f"{sys.argv[1]}/rank{rank}.safetensors", {**{"m." + k: v for k, v in tr.model.state_dict().items()},
                 **{"e." + k: v for k, v in tr.ema_model.state_dict().items()}})
    dist.destroy_process_group()
""")


def test_ddp_two_cpu_processes_agree(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(script), str(tmp_path)], cwd=ROOT, env=SUB_ENV, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    w0, w1 = (ck.load_tensors(tmp_path / f"rank{i}.safetensors") for i in range(2))
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    state = ck.load_tensors(tmp_path / "state.safetensors")
    assert not torch.equal(state["rng.0.data"], state["rng.1.data"])      # each rank its own stream
    assert ck.read_json(tmp_path / "config.json")["training"]["world_size"] == 2


# ----------------------------------------------------------------- pretrained
def test_load_pretrained_errors_and_loading(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="'mnist'.*'toy'"):
        load_pretrained("cifar")
    monkeypatch.setenv("DDIM_EDU_CHECKPOINTS", str(tmp_path))
    assert checkpoints_dir() == tmp_path and available_pretrained() == []
    with pytest.raises(FileNotFoundError, match="python -m ddim_edu.train --dataset gmm"):
        load_pretrained("toy")
    torch.manual_seed(0)
    tr = trainer(MLPDenoiser(hidden=16), toy_data(), tmp_path / "toy", steps=2).fit()
    model, sched = load_pretrained("toy")
    assert available_pretrained() == ["toy"] and not model.training and equal_states(model, tr.ema_model)
    for bad in ("bogus", 3.5):
        with pytest.raises(ValueError, match=rf"device must be a torch.device or a device string .* got {bad!r}"):
            load_pretrained("toy", device=bad)
    (tmp_path / "toy" / "config.json").write_text("{")
    with pytest.raises(ValueError, match="corrupt"):
        load_pretrained("toy")


@pytest.mark.parametrize("name", list(PRETRAINED))
def test_shipped_pretrained_weights(name, monkeypatch):
    monkeypatch.delenv("DDIM_EDU_CHECKPOINTS", raising=False)
    if name not in available_pretrained():
        pytest.skip(f"shipped weights {name!r} not trained yet ({checkpoints_dir() / name}); "
                    f"run {PRETRAINED[name][1]}")
    model, sched, config = load_pretrained(name, return_config=True)
    assert not model.training and config["command"] and config["step"] > 0
    x = torch.randn(2, *config["dataset"]["shape"])      # [1, 28, 28] (or 32x32 if trained with --pad), or [2]
    with torch.no_grad():
        assert model(x, torch.tensor([10, 900])).shape == x.shape


# ----------------------------------------------------------------- the Trainer's own state
def test_state_dict_round_trip_continues_bit_identically(tmp_path):
    """state_dict() of a run at step 3, loaded into a fresh trainer, continues exactly like the
    original; written with save_state and read with load_state it is the same state."""
    data = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def make(steps):
        torch.manual_seed(1)
        return trainer(tiny_unet(dropout=0.2), data, batch_size=4, steps=steps, log_every=1)
    a = make(3).fit()
    state = a.state_dict()
    assert isinstance(state, TrainerState) and state.step == 3 and state.world_size == 1
    assert set(state.rng[0]) == {"torch", "data", "noise"} and all(v.dtype == torch.uint8 for v in state.rng[0].values())
    assert state.model.keys() == a.model.state_dict().keys() and state.ema_n_averaged == int(a.ema.n_averaged)
    files.save_state(tmp_path, state, {"note": "test"})
    back = files.load_state(tmp_path)
    for f in dataclasses.fields(TrainerState):
        x, y = getattr(state, f.name), getattr(back, f.name)
        if f.name in ("model", "ema"):
            assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
        elif f.name == "rng":
            assert [r.keys() for r in x] == [r.keys() for r in y]
            assert all(torch.equal(r[k], s[k]) for r, s in zip(x, y) for k in r)
        elif f.name == "optimizer":
            assert x["param_groups"] == y["param_groups"] and x["state"].keys() == y["state"].keys()
        elif f.name == "wall_time_s":
            assert y == round(x, 2)
        else:
            assert x == y, f.name
    b = make(6)                                   # (re-seeds the global RNG that dropout draws from)
    torch.set_rng_state(state.rng[0]["torch"])
    a.cfg = dataclasses.replace(a.cfg, steps=6)
    a.fit()
    b.load_state_dict(back).fit()
    assert equal_states(a.model, b.model) and equal_states(a.ema_model, b.ema_model)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]


def test_state_from_another_world_size_reseeds(capsys):
    torch.manual_seed(0)
    a = trainer(MLPDenoiser(hidden=16), toy_data(), steps=2).fit()
    state = a.state_dict()
    state = dataclasses.replace(state, rng=state.rng * 2)          # as if saved by two processes
    b = trainer(MLPDenoiser(hidden=16), toy_data(), steps=4).load_state_dict(state)
    assert b.step == 2 and "re-seeded" in capsys.readouterr().out
    assert not torch.equal(b.data_gen.get_state(), state.rng[0]["data"])
    b.fit()
    assert b.step == 4


def test_load_state_dict_refuses_another_model():
    torch.manual_seed(0)
    state = trainer(MLPDenoiser(hidden=16), toy_data(), steps=1).fit().state_dict()
    with pytest.raises(ValueError, match="my state.*shape"):
        trainer(MLPDenoiser(hidden=8), toy_data(), steps=2).load_state_dict(state, source="my state")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        trainer(MLPDenoiser(hidden=16), toy_data(), steps=2).restore("nowhere")


def test_run_directory_files_and_their_keys(tmp_path):
    """The on-disk layout other tools read (ddim_edu/1) keeps its keys."""
    torch.manual_seed(0)
    tr = trainer(MLPDenoiser(hidden=16), toy_data(), tmp_path, steps=2)
    tr.commands = ["python -m ddim_edu.train --test"]
    tr.fit()
    tensors = ck.load_tensors(tmp_path / "state.safetensors")
    assert {k.split(".")[0] for k in tensors} == {"model", "ema", "optim", "rng"}
    assert {k for k in tensors if k.startswith("rng.")} == {"rng.0.torch", "rng.0.data", "rng.0.noise"}
    assert not (tmp_path / "state.json").exists()          # the record lives in state.safetensors
    meta = files.read_record(tmp_path)
    assert set(meta) == {"format", "step", "world_size", "optimizer", "ema_n_averaged", "wall_time_s", "history",
                         "commands", "training", "init"}
    assert meta["training"] == {**dataclasses.asdict(tr.cfg), "world_size": 1} and meta["world_size"] == 1
    config = ck.read_json(tmp_path / "config.json")
    assert {"format", "model", "schedule", "dataset", "step", "weights", "training", "command", "commands",
            "wall_time_s", "hardware", "stopped_early", "loss_history", "results"} <= set(config)
    assert config["command"] == "python -m ddim_edu.train --test" and config["model"] == tr.model.config
