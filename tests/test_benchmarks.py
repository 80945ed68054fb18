"""Each benchmark script runs end to end on a tiny setting and writes its tables (the real
numbers come from full runs recorded in results/, never from tests)."""
import json
import math
import sys
from pathlib import Path

import pytest
import torch

import ddim_edu as de

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

pytestmark = pytest.mark.skipif("mnist" not in de.available_pretrained(), reason="shipped MNIST weights missing")


def test_quality_table(tmp_path):
    import quality
    data = quality.main(["--n", "6", "--etas", "0,hat", "--steps", "2,3", "--device", "cpu",
                         "--out", str(tmp_path / "t1")])
    assert set(data["fid"]) == {"eta=0,S=2", "eta=0,S=3", "eta=hat,S=2", "eta=hat,S=3"}
    assert (tmp_path / "t1.md").read_text().startswith("# Table 1")
    assert (tmp_path / "t1_samples.png").stat().st_size > 0


def test_quality_merge_is_the_table_measured_at_once(tmp_path):
    """Parts measured one η each (side by side on one GPU) merge into the table measured in one
    run: the same cells and FIDs (same x_T and noise per cell); parts of another table are refused."""
    import quality
    common = ["--n", "6", "--steps", "2,3", "--device", "cpu"]
    whole = quality.main(common + ["--etas", "0,1", "--out", str(tmp_path / "whole")])
    for eta in ("1", "0"):
        quality.main(common + ["--etas", eta, "--out", str(tmp_path / f"part{eta}")])
    merged = quality.main(["--merge", str(tmp_path / "part1.json"), str(tmp_path / "part0.json"),
                           "--out", str(tmp_path / "merged")])
    assert merged["fid"] == pytest.approx(whole["fid"]) and list(merged["fid"]) == list(whole["fid"])
    assert (tmp_path / "merged.md").read_text().startswith("# Table 1")
    quality.main(["--n", "8", "--etas", "0.5", "--steps", "2,3", "--device", "cpu", "--out", str(tmp_path / "other")])
    with pytest.raises(SystemExit, match="not a part of the same table"):
        quality.main(["--merge", str(tmp_path / "part0.json"), str(tmp_path / "other.json"), "--out", str(tmp_path / "x")])
    # a part measured on another device scores the same floor digits up to float32 rounding: merged;
    # a floor 1% away is another draw of digits: refused
    part1 = json.loads((tmp_path / "part1.json").read_text())
    for scale, ok in ((1 + 3e-6, True), (1.01, False)):
        (tmp_path / "moved.json").write_text(json.dumps({**part1, "floor": part1["floor"] * scale}))
        args = ["--merge", str(tmp_path / "part0.json"), str(tmp_path / "moved.json"), "--out", str(tmp_path / "m2")]
        if ok:
            assert quality.main(args)["fid"] == pytest.approx(whole["fid"])
        else:
            with pytest.raises(SystemExit, match="not a part of the same table"):
                quality.main(args)


def test_channels_last_keeps_the_numbers(tmp_path):
    """--channels-last reorders the weights in memory only: Table 1 and Table 2 read the same up to
    float32 rounding, the table names the layout, and a merge of parts in both layouts names both."""
    import common
    import quality
    import reconstruction
    convs = [m.weight for m in common.load(common.ROOT / "checkpoints" / "mnist", "cpu", True)[0].modules()
             if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in convs
                         if w.shape[1] > 1 and w.shape[2:] != (1, 1))   # else both orders are one
    args = ["--n", "6", "--steps", "2,3", "--device", "cpu"]
    plain = quality.main(args + ["--etas", "0", "--out", str(tmp_path / "plain")])
    last = quality.main(args + ["--etas", "1", "--channels-last", "--out", str(tmp_path / "last")])
    again = quality.main(args + ["--etas", "0", "--channels-last", "--out", str(tmp_path / "again")])
    assert again["fid"] == pytest.approx(plain["fid"], rel=1e-3) and "channels_last" in again["device"]
    merged = quality.main(["--merge", str(tmp_path / "plain.json"), str(tmp_path / "last.json"),
                           "--out", str(tmp_path / "merged")])
    assert merged["device"] == f"{plain['device']} and {last['device']}"
    t2 = ["--n", "3", "--steps", "2", "--device", "cpu"]
    mse = reconstruction.main(t2 + ["--out", str(tmp_path / "t2")])["mse"]
    mse_last = reconstruction.main(t2 + ["--channels-last", "--out", str(tmp_path / "t2_last")])["mse"]
    assert mse_last == pytest.approx(mse, rel=1e-3)


