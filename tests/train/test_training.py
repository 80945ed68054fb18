"""Training: the loss L_simple, the EMA, the loop (loss falls, time budget, snapshots), the
config's checks, and the PNG writer the sample grids use."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from ddim_edu.nets import MLPDenoiser
from ddim_edu.train import checkpoints as ck
from ddim_edu.train.trainer import Trainer, TrainConfig, diffusion_loss, make_ema, train
from train_helpers import SCHED, equal_states, toy_data, trainer


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


def test_adam_beta2_reaches_the_optimiser_and_survives_a_resume(tmp_path):
    tr = trainer(MLPDenoiser(), toy_data(), steps=2, out=tmp_path, adam_beta2=0.99)
    assert tr.opt.param_groups[0]["betas"] == (0.9, 0.99)
    assert trainer(MLPDenoiser(), toy_data(), steps=1).opt.param_groups[0]["betas"] == (0.9, 0.999)
    tr.fit()
    again = trainer(MLPDenoiser(), toy_data(), steps=2, out=tmp_path, adam_beta2=0.99)
    again.restore(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())["training"]   # what a resume reads back
    assert saved["adam_beta2"] == 0.99 and again.opt.param_groups[0]["betas"] == (0.9, 0.99)
    with pytest.raises(ValueError, match=r"adam_beta2 must be in \[0.0, 0.9999\], got 1.0"):
        TrainConfig(adam_beta2=1.0).validate()


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

def test_trainer_validates():
    with pytest.raises(ValueError, match="steps"):
        trainer(MLPDenoiser(), toy_data(), steps=0)
    with pytest.raises(TypeError, match="data"):
        Trainer(MLPDenoiser(), SCHED, [[0.0, 1.0]], TrainConfig(steps=1))
    with pytest.raises(TypeError, match="unknown training option"):
        train(MLPDenoiser(), toy_data(), SCHED, steps=1, learning_rate=1.0)
    bad = toy_data().clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"data must be finite, got 1 NaN"):
        Trainer(MLPDenoiser(), SCHED, bad, TrainConfig(steps=1))
    with pytest.raises(ValueError, match=r"val_data must be finite, got 1 NaN"):
        Trainer(MLPDenoiser(), SCHED, toy_data(), TrainConfig(steps=1), val_data=bad)


def test_config_checks_every_field_by_its_metadata():
    assert TrainConfig().validate() == TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata["help"], f"{f.name} has no help text"
        if f.metadata["lo"] is not None:
            below = f.metadata["lo"] if f.metadata["lo_open"] else f.metadata["lo"] - 1
            with pytest.raises(ValueError, match=f.name):
                TrainConfig(**{f.name: type(f.default or 0)(below)}).validate()
    with pytest.raises(TypeError, match="progress"):
        TrainConfig(progress=1).validate()
    with pytest.raises(TypeError, match="steps"):
        TrainConfig(steps=10.0).validate()
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.5).validate()


def test_train_helper_keeps_the_config_defaults_but_no_checkpoints():
    tr = train(MLPDenoiser(hidden=8), toy_data(), SCHED, steps=2, batch_size=8, progress=False, device="cpu")
    expected = dataclasses.replace(TrainConfig(), steps=2, batch_size=8, progress=False, ckpt_every=0)
    assert tr.cfg == expected and tr.step == 2 and tr.save_samples() is None


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


def test_the_optimiser_step_is_adamw_by_hand_fused_where_supported():
    """Each step moves the weights by AdamW's update (Loshchilov & Hutter 2019, Algorithm 2, with Adam's
    bias corrections) computed here from the gradients the step saw; on the CPU with float32 weights the
    trainer takes PyTorch's fused kernel; a float16 model or one without parameters is not offered it."""
    from ddim_edu.train.optim import fused_adamw_supported
    torch.manual_seed(0)
    tr = trainer(MLPDenoiser(), toy_data(), steps=4, lr=1e-2, lr_warmup=0, weight_decay=0.05, adam_beta2=0.99,
                 grad_clip=0.0)
    assert tr.opt.param_groups[0]["fused"] is True
    assert not fused_adamw_supported(MLPDenoiser().half(), torch.device("cpu"))
    assert not fused_adamw_supported(torch.nn.Module(), torch.device("cpu"))
    seen = []
    tr.opt.register_step_pre_hook(lambda opt, *_: seen.append(
        [(p.detach().clone(), p.grad.detach().clone()) for p in tr.model.parameters()]))
    b1, b2, eps, lr, wd = 0.9, 0.99, 1e-8, 1e-2, 0.05
    m = [torch.zeros_like(p) for p in tr.model.parameters()]
    v = [torch.zeros_like(p) for p in tr.model.parameters()]
    for n in range(1, 5):
        tr.train_step()
        for i, ((theta, g), after) in enumerate(zip(seen[-1], tr.model.parameters())):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat, v_hat = m[i] / (1 - b1 ** n), v[i] / (1 - b2 ** n)
            expected = theta * (1 - lr * wd) - lr * m_hat / (v_hat.sqrt() + eps)
            torch.testing.assert_close(after.detach(), expected, rtol=1e-5, atol=1e-7)
