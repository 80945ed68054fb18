"""A cosine learning rate under a time budget alone: the run measures its own speed, sets the step where
the budget will run out (schedules.budget_horizon), measures again at 10%, 25%, 50% and 75% of the budget,
each time over the steps since the previous measurement, and moves that step, and the cosine reaches 0
there. Checked on a fake clock against the closed-form cosine
(Loshchilov & Hutter 2017, eq. 5) and the arithmetic of the budget."""
from __future__ import annotations

import json
import math

import pytest

from ddim_edu.nets import MLPDenoiser
from ddim_edu.train.config import UNLIMITED_STEPS
from ddim_edu.train.schedules import budget_horizon, calibration_seconds, measure_times

from train_helpers import toy_data, trainer

LR, WARMUP = 1e-3, 10


def test_calibration_lasts_5_percent_of_the_budget_between_10_and_60_s():
    assert calibration_seconds(600) == 30.0                 # 10 minutes: 30 s
    assert calibration_seconds(100) == 10.0 and calibration_seconds(3600) == 60.0
    assert calibration_seconds(4) == 2.0 and calibration_seconds(20) == 10.0   # never over half the budget


def test_the_speed_is_measured_again_at_10_25_50_and_75_percent_of_the_budget():
    assert measure_times(600) == (30.0, 60.0, 150.0, 300.0, 450.0)
    assert measure_times(1800) == (60.0, 180.0, 450.0, 900.0, 1350.0)
    assert measure_times(60) == (10.0, 15.0, 30.0, 45.0)    # 10% (6 s) would come before the first 10 s
    assert measure_times(4) == (2.0, 3.0)


def test_budget_horizon_is_now_plus_speed_times_time_left():
    assert budget_horizon(100, 10.0, 49.9) == 599
    assert budget_horizon(7, 0.0, 100.0) == 8               # at least one step more
    with pytest.raises(ValueError, match="steps_per_s must be a finite number >= 0, got nan"):
        budget_horizon(0, math.nan, 1.0)
    with pytest.raises(ValueError, match="seconds_left must be a finite number >= 0, got -1"):
        budget_horizon(0, 1.0, -1.0)


def _run(monkeypatch, seconds_per_step, tmp_path=None, **kw):
    """A budget run on a fake clock: step n (1-based) takes ``seconds_per_step(n)`` seconds.
    Returns the trainer and the learning rate each step used."""
    clock, used = [0.0], []
    tr = trainer(MLPDenoiser(dim=2, hidden=8, num_layers=1), toy_data(), out=tmp_path, batch_size=4, lr=LR,
                 lr_warmup=WARMUP, log_every=1000, **{"steps": UNLIMITED_STEPS, "max_minutes": 1.0,
                                                       "lr_schedule": "cosine", **kw})
    tr.clock, step = (lambda: clock[0]), tr.train_step

    def timed_step():
        out = step()
        used.append(tr.opt.param_groups[0]["lr"])          # what AdamW was given for this step
        clock[0] += seconds_per_step(tr.step)
        return out
    monkeypatch.setattr(tr, "train_step", timed_step)
    return tr.fit(), used


def _cosine(n, horizon):
    return LR * min(1.0, (n + 1) / WARMUP) * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0, n - WARMUP)
                                                                             / (horizon - WARMUP))))


