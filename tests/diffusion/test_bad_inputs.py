"""The bad-input catalogue for the samplers and their steps, one test per case: each error is a
ddim_edu ValueError/TypeError that names the argument, the value given and what is allowed (the
dtype cases of the policy in tests/diffusion/test_dtypes.py; the first catalogue is in
test_samplers.py and test_sampler_contract.py)."""
import re

import pytest
import torch

import ddim_edu as de

NAMES = list(de.SAMPLERS)


def _eps(x, t):
    return 0.1 * x


# --------------------------------------------------------------------------- η outside [0, 1]
@pytest.mark.parametrize("eta", [1.5, 2.0, float("inf")])
def test_eta_above_one_is_refused_everywhere(sched, eta):
    """The paper's η lies in [0, 1]; η > 1 used to be accepted with σ² silently clamped."""
    msg = rf"eta must be in \[0.0, 1.0\], got {eta}"
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match=msg):
        de.ddim_sample(_eps, x, sched, steps=3, eta=eta, progress=False)
    with pytest.raises(ValueError, match=msg):
        de.ddim_step(x, x, 500, 400, sched, eta, torch.zeros(2, 2))
    with pytest.raises(ValueError, match=msg):
        de.ddim_sigma(sched.alpha_bar_at(500), sched.alpha_bar_at(400), eta)
    with pytest.raises(ValueError, match=msg):
        de.sdedit(_eps, x, sched, t_start=300, steps=3, eta=eta)


def test_eta_in_range_is_accepted_by_ddim_step_and_sigma(sched):
    x = torch.zeros(2, 2)
    for eta in (0.0, 0.3, 0.5, 1.0):        # the course's exercises use these
        de.ddim_step(x, x, 500, 400, sched, eta, torch.zeros(2, 2))
        assert de.ddim_sigma(sched.alpha_bar_at(500), sched.alpha_bar_at(400), eta) >= 0


def test_ddim_sigma_with_swapped_alpha_bars(sched):
    """ᾱ' < ᾱ_t (the arguments swapped) used to raise Python's bare "math domain error"."""
    a, a_prev = sched.alpha_bar_at(500), sched.alpha_bar_at(400)
    with pytest.raises(ValueError, match=rf"alpha_bar_prev must be in \[alpha_bar_t, 1.0\].*got {a}"):
        de.ddim_sigma(a_prev, a, 1.0)
    with pytest.raises(ValueError, match=r"alpha_bar_t must be in \(0.0, 1.0\).*got 1.0"):
        de.ddim_sigma(1.0, 1.0, 1.0)          # used to raise ZeroDivisionError
    # a one-element tensor (sched.alpha_bar[t]) is read as the number it holds
    assert de.ddim_sigma(sched.alpha_bar[500], sched.alpha_bar[400], 1.0) == de.ddim_sigma(a, a_prev, 1.0)


# --------------------------------------------------------------------------- x of the wrong dtype
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.int64, torch.bool])
def test_non_float_x_is_refused(sched, name, dtype):
    with pytest.raises(TypeError, match=rf"x must be a floating-point tensor \(float16, bfloat16, float32 or "
                                        rf"float64\), got tensor\(shape=\(2, 2\), dtype={dtype}"):
        de.SAMPLERS[name](_eps, torch.zeros(2, 2, dtype=dtype), sched, steps=3, progress=False)


# --------------------------------------------------------------------------- the model's output
@pytest.mark.parametrize("name", NAMES)
def test_float16_model_output_with_float64_x_is_cast(sched, name):
    out = de.SAMPLERS[name](lambda x, t: (0.1 * x).half(), torch.randn(2, 2, dtype=torch.float64), sched,
                            steps=3, generator=de.env.generator(0), progress=False)
    assert out.dtype == torch.float64 and torch.isfinite(out).all()


@pytest.mark.parametrize("dtype", [torch.complex64, torch.int64])
def test_non_float_model_output_is_refused(sched, dtype):
    """A complex ε used to be cast with a warning (imaginary part dropped), an integer one silently."""
    with pytest.raises(TypeError, match=rf"model must return a floating-point tensor .*got tensor\(.*dtype={dtype}"):
        de.ddim_sample(lambda x, t: torch.zeros(x.shape, dtype=dtype), torch.zeros(2, 2), sched, steps=3,
                       progress=False)


