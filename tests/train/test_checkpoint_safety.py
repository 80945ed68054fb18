"""Checkpoints survive kills and refuse bad content: the resume state is one atomic file, every
file of a checkpoint is covered by a checksum, non-finite weights are never saved nor loaded,
old run directories still resume, and the CLI checks every argument before training."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as st_save

from ddim_edu.nets import MLPDenoiser
from ddim_edu.train import checkpoints as ck
from ddim_edu.train import cli as train_cli
from ddim_edu.train import state as files
from train_helpers import ROOT, SUB_ENV, equal_states, toy_data, trainer


def make_legacy(run_dir: Path) -> None:
    """Rewrite ``run_dir``'s resume state as the previous version wrote it: state.safetensors
    (metadata format, sha256, step) beside state.json."""
    tensors, meta = ck.load_tensors(run_dir / ck.STATE_FILE, with_metadata=True)
    record = json.loads(meta["state"])
    old = {"step": meta["step"], "format": ck.FORMAT, "sha256": ck._digest(tensors)}
    (run_dir / ck.STATE_FILE).write_bytes(st_save(tensors, metadata=old))
    ck.write_json(run_dir / ck.STATE_JSON, record)


@pytest.fixture()
def saved_run(tmp_path):
    torch.manual_seed(0)
    trainer(MLPDenoiser(hidden=16), toy_data(), tmp_path / "run", steps=2).fit()
    return tmp_path / "run"


# ----------------------------------------------------------------- kills
CHILD = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, sys.argv[2])
    from ddim_edu.nets import MLPDenoiser
    from train_helpers import toy_data, trainer
    from pathlib import Path
    out = Path(sys.argv[1])
    torch.manual_seed(0)
    tr = trainer(MLPDenoiser(hidden=16), toy_data(), out, steps=10**6, ckpt_every=1, log_every=50)
    if (out / "state.safetensors").exists():
        tr.restore(out)
    print("ready", flush=True)
    tr.fit()
""")


def test_kill_at_any_instant_leaves_a_resumable_run(tmp_path):
    """SIGKILL a run that checkpoints every step at random instants (most of its time is spent
    writing checkpoints): the run always resumes, and its model.safetensors + config.json always load."""
    script, out = tmp_path / "child.py", tmp_path / "run"
    script.write_text(CHILD)
    rng, steps = random.Random(0), []
    for _ in range(4):
        p = subprocess.Popen([sys.executable, str(script), str(out), str(Path(__file__).parent)], cwd=ROOT,
                             env=SUB_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
            deadline = time.time() + 30
            while not (out / "config.json").exists() and time.time() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.05, 0.6))             # let it overwrite checkpoints for a while
            assert p.poll() is None, p.stderr.read()
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
        state = files.load_state(out)                 # raises if the kill left no usable state
        model, _, config = ck.load_model(out)         # raises if it left a mixed or missing pair
        assert config["step"] in (state.step, state.step - 1) and state.step >= 1
        steps.append(state.step)
    assert steps == sorted(steps) and steps[-1] > steps[0]
    tr = trainer(MLPDenoiser(hidden=16), toy_data(), out, steps=steps[-1] + 2).restore(out).fit()
    assert tr.step == steps[-1] + 2


def test_state_is_one_file_the_old_pair_still_resumes(saved_run, tmp_path):
    assert sorted(p.name for p in saved_run.iterdir()) == ["config.json", "model.safetensors", "state.safetensors"]
    new = files.load_state(saved_run)
    make_legacy(saved_run)
    old = files.load_state(saved_run)
    assert old.step == new.step == 2 and old.history == new.history and old.optimizer["param_groups"] == new.optimizer["param_groups"]
    torch.manual_seed(0)
    tr = trainer(MLPDenoiser(hidden=16), toy_data(), saved_run, steps=4).restore(saved_run).fit()
    assert tr.step == 4 and not (saved_run / "state.json").exists() and files.read_record(saved_run)["step"] == 4
    # a run written by the older version keeps loading its model, with the explicit opt-out
    meta = ck.load_tensors(saved_run / ck.MODEL_FILE, with_metadata=True)[1]
    w = ck.load_tensors(saved_run / ck.MODEL_FILE)
    (saved_run / ck.MODEL_FILE).write_bytes(st_save(w, metadata={"step": meta["step"], "format": ck.FORMAT,
                                                                 "sha256": meta["sha256"]}))
    with pytest.raises(ValueError, match="no checksum of .*config.json.*require_checksum=False"):
        ck.load_model(saved_run)
    assert equal_states(ck.load_model(saved_run, require_checksum=False)[0], tr.ema_model)


