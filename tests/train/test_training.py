"""Training: the loss, EMA, checkpoints (round trip, resume bit-for-bit, corruption), the
CLI, data-parallel training and the pretrained loader."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ddim_edu.train import checkpoints as ck
from ddim_edu.nets.models import MLPDenoiser, UNet
from ddim_edu.train.pretrained import PRETRAINED, available_pretrained, checkpoints_dir, load_pretrained
from ddim_edu.diffusion.schedule import NoiseSchedule
from ddim_edu.train.trainer import Trainer, TrainConfig, diffusion_loss, make_ema, train

ROOT = Path(__file__).resolve().parents[2]
SCHED = NoiseSchedule.linear(1000)
SUB_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "DDIM_EDU_OFFLINE": "1"}


def toy_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g) * 0.2 + torch.randint(0, 2, (n, 1), generator=g) * 2.0 - 1.0


def tiny_unet(dropout=0.0):
    return UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, dropout=dropout)


def trainer(model, data, out=None, **kw):
    kw = {"batch_size": 16, "log_every": 2, "ckpt_every": 0, "progress": False, **kw}
    return Trainer(model, SCHED, data, TrainConfig(**kw), out_dir=out, device="cpu")


def equal_states(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------- loss
def test_loss_matches_hand_computation():
    torch.manual_seed(0)
    model, x0 = MLPDenoiser(), toy_data(8)
    t, noise = torch.randint(0, 1000, (8,)), torch.randn(8, 2)
    x_t = SCHED.alpha_bar[t].sqrt()[:, None].float() * x0 + (1 - SCHED.alpha_bar[t]).sqrt()[:, None].float() * noise
    expected = ((model(x_t, t) - noise) ** 2).mean()
    torch.testing.assert_close(diffusion_loss(model, x0, SCHED, t=t, noise=noise), expected)
    per, tt = diffusion_loss(model, x0, SCHED, torch.Generator().manual_seed(1), per_example=True)
    assert per.shape == (8,) and tt.shape == (8,) and tt.dtype == torch.long and int(tt.max()) < 1000
    a = diffusion_loss(model, x0, SCHED, torch.Generator().manual_seed(3))
    b = diffusion_loss(model, x0, SCHED, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_loss_bad_input():
    model = MLPDenoiser()
    with pytest.raises(TypeError, match="x0"):
        diffusion_loss(model, [1.0, 2.0], SCHED)
    with pytest.raises(TypeError, match="generator"):
        diffusion_loss(model, toy_data(4), SCHED, generator=0)
    with pytest.raises(ValueError, match="t must be in"):
        diffusion_loss(model, toy_data(4), SCHED, t=torch.full((4,), 1000))


def test_few_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    data = toy_data(64)
    tr = trainer(MLPDenoiser(), data, batch_size=64, steps=150, lr=3e-3, lr_warmup=0)
    t = torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(5))
    noise = torch.randn(64, 2, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        before = float(diffusion_loss(tr.model, data, SCHED, t=t, noise=noise))
    tr.fit()
    with torch.no_grad():
        after = float(diffusion_loss(tr.model, data, SCHED, t=t, noise=noise))
    assert after < 0.8 * before
    assert [h["step"] for h in tr.history][-1] == 150


# ----------------------------------------------------------------- EMA
def test_ema_closed_form():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    theta0 = [p.detach().clone() for p in model.parameters()]
    ema = make_ema(model, decay=0.9, warmup=False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update_parameters(model)
    for e, p0, p1 in zip(ema.module.parameters(), theta0, model.parameters()):
        torch.testing.assert_close(e, 0.9 * p0 + 0.1 * p1)
    # with warm-up, decay after n averages is min(d, (1 + n)/(10 + n)); here n = 1 -> 2/11
    model2 = torch.nn.Linear(3, 2)
    start = [p.detach().clone() for p in model2.parameters()]
    ema2 = make_ema(model2, decay=0.999, warmup=True)
    with torch.no_grad():
        for p in model2.parameters():
            p.mul_(-2.0)
    ema2.update_parameters(model2)
    d = 2 / 11
    for e, p0, p1 in zip(ema2.module.parameters(), start, model2.parameters()):
        torch.testing.assert_close(e, d * p0 + (1 - d) * p1)


def test_trainer_ema_after_one_step():
    torch.manual_seed(0)
    tr = trainer(MLPDenoiser(), toy_data(), steps=1, ema_decay=0.99, ema_warmup=False)
    theta0 = {k: v.clone() for k, v in tr.model.state_dict().items()}
    tr.fit()
    theta1 = tr.model.state_dict()
    for k, e in tr.ema_model.state_dict().items():
        torch.testing.assert_close(e, 0.99 * theta0[k] + 0.01 * theta1[k])
    assert not equal_states(tr.ema_model, tr.model) and not tr.ema_model.training


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


def test_time_budget_stops_with_checkpoint(tmp_path):
    torch.manual_seed(0)
    tr = trainer(MLPDenoiser(hidden=16), toy_data(), tmp_path / "r", steps=10_000, max_minutes=1e-5).fit()
    assert tr.step < 10_000 and "time budget" in tr.stopped
    cfg = ck.read_json(tmp_path / "r" / "config.json")
    assert cfg["step"] == tr.step and cfg["stopped_early"]



def test_snapshots_are_the_ema_weights_of_each_step(tmp_path):
    """A snapshot at step k holds what a run stopped at step k saves (same seed, CPU)."""
    torch.manual_seed(0)
    tr = trainer(MLPDenoiser(hidden=16), toy_data(), tmp_path / "long", steps=6, snapshot_every=2).fit()
    snaps = sorted(p.name for p in (tmp_path / "long" / "snapshots").iterdir())
    assert snaps == ["step_0000002", "step_0000004", "step_0000006"]
    last, _, cfg = ck.load_model(tmp_path / "long" / "snapshots" / "step_0000006")
    assert equal_states(last, tr.ema_model) and cfg["step"] == 6
    torch.manual_seed(0)
    short = trainer(MLPDenoiser(hidden=16), toy_data(), tmp_path / "short", steps=4).fit()
    mid, _, cfg = ck.load_model(tmp_path / "long" / "snapshots" / "step_0000004")
    assert equal_states(mid, short.ema_model) and cfg["step"] == 4
    with pytest.raises(ValueError, match="snapshot_every"):
        TrainConfig(snapshot_every=-1).validate()

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


def test_corrupt_json_and_mismatched_weights(saved_run):
    cfg_path = saved_run / "config.json"
    good = cfg_path.read_text()
    cfg_path.write_text(good[:40])
    with pytest.raises(ValueError, match="corrupt"):
        ck.load_model(saved_run)
    cfg = json.loads(good)
    cfg["model"]["hidden"] = 24
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not match.*shape mismatches: .*weight"):
        ck.load_model(saved_run)
    cfg["model"] = {"type": "mlp", "hidden": 16, "num_layers": 4}
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="missing keys"):
        ck.load_model(saved_run)


def test_inconsistent_resume_state(saved_run):
    state = json.loads((saved_run / "state.json").read_text())
    state["step"] = 99
    (saved_run / "state.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match="inconsistent"):
        trainer(MLPDenoiser(hidden=16), toy_data(), saved_run, steps=4).restore(saved_run)


def test_trainer_validates():
    with pytest.raises(ValueError, match="steps"):
        trainer(MLPDenoiser(), toy_data(), steps=0)
    with pytest.raises(TypeError, match="data"):
        Trainer(MLPDenoiser(), SCHED, [[0.0, 1.0]], TrainConfig(steps=1))
    with pytest.raises(TypeError, match="unknown training option"):
        train(MLPDenoiser(), toy_data(), SCHED, steps=1, learning_rate=1.0)


# ----------------------------------------------------------------- the CLI
def cli(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "ddim_edu.train", *args], cwd=ROOT, env=SUB_ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_toy_and_resume(tmp_path):
    out = tmp_path / "toy"
    r = cli("--dataset", "moons", "--steps", "20", "--batch-size", "32", "--mlp-hidden", "32", "--toy-n", "500",
            "--out", str(out), "--ckpt-every", "10", "--sample-every", "10", "--log-every", "5", "--no-progress",
            "--snapshot-every", "10")
    assert r.returncode == 0, r.stderr
    cfg = ck.read_json(out / "config.json")
    assert cfg["step"] == 20 and cfg["dataset"]["name"] == "moons" and cfg["model"]["type"] == "mlp"
    assert cfg["command"].startswith("python -m ddim_edu.train --dataset moons")
    assert (out / "samples" / "step_0000020.png").is_file()
    assert ck.read_json(out / "snapshots" / "step_0000010" / "config.json")["step"] == 10
    r = cli("--resume", str(out), "--steps", "25", "--no-progress")
    assert r.returncode == 0, r.stderr
    cfg = ck.read_json(out / "config.json")
    assert cfg["step"] == 25 and len(cfg["commands"]) == 2 and "--resume" in cfg["commands"][1]
    r = cli("--resume", str(out), "--lr", "0.1")
    assert r.returncode != 0 and "lr" in r.stderr
    r = cli("--dataset", "moons", "--out", str(out))
    assert r.returncode != 0 and "--resume" in r.stderr


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


def test_cli_warm_start_inherits_options_and_resumes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    r = cli("--dataset", "moons", "--steps", "10", "--batch-size", "32", "--mlp-hidden", "32", "--toy-n", "500",
            "--lr", "0.001", "--ema", "0.99", "--out", str(a), "--sample-every", "0", "--no-progress")
    assert r.returncode == 0, r.stderr
    r = cli("--init", str(a), "--steps", "4", "--out", str(b), "--sample-every", "0", "--no-progress")
    assert r.returncode == 0, r.stderr
    cfg_a, cfg_b = ck.read_json(a / "config.json"), ck.read_json(b / "config.json")
    assert cfg_b["model"] == cfg_a["model"] and cfg_b["dataset"]["name"] == "moons"
    assert cfg_b["args"]["lr"] == 0.001 and cfg_b["args"]["ema"] == 0.99 and cfg_b["args"]["seed"] == 1
    assert cfg_b["step"] == 4 and cfg_b["steps_total"] == 14 and cfg_b["init"]["from"] == str(a)
    r = cli("--resume", str(b), "--steps", "6", "--no-progress")
    assert r.returncode == 0, r.stderr
    cfg_b = ck.read_json(b / "config.json")
    assert cfg_b["step"] == 6 and cfg_b["steps_total"] == 16 and cfg_b["init"]["step"] == 10
    r = cli("--init", str(a), "--mlp-hidden", "16", "--out", str(tmp_path / "c"), "--no-progress")
    assert r.returncode != 0 and "--init" in r.stderr and "shape" in r.stderr
    r = cli("--init", str(tmp_path / "missing"), "--out", str(tmp_path / "d"))
    assert r.returncode != 0 and "--init" in r.stderr and "config.json" in r.stderr


def test_cli_mnist_subset_tiny_unet(tmp_path):
    out = tmp_path / "mnist"
    r = cli("--dataset", "mnist", "--widths", "8,16", "--num-res-blocks", "1", "--steps", "3", "--batch-size", "8",
            "--out", str(out), "--sample-every", "3", "--sample-count", "4", "--no-progress")
    assert r.returncode == 0, r.stderr
    cfg = ck.read_json(out / "config.json")
    assert cfg["dataset"]["name"] == "mnist-subset" and cfg["dataset"]["n"] == 4500
    assert cfg["model"]["channel_mults"] == [1, 2] and cfg["dataset"]["shape"] == [1, 28, 28]
    model, sched, _ = ck.load_model(out)
    assert isinstance(model, UNet) and sched.T == 1000
    assert (out / "samples" / "step_0000003.png").is_file()


def test_cli_help_names_the_mnist_subset():
    r = cli("--help")
    assert r.returncode == 0 and "4,500" in r.stdout and "mnist-full" in r.stdout


# ----------------------------------------------------------------- data-parallel (gloo, 2 CPU processes)
DDP_SCRIPT = textwrap.dedent("""
    import sys, torch, torch.distributed as dist
    from ddim_edu.nets.models import MLPDenoiser
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


def test_png_writer_without_torchvision(tmp_path):
    from ddim_edu.viz.grids import density_image, make_grid, write_png
    x = torch.rand(5, 1, 6, 7)
    grid = make_grid(x, nrow=3, padding=1)
    assert grid.shape == (1, 2 * 7 + 1, 3 * 8 + 1)
    write_png(grid, tmp_path / "g.png")
    PIL = pytest.importorskip("PIL.Image")
    import numpy as np
    back = torch.from_numpy(np.array(PIL.open(tmp_path / "g.png"))).float()
    assert back.shape == grid.shape[1:]
    torch.testing.assert_close(back / 255, grid[0], atol=0.5 / 255 + 1e-6, rtol=0)
    img = density_image(torch.randn(500, 2), lim=3.0, bins=32)
    assert img.shape == (1, 32, 32) and 0 <= float(img.min()) < 1.0 == float(img.max())