# --------------------------------------------------------------------------- the grid
@pytest.mark.parametrize("name", NAMES)
def test_float_timesteps_are_refused(sched, name):
    with pytest.raises(ValueError, match=r"timesteps must be a 1-D sequence of integer timesteps, got shape \(3,\), dtype torch.float32"):
        de.SAMPLERS[name](_eps, torch.zeros(2, 2), sched, timesteps=torch.tensor([0.0, 100.0, 500.0]),
                          progress=False)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("steps", [0, 1001])
def test_steps_outside_one_to_T_are_refused(sched, name, steps):
    with pytest.raises(ValueError, match=rf"steps must be in \[1, 1000\], got {steps}"):
        de.SAMPLERS[name](_eps, torch.zeros(2, 2), sched, steps=steps, progress=False)


@pytest.mark.parametrize("name", NAMES)
def test_non_integer_steps_are_refused(sched, name):
    with pytest.raises(TypeError, match=r"steps must be an int, got 2.5"):
        de.SAMPLERS[name](_eps, torch.zeros(2, 2), sched, steps=2.5, progress=False)


# --------------------------------------------------------------------------- the contract's arguments
@pytest.mark.parametrize("name", NAMES)
def test_unknown_prediction_names_the_value(sched, name):
    with pytest.raises(ValueError, match=r"prediction must be one of 'eps', 'x0', 'v', got 'score'"):
        de.SAMPLERS[name](_eps, torch.zeros(2, 2), sched, steps=3, prediction="score", progress=False)


@pytest.mark.parametrize("name", NAMES)
def test_generator_of_the_wrong_type(sched, name):
    """A seed where a generator belongs: the message names it and says what to pass."""
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator or None, got 123 \(int\) "
                                        r"\(for a seed, pass ddim_edu.env.generator\(seed\)\)"):
        de.SAMPLERS[name](_eps, torch.zeros(2, 2), sched, steps=3, generator=123, progress=False)


@pytest.mark.parametrize("name", NAMES)
def test_callback_and_model_not_callable(sched, name):
    with pytest.raises(TypeError, match=r"callback must be callable as callback\(info: dict\), got 'print' \(str\)"):
        de.SAMPLERS[name](_eps, torch.zeros(2, 2), sched, steps=3, callback="print", progress=False)
    with pytest.raises(TypeError, match=r"model must be callable as model\(x_t, t\), got 'unet' \(str\)"):
        de.SAMPLERS[name]("unet", torch.zeros(2, 2), sched, steps=3, progress=False)


# --------------------------------------------------------------------------- the steps
def test_step_noise_of_the_wrong_shape(sched):
    """Used to broadcast silently ([1, 2] over [4, 2]) or fail with a raw torch message."""
    for shape in [(1, 2), (3,)]:
        with pytest.raises(ValueError, match=r"noise must have the shape of x_t \(4, 2\), got " + re.escape(str(shape))):
            de.ddim_step(torch.zeros(4, 2), torch.zeros(4, 2), 500, 400, sched, 1.0, torch.zeros(shape))


def test_step_with_non_float_eps(sched):
    with pytest.raises(TypeError, match=r"model must return a floating-point tensor .*dtype=torch.int64"):
        de.ddim_step(torch.zeros(4, 2), torch.zeros(4, 2, dtype=torch.long), 500, 400, sched)
    with pytest.raises(TypeError, match=r"model must return a floating-point tensor .*dtype=torch.int64"):
        de.ddim_invert_step(torch.zeros(4, 2), torch.zeros(4, 2, dtype=torch.long), 400, 500, sched)


@pytest.mark.parametrize("timesteps, match", [
    ([], "at least one timestep, got an empty sequence"),
    (torch.tensor([], dtype=torch.long), "at least one timestep, got an empty sequence"),
    (torch.tensor([False, True]), r"integer timesteps, got shape \(2,\), dtype torch.bool"),
    ([5, 3], r"strictly increasing .*got \[5, 3\]"),
])
def test_bad_timesteps_are_named_with_their_value(sched, timesteps, match):
    with pytest.raises(ValueError, match="timesteps must " + ".*" + match):
        de.ddim_sample(_eps, torch.zeros(2, 2), sched, timesteps=timesteps, progress=False)


def test_an_unknown_sampler_name_lists_the_registry():
    with pytest.raises(KeyError, match="no sampler named 'nope'; the registry has 'ddim', 'ddpm'"):
        de.SAMPLERS["nope"]
