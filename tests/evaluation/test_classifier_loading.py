"""The course classifier loads like a diffusion checkpoint: config.json covered by the checksum in
model.safetensors, finite weights, only known fields in range; the shipped one keeps loading."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as st_save

from ddim_edu.evaluation.classifier import MNISTClassifier, load_classifier, save_classifier
from ddim_edu.train import checkpoints as ck

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "mnist_classifier"
INFO = {"held_out_accuracy": 0.5}


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = MNISTClassifier(width=4, feature_dim=8)
    save_classifier(model.eval(), tmp_path / "c", INFO)
    return tmp_path / "c", model


def test_shipped_classifier_loads_checked():
    if not (SHIPPED / ck.MODEL_FILE).is_file():
        pytest.skip("shipped classifier missing")
    m = load_classifier()
    assert isinstance(m, MNISTClassifier) and not m.training
    ck.read_model_dir(SHIPPED)                                   # covered by a config checksum


def test_round_trip(saved):
    path, model = saved
    got = load_classifier(path)
    assert all(torch.equal(a, b) for a, b in zip(got.state_dict().values(), model.state_dict().values()))


def edit_config(path, **model):
    cfg = json.loads((path / ck.CONFIG_FILE).read_text())
    cfg["model"].update(model)
    (path / ck.CONFIG_FILE).write_text(json.dumps(cfg))


@pytest.mark.parametrize("edit", [{"width": 8}, {"num_classes": 11}, {"extra": 1}, {"feature_dim": "8"}])
def test_an_edited_config_is_refused(saved, edit):
    path, _ = saved
    edit_config(path, **edit)
    with pytest.raises(ValueError, match="config.json is corrupt or was edited"):
        load_classifier(path)


@pytest.mark.parametrize("edit, match", [({"extra": 1}, r"unknown classifier field.*extra.*allowed"),
                                         ({"feature_dim": -1}, "feature_dim"), ({"num_classes": "10"}, "num_classes"),
                                         ({"type": "unet"}, "does not describe an mnist_classifier")])
def test_bad_fields_are_refused_even_with_a_valid_checksum(saved, edit, match):
    path, _ = saved
    cfg = json.loads((path / ck.CONFIG_FILE).read_text())
    cfg["model"].update(edit)
    ck.save_model_dir(path, ck.load_tensors(path / ck.MODEL_FILE), cfg)   # checksummed, but bad
    with pytest.raises(ValueError, match=match):
        load_classifier(path)


def test_a_classifier_without_checksum_or_with_non_finite_weights_is_refused(saved, tmp_path):
    path, _ = saved
    w = ck.load_tensors(path / ck.MODEL_FILE)
    (path / ck.MODEL_FILE).write_bytes(st_save(w))               # no checksums at all
    with pytest.raises(ValueError, match="no sha256 checksum.*require_checksum=False"):
        load_classifier(path)
    load_classifier(path, require_checksum=False)
    k = sorted(w)[0]
    w[k].view(-1)[0] = float("nan")
    (path / ck.MODEL_FILE).write_bytes(st_save(w, metadata={"format": ck.FORMAT, "sha256": ck._digest(w)}))
    with pytest.raises(ValueError, match=f"non-finite.*{k}"):
        load_classifier(path, require_checksum=False)


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="classifier checkpoint .*nowhere"):
        load_classifier(tmp_path / "nowhere")
    shutil.rmtree(tmp_path, ignore_errors=True)
