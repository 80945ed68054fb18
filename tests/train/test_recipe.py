"""The training-recipe knobs (loss weighting, lr schedule, shift augmentation,
channels_last, per-level UNet blocks): each formula against a hand computation, and the
defaults give today's training bit-for-bit."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from ddim_edu import env
from ddim_edu.nets import UNet, build_model
from ddim_edu.train import cli as train_cli
from ddim_edu.train.config import TrainConfig
from ddim_edu.train.loss import diffusion_loss, loss_weights, sample_timesteps
from ddim_edu.train.schedules import lr_at, random_shift

from train_helpers import SCHED, equal_states, tiny_unet, trainer

TODAY = dict(loss_weighting="none", min_snr_gamma=5.0, min_snr_floor=0.0, t_sampling="uniform", lr_schedule="constant",
             lr_decay_steps=0, augment_shift=0, channels_last=None, bf16=None)


def digits(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1


# ------------------------------------------------------------------ min-SNR weights
def test_min_snr_weight_matches_a_hand_computation():
    """w_t = min(SNR_t, γ)/SNR_t, SNR_t = ᾱ_t/(1 − ᾱ_t), ᾱ_t = Π_{s ≤ t} (1 − β_s), linear β from 1e-4 to 0.02."""
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    t = torch.tensor([0, 10, 100, 500, 999])
    expected = []
    for ti in t.tolist():
        ab = math.prod(1 - b for b in betas[:ti + 1])
        snr = ab / (1 - ab)
        expected.append(min(snr, 5.0) / snr)
    got = loss_weights(SCHED, t, "min_snr", 5.0)
    assert got.dtype == torch.float64 and torch.allclose(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-9)
    assert abs(got[0].item() - 5.0 * 1e-4 / (1 - 1e-4)) < 1e-12      # t = 0: ᾱ = 1 − β_1, w = γ β_1/(1 − β_1)
    assert got[-1].item() == 1.0                                      # noisy t: SNR < γ, weight 1
    assert torch.equal(loss_weights(SCHED, t, "none"), torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="weighting"):
        loss_weights(SCHED, t, "edm")
    with pytest.raises(ValueError, match="gamma"):
        loss_weights(SCHED, t, "min_snr", 0.0)


def test_min_snr_floor_matches_a_hand_computation():
    """max(min(SNR_t, γ)/SNR_t, w_min): w_min below the plain weight changes nothing, above it replaces it;
    a floor of 1 is L_simple's weight at every t; floors outside [0, 1] are refused by name."""
    t = torch.arange(1000)
    plain = loss_weights(SCHED, t, "min_snr", 5.0)
    floored = loss_weights(SCHED, t, "min_snr", 5.0, 0.2)
    for ti in (0, 1, 20, 57, 58, 100, 500, 999):
        assert floored[ti].item() == max(plain[ti].item(), 0.2)
    assert floored[0].item() == 0.2 and plain[0].item() < 1e-3                    # t = 0 kept, not 5e-4
    assert torch.equal(loss_weights(SCHED, t, "min_snr", 5.0, 0.0), plain)
    assert torch.equal(loss_weights(SCHED, t, "min_snr", 5.0, 1.0), loss_weights(SCHED, t, "none"))
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="floor"):
            loss_weights(SCHED, t, "min_snr", 5.0, bad)
    with pytest.raises(ValueError, match="min_snr_floor"):
        TrainConfig(min_snr_floor=2.0).validate()


# ------------------------------------------------------------------ how t is drawn
def _logit_normal_mass(T, lo, hi):
    """P(lo ≤ t < hi) for t = ⌊T·sigmoid(z)⌋, z ~ N(0, 1): Φ(logit(hi/T)) − Φ(logit(lo/T)), by hand."""
    def cdf(u):
        if u <= 0:
            return 0.0
        if u >= 1:
            return 1.0
        return 0.5 * (1 + math.erf(math.log(u / (1 - u)) / math.sqrt(2)))
    return cdf(hi / T) - cdf(lo / T)


