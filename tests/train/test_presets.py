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
    assert model.config["scale_shift"] is True
    opts = presets.preset_training("laptop")
    cfg = TrainConfig(**opts).validate()                       # every option is a valid TrainConfig field
    assert cfg.loss_weighting == "min_snr" and cfg.batch_size == 64 and cfg.adam_beta2 == 0.99
    opts["lr"] = 1.0
    assert presets.preset_training("laptop")["lr"] != 1.0     # a fresh dict each time
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([1, 999])
    assert model(x, t).shape == x.shape


def test_laptop_preset_floor_raises_only_the_weights_where_snr_exceeds_100():
    """min(SNR_t, 5)/SNR_t falls below the preset's floor of 0.05 exactly where SNR_t > 100: on the linear
    schedule t <= 26, among DDIM-50's steps t = 0 and 20 (not 40)."""
    from ddim_edu.train.loss import loss_weights
    opts, sched = presets.preset_training("laptop"), de.NoiseSchedule.linear(1000)
    t = torch.arange(1000)
    w = loss_weights(sched, t, opts["loss_weighting"], opts["min_snr_gamma"], opts["min_snr_floor"]).double()
    snr = sched.alpha_bar.double() / (1 - sched.alpha_bar.double())
    raised = snr > 100
    assert raised.nonzero().max().item() == 26 and bool(raised[[0, 20]].all()) and not raised[40]
    assert torch.allclose(w[raised], torch.full_like(w[raised], 0.05))
    assert torch.allclose(w[~raised], (snr.clamp(max=5.0) / snr)[~raised], rtol=1e-6)


def test_unknown_preset_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"preset must be one of 'laptop', 'mnist', got 'desktop'"):
        presets.preset_model("desktop")


def _args(out):
    return json.loads((out / "config.json").read_text())["args"]


def test_cli_preset_sets_defaults_and_typed_options_win(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DDIM_EDU_FAST", "1")
    out = tmp_path / "run"
    assert main(["--preset", "laptop", "--minutes", "0.0001", "--lr", "1e-3", "--sample-every", "0",
                 "--out", str(out), "--device", "cpu"]) == 0
    assert "for 0.0001 min ->" in capsys.readouterr().out      # a time budget, not the placeholder step count
    args = _args(out)
    assert args["patch_size"] == 2 and args["batch_size"] == 64 and args["loss_weighting"] == "min_snr"
    assert args["lr_schedule"] == "cosine" and args["lr_decay_steps"] == 0    # its end: measured from the budget
    assert args["lr"] == 1e-3                                  # typed on the command line: not the preset's 2e-3
    assert args["steps"] == UNLIMITED_STEPS and args["max_minutes"] == 0.0001
    assert args["scale_shift"] is True and args["adam_beta2"] == 0.99
    model, _, _ = de.train.load_model(out)
    assert model.config["patch_size"] == 2 and model.config["scale_shift"] is True
    plain = tmp_path / "plain"                                 # --no-scale-shift typed: the preset's True loses
    main(["--preset", "laptop", "--minutes", "0.0001", "--no-scale-shift", "--sample-every", "0",
          "--out", str(plain), "--device", "cpu"])
    assert "scale_shift" not in de.train.load_model(plain)[0].config


def test_cli_minutes_with_steps_keeps_the_step_count(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DDIM_EDU_FAST", "1")
    out = tmp_path / "run"
    main(["--preset", "laptop", "--minutes", "5", "--steps", "1", "--sample-every", "0", "--out", str(out),
          "--device", "cpu"])
    assert "to step 1 or 5 min, whichever comes first ->" in capsys.readouterr().out
    args = _args(out)
    assert args["steps"] == 1 and args["max_minutes"] == 5.0


def test_cli_unknown_preset_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--preset", "desktop", "--out", "x"])
    assert e.value.code == 2 and "--preset" in capsys.readouterr().err


RUN_ONLY = {"dataset", "data_root", "device", "seed", "bf16", "max_minutes", "progress", "log_every", "ckpt_every",
            "sample_every", "snapshot_every", "preset", "init", "out", "resume"}


def test_mnist_preset_is_the_recorded_recipe_of_the_retrained_run():
    """Every option of ``--preset mnist`` equals what the retrained MNIST run recorded in its config.json
    (``results/retrain_mnist/config_drop2.json``: the first of the shipped model's three commands), except the options of where and how it ran."""
    from pathlib import Path
    from ddim_edu.train.cli import build_parser
    run = json.loads((Path(__file__).parents[2] / "results/retrain_mnist/config_drop2.json").read_text())
    recorded = run["args"]
    parser = build_parser()
    parser.set_defaults(**presets.preset_cli_defaults("mnist"))
    args = vars(parser.parse_args(["--dataset", "mnist"]))
    differ = {k: (args[k], v) for k, v in recorded.items() if k not in RUN_ONLY and args.get(k) != v}
    assert differ == {}
    config = presets.preset_model("mnist").config
    assert {k: config.get(k) for k in run["model"]} == run["model"]


def test_cli_mnist_preset_with_minutes_keeps_its_steps(tmp_path, monkeypatch):
    """A time budget beside ``--preset mnist`` stops the run early; it does not move the cosine's end."""
    monkeypatch.setenv("DDIM_EDU_FAST", "1")
    out = tmp_path / "run"
    main(["--preset", "mnist", "--dataset", "gmm", "--model", "mlp", "--batch-size", "8", "--minutes", "0.0001",
          "--sample-every", "0", "--out", str(out), "--device", "cpu"])
    args = _args(out)
    assert args["steps"] == 12_000 and args["lr_schedule"] == "cosine" and args["max_minutes"] == 0.0001
