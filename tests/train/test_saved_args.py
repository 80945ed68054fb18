"""--resume and --init read a run's saved "args" from its config.json: a bad value there is refused
before any training, with a message naming the file, the field, its value and what is allowed,
by the same checks the command line uses (TrainConfig.validate and each option's parser)."""
from __future__ import annotations

import pytest

from ddim_edu.train import checkpoints as ck
from ddim_edu.train import cli as train_cli
from ddim_edu.train.config import check_saved_args
from train_helpers import ROOT

BASE = ["--dataset", "moons", "--toy-n", "64", "--mlp-hidden", "8", "--batch-size", "8", "--steps", "2",
        "--no-progress", "--sample-every", "0", "--log-every", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("saved") / "run"
    assert train_cli.main([*BASE, "--out", str(out)]) == 0
    return out


BAD = [("lr", float("inf"), "finite"), ("lr", "0.001", "a number"), ("batch_size", -3, "positive integer"),
       ("batch_size", 2.5, "whole number"), ("steps", True, "whole number"), ("ema", 1.5, r"\[0.0, 1.0\]"),
       ("weight_decay", float("inf"), "finite"), ("dataset", "svhn", "one of"), ("pad", "yes", "true or false"),
       ("widths", [32, "a"], "comma-separated integers"), ("no_such_option", 1, "unknown field.*allowed"),
       ("seed", None, "default")]


@pytest.mark.parametrize("key, value, allowed", BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
@pytest.mark.parametrize("how", ["--resume", "--init"])
def test_bad_saved_args_are_refused_naming_file_field_value(run, tmp_path, monkeypatch, capsys, key, value, allowed, how):
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    cfg = ck.read_json(bad / ck.CONFIG_FILE)
    cfg["args"][key] = value
    (bad / ck.CONFIG_FILE).write_text(__import__("json").dumps(cfg))      # json writes inf as Infinity
    monkeypatch.setattr(train_cli, "load_data", lambda args: pytest.fail("training started"))
    argv = ["--resume", str(bad)] if how == "--resume" else ["--init", str(bad), "--out", str(tmp_path / "new")]
    with pytest.raises(SystemExit) as e:
        train_cli.main([*argv, "--no-progress"])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert str(bad / ck.CONFIG_FILE) in err and key.split("_")[0] in err and repr(value).strip("'")[:4] in err, err
    assert __import__("re").search(allowed, err), err


def test_good_saved_args_pass_the_same_checks():
    parser = train_cli.build_parser()
    for name in ("toy", "mnist"):
        path = ROOT / "checkpoints" / name / ck.CONFIG_FILE
        if path.is_file():
            saved = ck.read_json(path)["args"]
            assert check_saved_args(parser, saved, path) is saved


def test_resume_of_a_good_run_still_works(run):
    assert train_cli.main(["--resume", str(run), "--steps", "3", "--no-progress"]) == 0
    assert ck.read_json(run / ck.CONFIG_FILE)["step"] == 3