@pytest.mark.parametrize("eta", ["1", "hat"])
def test_quality_batches_get_fresh_noise(eta):
    """Sampled in batches of one, two identical x_T must still end apart: each batch draws new noise."""
    import quality
    from common import sample_batched
    zero_eps = lambda x, t: torch.zeros_like(x)  # noqa: E731
    fn = quality.sampler(zero_eps, de.NoiseSchedule.linear(1000), eta, 10, seed=0)
    x0 = sample_batched(fn, torch.zeros(2, 1, 4, 4), batch=1, device="cpu")
    assert not torch.allclose(x0[0], x0[1])


@pytest.mark.parametrize("skip", ["uniform", "quadratic"])
def test_quality_sampler_uses_the_chosen_grid(skip):
    """--skip reaches the sampler: the ε-model is called at exactly the timesteps of that τ."""
    import quality
    seen = []

    def recording_eps(x, t):
        seen.append(int(t[0]))
        return torch.zeros_like(x)
    quality.sampler(recording_eps, de.NoiseSchedule.linear(1000), "0", 10, seed=0, skip=skip)(torch.zeros(1, 1, 4, 4))
    assert sorted(seen) == de.make_timesteps(1000, 10, skip).tolist()


def test_reconstruction_table(tmp_path):
    import reconstruction
    data = reconstruction.main(["--n", "3", "--steps", "2,4", "--device", "cpu", "--out", str(tmp_path / "t2")])
    assert set(data["mse"]) == {"2", "4"} and json.loads((tmp_path / "t2.json").read_text())["n"] == 3
    kept = data["class_survival"]
    assert set(kept) == {"2", "4"} and all(0 <= v["value"] <= 1 and v["stderr"] > 0 for v in kept.values())


def test_reconstruction_table_resumes(tmp_path, capsys):
    """--resume keeps the S already measured for the same model step and n, measures the rest, and
    gives what one run gives; another n is refused rather than mixed in."""
    import reconstruction
    out = str(tmp_path / "t2")
    whole = reconstruction.main(["--n", "3", "--steps", "2,4", "--device", "cpu", "--out", str(tmp_path / "whole")])
    first = reconstruction.main(["--n", "3", "--steps", "4", "--device", "cpu", "--out", out])
    assert set(first["mse"]) == {"4"}
    capsys.readouterr()
    both = reconstruction.main(["--n", "3", "--steps", "2,4", "--device", "cpu", "--out", out, "--resume"])
    assert "S=    4  kept" in capsys.readouterr().out and both["seconds"]["4"] == first["seconds"]["4"]
    assert list(both["mse"]) == ["2", "4"] and both["mse"] == pytest.approx(whole["mse"], rel=1e-5)
    assert json.loads((tmp_path / "t2.json").read_text())["mse"] == both["mse"]
    fewer = reconstruction.main(["--n", "3", "--steps", "2", "--device", "cpu", "--out", out, "--resume"])
    assert fewer["mse"] == both["mse"]       # an S left out of --steps is kept, not dropped
    with pytest.raises(SystemExit, match="n = 3"):
        reconstruction.main(["--n", "4", "--steps", "2", "--device", "cpu", "--out", out, "--resume"])


def test_reconstruction_resume_names_where_each_cell_was_measured(tmp_path):
    """Cells kept by --resume were measured on the hardware their JSON names (a GPU, say): the table
    keeps that name when nothing is measured again and names both once a cell is measured here."""
    import reconstruction
    out = str(tmp_path / "t2")
    reconstruction.main(["--n", "3", "--steps", "4", "--device", "cpu", "--out", out])
    path = tmp_path / "t2.json"
    data = json.loads(path.read_text())
    here = data["device"]
    path.write_text(json.dumps({**data, "device": "another machine"}))
    kept = reconstruction.main(["--n", "3", "--steps", "4", "--device", "cpu", "--out", out, "--resume"])
    assert kept["device"] == "another machine" and "another machine" in (tmp_path / "t2.md").read_text()
    more = reconstruction.main(["--n", "3", "--steps", "2,4", "--device", "cpu", "--out", out, "--resume"])
    assert more["device"] == f"another machine and {here}"
    again = reconstruction.main(["--n", "3", "--steps", "2,4,6", "--device", "cpu", "--out", out, "--resume"])
    assert again["device"] == f"another machine and {here}"          # each machine named once


