"""The command line ``python -m ddim_edu.train``: runs, resumes and warm starts end to end,
and its training options generated from TrainConfig (one set of defaults)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from ddim_edu.nets import UNet
from ddim_edu.train import checkpoints as ck
from ddim_edu.train.presets import PRESETS
from ddim_edu.train import cli as train_cli
from ddim_edu.train.config import TrainConfig, cli_dest, cli_flag, cli_negated
from train_helpers import ROOT, SUB_ENV


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


def test_cli_warm_start_inherits_options_and_resumes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    r = cli("--dataset", "moons", "--steps", "10", "--batch-size", "32", "--mlp-hidden", "32", "--toy-n", "500",
            "--lr", "0.001", "--ema", "0.99", "--out", str(a), "--sample-every", "0", "--no-progress")
    assert r.returncode == 0, r.stderr
    r = cli("--init", str(a), "--steps", "4", "--out", str(b), "--sample-every", "0", "--no-progress")
    assert r.returncode == 0, r.stderr
    cfg_a, cfg_b = ck.read_json(a / "config.json"), ck.read_json(b / "config.json")
    # a run from scratch counts only itself; a warm start adds the run it began from
    assert cfg_a["steps_total"] == 10 and cfg_a["wall_time_total_s"] == cfg_a["wall_time_s"] and not cfg_a.get("init")
    assert cfg_b["wall_time_total_s"] == round(cfg_b["wall_time_s"] + cfg_a["wall_time_s"], 2)
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


# ----------------------------------------------------------------- options generated from TrainConfig
# config.json "args" keys and flags of runs written before the options were generated (e.g. the shipped toy run)
OLD_FLAGS = {"steps": "--steps", "batch_size": "--batch-size", "lr": "--lr", "weight_decay": "--weight-decay",
             "lr_warmup": "--lr-warmup", "ema": "--ema", "no_ema_warmup": "--no-ema-warmup", "grad_clip": "--grad-clip",
             "seed": "--seed", "ckpt_every": "--ckpt-every", "sample_every": "--sample-every",
             "sample_count": "--sample-count", "snapshot_every": "--snapshot-every", "log_every": "--log-every",
             "max_minutes": "--max-minutes", "progress": "--no-progress", "compile": "--compile"}


def test_cli_defaults_are_the_config_defaults():
    """Every TrainConfig field has one option, whose default is the field's default."""
    parser = train_cli.build_parser()
    by_dest = {a.dest: a for a in parser._actions}
    for f in dataclasses.fields(TrainConfig):
        action = by_dest[cli_dest(f)]
        assert action.option_strings == [cli_flag(f), *f.metadata["aliases"]]
        assert (not action.default if cli_negated(f) else action.default) == f.default, f.name
        assert f.metadata["help"] in action.help
    assert train_cli.config_from_args(parser.parse_args([])) == TrainConfig()
    assert parser.parse_args(["--minutes", "3"]).max_minutes == 3.0 == parser.parse_args(["--max-minutes", "3"]).max_minutes
    assert TrainConfig().sample_every == 1000 and TrainConfig().progress is None


def test_cli_keeps_every_old_flag_and_saved_key():
    parser = train_cli.build_parser()
    flags = {a.dest: a.option_strings for a in parser._actions}
    for dest, flag in OLD_FLAGS.items():
        assert flags[dest][0] == flag                     # the old spelling first (an alias may follow)
    shipped = ck.read_json(ROOT / "checkpoints" / "toy" / "config.json")["args"]
    assert set(shipped) <= set(flags)
    args = parser.parse_args(["--ema", "0.9", "--no-ema-warmup", "--no-progress", "--max-minutes", "2.5", "--compile",
                              "--sample-every", "0", "--lr", "1e-3", "--steps", "7"])
    cfg = train_cli.config_from_args(args)
    assert (cfg.ema_decay, cfg.ema_warmup, cfg.progress, cfg.max_minutes, cfg.compile) == (0.9, False, False, 2.5, True)
    assert (cfg.sample_every, cfg.lr, cfg.steps) == (0, 1e-3, 7)
    assert vars(args)["no_ema_warmup"] is True and vars(args)["ema"] == 0.9     # the keys saved in config.json
    assert not hasattr(train_cli, "build_model") and callable(train_cli.model_from_args)


