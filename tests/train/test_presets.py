"""Named recipes (ddim_edu.train.presets) and the command line's --preset / --minutes."""
import json

import pytest
import torch

import ddim_edu as de
from ddim_edu.train import presets
from ddim_edu.train.cli import UNLIMITED_STEPS, main
from ddim_edu.train.config import TrainConfig


def test_laptop_preset_model_and_training_options():
    model = presets.preset_model("laptop")
    assert model.config["patch_size"] == 2 and model.config["channel_mults"] == [1, 2, 4]
    opts = presets.preset_training("laptop")
    cfg = TrainConfig(**opts).validate()                       # every option is a valid TrainConfig field
    assert cfg.loss_weighting == "min_snr" and cfg.batch_size == 64
    opts["lr"] = 1.0
    assert presets.preset_training("laptop")["lr"] != 1.0     # a fresh dict each time
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([1, 999])
    assert model(x, t).shape == x.shape


def test_unknown_preset_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"preset must be one of 'laptop', got 'desktop'"):
        presets.preset_model("desktop")


def _args(out):
    return json.loads((out / "config.json").read_text())["args"]


def test_cli_preset_sets_defaults_and_typed_options_win(tmp_path, monkeypatch):
    monkeypatch.setenv("DDIM_EDU_FAST", "1")
    out = tmp_path / "run"
    assert main(["--preset", "laptop", "--minutes", "0.0001", "--lr", "1e-3", "--sample-every", "0",
                 "--out", str(out), "--device", "cpu"]) == 0
    args = _args(out)
    assert args["patch_size"] == 2 and args["batch_size"] == 64 and args["loss_weighting"] == "min_snr"
    assert args["lr"] == 1e-3                                  # typed on the command line: not the preset's 2e-3
    assert args["steps"] == UNLIMITED_STEPS and args["max_minutes"] == 0.0001
    model, _, _ = de.train.load_model(out)
    assert model.config["patch_size"] == 2


def test_cli_minutes_with_steps_keeps_the_step_count(tmp_path, monkeypatch):
    monkeypatch.setenv("DDIM_EDU_FAST", "1")
    out = tmp_path / "run"
    main(["--preset", "laptop", "--minutes", "5", "--steps", "1", "--sample-every", "0", "--out", str(out),
          "--device", "cpu"])
    args = _args(out)
    assert args["steps"] == 1 and args["max_minutes"] == 5.0


def test_cli_unknown_preset_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--preset", "desktop", "--out", "x"])
    assert e.value.code == 2 and "--preset" in capsys.readouterr().err