# ----------------------------------------------------------------- checksums
def test_a_flipped_bit_in_config_json_is_caught(saved_run):
    cfg = saved_run / "config.json"
    text = cfg.read_text()
    assert '"beta_end": 0.02' in text
    cfg.write_text(text.replace('"beta_end": 0.02', '"beta_end": 0.06'))      # '2' -> '6': one bit
    with pytest.raises(ValueError, match="config.json is corrupt or was edited"):
        ck.load_model(saved_run)
    cfg.write_text(text)
    ck.load_model(saved_run)


def test_recorded_results_keep_the_folder_loadable(saved_run):
    """Results added after training (Table 1's FIDs) re-sign config.json: the folder still loads
    with the same weights, earlier results stay, and a hand edit is still caught."""
    before = ck.load_model(saved_run)[0].state_dict()
    ck.record_results(saved_run, "classifier_fid", {"eta=0,S=10": 0.4})
    ck.record_results(saved_run, "other", 1)
    model, _, config = ck.load_model(saved_run)
    assert config["results"]["classifier_fid"] == {"eta=0,S=10": 0.4} and config["results"]["other"] == 1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    cfg = saved_run / "config.json"
    cfg.write_text(cfg.read_text().replace('"other": 1', '"other": 2'))
    with pytest.raises(ValueError, match="was edited"):
        ck.load_model(saved_run)
    with pytest.raises(ValueError, match="key must be"):
        ck.record_results(saved_run, "", 1)


def test_a_flipped_bit_in_the_state_record_is_caught(saved_run):
    path = saved_run / "state.safetensors"
    raw = path.read_bytes()
    i = raw.index(b"ema_n_averaged")
    i += next(j for j, c in enumerate(raw[i:]) if chr(c).isdigit())        # its value's first digit
    raw = raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1:]                        # one flipped bit: 2 -> 3
    path.write_bytes(raw)
    with pytest.raises(ValueError, match="metadata does not match the checksum"):
        files.load_state(saved_run)


@pytest.mark.parametrize("name", ["mnist", "toy", "mnist_classifier"])
def test_shipped_checkpoints_are_fully_covered(name):
    d = ROOT / "checkpoints" / name
    if not (d / "model.safetensors").is_file():
        pytest.skip(f"shipped {name} missing")
    config, _, _ = ck.read_model_dir(d)               # raises without a config checksum
    assert config == json.loads((d / "config.json").read_text())


# ----------------------------------------------------------------- non-finite weights
def test_non_finite_weights_are_never_saved(saved_run):
    before = {p.name: p.read_bytes() for p in saved_run.iterdir()}
    torch.manual_seed(0)
    tr = trainer(MLPDenoiser(hidden=16), toy_data(), saved_run, steps=3).restore(saved_run)
    with torch.no_grad():
        next(tr.model.parameters())[0].fill_(float("nan"))
    with pytest.raises(ValueError, match=r"non-finite.*model\."):
        tr.save()
    assert {p.name: p.read_bytes() for p in saved_run.iterdir()} == before
    with pytest.raises(ValueError, match="non-finite"):
        ck.save_model_dir(saved_run / "m", {"w": torch.tensor([1.0, float("inf")])}, {"step": 1})


def test_non_finite_weights_are_refused_on_load(saved_run):
    w = ck.load_tensors(saved_run / ck.MODEL_FILE)
    k = sorted(w)[0]
    w[k].view(-1)[0] = float("inf")
    (saved_run / "x.safetensors").write_bytes(st_save(w, metadata={"format": ck.FORMAT, "sha256": ck._digest(w)}))
    with pytest.raises(ValueError, match=f"non-finite.*{k}"):
        ck.load_tensors(saved_run / "x.safetensors")


# ----------------------------------------------------------------- command line
BASE = ["--dataset", "moons", "--toy-n", "64", "--mlp-hidden", "8", "--batch-size", "8", "--steps", "2",
        "--no-progress", "--sample-every", "0"]