def test_a_steady_run_ends_its_cosine_with_its_budget(monkeypatch, tmp_path):
    tr, used = _run(monkeypatch, lambda n: 0.1, tmp_path)   # 10 steps/s for 60 s: 600 steps
    # measured from step 1 (t = 0.1 s) to the first step past 10 s: 10 steps/s, so the budget ends at step
    # 600; measured again past 15 s, 30 s and 45 s, at the same speed: still 600
    assert tr.lr_horizon == 600 and tr.step == 600
    first, *again = tr.horizon_info["measurements"]
    assert first["measured_at_step"] in (100, 101) and first["measured_over_s"] == pytest.approx(10.0, abs=0.11)
    assert [m["measured_at_step"] for m in again] == pytest.approx([150, 300, 450], abs=1)
    assert [m["lr_decay_steps"] for m in tr.horizon_info["measurements"]] == [600] * 4
    assert [m["steps_per_s"] for m in tr.horizon_info["measurements"]] == pytest.approx([10.0] * 4)
    assert tr.horizon_info["measured_at_step"] == again[-1]["measured_at_step"]      # the last one on top
    start = first["measured_at_step"]
    assert used[:start] == pytest.approx([LR * min(1.0, (n + 1) / WARMUP) for n in range(start)])  # no horizon yet
    assert used[start:] == pytest.approx([_cosine(n, 600) for n in range(start, 600)], abs=1e-15)
    assert used[-1] < 1e-5 * LR                             # the last step's lr: about 0
    saved = json.loads((tmp_path / "config.json").read_text())["training"]
    assert saved["lr_decay_from_budget"]["lr_decay_steps"] == 600 and saved["lr_decay_steps"] == 0
    assert len(saved["lr_decay_from_budget"]["measurements"]) == 4


def slow_start(n):
    """8 steps/s for the first 10 s, then 16 (times exact in binary: the checks fall on exact steps)."""
    return 0.125 if n <= 80 else 0.0625


def test_a_slow_first_part_is_corrected_by_measuring_again(monkeypatch, capsys):
    """The speed over the first 10 s alone would end the cosine at step 480 and stop the run there, at
    35 s of its 60. Measured again at 15 s over the steps since 10 s, the end moves to 880, where the
    budget runs out, and stays there at 30 s and 45 s; the cosine follows it: each step's lr is the cosine
    of the end known at that step."""
    tr, used = _run(monkeypatch, slow_start)
    # check at 10 s: step 80 (t = 10), speed over steps 2..80 = 79 / 9.875 = 8.0, 50 s left: 80 + 400
    # check at 15 s: step 160, speed over steps 81..160 = 80 / 5 = 16, 45 s left: 160 + 720
    # checks at 30 s and 45 s: steps 400 and 640, 16 steps/s since the last check, 30 and 15 s left
    assert [(m["measured_at_step"], m["steps_per_s"], m["lr_decay_steps"])
            for m in tr.horizon_info["measurements"]] == [(80, 8.0, 480), (160, 16.0, 880), (400, 16.0, 880),
                                                          (640, 16.0, 880)]
    assert tr.lr_horizon == 880 and tr.step == 880                  # at 10 + 800/16 = 60 s: the whole budget
    expected = [LR * min(1.0, (n + 1) / WARMUP) for n in range(80)] + [_cosine(n, 480) for n in range(80, 160)] \
        + [_cosine(n, 880) for n in range(160, 880)]
    assert used == pytest.approx(expected, abs=1e-15)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("learning-rate decay")]
    assert [line.split(", so it ")[1].split(",")[0] for line in lines] == [
        "reaches 0 at step 480", "now reaches 0 at step 880", "still reaches 0 at step 880",
        "still reaches 0 at step 880"]
    assert lines[1] == ("learning-rate decay measured again: 16.00 steps/s from 10 s to 15 s, so it now reaches 0 "
                        "at step 880, not 480, when the 1-min budget is expected to run out")


def test_a_step_that_passes_two_checks_measures_once(monkeypatch):
    """Step 73 takes 6.5 s, from 9 s to 15.5 s, past the checks at 10 s and 15 s: one measurement for both,
    then the next at 30 s and 45 s."""
    tr, _ = _run(monkeypatch, lambda n: 6.5 if n == 73 else 0.125)
    # at 15.5 s: speed since step 1 (t = 0.125) = 72 / 15.375, 44.5 s left: 73 + 208 = 281
    # at 30 s: step 73 + 14.5 x 8 = 189, 8 steps/s since 15.5 s, 30 s left: 189 + 240 = 429; at 45 s: 309 + 120
    assert [(m["measured_at_step"], m["measured_over_s"], m["lr_decay_steps"])
            for m in tr.horizon_info["measurements"]] == [(73, 15.5, 281), (189, 30.0, 429), (309, 45.0, 429)]
    assert tr.step == 429                                    # at 45 + 120/8 = 60 s