def test_logit_normal_timesteps_follow_their_closed_form():
    """200,000 draws against the normal CDF through the logit: ten bins of 100 timesteps by a chi-square
    test (9 degrees of freedom; 45 is exceeded by chance with probability under 1e-6), and the middle
    drawn more often than either end, where U{0..T−1} gives every bin 10%."""
    n, T = 200_000, 1000
    t = sample_timesteps(T, n, torch.Generator().manual_seed(0), "logit_normal")
    assert t.dtype == torch.long and t.shape == (n,) and int(t.min()) >= 0 and int(t.max()) <= T - 1
    counts = torch.bincount(t // 100, minlength=10).double()
    expected = torch.tensor([_logit_normal_mass(T, 100 * k, 100 * (k + 1)) for k in range(10)], dtype=torch.float64)
    assert abs(expected.sum().item() - 1) < 1e-12
    chi2 = float(((counts - n * expected) ** 2 / (n * expected)).sum())
    assert chi2 < 45, chi2
    assert expected[4] > 0.15 and expected[0] < 0.02 and expected[9] < 0.02      # middle 1.5×, ends a seventh
    # a coarse chain, every t by hand: T = 4 gives Φ(logit(1/4)) = Φ(−log 3), then symmetric
    t4 = sample_timesteps(4, n, torch.Generator().manual_seed(1), "logit_normal")
    p_end = 0.5 * (1 + math.erf(-math.log(3) / math.sqrt(2)))
    for k, p in enumerate([p_end, 0.5 - p_end, 0.5 - p_end, p_end]):
        assert abs((t4 == k).double().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / n), k


def test_stratified_timesteps_take_one_from_each_stratum_and_each_is_uniform():
    """A batch of n takes exactly one t from each n-th of the chain, and every position of the batch on
    its own is U{0..T−1}: T = 1000, n = 8 (strata of 125) by hand, and a chi-square of 40,000 batches'
    first draw over ten bins (9 degrees of freedom; 45 is exceeded by chance with probability under
    1e-6). A coarse chain, T = 4, n = 2: one of {0, 1} and one of {2, 3}, each value 1/4 at each position."""
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        t = sample_timesteps(1000, 8, g, "stratified")
        assert t.dtype == torch.long and t.shape == (8,)
        assert torch.equal(torch.sort(t // 125).values, torch.arange(8))
    for n in (3, 64, 1000, 1500):                                   # strata that do not divide T, or narrower than 1
        t = sample_timesteps(1000, n, g, "stratified").sort().values.double()
        k = torch.arange(n, dtype=torch.float64)
        assert bool(((1000 * k / n).floor() <= t).all() and (t <= (1000 * (k + 1) / n).floor()).all()), n
    first = torch.stack([sample_timesteps(1000, 8, g, "stratified")[0] for _ in range(40_000)])
    counts = torch.bincount(first // 100, minlength=10).double()
    assert float(((counts - 4000) ** 2 / 4000).sum()) < 45
    pairs = torch.stack([sample_timesteps(4, 2, g, "stratified") for _ in range(40_000)])
    assert bool(((pairs // 2).sort(dim=1).values == torch.tensor([0, 1])).all())
    for pos in (0, 1):
        share = torch.bincount(pairs[:, pos], minlength=4).double() / 40_000
        assert bool(((share - 0.25).abs() < 5 * math.sqrt(0.25 * 0.75 / 40_000)).all()), (pos, share)


def test_asymmetric_timesteps_follow_their_two_level_closed_form():
    """π_t = (1 − p)/τ below τ = ⌊T·s⌋ and p/(T − τ) from τ on: 200,000 draws in ten bins of 100 timesteps
    against it by a chi-square (9 degrees of freedom; 45 is exceeded by chance with probability under
    1e-6), for the preset's s = 1/2, p = 1/5 and for s = 0.64, p = 0.1; a coarse chain by hand, T = 4,
    s = 1/4 (τ = 1), p = 3/4: P(t = 0) = 1/4 and 1/4 for each of 1, 2, 3 — the uniform draw — and
    s = 1/2, p = 1/2 is uniform too."""
    n, T = 200_000, 1000
    for s, p in ((0.5, 0.2), (0.64, 0.1)):
        t = sample_timesteps(T, n, torch.Generator().manual_seed(0), "asymmetric", split=s, upper_share=p)
        assert t.dtype == torch.long and t.shape == (n,) and int(t.min()) >= 0 and int(t.max()) <= T - 1
        tau = int(T * s)
        pi = torch.tensor([(1 - p) / tau if k < tau else p / (T - tau) for k in range(T)], dtype=torch.float64)
        expected = pi.view(10, 100).sum(1)
        counts = torch.bincount(t // 100, minlength=10).double()
        assert float(((counts - n * expected) ** 2 / (n * expected)).sum()) < 45, (s, p)
        share = (t >= tau).double().mean().item()
        assert abs(share - p) < 5 * math.sqrt(p * (1 - p) / n), (s, p, share)
    for s, p in ((0.25, 0.75), (0.5, 0.5)):
        t4 = sample_timesteps(4, n, torch.Generator().manual_seed(1), "asymmetric", split=s, upper_share=p)
        freq = torch.bincount(t4, minlength=4).double() / n
        assert bool(((freq - 0.25).abs() < 5 * math.sqrt(0.25 * 0.75 / n)).all()), (s, p, freq)


def test_asymmetric_draws_refuse_bad_splits_and_shares_and_reach_the_trainer():
    for bad, name in (({"split": 0.0}, "split"), ({"split": 1.0}, "split"), ({"split": 0.05}, "split"),
                      ({"upper_share": 0.0}, "upper_share"), ({"upper_share": 1.0}, "upper_share"),
                      ({"upper_share": float("nan")}, "upper_share")):
        with pytest.raises(ValueError, match=f"^{name} must"):
            sample_timesteps(10, 4, method="asymmetric", **bad)           # T = 10, split 0.05: τ = 0, nothing below
    for field, value in (("t_split", 1.0), ("t_upper_share", 0.0), ("t_upper_share", 1.5)):
        with pytest.raises(ValueError, match=f"^{field} must be in \\(0.0, 1.0\\)"):
            TrainConfig(**{field: value}).validate()
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(sample_timesteps(1000, 64, g1, split=0.9, upper_share=0.9), sample_timesteps(1000, 64, g2))
    args = train_cli.build_parser().parse_args(["--t-sampling", "asymmetric", "--t-split", "0.6",
                                                "--t-upper-share", "0.1"])
    cfg = train_cli.config_from_args(args)
    assert (cfg.t_sampling, cfg.t_split, cfg.t_upper_share) == ("asymmetric", 0.6, 0.1)
    data, runs = digits(), {}
    for name, kw in {"uniform": {}, "a": {"t_sampling": "asymmetric"},
                     "b": {"t_sampling": "asymmetric", "t_upper_share": 0.6}}.items():
        torch.manual_seed(0)
        runs[name] = trainer(tiny_unet(), data, steps=2, **kw).fit()
    assert not equal_states(runs["uniform"].model, runs["a"].model)
    assert not equal_states(runs["a"].model, runs["b"].model)                 # the share reaches the loss


def test_uniform_timesteps_are_the_default_draws_and_bad_methods_are_refused():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(sample_timesteps(1000, 64, g1), torch.randint(0, 1000, (64,), generator=g2))
    model, x0 = tiny_unet(), digits(4)
    with torch.no_grad():
        a = diffusion_loss(model, x0, SCHED, torch.Generator().manual_seed(5))
        b = diffusion_loss(model, x0, SCHED, torch.Generator().manual_seed(5), t_sampling="uniform")
        c = diffusion_loss(model, x0, SCHED, torch.Generator().manual_seed(5), t_sampling="logit_normal")
        d = diffusion_loss(model, x0, SCHED, torch.Generator().manual_seed(5), t_sampling="stratified")
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, d)
    with pytest.raises(ValueError, match="method"):
        sample_timesteps(1000, 4, method="edm")
    with pytest.raises(ValueError, match="t_sampling"):
        diffusion_loss(model, x0, SCHED, t_sampling="lognormal")
    with pytest.raises(ValueError, match="t_sampling"):
        TrainConfig(t_sampling="lognormal").validate()
    for bad in ({"T": 0}, {"n": 0}):
        with pytest.raises(ValueError, match=f"^{next(iter(bad))} must be"):
            sample_timesteps(**{"T": 10, "n": 4, **bad})


def test_weighted_loss_is_the_weighted_mean_of_the_per_example_losses():
    model, x0 = tiny_unet(), digits(8)
    t, noise = torch.tensor([0, 5, 50, 100, 200, 400, 700, 999]), torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        per, _ = diffusion_loss(model, x0, SCHED, t=t, noise=noise, per_example=True)
        weighted = diffusion_loss(model, x0, SCHED, t=t, noise=noise, weighting="min_snr", min_snr_gamma=5.0)
        plain = diffusion_loss(model, x0, SCHED, t=t, noise=noise, weighting="none")
        default = diffusion_loss(model, x0, SCHED, t=t, noise=noise)
        floored = diffusion_loss(model, x0, SCHED, t=t, noise=noise, weighting="min_snr", min_snr_gamma=5.0,
                                 min_snr_floor=0.3)
    w = loss_weights(SCHED, t, "min_snr", 5.0).float()
    assert torch.allclose(weighted, (per * w).mean()) and torch.equal(plain, default)
    assert torch.allclose(floored, (per * w.clamp(min=0.3)).mean()) and not torch.allclose(floored, weighted)


# ------------------------------------------------------------------ learning-rate schedule
def test_cosine_schedule_endpoints_and_warmup():
    lr, W, N = 2e-3, 10, 110
    assert lr_at(0, lr, W, "cosine", N) == pytest.approx(lr / W)                 # warm-up as before
    assert lr_at(W - 1, lr, W, "cosine", N) == pytest.approx(lr)                 # peak at the end of warm-up
    assert lr_at(W + 50, lr, W, "cosine", N) == pytest.approx(lr / 2)            # half-way
    assert lr_at(N, lr, W, "cosine", N) == pytest.approx(0.0, abs=1e-15)        # 0 at the horizon ...
    assert lr_at(N + 100, lr, W, "cosine", N) == pytest.approx(0.0, abs=1e-15)  # ... and after it
    steps = [lr_at(s, lr, W, "cosine", N) for s in range(W - 1, N + 1)]
    assert all(a >= b for a, b in zip(steps, steps[1:]))                          # monotone decay
    for s in range(300):                                                          # constant: today's formula
        assert lr_at(s, 5e-4, 100) == 5e-4 * min(1.0, (s + 1) / 100)
    assert lr_at(5, 1.0, 0, "cosine", 10) == pytest.approx(0.5)                   # no warm-up
    with pytest.raises(ValueError, match="schedule must be 'constant', 'cosine' or 'linear', got 'step'"):
        lr_at(0, 1.0, 0, "step", 10)


def test_linear_decay_falls_by_equal_steps_to_zero_at_the_horizon():
    """η_n = η (1 − (n − W)/(N − W)) after the warm-up: every step lowers it by η/(N − W), to 0 at N."""
    lr, W, N = 2e-3, 10, 110
    assert lr_at(0, lr, W, "linear", N) == pytest.approx(lr / W)                 # the same warm-up
    assert lr_at(W, lr, W, "linear", N) == pytest.approx(lr)
    assert lr_at(W + 25, lr, W, "linear", N) == pytest.approx(0.75 * lr)
    assert lr_at(N, lr, W, "linear", N) == 0.0 and lr_at(N + 5, lr, W, "linear", N) == 0.0
    drops = [lr_at(s, lr, W, "linear", N) - lr_at(s + 1, lr, W, "linear", N) for s in range(W, N)]
    assert drops == pytest.approx([lr / (N - W)] * (N - W))
    # below the cosine in the first half of the decay, above it in the second
    assert lr_at(W + 25, lr, W, "linear", N) < lr_at(W + 25, lr, W, "cosine", N)
    assert lr_at(W + 75, lr, W, "linear", N) > lr_at(W + 75, lr, W, "cosine", N)


def test_trainer_uses_the_cosine_horizon():
    tr = trainer(tiny_unet(), digits(), steps=40, lr=1e-3, lr_warmup=0, lr_schedule="cosine")
    assert tr.lr_at(20) == pytest.approx(5e-4) and tr.lr_at(40) == pytest.approx(0.0, abs=1e-12)
    tr = trainer(tiny_unet(), digits(), steps=40, lr=1e-3, lr_warmup=0, lr_schedule="cosine", lr_decay_steps=80)
    assert tr.lr_at(40) == pytest.approx(5e-4)


# ------------------------------------------------------------------ shift augmentation
def test_random_shift_moves_each_image_by_its_own_offset():
    x = torch.arange(2 * 36, dtype=torch.float32).reshape(2, 1, 6, 6)
    g = torch.Generator().manual_seed(3)
    assert random_shift(x, 0, g) is x and torch.equal(g.get_state(), torch.Generator().manual_seed(3).get_state())
    y = random_shift(x, 2, torch.Generator().manual_seed(3))
    d = torch.randint(0, 5, (2, 2), generator=torch.Generator().manual_seed(3)) - 2   # the same draws: (dy, dx)
    for i in range(2):
        dy, dx = d[i].tolist()
        for r in range(6):
            for c in range(6):
                src_r, src_c = r + dy, c + dx
                want = x[i, 0, src_r, src_c] if 0 <= src_r < 6 and 0 <= src_c < 6 else -1.0
                assert y[i, 0, r, c] == want
    with pytest.raises(ValueError, match="x must be images"):
        random_shift(torch.zeros(4, 2), 1)


# ------------------------------------------------------------------ defaults = today's training
def test_default_recipe_is_todays_bit_for_bit():
    """A 3-step run with the defaults equals one with every new knob at its "today" value, and
    one with the knobs moved differs (so the comparison can fail)."""
    data = digits()
    runs = {}
    for name, kw in {"default": {}, "explicit": TODAY, "shift": {"augment_shift": 2},
                     "min_snr": {"loss_weighting": "min_snr"}, "cosine": {"lr_schedule": "cosine", "lr_warmup": 0},
                     "floor_1": {"loss_weighting": "min_snr", "min_snr_floor": 1.0},
                     "floor": {"loss_weighting": "min_snr", "min_snr_floor": 0.5},
                     "logit_normal": {"t_sampling": "logit_normal"}}.items():
        torch.manual_seed(0)
        runs[name] = trainer(tiny_unet(), data, steps=3, **kw).fit()
    assert equal_states(runs["default"].model, runs["explicit"].model)
    assert equal_states(runs["default"].ema_model, runs["explicit"].ema_model)
    assert [h["loss"] for h in runs["default"].history] == [h["loss"] for h in runs["explicit"].history]
    for name in ("shift", "min_snr", "cosine", "floor", "logit_normal"):
        assert not equal_states(runs["default"].model, runs[name].model), name
    assert not equal_states(runs["min_snr"].model, runs["floor"].model)           # the floor reaches the trainer
    assert equal_states(runs["default"].model, runs["floor_1"].model)             # floor 1: every w_t = 1 = L_simple


def test_channels_last_on_cpu_trains_the_same_model():
    data = digits()
    out = []
    for cl in (False, True):
        torch.manual_seed(0)
        tr = trainer(tiny_unet(), data, steps=2, channels_last=cl).fit()
        assert (tr.mem_format is torch.channels_last) == cl
        out.append(tr.model.state_dict())
    assert all(torch.allclose(out[0][k], out[1][k], atol=1e-5) for k in out[0])


@pytest.mark.filterwarnings("ignore:bf16=True")   # on a CPU without bf16 units: the warning tested below
def test_bf16_on_cpu_autocasts_the_forward_pass_and_keeps_float32_weights():
    """--bf16 on a CPU: the convolutions see bfloat16 (a hook records their output dtype), the weights,
    their EMA and the loss stay float32, and three steps move the weights where the float32 run moves
    them, up to bf16's rounding (under 10% of the distance moved); off by default on a CPU."""
    data = digits()
    seen, start, out = {}, {}, {}
    for bf in (False, True):
        torch.manual_seed(0)
        tr = trainer(tiny_unet(), data, steps=3, bf16=bf)
        start[bf] = {k: v.clone() for k, v in tr.model.state_dict().items()}
        conv = next(m for m in tr.model.modules() if isinstance(m, torch.nn.Conv2d))
        hook = conv.register_forward_hook(lambda m, i, o, bf=bf: seen.setdefault(bf, o.dtype) and None)
        assert [tr.train_step().dtype for _ in range(3)] == [torch.float32] * 3
        hook.remove()
        assert tr.bf16 is bf and all(p.dtype == torch.float32 for p in tr.ema_model.parameters())
        out[bf] = tr.model.state_dict()
    assert seen == {False: torch.float32, True: torch.bfloat16}
    assert trainer(tiny_unet(), data, steps=1).bf16 is False
    assert all(torch.equal(start[False][k], start[True][k]) for k in start[True])   # the same start
    dist = lambda a, b: sum(((a[k] - b[k]).double() ** 2).sum() for k in a if a[k].is_floating_point()) ** 0.5  # noqa: E731
    assert 0 < dist(out[True], out[False]) < 0.1 * dist(out[False], start[False])


@pytest.mark.parametrize("flags, warns", [(["fpu", "avx2", "fma"], True), (["avx2", "avx512_bf16"], False),
                                          (["avx2", "amx_bf16"], False), (None, False)])
def test_bf16_on_a_cpu_without_bf16_units_warns(monkeypatch, flags, warns):
    """bf16 autocast on a CPU whose x86 flags list neither bf16 unit (emulated there, far slower than float32):
    one warning that says so and what to do; none where the flags list a unit, where they cannot be read
    (ARM, macOS: nothing known), or with bf16 off."""
    monkeypatch.setattr(env, "cpu_flags", lambda: flags)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(tiny_unet(), digits(), steps=1, bf16=False)
        trainer(tiny_unet(), digits(), steps=1, bf16=None)      # the default: off on a CPU
        trainer(tiny_unet(), digits(), steps=1, bf16=True)
    said = [str(w.message) for w in caught if "bf16" in str(w.message)]
    assert len(said) == warns
    if warns:
        assert "amx_bf16" in said[0] and "avx512_bf16" in said[0] and "drop --bf16" in said[0]


# ------------------------------------------------------------------ config and command line
def test_recipe_options_are_validated_and_reach_the_command_line():
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step").validate()
    with pytest.raises(ValueError, match="loss_weighting"):
        TrainConfig(loss_weighting="edm").validate()
    with pytest.raises(ValueError, match="augment_shift"):
        TrainConfig(augment_shift=-1).validate()
    parser = train_cli.build_parser()
    cfg = train_cli.config_from_args(parser.parse_args([]))
    assert {k: getattr(cfg, k) for k in TODAY} == TODAY
    args = parser.parse_args(["--lr-schedule", "cosine", "--lr-decay-steps", "500", "--loss-weighting", "min_snr",
                              "--min-snr-gamma", "3", "--min-snr-floor", "0.2", "--augment-shift", "2", "--channels-last",
                              "--bf16", "--t-sampling", "logit_normal"])
    cfg = train_cli.config_from_args(args)
    assert (cfg.lr_schedule, cfg.lr_decay_steps, cfg.loss_weighting, cfg.min_snr_gamma, cfg.min_snr_floor,
            cfg.augment_shift, cfg.channels_last, cfg.bf16, cfg.t_sampling) == ("cosine", 500, "min_snr", 3.0, 0.2, 2,
                                                                                True, True, "logit_normal")
    assert train_cli.config_from_args(parser.parse_args(["--lr-schedule", "linear"])).lr_schedule == "linear"
    with pytest.raises(SystemExit):
        parser.parse_args(["--lr-schedule", "step"])


# ------------------------------------------------------------------ per-level UNet blocks
def test_unet_blocks_per_level_round_trip_and_checks():
    m = UNet(base_channels=8, channel_mults=(1, 2, 4), num_res_blocks=[1, 2])
    same = UNet(base_channels=8, channel_mults=(1, 2, 4), num_res_blocks=2)
    assert sum(p.numel() for p in m.parameters()) < sum(p.numel() for p in same.parameters())
    back = build_model(m.config)
    back.load_state_dict(m.state_dict())
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([3, 700])
    assert torch.equal(back(x, t), m(x, t))
    assert UNet(base_channels=8, num_res_blocks=[2, 2]).config["num_res_blocks"] == [2, 2]
    assert [n for n, _ in UNet(base_channels=8, num_res_blocks=[2, 2]).named_parameters()] == \
        [n for n, _ in UNet(base_channels=8, num_res_blocks=2).named_parameters()]
    with pytest.raises(ValueError, match="num_res_blocks"):
        UNet(base_channels=8, channel_mults=(1, 2, 4), num_res_blocks=[1, 2, 3])
    with pytest.raises(ValueError, match=r"num_res_blocks\[0\]"):
        UNet(base_channels=8, channel_mults=(1, 2, 4), num_res_blocks=[0, 2])
