"""benchmarks/speedrun.py end to end on a tiny budget: one JSON per (recipe, budget), resumable
and incremental, and the table it writes (the real numbers come from full runs in results/)."""
import dataclasses
import json
import math
import sys
import warnings
from pathlib import Path

import pytest

import ddim_edu as de

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

pytestmark = pytest.mark.skipif("mnist" not in de.available_pretrained(), reason="shipped MNIST weights missing")
TINY = ["--batch", "4", "--n", "4", "--sample-steps", "2", "--threads", "1"]


@pytest.mark.filterwarnings("ignore:bf16=True")   # its --bf16 run, on a CPU without bf16 units
def test_speedrun_step_budgets_write_one_json_per_point_and_a_table(tmp_path):
    import speedrun
    res, runs, md = tmp_path / "res", tmp_path / "runs", tmp_path / "t.md"
    where = ["--out-dir", str(res), "--runs", str(runs)]
    rows = speedrun.main(["--recipes", "small", "--steps", "1,2", *TINY, *where])
    assert [r["steps"] for r in rows] == [1, 2]                 # one run, stopped at each budget
    files = sorted(p.name for p in res.glob("*.json"))
    assert files == ["small_b4_1steps.json", "small_b4_2steps.json"]
    row = json.loads((res / "small_b4_2steps.json").read_text())
    for key in ("steps", "steps_per_s", "threads", "load_start", "load_end", "confident", "confident_se",
                "classes_present", "kid", "kid_se", "held_out_loss", "config", "net"):
        assert key in row, key
    assert row["threads"] == 1 and row["n"] == 4 and row["config"]["batch_size"] == 4 and row["batch"] == 4
    assert 0.0 <= row["confident"] <= 1.0 and 1 <= row["classes_present"] <= 10 and sum(row["class_counts"]) == 4
    assert (runs / "small_b4_steps" / "snapshots").is_dir()
    # incremental: done points are skipped; a larger budget continues the saved run
    assert speedrun.main(["--recipes", "small", "--steps", "1,2", *TINY, *where]) == []
    more = speedrun.main(["--recipes", "small", "--steps", "1,2,3", *TINY, *where])
    assert [r["steps"] for r in more] == [3]
    text = speedrun.main(["--table", "--out-dir", str(res), "--table-out", str(md)])
    assert md.read_text().startswith("# Speed-run") and "3steps" in text
    assert text.count("| small |") == 1 + 3                          # one summary row, three points
    assert "loaded machine" in text
    assert "| seed |" in text and "batch 4 (--batch)" in text           # a run's seed and its --batch override
    bf = speedrun.main(["--recipes", "small", "--steps", "1", "--bf16", *TINY, *where])   # another run, its own key
    assert [r["config"]["bf16"] for r in bf] == [True] and (res / "small_b4_bf16_1steps.json").exists()
    text = speedrun.main(["--table", "--out-dir", str(res), "--table-out", str(md)])
    assert "| small (bf16) |" in text and "bf16 autocast (--bf16)" in text


def test_speedrun_minute_budgets_and_cosine_needs_a_horizon(tmp_path):
    import speedrun
    where = ["--out-dir", str(tmp_path / "res"), "--runs", str(tmp_path / "runs")]
    rows = speedrun.main(["--recipes", "small", "--minutes", "0.002", *TINY, *where])
    assert len(rows) == 1 and rows[0]["mode"] == "minutes" and rows[0]["train_s"] >= 0.12 and rows[0]["steps"] >= 1
    with pytest.raises(SystemExit, match="decay-steps"):          # one run through two budgets: no horizon
        speedrun.main(["--recipes", "cosine2e3", "--minutes", "0.001,0.002", *TINY, *where])
    auto = speedrun.main(["--recipes", "cosine2e3", "--minutes", "0.002", *TINY, *where])
    assert auto[0]["config"]["lr_decay_steps"] == 0 and auto[0]["config"]["steps"] == 10 ** 9   # the Trainer's own
    cos = speedrun.main(["--recipes", "cosine2e3", "--steps", "2", *TINY, *where])
    assert cos[0]["config"]["lr_schedule"] == "cosine" and cos[0]["config"]["lr_decay_steps"] == 2
    cos = speedrun.main(["--recipes", "cosine2e3", "--minutes", "0.002", "--rate", "100", *TINY, *where])
    assert cos[0]["config"]["lr_decay_steps"] == 12                    # 100 steps/s x 0.12 s
    names = {p.name for p in (tmp_path / "res").glob("cosine*.json")}  # another horizon is another run
    assert names == {"cosine2e3_b4_h2_2steps.json", "cosine2e3_b4_h12_0.002min.json",
                     "cosine2e3_b4_hauto_0.002min.json"}