@pytest.mark.parametrize("skip", ["uniform", "quadratic"])
def test_reconstruction_uses_the_chosen_grid(tmp_path, monkeypatch, skip):
    """--skip reaches the encoder and the decoder: the network is called at exactly that τ (and at 0,
    where the encoder's first step starts from the data), the table names it, and --resume refuses
    a table measured on the other τ rather than mixing the two."""
    import common
    import reconstruction
    seen = set()

    def recording_load(*args):
        model, sched, config = common.load(*args)

        def eps(x, t):
            seen.update(int(v) for v in t.reshape(-1))
            return model(x, t)
        return eps, sched, config
    monkeypatch.setattr(reconstruction, "load", recording_load)
    out = str(tmp_path / "t2")
    data = reconstruction.main(["--n", "2", "--steps", "10", "--skip", skip, "--device", "cpu", "--out", out])
    assert seen == set(de.make_timesteps(1000, 10, skip).tolist()) | {0}
    assert data["skip"] == skip and f"({skip} τ)" in (tmp_path / "t2.md").read_text()
    other = "uniform" if skip == "quadratic" else "quadratic"
    with pytest.raises(SystemExit, match=f"a {skip} τ, not step .* a {other} τ"):
        reconstruction.main(["--n", "2", "--steps", "10", "--skip", other, "--device", "cpu", "--out", out, "--resume"])


