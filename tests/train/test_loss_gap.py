"""de.train.loss_gap: held-out minus training L_simple with paired (t, ε), against a closed form."""
import pytest
import torch

import ddim_edu as de


class Scaled(torch.nn.Module):
    """ε_θ(x_t, t) = c·x_t: its L_simple has a closed form."""
    def __init__(self, c: float):
        super().__init__()
        self.c = c

    def forward(self, x, t):
        return self.c * x


@pytest.fixture(scope="module")
def sched():
    return de.NoiseSchedule.linear(T=1000)


def flat(a: float, n: int = 200, dtype=torch.float32):
    return torch.full((n, 1, 28, 28), a, dtype=dtype)


def test_gap_matches_the_closed_form(sched):
    # x0 = a everywhere, x_t = √ᾱ a + √(1−ᾱ) ε: E‖ε − c x_t‖²/D = (1 − c√(1−ᾱ))² + c²ᾱa², so with the same
    # (t, ε) for a pair the gap between a = 1 and a = 0.5 is c²·E_t[ᾱ_t]·(1 − 0.25) in expectation
    c = 0.8
    seen, new, gap = de.train.loss_gap(Scaled(c), flat(0.5), flat(1.0), sched, draws=4,
                                       generator=torch.Generator().manual_seed(0))
    ab = sched.alpha_bar.double()
    expect_gap = c ** 2 * float(ab.mean()) * 0.75
    expect_seen = float(((1 - c * (1 - ab).sqrt()) ** 2 + c ** 2 * ab * 0.25).mean())
    assert abs(gap.value - expect_gap) < 4 * gap.stderr
    assert abs(seen.value - expect_seen) < 4 * seen.stderr
    assert gap.n == seen.n == new.n == 200


def test_same_images_give_exactly_no_gap_and_the_same_draws_the_same_numbers(sched):
    x = torch.randn(6, 1, 8, 8)
    _, _, gap = de.train.loss_gap(Scaled(0.3), x, x.clone(), sched, generator=torch.Generator().manual_seed(1))
    assert gap.value == 0 and gap.stderr == 0
    a = de.train.loss_gap(Scaled(0.3), x, x.flip(0), sched, generator=torch.Generator().manual_seed(2))
    b = de.train.loss_gap(Scaled(0.3), x, x.flip(0), sched, generator=torch.Generator().manual_seed(2))
    assert [e.value for e in a] == [e.value for e in b]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_every_float_dtype_agrees_with_float32(sched, dtype):
    # the closed-form pair of the first test: a gap of about 0.13, so a wrong sign or a zero cannot pass
    ref = de.train.loss_gap(Scaled(0.8), flat(0.5, 50), flat(1.0, 50), sched, generator=torch.Generator().manual_seed(3))
    got = de.train.loss_gap(Scaled(0.8), flat(0.5, 50, dtype), flat(1.0, 50, dtype), sched,
                            generator=torch.Generator().manual_seed(3))
    assert ref[2].value > 0.05
    rel = 1e-6 if dtype == torch.float64 else 2e-2      # float64: float32 rounding of the reference
    for r, g in zip(ref, got):
        assert g.value == pytest.approx(r.value, rel=rel)


def test_evaluates_in_eval_mode_and_restores_it(sched):
    modes = []

    class Spy(Scaled):
        def forward(self, x, t):
            modes.append(self.training)
            return super().forward(x, t)

    model = Spy(0.1).train()
    de.train.loss_gap(model, torch.zeros(3, 1, 4, 4), torch.ones(3, 1, 4, 4), sched, draws=2)
    assert modes and not any(modes) and model.training


@pytest.mark.parametrize("kwargs, match", [
    ({"new": torch.zeros(5, 1, 4, 4)}, "new must have the shape of seen"),
    ({"seen": torch.zeros(1, 1, 4, 4), "new": torch.zeros(1, 1, 4, 4)}, "at least 2 images"),
    ({"draws": 0}, "draws"),
    ({"seen": torch.zeros(4, 1, 4, 4, dtype=torch.long)}, "seen"),
    ({"generator": 3}, "generator"),
    ({"new": torch.ones(4, 1, 4, 4, dtype=torch.float64)}, "dtype and device of seen"),
    ({"sched": None}, "sched must be a NoiseSchedule"),
    ({"seen": torch.zeros(4, 1, 4, 4).index_fill(0, torch.tensor([2]), float("nan"))}, r"seen must be finite, got 16 NaN"),
    ({"new": torch.ones(4, 1, 4, 4).index_fill(0, torch.tensor([0]), float("inf"))}, r"new must be finite, got 16 NaN/inf"),
])
def test_bad_inputs_are_refused_by_name(sched, kwargs, match):
    args = {"seen": torch.zeros(4, 1, 4, 4), "new": torch.ones(4, 1, 4, 4), "draws": 1, "generator": None,
            "sched": sched, **kwargs}
    with pytest.raises((TypeError, ValueError), match=match):
        de.train.loss_gap(Scaled(0.1), args["seen"], args["new"], args["sched"], draws=args["draws"],
                          generator=args["generator"])


def test_images_with_other_channels_than_the_model_are_refused_as_seen(sched):
    from ddim_edu.nets.build import unet_from_widths
    model = unet_from_widths([8, 16], num_res_blocks=1, in_channels=1)
    rgb = torch.zeros(4, 3, 8, 8)
    with pytest.raises(ValueError, match=r"seen and new must be \[N, 1, H, W\] .*got shape \[4, 3, 8, 8\]"):
        de.train.loss_gap(model, rgb, rgb.clone(), sched, draws=1)


def test_the_training_mode_comes_back_when_the_model_raises(sched):
    class Broken(Scaled):
        def forward(self, x, t):
            raise RuntimeError("broken model")

    model = Broken(0.1).train()
    with pytest.raises(RuntimeError, match="broken model"):
        de.train.loss_gap(model, torch.zeros(3, 1, 4, 4), torch.ones(3, 1, 4, 4), sched, draws=1)
    assert model.training
