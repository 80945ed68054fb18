"""The bad-input catalogue for the samplers, their steps and the metrics, one test per case: each
error is a ddim_edu ValueError/TypeError that names the argument, the value given and what is
allowed (the dtype cases of the policy in tests/diffusion/test_dtypes.py; the first catalogue is
in test_samplers.py and test_sampler_contract.py).

``CASES`` is the catalogue itself — plain data, importable without pytest — which
``scripts/bad_inputs.py`` runs to count clear, cryptic and silent outcomes."""
import dataclasses
import re
from typing import Callable

import numpy as np
import pytest
import torch

import ddim_edu as de

NAMES = list(de.SAMPLERS)
SCHED = de.NoiseSchedule.linear(T=1000, beta_start=1e-4, beta_end=0.02)


def _eps(x, t):
    return 0.1 * x


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad call: ``call()`` must raise ``exc`` with a message matching ``match`` (a regex)
    that names ``arg``, the argument at fault."""
    id: str
    arg: str
    call: Callable[[], object]
    exc: type
    match: str
    open_issue: str = ""       # a case known still to fail: the test is a strict xfail until it is fixed


def _cases():
    s, x = SCHED, torch.zeros(2, 2)
    a500, a400 = s.alpha_bar_at(500), s.alpha_bar_at(400)
    out = []
    add = out.append
    # η outside [0, 1] (η > 1 used to be accepted with σ² silently clamped)
    for eta in (1.5, 2.0, float("inf")):
        msg = rf"eta must be in \[0.0, 1.0\], got {eta}"
        add(Case(f"ddim_sample-eta={eta}", "eta", lambda e=eta: de.ddim_sample(_eps, x, s, steps=3, eta=e, progress=False), ValueError, msg))
        add(Case(f"ddim_step-eta={eta}", "eta", lambda e=eta: de.ddim_step(x, x, 500, 400, s, e, torch.zeros(2, 2)), ValueError, msg))
        add(Case(f"ddim_sigma-eta={eta}", "eta", lambda e=eta: de.ddim_sigma(a500, a400, e), ValueError, msg))
        add(Case(f"sdedit-eta={eta}", "eta", lambda e=eta: de.sdedit(_eps, x, s, t_start=300, steps=3, eta=e), ValueError, msg))
    # η with variance="sigma_hat" used to be ignored silently
    add(Case("ddim_sample-sigma_hat-eta=0.5", "eta", lambda: de.ddim_sample(
        _eps, x, s, steps=3, eta=0.5, variance="sigma_hat", generator=de.env.generator(0), progress=False),
        ValueError, r"eta must be 0 or 1 with variance='sigma_hat'.*got 0.5"))
    # ᾱ' < ᾱ_t (swapped) used to raise a bare "math domain error", ᾱ = 1 a ZeroDivisionError
    add(Case("ddim_sigma-swapped", "alpha_bar_prev", lambda: de.ddim_sigma(a400, a500, 1.0), ValueError,
             rf"alpha_bar_prev must be in \[alpha_bar_t, 1.0\].*got {a500}"))
    add(Case("ddim_sigma-alpha_bar=1", "alpha_bar_t", lambda: de.ddim_sigma(1.0, 1.0, 1.0), ValueError,
             r"alpha_bar_t must be in \(0.0, 1.0\).*got 1.0"))
    for name in NAMES:
        f = de.SAMPLERS[name]
        for dt in (torch.complex64, torch.int64, torch.bool):
            add(Case(f"{name}-x-{dt}", "x", lambda f=f, dt=dt: f(_eps, torch.zeros(2, 2, dtype=dt), s, steps=3, progress=False),
                     TypeError, rf"x must be a floating-point tensor \(float16, bfloat16, float32 or float64\), "
                                rf"got tensor\(shape=\(2, 2\), dtype={dt}"))
        add(Case(f"{name}-float-timesteps", "timesteps", lambda f=f: f(
            _eps, x, s, timesteps=torch.tensor([0.0, 100.0, 500.0]), progress=False), ValueError,
            r"timesteps must be a 1-D sequence of integer timesteps, got shape \(3,\), dtype torch.float32"))
        for steps in (0, 1001):
            add(Case(f"{name}-steps={steps}", "steps", lambda f=f, n=steps: f(_eps, x, s, steps=n, progress=False),
                     ValueError, rf"steps must be in \[1, 1000\], got {steps}"))
        add(Case(f"{name}-steps-vs-timesteps", "steps", lambda f=f: f(
            _eps, x, s, steps=5, timesteps=[0, 100, 200], progress=False), ValueError,
            r"steps=5 disagrees with timesteps \(3 values: \[0, 100, 200\]\)"))
        add(Case(f"{name}-steps=2.5", "steps", lambda f=f: f(_eps, x, s, steps=2.5, progress=False), TypeError,
                 r"steps must be an int, got 2.5"))
        add(Case(f"{name}-prediction", "prediction", lambda f=f: f(_eps, x, s, steps=3, prediction="score", progress=False),
                 ValueError, r"prediction must be one of 'eps', 'x0', 'v', got 'score'"))
        add(Case(f"{name}-generator=123", "generator", lambda f=f: f(_eps, x, s, steps=3, generator=123, progress=False),
                 TypeError, r"generator must be a torch.Generator or None, got 123 \(int\) "
                            r"\(for a seed, pass ddim_edu.env.generator\(seed\)\)"))
        add(Case(f"{name}-callback", "callback", lambda f=f: f(_eps, x, s, steps=3, callback="print", progress=False),
                 TypeError, r"callback must be callable as callback\(info: dict\), got 'print' \(str\)"))
        add(Case(f"{name}-x-meta", "x", lambda f=f: f(_eps, torch.zeros(2, 2, device="meta"), s, steps=3, progress=False),
                 ValueError, r"x must hold values, got a tensor on the meta device of shape \(2, 2\) "
                             r"\(create it on 'cpu', 'cuda' or 'mps'\)"))
        for bad in (float("nan"), float("inf")):
            x_bad = torch.zeros(2, 2)
            x_bad[1, 0] = bad
            add(Case(f"{name}-x={bad}", "x", lambda f=f, xb=x_bad: f(_eps, xb, s, steps=3, progress=False), ValueError,
                     r"x must be finite, got 1 NaN/inf value\(s\) of 4 in a tensor of shape \(2, 2\)"))
        add(Case(f"{name}-model", "model", lambda f=f: f("unet", x, s, steps=3, progress=False), TypeError,
                 r"model must be callable as model\(x_t, t\), got 'unet' \(str\)"))
    # the model's output (a complex ε used to be cast with a warning, an integer one silently)
    for dt in (torch.complex64, torch.int64):
        add(Case(f"ddim_sample-model-output-{dt}", "model", lambda dt=dt: de.ddim_sample(
            lambda x, t: torch.zeros(x.shape, dtype=dt), x, s, steps=3, progress=False), TypeError,
            rf"model must return a floating-point tensor .*got tensor\(.*dtype={dt}"))
    # the steps: noise used to broadcast silently ([1, D], [D], [B, 1] over [B, D])
    for shape in [(1, 2), (2,), (4, 1)]:
        add(Case(f"ddim_step-noise-{shape}", "noise", lambda sh=shape: de.ddim_step(
            torch.zeros(4, 2), torch.zeros(4, 2), 500, 400, s, 1.0, torch.zeros(sh)), ValueError,
            r"noise must have the shape of x_t \(4, 2\), got " + re.escape(str(shape))))
    long = torch.zeros(4, 2, dtype=torch.long)
    add(Case("ddim_step-int-eps", "model", lambda: de.ddim_step(torch.zeros(4, 2), long, 500, 400, s), TypeError,
             r"model must return a floating-point tensor .*dtype=torch.int64"))
    add(Case("ddim_invert_step-int-eps", "model", lambda: de.ddim_invert_step(torch.zeros(4, 2), long, 400, 500, s),
             TypeError, r"model must return a floating-point tensor .*dtype=torch.int64"))
    # x_0 of the encoder is data: pixels not yet in [-1, 1] are refused with the conversion to use
    digits = torch.linspace(0, 255, 2 * 28 * 28).reshape(2, 1, 28, 28)
    add(Case("ddim_invert-0-255-pixels", "x", lambda: de.ddim_invert(_eps, digits, s, steps=3, progress=False),
             ValueError, r"x must be images in \[-1, 1\], but its values span \[0, 255\]; .*x / 127.5 - 1"))
    add(Case("ddim_invert-one-0-255-image", "x", lambda: de.ddim_invert(_eps, digits[0], s, steps=3, progress=False),
             ValueError, r"x must be images in \[-1, 1\], but its values span \[0, 127.4\]; this looks like 0-255 pixels"))
    add(Case("ddim_invert-uint8-pixels", "x", lambda: de.ddim_invert(_eps, digits.to(torch.uint8), s, steps=3,
                                                                     progress=False),
             TypeError, r"x must be a floating-point tensor .*torch.uint8.*; for 0-255 pixels use x.float\(\) / 127.5 - 1"))
    add(Case("ddim_invert-unit-pixels", "x", lambda: de.ddim_invert(_eps, digits / 255, s, steps=3, progress=False),
             ValueError, r"x must be images in \[-1, 1\], but its values span \[0, 1\] .*2 \* x - 1"))
    for i, (ts, m) in enumerate([([], "at least one timestep, got an empty sequence"),
                                 (torch.tensor([], dtype=torch.long), "at least one timestep, got an empty sequence"),
                                 (torch.tensor([False, True]), r"integer timesteps, got shape \(2,\), dtype torch.bool"),
                                 ([5, 3], r"strictly increasing .*got \[5, 3\]")]):
        add(Case(f"ddim_sample-timesteps-{i}", "timesteps", lambda ts=ts: de.ddim_sample(
            _eps, x, s, timesteps=ts, progress=False), ValueError, "timesteps must .*" + m))
    add(Case("SAMPLERS-unknown-name", "'nope'", lambda: de.SAMPLERS["nope"], KeyError,
             "no sampler named 'nope'; the registry has 'ddim', 'ddpm'"))
    # the metrics: a covariance neither symmetric nor PSD used to give FID 0.0
    from ddim_edu.evaluation.metrics import frechet_distance
    mu = np.zeros(2)
    add(Case("frechet_distance-asymmetric", "cov1", lambda: frechet_distance(mu, np.array([[1.0, 2.0], [0.0, 1.0]]), mu, np.eye(2)),
             ValueError, "cov1 must be a symmetric covariance matrix"))
    add(Case("frechet_distance-not-psd", "cov2", lambda: frechet_distance(mu, np.eye(2), mu, np.diag([1.0, -4.0])),
             ValueError, "cov2 must be .*positive semi-definite"))
    return out


CASES = _cases()


# --------------------------------------------------------------------------- one test per case
def _params():
    import pytest
    return pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(
        strict=True, reason=c.open_issue)] if c.open_issue else []) for c in CASES])


@_params()
def test_bad_input_is_refused_naming_the_argument(case):
    import pytest
    with pytest.raises(case.exc, match=case.match) as e:
        case.call()
    assert case.arg in str(e.value)


# --------------------------------------------------------------------------- good inputs nearby
def test_eta_in_range_is_accepted_by_ddim_step_and_sigma(sched):
    x = torch.zeros(2, 2)
    for eta in (0.0, 0.3, 0.5, 1.0):        # the course's exercises use these
        de.ddim_step(x, x, 500, 400, sched, eta, torch.zeros(2, 2))
        assert de.ddim_sigma(sched.alpha_bar_at(500), sched.alpha_bar_at(400), eta) >= 0
    for eta in (0.0, 1.0):                  # σ̂ with the default η or the η = 1 it builds on (course ex03)
        de.ddim_step(x, x, 500, 400, sched, eta, torch.zeros(2, 2), variance="sigma_hat")


def test_one_element_tensor_alpha_bars_are_numbers(sched):
    a, a_prev = sched.alpha_bar_at(500), sched.alpha_bar_at(400)
    assert de.ddim_sigma(sched.alpha_bar[500], sched.alpha_bar[400], 1.0) == de.ddim_sigma(a, a_prev, 1.0)


def test_float16_model_output_with_float64_x_is_cast(sched):
    for name in NAMES:
        out = de.SAMPLERS[name](lambda x, t: (0.1 * x).half(), torch.randn(2, 2, dtype=torch.float64), sched,
                                steps=3, generator=de.env.generator(0), progress=False)
        assert out.dtype == torch.float64 and torch.isfinite(out).all()


def test_numpy_integer_seeds_and_timesteps_are_accepted(sched):
    g = de.env.generator(np.int64(3))
    de.ddim_step(torch.zeros(2, 2), torch.zeros(2, 2), np.int64(500), np.int64(400), sched, 0.0)
    assert isinstance(g, torch.Generator)


def _trained_on_linear_1000():
    """A tiny network that says, as a loaded checkpoint does, which schedule it was trained with."""
    net = de.nets.MLPDenoiser(dim=2, hidden=8, num_layers=1)
    net.schedule_config = de.NoiseSchedule.linear(T=1000).to_config()
    return net


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("other", [de.NoiseSchedule.linear(T=500), de.NoiseSchedule.cosine(T=1000),
                                   de.NoiseSchedule.linear(T=1000, beta_end=0.03)])
def test_every_sampler_refuses_a_schedule_the_model_was_not_trained_with(name, other):
    with pytest.raises(ValueError, match=r"sched is NoiseSchedule\.\w+\(.*\) but the model was trained with "
                                         r"\{'name': 'linear', 'T': 1000"):
        de.SAMPLERS[name](_trained_on_linear_1000(), torch.randn(3, 2), other, steps=4)


@pytest.mark.parametrize("name", NAMES)
def test_every_sampler_runs_with_the_schedule_the_model_was_trained_with(name):
    out = de.SAMPLERS[name](_trained_on_linear_1000(), torch.randn(3, 2), de.NoiseSchedule.linear(T=1000), steps=4)
    assert out.shape == (3, 2) and torch.isfinite(out).all()


def test_a_loaded_checkpoint_knows_its_schedule():
    model, sched = de.load_pretrained("mnist")
    assert model.schedule_config == sched.to_config() == {"name": "linear", "T": 1000, "beta_start": 1e-4,
                                                         "beta_end": 0.02}