def test_kid_table_of_another_checkpoint(tmp_path):
    """--checkpoint measures that model: a UNet trained three steps is far from the held-out digits,
    the shipped model close to them, on the same x_T."""
    import kid_table
    from ddim_edu.train.trainer import Trainer, TrainConfig
    net = de.nets.UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1)
    cfg = TrainConfig(steps=3, batch_size=4, ckpt_every=0, progress=False)
    Trainer(net, de.NoiseSchedule.linear(1000), de.data.load_mnist("train")[0][:16], cfg, out_dir=tmp_path / "run",
            device="cpu").fit()
    common = ["--n", "16", "--steps", "5", "--etas", "0", "--device", "cpu"]
    kid_table.main(common + ["--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "raw")])
    kid_table.main(common + ["--out", str(tmp_path / "shipped")])
    raw, shipped = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("raw", "shipped"))
    assert raw["checkpoint_step"] == 3 and shipped["checkpoint_step"] > 10_000
    assert raw["cells"]["eta=0,S=5"]["kid"] > 100 * max(shipped["cells"]["eta=0,S=5"]["kid"], 0.01)


def test_kid_table_of_a_runs_raw_weights(tmp_path):
    """--weights raw scores the last optimiser iterate: the same cell as a folder whose model.safetensors
    holds the raw weights taken from state.safetensors by hand, and not the EMA's cell; --against the
    same folder still samples its EMA, so the paired difference is raw minus EMA."""
    import kid_table
    from ddim_edu.train import checkpoints as ck
    from ddim_edu.train.trainer import Trainer, TrainConfig
    net = de.nets.UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1)
    cfg = TrainConfig(steps=3, batch_size=4, ckpt_every=0, progress=False)
    Trainer(net, de.NoiseSchedule.linear(1000), de.data.load_mnist("train")[0][:16], cfg, out_dir=tmp_path / "run",
            device="cpu").fit()
    state = ck.load_tensors(tmp_path / "run" / "state.safetensors")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    ck.save_model_dir(tmp_path / "copy", {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}, config)
    common = ["--n", "16", "--steps", "5", "--etas", "0", "--device", "cpu"]
    raw = kid_table.main(common + ["--checkpoint", str(tmp_path / "run"), "--weights", "raw", "--against",
                                   str(tmp_path / "run"), "--out", str(tmp_path / "r")])
    copy = kid_table.main(common + ["--checkpoint", str(tmp_path / "copy"), "--out", str(tmp_path / "c")])
    ema = kid_table.main(common + ["--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "e")])
    cell = "eta=0,S=5"
    assert raw["cells"][cell]["kid"] == copy["cells"][cell]["kid"] != ema["cells"][cell]["kid"]
    assert (raw["weights"], ema["weights"]) == ("raw", "ema")
    assert raw["minus_against"][cell]["cell"]["kid"] == ema["cells"][cell]["kid"]
    assert raw["minus_against"][cell]["diff"] == pytest.approx(raw["cells"][cell]["kid"] - ema["cells"][cell]["kid"])
    assert raw["minus_against"][cell]["diff"] != 0
    assert "its raw weights" in (tmp_path / "r.md").read_text() and "raw weights" not in (tmp_path / "e.md").read_text()


def test_kid_table_paired_differences(tmp_path):
    """--against the same weights: every cell again, differing by exactly 0 ± 0 (same x_T and noise);
    η = 1 minus η = 0 is the difference of the two cells' KIDs."""
    import kid_table
    data = kid_table.main(["--n", "8", "--steps", "2", "--device", "cpu", "--against", str(BENCH.parent / "checkpoints" / "mnist"),
                           "--out", str(tmp_path / "k")])
    assert set(data["minus_against"]) == {"eta=0,S=2", "eta=1,S=2"}
    for d in data["minus_against"].values():
        assert d["diff"] == 0.0 and d["se"] == 0.0 and d["se_unpaired"] > 0
    c = data["cells"]
    assert data["eta1_minus_eta0"]["2"]["diff"] == pytest.approx(c["eta=1,S=2"]["kid"] - c["eta=0,S=2"]["kid"])
    assert "This model minus `" in (tmp_path / "k.md").read_text()


def test_kid_table_ratio_against_the_difference_of_its_cells(tmp_path):
    """--ratio 3: this model's KID minus 3× the --against model's, the two cells' own KIDs combined;
    against the same weights it is −2× the cell's KID, with twice its error; without
    --against, or with a ratio that is negative or not finite, it is refused."""
    import kid_table
    shipped = str(BENCH.parent / "checkpoints" / "mnist")
    data = kid_table.main(["--n", "8", "--steps", "2", "--etas", "0", "--device", "cpu", "--against", shipped,
                           "--ratio", "3", "--out", str(tmp_path / "k")])
    cell, other = data["cells"]["eta=0,S=2"], data["minus_against"]["eta=0,S=2"]
    r = other["minus_ratio"]
    assert r["ratio"] == 3.0 and r["diff"] == pytest.approx(cell["kid"] - 3 * other["cell"]["kid"], rel=1e-9)
    assert (r["diff"], r["se"]) == pytest.approx((-2 * cell["kid"], 2 * cell["kid_se"]), rel=1e-9)
    assert r["se"] == pytest.approx(math.hypot(r["se_samples"], r["se_reference"]), rel=1e-12)
    assert "minus 3× that of" in (tmp_path / "k.md").read_text()
    with pytest.raises(SystemExit):
        kid_table.main(["--n", "8", "--ratio", "3", "--out", str(tmp_path / "x")])
    for bad in ("-1", "inf", "nan"):                     # refused before any sampling
        with pytest.raises(SystemExit):
            kid_table.main(["--n", "8", "--against", shipped, "--ratio", bad, "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x.json").exists()


def test_kid_table_against_a_model_on_another_schedule(tmp_path):
    """--against samples each model with its own noise schedule: a UNet trained on the cosine schedule
    against the shipped (linear) model, whose cell is the one it scores alone on the same x_T."""
    import kid_table
    from ddim_edu.train.trainer import Trainer, TrainConfig
    net = de.nets.UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1)
    cfg = TrainConfig(steps=1, batch_size=4, ckpt_every=0, progress=False)
    Trainer(net, de.NoiseSchedule.cosine(1000), de.data.load_mnist("train")[0][:8], cfg, out_dir=tmp_path / "run",
            device="cpu").fit()
    common = ["--n", "8", "--steps", "2", "--etas", "0", "--device", "cpu"]
    paired = kid_table.main(common + ["--checkpoint", str(tmp_path / "run"), "--against",
                                      str(BENCH.parent / "checkpoints" / "mnist"), "--out", str(tmp_path / "k")])
    alone = kid_table.main(common + ["--out", str(tmp_path / "shipped")])
    assert paired["minus_against"]["eta=0,S=2"]["cell"]["kid"] == alone["cells"]["eta=0,S=2"]["kid"]


def test_kid_table_of_ddim_alone(tmp_path):
    """--etas 0: DDIM's cells only, and no η = 1 minus η = 0 table in the written results."""
    import kid_table
    data = kid_table.main(["--n", "8", "--steps", "2", "--etas", "0", "--device", "cpu", "--out", str(tmp_path / "k")])
    assert set(data["cells"]) == {"eta=0,S=2"} and data["eta1_minus_eta0"] == {}
    md = (tmp_path / "k.md").read_text()
    assert "η = 1 minus η = 0" not in md and "| η = 0 | 2 |" in md


def test_kid_reference_shift_is_the_same_for_every_draw(tmp_path):
    """The held-out labels change only the reference's within-set term: every draw moves by the same
    amount, upwards (same-class pairs are the ones a stratified set has too few of)."""
    import kid_reference
    kid_reference.main(["--n", "60", "--draws", "3", "--out", str(tmp_path / "ref")])
    r = json.loads((tmp_path / "ref.json").read_text())
    assert r["shift"] > 0
    for d in r["draws"]:
        assert d["reference labels"]["kid"] - d["plain"]["kid"] == pytest.approx(r["shift"], rel=1e-9)


def test_solvers_study(tmp_path):
    import solvers
    solvers.main(["--quick", "--n", "8", "--device", "cpu", "--out", str(tmp_path / "s")])
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["exact"]["DDIM (Euler)"]["order"] == pytest.approx(1.0, abs=0.3)


def test_speed_and_vs_diffusers(tmp_path):
    import gpu_speed
    data = gpu_speed.main(["--device", "cpu", "--batch", "2", "--steps", "2", "--repeats", "1",
                           "--train-batch", "2", "--out", str(tmp_path / "speed")])
    assert data["fp32"]["overhead_ratio"] > 0
    pytest.importorskip("diffusers")
    import vs_diffusers
    vs_diffusers.main(["--quick", "--device", "cpu", "--out", str(tmp_path / "vs")])
    assert json.loads((tmp_path / "vs_cpu.json").read_text())["max_abs_diff"] < 1e-3


def test_training_curve(tmp_path):
    """Points in training order (earlier model, snapshots, the run's last weights); the shipped
    model scores far better than a UNet trained three steps, on the FID and on both losses."""
    import training_curve
    from ddim_edu.train.trainer import Trainer, TrainConfig
    digits, _ = de.data.load_mnist("train")
    net = de.nets.UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1)
    cfg = TrainConfig(steps=3, batch_size=4, snapshot_every=2, ckpt_every=0, progress=False)
    Trainer(net, de.NoiseSchedule.linear(1000), digits[:16], cfg, out_dir=tmp_path / "run", device="cpu").fit()
    data = training_curve.main(["--run", str(tmp_path / "run"), "--before", str(de.train.pretrained.checkpoints_dir() / "mnist"),
                                "--n", "8", "--cells", "0:3", "--loss-repeats", "1", "--device", "cpu",
                                "--out", str(tmp_path / "curve")])
    shipped, snap, last = data["points"]
    assert [snap["step"], last["step"]] == [2, 3] and last["checkpoint"] == str(tmp_path / "run")
    assert shipped["fid"]["eta=0,S=3"] < last["fid"]["eta=0,S=3"]
    assert shipped["held_out_loss"] < last["held_out_loss"] and shipped["train_loss"] < last["train_loss"]
    assert (tmp_path / "curve.md").read_text().startswith("# Training curve")


def test_training_curve_pick_keeps_to_the_run(tmp_path):
    """Early stopping picks the run's lowest DDIM S=10 + S=20 point, never an earlier model."""
    import training_curve
    run = tmp_path / "run"

    def point(path, f10, f20):
        return {"checkpoint": str(path), "fid": {"eta=0,S=10": f10, "eta=0,S=20": f20, "eta=1,S=10": 0.0}}
    curve = {"points": [point("checkpoints/mnist", 0.1, 0.1), point(run / "snapshots" / "step_0001000", 0.5, 0.3),
                        point(run / "snapshots" / "step_0002000", 0.4, 0.3), point(run, 0.45, 0.3)]}
    assert training_curve.pick(curve, run) == str(run / "snapshots" / "step_0002000")
    curve["points"][-1]["fid"]["eta=0,S=20"] = 0.2
    assert training_curve.pick(curve, run) == str(run)
    with pytest.raises(ValueError, match="no point"):
        training_curve.pick({"points": curve["points"][:1]}, run)


def test_training_curve_best_races_runs_on_kid(tmp_path):
    """A recipe race: the lowest η = 0 KID sum over every curve's own run points (its FIDs and η = 1
    cells ignored), never an earlier model a curve starts from."""
    import training_curve

    def point(path, k10, k20, fid=0.0, eta1=0.0):
        return {"checkpoint": str(path), "fid": {"eta=0,S=10": fid},
                "kid": {"eta=0,S=10": [k10, 0.001], "eta=0,S=20": [k20, 0.001], "eta=1,S=10": [eta1, 0.001]}}
    a, b = tmp_path / "a", tmp_path / "b"
    curves = [{"run": str(a), "points": [point("checkpoints/mnist", -0.01, -0.01),
                                         point(a / "snapshots" / "step_0001000", 0.02, 0.01, eta1=-1.0),
                                         point(a, 0.01, 0.01, fid=9.0)]},
              {"run": str(b), "points": [point(b / "snapshots" / "step_0001000", 0.03, 0.01), point(b, 0.005, 0.01)]}]
    assert training_curve.best(curves) == str(b)
    assert training_curve.pick(curves[0], a) == str(a)
    with pytest.raises(ValueError, match="no point"):
        training_curve.best([{"run": str(b), "points": curves[0]["points"]}])


def test_memorisation_table(tmp_path):
    """memorisation.py: a copy share per S beside the held-out digits' own distances, and its figure."""
    import memorisation
    data = memorisation.main(["--n", "6", "--steps", "2,3", "--device", "cpu", "--threads", str(torch.get_num_threads()),
                              "--out", str(tmp_path / "mem")])
    assert set(data["cells"]) == {"2", "3"} and data["held_out"]["n"] == 500 and data["train"] == 4500
    for c in data["cells"].values():
        assert 0 <= c["copy_share"] <= 1 and 0 < c["distance_q05"] <= c["distance_median"]
    assert (tmp_path / "mem.md").read_text().startswith("# Memorisation")
    assert (tmp_path / "mem.png").stat().st_size > 0


def test_solvers_small_t(tmp_path):
    """Part 1 is the mean (ε − ε_θ(x_t, t))² at each t, written out here with the same (t, ε)."""
    import solvers_small_t as sst
    model, sched = de.load_pretrained("mnist")
    x0 = de.data.load_mnist("test")[0][:6]
    mine = sst.eps_error(model, sched, x0, seed=3)
    g = torch.Generator().manual_seed(3)
    for t in sst.TS:
        tt = torch.full((6,), t, dtype=torch.long)
        eps = torch.randn(x0.shape, generator=g)
        ab = sched.alpha_bar[t].double()
        x_t = (ab.sqrt() * x0.double() + (1 - ab).sqrt() * eps.double()).float()
        with torch.no_grad():
            assert mine[t] == pytest.approx(float(((model(x_t, tt) - eps) ** 2).mean()), rel=1e-4)
    assert sst.GRIDS["τ = 20, 100, …, 900"][0] == 20 and len(sst.GRIDS["τ = 20, 100, …, 900"]) == 10
    sst.main(["--n", "8", "--threads", "1", "--out", str(tmp_path / "h")])
    data = json.loads((tmp_path / "h.json").read_text())
    assert set(data["heun_fid"]) == set(sst.GRIDS) and list(data["eps_mse"]) == ["checkpoints/mnist"]
    assert "t = 0" in (tmp_path / "h.md").read_text()
    other = sst.ROOT / "results" / "retrain_mnist" / "scratch_weights"
    sst.main(["--n", "4", "--threads", "1", "--eps-only", "--compare", str(other), "--out", str(tmp_path / "e")])
    data = json.loads((tmp_path / "e.json").read_text())                # part 1 only, both checkpoints
    assert data["heun_fid"] is None and "Classifier-FID" not in (tmp_path / "e.md").read_text()
    assert len(data["eps_mse"]) == 2


def test_training_curve_join_continues_a_training(tmp_path):
    """Two runs of one training: the later run's point at the step it started from is left out, the
    written curve has every other point in step order, and curves measured differently are refused."""
    import training_curve

    def point(path, step, loss):
        return {"checkpoint": str(path), "step": step, "fid": {"eta=0,S=10": loss * 10}, "kid": {"eta=0,S=10": [loss, 0.1]},
                "halves": {"eta=0,S=10": [loss, loss]}, "train_loss": loss, "held_out_loss": 2 * loss}
    common = {"n": 8, "cells": ["eta=0,S=10"], "device": "CPU (1 threads)", "floor": 0.25, "loss_repeats": 1}
    first = {"run": "runs/a", **common, "points": [point("runs/a/snapshots/step_1", 1, 0.3), point("runs/a", 2, 0.2)]}
    second = {"run": "runs/b", **common, "points": [point("runs/a", 2, 0.2001), point("runs/b", 3, 0.1)]}
    paths = []
    for name, curve in (("a", first), ("b", second)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(curve))
    data = training_curve.main(["--join", *map(str, paths), "--run", "runs/mnist", "--out", str(tmp_path / "joined")])
    assert [p["step"] for p in data["points"]] == [1, 2, 3] and data["points"][1]["train_loss"] == 0.2
    assert data["run"] == "runs/mnist" and data["cells"] == ["eta=0,S=10"] and data["n"] == 8
    assert json.loads((tmp_path / "joined.json").read_text())["points"] == data["points"]
    assert "`runs/a` to step 2, then `runs/b` to step 3" in (tmp_path / "joined.md").read_text()
    paths[1].write_text(json.dumps({**second, "n": 16}))
    with pytest.raises(ValueError, match="n is 8 in runs/a and 16 in runs/b"):
        training_curve.main(["--join", *map(str, paths), "--out", str(tmp_path / "refused")])


def test_loss_gap_refuses_bad_options(capsys):
    """loss_gap.py refuses an unknown --sizes name (with the choices), --seeds 0 and --threads 0, before any work."""
    import loss_gap
    with pytest.raises(SystemExit):
        loss_gap.parse(["--sizes", "fast,huge"])
    err = capsys.readouterr().err
    assert "'huge'" in err and "full, fast" in err
    assert loss_gap.parse(["--sizes", " fast , full"]).sizes == ["fast", "full"]
    for option in ("--seeds", "--threads"):
        with pytest.raises(SystemExit):
            loss_gap.parse([option, "0"])
        assert f"{option} must be at least 1, got 0" in capsys.readouterr().err


def test_loss_gap_over_seeds(tmp_path):
    """loss_gap.py: each seed's numbers are de.train.loss_gap's on that seed's digits and draws."""
    import loss_gap
    data = loss_gap.main(["--seeds", "2", "--sizes", "fast", "--threads", str(torch.get_num_threads()),
                          "--out", str(tmp_path / "gap")])
    cells = data["sizes"]["fast"]["cells"]
    assert [c["seed"] for c in cells] == [0, 1] and data["sizes"]["fast"]["n"] == 125
    model = de.load_pretrained("mnist")[0]
    sched = de.NoiseSchedule.linear(T=1000)
    train, held_out = de.data.load_mnist("train")[0], de.data.load_mnist("test")[0]
    gen = torch.Generator().manual_seed(1)
    seen = train[torch.randperm(len(train), generator=gen)[:125]]
    _, _, gap = de.train.loss_gap(model, seen, held_out[:125], sched, 2, gen)
    assert cells[1]["gap"] == pytest.approx(gap.value, rel=1e-9)
    assert data["sizes"]["fast"]["share_min"] <= cells[0]["share"] <= data["sizes"]["fast"]["share_max"]
    assert (tmp_path / "gap.md").read_text().startswith("# Held-out minus training")


def test_centring_table(tmp_path):
    """centring.py: real digits sit at the held-out centre (none beyond 2 px); a digit moved 3 px is
    measured 3 px away; each model gets a row."""
    import centring
    x = de.data.load_mnist("test")[0][:8]
    moved = torch.roll(x, shifts=3, dims=3)
    d = (centring.centre_of_mass(moved) - centring.centre_of_mass(x)).norm(dim=1)
    assert torch.allclose(d, torch.full_like(d, 3.0), atol=1e-6)
    data = centring.main(["--n", "4", "--steps", "2", "--threads", str(torch.get_num_threads()),
                          "--out", str(tmp_path / "c")])
    assert data["rows"]["the held-out digits"]["beyond_2px"] == 0.0
    assert len(data["rows"]) == 3 and (tmp_path / "c.md").read_text().startswith("# Centring")


def test_loss_by_t_table(tmp_path):
    """loss_by_t.py: one loss per stretch of t and set for each model; the shipped model's loss falls from
    the start of the chain to its end (ε is hard to tell from x_t at small t, easy at large t)."""
    import loss_by_t
    ck = str(de.train.pretrained.checkpoints_dir() / "mnist")
    data = loss_by_t.main(["--checkpoint", ck, "--n", "8", "--threads", str(torch.get_num_threads()),
                           "--out", str(tmp_path / "l")])
    for split in ("held-out", "training"):
        (loss,) = data["loss"][split].values()
        assert len(loss) == len(loss_by_t.EDGES) - 1 and loss[0] > 10 * loss[-1]
    assert (tmp_path / "l.md").read_text().startswith("# L_simple per stretch of t")


def test_swapped_model_answers_each_row_from_its_side_of_the_switch_point():
    """Rows with t < tau get the low model's ε, the others the high model's, each as that model alone
    would answer them."""
    from swap_steps import SwappedModel
    torch.manual_seed(0)
    low = de.nets.UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1)
    high = de.nets.UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1)
    for net in (low, high):
        torch.nn.init.normal_(net.conv_out.weight, std=0.1)    # not the zero-initialised ε̂ = 0
    x, t = torch.randn(4, 1, 28, 28), torch.tensor([0, 39, 40, 999])
    with torch.no_grad():
        out = SwappedModel(low, high, 40)(x, t)
        assert torch.allclose(out[:2], low(x[:2], t[:2]), atol=1e-6)
        assert torch.allclose(out[2:], high(x[2:], t[2:]), atol=1e-6)
        assert torch.equal(SwappedModel(low, high, 0)(x, t), high(x, t))
        assert torch.equal(SwappedModel(low, high, 1000)(x, t), low(x, t))