@pytest.mark.parametrize("argv, flag", [(["--lr", "-1"], "--lr"), (["--ema", "1.5"], "--ema"),
                                        (["--steps", "0"], "--steps"), (["--sample-count", "0"], "--sample-count"),
                                        (["--max-minutes", "0"], "--max-minutes"), (["--minutes", "-1"], "--minutes"),
                                        (["--minutes", "inf"], "--minutes")])
def test_cli_bad_values_name_the_flag(argv, flag, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        train_cli.main(["--dataset", "moons", "--out", str(tmp_path / "r"), *argv])
    assert e.value.code == 2 and flag in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_cli_patch_size_that_does_not_divide_the_image_exits_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        train_cli.main(["--dataset", "mnist", "--patch-size", "3", "--out", str(tmp_path / "r"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--patch-size" in err and "(28, 28)" in err and "got 3" in err
    assert not (tmp_path / "r").exists()


def test_resume_may_change_only_resumable_options():
    assert {"steps", "max_minutes", "ckpt_every", "sample_every", "sample_count", "log_every", "device", "progress",
            "compile", "data_root", "resume", "out"} <= train_cli.RESUMABLE
    assert not {"lr", "batch_size", "seed", "ema", "no_ema_warmup", "grad_clip", "dataset"} & train_cli.RESUMABLE


def test_cli_resumes_a_run_saved_before_the_newer_options(tmp_path):
    """A run whose saved "args" lack options added since (sample_steps) still resumes."""
    out = tmp_path / "r"
    common = ["--no-progress", "--sample-every", "0", "--log-every", "2"]
    assert train_cli.main(["--dataset", "moons", "--toy-n", "200", "--mlp-hidden", "16", "--batch-size", "16",
                           "--steps", "2", "--out", str(out), *common]) == 0
    cfg = ck.read_json(out / "config.json")
    del cfg["args"]["sample_steps"], cfg["args"]["snapshot_every"]
    ck.write_json(out / "config.json", cfg)
    assert train_cli.main(["--resume", str(out), "--steps", "4", *common]) == 0
    cfg = ck.read_json(out / "config.json")
    assert cfg["step"] == 4 and cfg["training"]["sample_steps"] == 50 and len(cfg["commands"]) == 2


def test_cli_init_from_the_shipped_mnist_model(tmp_path):
    """--init checkpoints/mnist: a new run from the shipped EMA weights, with their recipe."""
    if not (ROOT / "checkpoints" / "mnist" / "model.safetensors").is_file():
        pytest.skip("shipped MNIST weights missing")
    out = tmp_path / "more"
    r = cli("--init", str(ROOT / "checkpoints" / "mnist"), "--steps", "1", "--batch-size", "2", "--sample-every", "0",
            "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    shipped, cfg = ck.read_json(ROOT / "checkpoints" / "mnist" / "config.json"), ck.read_json(out / "config.json")
    net, recipe = PRESETS["mnist"]                                                 # the shipped weights' recipe
    assert cfg["model"] == shipped["model"] and cfg["args"]["dropout"] == shipped["args"]["dropout"] == net["dropout"]
    assert cfg["args"]["ema"] == shipped["args"]["ema"] == recipe["ema_decay"]
    assert cfg["init"]["step"] == shipped["step"] and cfg["steps_total"] == shipped["steps_total"] + 1
    assert f"({shipped['steps_total']} steps)" in r.stdout      # all the training behind them, not the last call's
    assert cfg["args"]["seed"] == shipped["args"]["seed"] + 1 and cfg["training"]["batch_size"] == 2
    assert cfg["args"]["loss_weighting"] == shipped["args"]["loss_weighting"]     # the recipe is inherited,
    assert shipped["args"]["bf16"] and cfg["args"]["bf16"] is None                 # the hardware option is not