def test_speedrun_recipes_change_one_thing_against_today():
    import speedrun
    from ddim_edu.train.config import TrainConfig
    today_model, today_cfg, today_net = speedrun.build("today", None, 10, 0)
    assert today_cfg == TrainConfig(steps=10, progress=False, ckpt_every=0, sample_every=0)
    assert today_net == {"widths": [32, 64, 128], "num_res_blocks": 2}
    for name, (train_kw, net_kw, change) in speedrun.RECIPES.items():
        if name in speedrun.COMBINED:                                   # a recipe made of measured changes
            continue
        assert change and len(train_kw) + len(net_kw) <= 2, name      # one change (lr + its schedule count as one)
    # SHIPPED_RECIPE is the preset the CLI and notebook 02 ship; "lapcos" is the first preset, which "lapss99"
    # changes in two places; "laptop" is the first preset with a constant learning rate
    from ddim_edu.train.presets import PRESETS, preset_model
    net, train = PRESETS["laptop"]
    assert speedrun.build("laptop", None, 10, 0)[1].lr_schedule == "constant" and train["lr_schedule"] == "cosine"
    model, cfg, bench_net = speedrun.build(speedrun.SHIPPED_RECIPE, None, 10, 0)
    assert model.config == preset_model("laptop").config and bench_net["widths"] == net["widths"]
    assert all(getattr(cfg, k) == v for k, v in train.items())
    model, cfg, _ = speedrun.build("lapss99", None, 10, 0)
    first, first_cfg, _ = speedrun.build("lapcos", None, 10, 0)
    assert {k: v for k, v in model.config.items() if k != "scale_shift"} == first.config
    assert dataclasses.replace(cfg, adam_beta2=0.999) == first_cfg
    assert "p2fast" in speedrun.COMBINED and speedrun.RECIPES["p2fast"][0].get("loss_weighting", "none") == "none"
    with pytest.raises(SystemExit):
        speedrun.main(["--recipes", "nope", "--steps", "1"])


def test_speedrun_a_recipe_may_train_on_the_cosine_schedule(tmp_path):
    import speedrun
    assert speedrun.recipe_schedule(speedrun.SHIPPED_RECIPE).to_config() == de.NoiseSchedule.linear(1000).to_config()
    assert speedrun.recipe_schedule("lowtcos").to_config() == de.NoiseSchedule.cosine(1000).to_config()
    _, cfg, _ = speedrun.build("lowtcos", None, 10, 0)                 # the schedule is not a TrainConfig option
    assert cfg.t_sampling == "uniform" and not hasattr(cfg, "noise_schedule")
    where = ["--out-dir", str(tmp_path / "res"), "--runs", str(tmp_path / "runs")]
    rows = speedrun.main(["--recipes", "lowtcos", "--steps", "1", *TINY, *where])
    _, sched, _ = de.train.checkpoints.load_model(tmp_path / "runs" / "lowtcos_b4_h1_steps")
    assert rows[0]["steps"] == 1 and sched.to_config() == de.NoiseSchedule.cosine(1000).to_config()