def _tiny_run(tmp_path, sched, name="run"):
    """A 1-step UNet run on ``sched``, saved as a checkpoint folder (its conv_out made non-zero)."""
    from ddim_edu.train.trainer import Trainer, TrainConfig
    torch.manual_seed(0)
    net = de.nets.UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1)
    torch.nn.init.normal_(net.conv_out.weight, std=0.1)
    Trainer(net, sched, de.data.load_mnist("train")[0][:8],
            TrainConfig(steps=1, batch_size=4, ckpt_every=0, progress=False), out_dir=tmp_path / name,
            device="cpu").fit()
    return str(tmp_path / name)


def test_swap_steps_table(tmp_path):
    """t_s = 0 never calls the --with model (the cell is the --checkpoint model alone); t_s = 1 gives
    DDIM's last step to the --with model: the samples equal two DDIM steps (eq. 12) taken by hand, the
    first with the run's ε, the last with the shipped model's; a run on another schedule is refused."""
    import swap_steps
    from common import ddim_samples, fixed_noise, load
    shipped = str(BENCH.parent / "checkpoints" / "mnist")
    run = _tiny_run(tmp_path, de.NoiseSchedule.linear(1000))
    common = ["--n", "8", "--steps", "2", "--threads", "1"]
    data = swap_steps.main(common + ["--checkpoint", run, "--switch-at", "0,1,1", "--reverse",
                                     "--out", str(tmp_path / "s")])
    assert set(data["swapped"]) == {"--with below 0", "--with below 1", "--checkpoint below 0",
                                    "--checkpoint below 1"}
    same = data["swapped"]["--with below 0"]
    assert same["kid"] == data["alone"]["kid"] and same["rms_pixel_difference"] == 0.0
    assert same["minus_alone"] == 0.0 and same["minus_alone_grey_levels"] == 0.0 and same["z"] is None
    assert data["swapped"]["--with below 1"]["rms_pixel_difference"] > 0
    assert all(0 <= c["black"] <= 1 for c in data["swapped"].values())
    assert "| --with below 1 | 1 |" in (tmp_path / "s.md").read_text()
    model, sched, _ = load(run, "cpu")
    other = load(shipped, "cpu")[0]
    x_T = fixed_noise(8, (1, 28, 28), 0)
    got = ddim_samples(swap_steps.SwappedModel(other, model, 1, model.schedule_config), sched, x_T, 2, 0.0, 0, 8,
                       "cpu")
    with torch.no_grad():
        x = de.diffusion.samplers.ddim_step(x_T, model(x_T, torch.full((8,), 500)), 500, 0, sched)[0]
        x = de.diffusion.samplers.ddim_step(x, other(x, torch.zeros(8, dtype=torch.long)), 0, -1, sched)[0]
    assert torch.allclose(got, x.clamp(-1, 1), atol=1e-5)
    with pytest.raises(ValueError, match="different noise schedules"):
        swap_steps.main(common + ["--checkpoint", _tiny_run(tmp_path, de.NoiseSchedule.cosine(1000), "cos"),
                                  "--out", str(tmp_path / "c")])


def test_grey_levels_are_the_256_of_an_8_bit_file():
    import swap_steps
    x = torch.tensor([-1.0, -0.999, 0.3, 1.0])
    expected = torch.round((x + 1) / 2 * 255) / 255 * 2 - 1      # the pixel as a uint8, mapped back to [−1, 1]
    assert torch.allclose(swap_steps.to_grey_levels(x), expected)
    assert swap_steps.to_grey_levels(x)[1] == -1 and abs(float(swap_steps.to_grey_levels(x)[2]) - 0.3020) < 1e-4
    held_out = de.data.load_mnist("test")[0]
    assert torch.equal(swap_steps.to_grey_levels(held_out), held_out)     # MNIST's digits are 8-bit already