@pytest.mark.parametrize("flag", ["--lr", "--weight-decay", "--grad-clip"])
def test_cli_refuses_infinite_values(flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        train_cli.main([*BASE, flag, "inf", "--out", str(tmp_path / "r")])
    assert e.value.code == 2 and "finite" in capsys.readouterr().err.split(flag, 1)[-1]
    assert not (tmp_path / "r").exists()


def test_cli_refuses_an_out_that_is_a_file_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train_cli, "load_data", lambda args: pytest.fail("training started"))
    (tmp_path / "f").write_text("x")
    for out in (tmp_path / "f", tmp_path / "f" / "sub"):
        with pytest.raises(SystemExit) as e:
            train_cli.main([*BASE, "--out", str(out)])
        assert e.value.code == 2 and "--out" in capsys.readouterr().err


# ----------------------------------------------------------------- model.safetensors + config.json together
class _Killed(BaseException):
    """Stands for a SIGKILL at one file-system operation (not an Exception: nothing catches it)."""


def test_a_kill_at_every_file_operation_of_a_checkpoint_leaves_old_or_new(tmp_path, monkeypatch):
    """Interrupt save_model_dir at each rename, fsync and removal in turn: the folder then loads
    (load_model, read_model_dir, a resume) as the previous checkpoint or the new one, never a mix."""
    run = tmp_path / "run"
    torch.manual_seed(0)
    trainer(MLPDenoiser(hidden=16), toy_data(), run, steps=2).fit()
    old_w = ck.load_tensors(run / ck.MODEL_FILE)
    prev_step = ck.read_json(run / ck.CONFIG_FILE)["step"]
    real = {"replace": ck.os.replace, "fsync": ck.os.fsync, "rmtree": ck.shutil.rmtree}
    k, seen = 0, set()
    while True:
        calls = [0]

        def maybe_die(name, *a, **kw):
            calls[0] += 1
            if calls[0] == k + 1:
                raise _Killed(name)
            return real[name](*a, **kw)
        for name in real:
            monkeypatch.setattr(ck.os if name != "rmtree" else ck.shutil, name,
                                lambda *a, _n=name, **kw: maybe_die(_n, *a, **kw))
        new_w = {n: v + 1 for n, v in old_w.items()}
        try:
            ck.save_model_dir(run, new_w, {**ck.read_json(run / ck.CONFIG_FILE), "step": 100 + k})
            done = True
        except _Killed:
            done = False
        for name in real:
            monkeypatch.setattr(ck.os if name != "rmtree" else ck.shutil, name, real[name])
        config, weights, _ = ck.read_model_dir(run)           # recovers, then checks the pair
        assert config["step"] in (prev_step, 100 + k)
        got = "new" if torch.equal(weights[sorted(weights)[0]], new_w[sorted(new_w)[0]]) else "old"
        assert got == ("new" if config["step"] == 100 + k else "old"), (k, config["step"])
        assert all(torch.equal(weights[n], (new_w if got == "new" else old_w)[n]) for n in weights)
        ck.load_model(run)
        assert not (run / ck.NEW_DIR).exists() and not (run / ck.READY_DIR).exists()
        seen.add(got)
        old_w, prev_step = weights, config["step"]
        if done:
            break
        k += 1
    assert k >= 5 and seen == {"old", "new"}
    files.load_state(run)


def test_resume_and_init_finish_an_interrupted_checkpoint(saved_run):
    """A kill right after the commit (the new pair still in .checkpoint.ready, model.safetensors
    already moved): --resume and load_state finish the move before reading config.json."""
    w = {k: v * 0.5 for k, v in ck.load_tensors(saved_run / ck.MODEL_FILE).items()}
    cfg = {**ck.read_json(saved_run / ck.CONFIG_FILE), "step": 7}
    ready = saved_run / ck.READY_DIR
    ck.save_tensors(ready / ck.MODEL_FILE, w, {"step": 7, "config_sha256": ck.config_digest({**cfg, "format": ck.FORMAT})})
    ck.write_json(ready / ck.CONFIG_FILE, {**cfg, "format": ck.FORMAT})
    (ready / ck.MODEL_FILE).replace(saved_run / ck.MODEL_FILE)        # half moved: new weights, old config
    with pytest.raises(ValueError, match="config.json is corrupt or was edited"):
        _read_without_recovery(saved_run)                             # the mix a kill left on disk
    files.load_state(saved_run)
    assert not ready.exists() and ck.read_json(saved_run / ck.CONFIG_FILE)["step"] == 7
    ck.load_model(saved_run)


def _read_without_recovery(run):
    config = ck.read_json(run / ck.CONFIG_FILE)
    meta = ck.load_tensors(run / ck.MODEL_FILE, with_metadata=True)[1]
    if meta["config_sha256"] != ck.config_digest(config):
        raise ValueError("config.json is corrupt or was edited")