def test_speedrun_speed_mode_times_the_cpu_knobs(tmp_path, monkeypatch):
    """Every knob timed, the file named with --tag; on a CPU whose flags (here an AVX2 one's) list no bf16 unit,
    bf16 only with --bf16, and then with no bf16 warning: it times bf16 on purpose. The file names the CPU."""
    import speedrun
    monkeypatch.setattr(de.env, "cpu_flags", lambda: ["fpu", "avx2", "fma"])
    monkeypatch.setattr(de.env, "cpu_model", lambda: "Some CPU")
    run = ["--speed", "--recipes", "small", "--batch", "4", "--threads", "1", "--speed-steps", "1", "--tag", "avx2",
           "--out-dir", str(tmp_path)]
    assert set(speedrun.main(run)["small"]["steps_per_s"]) == {f"threads=1,channels_last={cl},bf16=False"
                                                                 for cl in (False, True)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = speedrun.main([*run, "--bf16"])
    assert not [w for w in caught if "bf16" in str(w.message)]
    knobs = res["small"]["steps_per_s"]
    assert set(knobs) == {f"threads=1,channels_last={cl},bf16={bf}" for cl in (False, True) for bf in (False, True)}
    assert all(v > 0 for v in knobs.values()) and set(res["small"]["image_evals_per_s"]) == {"no_grad", "inference_mode"}
    saved = json.loads((tmp_path / "speed_small_b4_avx2.json").read_text())
    assert saved["batch"] == 4 and saved["cpu_model"] == "Some CPU" and saved["cpu_simd"] == ["avx2"]
    assert res["small"]["cpu_bf16"] == []
    text = speedrun.main(["--table", "--out-dir", str(tmp_path), "--table-out", str(tmp_path / "t.md")])
    assert "CPU speed knobs" in text and "| Some CPU (avx2) |" in text


def test_speedrun_reference_rows(tmp_path):
    """--shipped scores real digits, noise and the shipped model; the table lists them."""
    import speedrun
    rows = speedrun.main(["--shipped", "--n", "4", "--sample-steps", "2", "--threads", "1", "--out-dir", str(tmp_path)])
    assert [r["recipe"] for r in rows] == ["real", "noise", "shipped"]
    assert rows[0]["held_out_loss"] is None and rows[2]["held_out_loss"] > 0
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["noise_n4.json", "real_n4.json", "shipped_n4.json"]
    text = speedrun.main(["--table", "--out-dir", str(tmp_path), "--table-out", str(tmp_path / "t.md")])
    assert "| noise |" in text and "| shipped |" in text


def test_speedrun_target_uses_the_2000_sample_kid_where_a_run_has_one():
    """The target check: >= 60% confident, ten classes, KID <= 3x the shipped model's; 2,000-sample KIDs
    (a kid_table.py file naming the run's folder) replace both KIDs of that run; the first budget met."""
    import speedrun
    point = lambda b, conf, cl, kid: {"mode": "minutes", "budget": b, "steps": 100 * b, "n": 500,  # noqa: E731
                                      "confident": conf, "classes_present": cl, "kid": kid, "kid_se": 0.001}
    shipped = {"mode": "reference", "recipe": "shipped", "n": 500, "kid": 0.002, "kid_se": 0.001}
    points = [("a_minutes", point(10, 0.70, 10, 0.0061)),      # 3.05x the shipped's 500-sample KID: no
              ("b_minutes", point(20, 0.70, 9, 0.001)),        # nine classes: no
              ("c_minutes", point(30, 0.59, 10, 0.001)),       # 59% confident: no
              ("d_minutes", point(40, 0.61, 10, 0.010)),       # 5x on 500 samples, 2.5x on 2,000: yes
              ("e_minutes", point(50, 0.61, 10, 0.0058)),      # 2.9x: yes, but later
              ("shipped", shipped)]
    kid_runs = [{"checkpoint": "runs/speedrun/d_minutes", "n": 2000, "against": "../checkpoints/mnist",
                 "cells": {"eta=0,S=50": {"kid": 0.0025, "kid_se": 0.0005}},
                 "minus_against": {"eta=0,S=50": {"cell": {"kid": 0.001, "kid_se": 0.0004}, "diff": 0.0015,
                                                  "se": 0.0003}}}]
    text = speedrun.target(points, kid_runs)
    met = {line.split(" | ")[0].strip("| "): line.rstrip(" |").split(" | ")[-1] for line in text.splitlines()
           if line.startswith("| ") and "_minutes" in line}
    assert met == {"a_minutes": "no", "b_minutes": "no", "c_minutes": "no", "d_minutes": "yes", "e_minutes": "yes"}
    assert "first met at 40min (d_minutes)" in text
    assert "0.0025 ± 0.0005 (n = 2000) | 0.0010 | 2.5×" in text
    assert "not met at any budget measured" in speedrun.target(points[:3] + points[5:], [])
    rerun = ("d2_minutes", point(40, 0.61, 10, 0.0061))  # a second run of 40 minutes, 3.05x on 500 samples: no
    text = speedrun.target(points + [rerun], kid_runs)
    assert "first met at 40min (d_minutes), by 1 of the 2 runs of that budget" in text
    assert "laptop preset" not in text                                # none of these runs is the preset's
    preset = {"recipe": speedrun.SHIPPED_RECIPE, "batch": 64, "net": {"widths": [32, 64, 128]}}
    as_preset = [(f, {**r, **preset}) for f, r in points[3:5] + [rerun]]
    other_batch = ("f_minutes", {**point(60, 0.70, 10, 0.001), **preset, "batch": 32})   # --batch 32: not the preset
    text = speedrun.target(as_preset + [other_batch] + points[:3] + points[5:], kid_runs)
    assert "met it in 1 of 2 runs of 40min, 1 of 1 runs of 50min.**" in text          # d2: 3.05x; f: another batch
    assert f"The laptop preset ({speedrun.SHIPPED_RECIPE}, on every CPU measured" in text


def test_verdict_margin_against_the_shipped_model():
    """KID − 3× the shipped model's: kid_table.py --ratio 3's own paired error where the file has it; else
    from the file's three errors, var = −2·se_run² + 6·se_shipped² + 3·se_diff²; else the lower bound
    |3·se_shipped − se_run|; and no sign on a margin that rounds to 0."""
    import speedrun
    run, shipped = {"kid": 0.0030, "kid_se": 0.0009}, {"kid": 0.0007, "kid_se": 0.0007}
    with_ratio = {"cell": shipped, "diff": 0.0023, "se": 0.0007,
                  "minus_ratio": {"ratio": 3.0, "diff": 0.0009, "se": 0.0016}}
    assert speedrun.verdict_margin(run, shipped, with_ratio) == (0.0009, 0.0016, True)
    d, se, exact = speedrun.verdict_margin(run, shipped, {"cell": shipped, "diff": 0.0023, "se": 0.0007})
    assert exact and d == pytest.approx(0.0009)
    assert se == pytest.approx(math.sqrt(-2 * 0.0009 ** 2 + 6 * 0.0007 ** 2 + 3 * 0.0007 ** 2))
    d, bound, exact = speedrun.verdict_margin(run, shipped, None)
    assert not exact and (d, bound) == pytest.approx((0.0009, 0.0012)) and bound <= se
    assert speedrun.verdict_margin(run, None, None) is None
    assert (speedrun.signed(-0.00004), speedrun.signed(0.0009), speedrun.signed(-0.0011)) == ("0.0000", "+0.0009", "-0.0011")


def test_speedrun_target_takes_the_margin_from_the_file_paired_with_the_shipped_model():
    """A run with two kid files, one against another run and one against the shipped model: its KID, the
    shipped model's and the margin all come from the second, and the runs within one error are counted."""
    import speedrun
    point = {"mode": "minutes", "budget": 30, "steps": 100, "n": 500, "confident": 0.65, "classes_present": 10,
             "kid": 0.004, "kid_se": 0.001}
    cell = {"kid": 0.0030, "kid_se": 0.0009}
    shipped = {"kid": 0.0007, "kid_se": 0.0007}
    files = [{"checkpoint": "runs/speedrun/run_minutes", "n": 2000, "against": "runs/speedrun/other_minutes",
              "cells": {"eta=0,S=50": cell}, "minus_against": {"eta=0,S=50": {"cell": cell, "diff": 0.0, "se": 0.0}}},
             {"checkpoint": "runs/speedrun/run_minutes", "n": 2000, "against": "../checkpoints/mnist",
              "cells": {"eta=0,S=50": cell},
              "minus_against": {"eta=0,S=50": {"cell": shipped, "diff": 0.0023, "se": 0.0007,
                                               "minus_ratio": {"ratio": 3.0, "diff": 0.0009, "se": 0.0016}}}}]
    for kid_runs in (files, files[::-1]):
        text = speedrun.target([("run_minutes", point)], kid_runs)
        assert "| 0.0030 ± 0.0009 (n = 2000) | 0.0007 | 4.3× | +0.0009 ± 0.0016 | no |" in text
        assert "At least 1 of the 1 runs lie within one such error" in text


def test_speedrun_target_judges_the_against_run_of_a_kid_file_on_its_2000_samples():
    """A run scored on 2,000 samples only as another run's --against is judged on that score, not on its
    500-sample point: 2x on 500 samples (met) becomes 4x on 2,000 (not met)."""
    import speedrun
    point = lambda b, kid: {"mode": "minutes", "budget": b, "steps": 100, "n": 500, "confident": 0.65,  # noqa: E731
                            "classes_present": 10, "kid": kid, "kid_se": 0.001}
    points = [("base_minutes", point(30, 0.002)), ("variant_minutes", point(30, 0.010)),
              ("shipped", {"mode": "reference", "recipe": "shipped", "n": 500, "kid": 0.001, "kid_se": 0.001})]
    with_shipped = {"checkpoint": "runs/other", "n": 2000, "against": "checkpoints/mnist", "cells": {},
                    "minus_against": {"eta=0,S=50": {"cell": {"kid": 0.0007, "kid_se": 0.0005}}}}
    pair = {"checkpoint": "runs/speedrun/variant_minutes", "n": 2000, "against": "runs/speedrun/base_minutes",
            "cells": {"eta=0,S=50": {"kid": 0.0056, "kid_se": 0.0012}},
            "minus_against": {"eta=0,S=50": {"cell": {"kid": 0.0028, "kid_se": 0.0008}}}}
    assert "first met at 30min (base_minutes)" in speedrun.target(points, [with_shipped])      # 500 samples: 2x
    text = speedrun.target(points, [with_shipped, pair])
    assert ("| base_minutes | 30min | 100 | 65.0% | 10 | 0.0028 ± 0.0008 (n = 2000) | 0.0007 | 4.0× | "
            "+0.0007 (error ≥ 0.0007) | no |") in text                 # 0.0028 − 3 × 0.0007; |3 × 0.0005 − 0.0008|
    assert "not met at any budget measured" in text


def test_the_summary_keeps_runs_at_another_learning_rate_apart():
    """lr_note names a point's learning rate only where it is not its recipe's own; a screen.py recipe (not in
    RECIPES) trains the laptop preset, whose rate is then the one to differ from."""
    from speedrun import RECIPES, SHIPPED_RECIPE, lr_note
    preset_lr = RECIPES[SHIPPED_RECIPE][0]["lr"]
    assert lr_note({"recipe": "lowtlion", "config": {"lr": 6e-4}}) == ", lr 0.0006"
    assert lr_note({"recipe": "lowtlion", "config": {"lr": preset_lr}}) == ""
    assert lr_note({"recipe": "lapss3e3", "config": {"lr": 3e-3}}) == ""            # that recipe's own rate
    assert lr_note({"recipe": "lapss3e3", "config": {"lr": preset_lr}}) == f", lr {preset_lr:g}"
    assert lr_note({"recipe": "today", "config": {}}) == ""                            # no rate recorded


def test_the_summary_keeps_runs_of_another_tag_apart():
    """run_tag reads a point file's --tag back from its name: what is left of the run's key after the recipe, batch,
    widths, horizon, seed, bf16 and separate budget (names as speedrun.py writes them, and as results/ holds them)."""
    from speedrun import run_tag
    steps, minutes = {"mode": "steps", "budget": 2437}, {"mode": "minutes", "budget": 30.0}
    assert run_tag("lowtfloor05_b64_h2437_avx2t1_2437steps", steps) == "avx2t1"
    assert run_tag("lowtfloor05_b64_h2437_2437steps", steps) == ""
    assert run_tag("lapsslowt_b64_w16-64-128_hauto_bf16_sep30min_epyc_30min", minutes) == "epyc"
    assert run_tag("lowtfloor05_b64_hauto_s2_bf16_sep30min_epyc1207_30min", minutes) == "epyc1207"
    assert run_tag("lapss99_b64_hauto_s1_bf16_sep30min_30min", minutes) == ""