def test_a_budget_under_20_s_measures_over_its_first_half(monkeypatch):
    tr, used = _run(monkeypatch, lambda n: 0.125, max_minutes=0.0625)    # 3.75 s at 8 steps/s: 30 steps
    # first check at 1.875 s: step 15, speed 14 / 1.75 = 8 steps/s, 1.875 s left: 15 + 15 = 30
    # again at 75%, 2.8125 s: step 23 (2.875 s), 8 / 1.0 = 8 steps/s since step 15, 0.875 s left: 23 + 7 = 30
    assert [(m["measured_at_step"], m["lr_decay_steps"]) for m in tr.horizon_info["measurements"]] == \
        [(15, 30), (23, 30)]
    assert tr.step == 30 and used[-1] == pytest.approx(_cosine(29, 30))


def test_a_linear_decay_ends_with_its_budget_too(monkeypatch):
    """--lr-schedule linear measures the same horizon and falls by equal steps to 0 there."""
    tr, used = _run(monkeypatch, lambda n: 0.1, lr_schedule="linear")
    assert tr.lr_horizon == 600 and tr.step == 600
    assert used[101:] == pytest.approx([LR * (1 - (n - WARMUP) / (600 - WARMUP)) for n in range(101, 600)],
                                       abs=1e-15)
    assert used[-1] == pytest.approx(LR / (600 - WARMUP))   # one step's drop above 0


def test_a_run_that_speeds_up_after_the_last_check_stops_at_its_horizon(monkeypatch):
    tr, used = _run(monkeypatch, lambda n: 0.125 if n <= 360 else 0.0625)   # 8 steps/s for 45 s, then 16
    assert [m["lr_decay_steps"] for m in tr.horizon_info["measurements"]] == [480] * 4
    assert tr.lr_horizon == 480 and tr.step == 480 and tr.stopped is None      # at 45 + 120/16 = 52.5 s of 60
    assert used[-1] == pytest.approx(_cosine(479, 480))


def test_a_speed_up_after_half_the_budget_is_followed_at_three_quarters(monkeypatch):
    tr, used = _run(monkeypatch, lambda n: 0.125 if n <= 240 else 0.1)      # 8 steps/s for 30 s, then 10
    # at 45 s: step 240 + 150 = 390, 10 steps/s since 30 s, 15 s left: 390 + 150 = 540 (not 480)
    assert [m["lr_decay_steps"] for m in tr.horizon_info["measurements"]] == [480, 480, 480, 540]
    assert tr.step in (539, 540) and used[-1] == pytest.approx(_cosine(tr.step - 1, 540))   # 60 s, 540 by float


def test_a_run_that_slows_down_after_the_last_check_stops_with_its_budget_before_the_horizon(monkeypatch):
    tr, used = _run(monkeypatch, lambda n: 0.125 if n <= 360 else 0.25)     # 8 steps/s for 45 s, then 4
    assert tr.lr_horizon == 480 and tr.step == 420                             # 45 s + 60 x 0.25 s = 60 s
    assert "time budget" in tr.stopped and used[-1] == pytest.approx(_cosine(419, 480))


@pytest.mark.parametrize("kw", [{"lr_decay_steps": 300}, {"steps": 500}, {"lr_schedule": "constant"}])
def test_a_step_count_or_horizon_or_constant_lr_is_kept(monkeypatch, kw):
    tr, used = _run(monkeypatch, lambda n: 0.1, **kw)
    assert tr.lr_horizon is None and tr.horizon_info is None
    n = len(used) - 1
    end = kw.get("lr_decay_steps") or kw.get("steps")
    assert used[-1] == pytest.approx(_cosine(n, end) if end else LR)


def test_a_resumed_budget_measures_its_own_horizon(monkeypatch, tmp_path):
    """Each fit with a time budget is a budget of its own: resumed, the cosine stretches to its new end."""
    tr, _ = _run(monkeypatch, lambda n: 0.1, tmp_path)
    clock = [0.0]
    tr.clock, step = (lambda: clock[0]), tr.train_step

    def timed_step():
        out = step()
        clock[0] += 0.1
        return out
    monkeypatch.setattr(tr, "train_step", timed_step)
    tr.fit()
    assert tr.step == 1200 and tr.lr_horizon == 1200
    assert tr.horizon_info["measurements"][0]["measured_at_step"] in (700, 701)   # 10 s into the new budget
    assert len(tr.horizon_info["measurements"]) == 4                               # and at 15 s, 30 s, 45 s


DDP_SCRIPT = '''
import json, os, sys, torch, torch.distributed as dist
from ddim_edu.nets import MLPDenoiser
from ddim_edu.diffusion.schedule import NoiseSchedule
from ddim_edu.train.trainer import Trainer, TrainConfig
dist.init_process_group("gloo")
rank = dist.get_rank()
clock = [0.0]
tr = Trainer(MLPDenoiser(hidden=8), NoiseSchedule.linear(1000), torch.randn(64, 2), TrainConfig(
    steps=10 ** 9, max_minutes=1.0, lr_schedule="cosine", lr_warmup=10, batch_size=8, log_every=1000,
    ckpt_every=0, progress=False), device="cpu")
tr.clock, step = (lambda: clock[0]), tr.train_step
def timed_step():
    out = step()
    # rank 1's clock says it is twice as slow (0.2 s a step), then, after 30 s, 0.15 s a step
    clock[0] += 0.1 if rank == 0 else (0.2 if clock[0] < 30 - 1e-9 else 0.15)
    return out
tr.train_step = timed_step
tr.fit()
w = torch.cat([p.detach().flatten() for p in tr.model.parameters()])
with open(f"{sys.argv[1]}/rank{rank}.json", "w") as f:
    json.dump({"step": tr.step, "horizon": tr.lr_horizon, "lr": tr.lr_at(tr.step - 1), "w": w.tolist(),
               "checks": [[m["measured_at_step"], m["measured_over_s"], m["lr_decay_steps"]]
                          for m in tr.horizon_info["measurements"]]},
              f)
dist.barrier()
# both ranks have written their answers; leave without gloo's teardown, which can abort one rank at exit
# ("terminate called without an active exception") when the other closes its connections first
os._exit(0)
'''


def test_data_parallel_ranks_share_one_horizon(tmp_path):
    """Each rank reads its own clock; the horizon comes from the rank furthest through the checks (the
    slower clock's), so every rank measures at the same steps, uses the same learning rate and stops at the
    same step."""
    import subprocess
    import sys
    from train_helpers import ROOT, SUB_ENV
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(script), str(tmp_path)], cwd=ROOT, env=SUB_ENV, capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in range(2))
    # rank 1 passes 10 s at step 51 (measured from step 1 at 0.2 s: 5 steps/s), 49.8 s left: 51 + 249 = 300,
    # and again at 15 s and 30 s (steps 75 or 76, 150 or 151: float sums of 0.2), 5 steps/s since the last
    # check: still 300 (± 1 by float). Then 0.15 s a step: at 45 s, step 250 or 251, 100 steps in 15 s since
    # the 30-s check, 15 s left: about 250 + 100 = 350 (an average since the first step: 250 / 45 s, about 333)
    assert a["checks"] == b["checks"]
    assert [step for step, _, _ in a["checks"]] == pytest.approx([51, 76, 151, 251], abs=1)
    assert [s for _, s, _ in a["checks"]] == pytest.approx([10.0, 15.0, 30.0, 45.0], abs=0.21)
    assert [end for _, _, end in a["checks"][:3]] == pytest.approx([300, 300, 300], abs=1)
    assert a["horizon"] == b["horizon"] == a["checks"][3][2] == pytest.approx(350, abs=3)
    # both ranks stop at the same step: the horizon, or rank 1's 60 s (step 350 or 351), whichever comes first
    assert a["step"] == b["step"] == pytest.approx(350, abs=3)
    assert a["lr"] == b["lr"] and a["w"] == b["w"]
