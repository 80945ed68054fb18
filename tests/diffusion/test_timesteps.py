"""Timestep sub-sequences: exactly S distinct values in [0, T) for every S (appendix D.2)."""
import math

import pytest
import torch

import ddim_edu as de


@pytest.mark.parametrize("skip", ["uniform", "linspace", "quadratic", "log_snr"])
def test_exactly_s_distinct_increasing_steps_for_every_s(skip):
    T = 1000
    for S in range(1, T + 1) if skip != "log_snr" else [*range(1, 200), *range(200, T + 1, 7), T - 1, T]:
        ts = de.make_timesteps(T, S, skip)
        assert ts.dtype == torch.long and ts.shape == (S,), (S, ts.shape)
        assert int(ts[0]) == 0 and int(ts[-1]) <= T - 1
        assert bool((ts[1:] > ts[:-1]).all()), S


def test_uniform_is_the_official_range_cut_to_s():
    T = 1000
    for S in [1, 3, 7, 10, 30, 50, 333, 999, 1000]:
        official = list(range(0, T, T // S))          # ermongroup/ddim: may have more than S values
        assert de.make_timesteps(T, S, "uniform").tolist() == official[:S]


def test_linspace_is_diffusers_linspace_spacing():
    """Evenly spaced from 0 to T − 1 inclusive: diffusers' DDIMScheduler(timestep_spacing="linspace")."""
    diffusers = pytest.importorskip("diffusers")
    for S in [2, 3, 10, 50, 333, 1000]:
        ref = diffusers.DDIMScheduler(num_train_timesteps=1000, timestep_spacing="linspace")
        ref.set_timesteps(S)
        assert de.make_timesteps(1000, S, "linspace").tolist() == sorted(ref.timesteps.tolist()), S
        assert int(de.make_timesteps(1000, S, "linspace")[-1]) == 999


def test_quadratic_is_floor_c_i_squared_and_reaches_the_end():
    T, S = 1000, 10
    c = (T - 1) / (S - 1) ** 2
    assert de.make_timesteps(T, S, "quadratic").tolist() == [math.floor(c * i * i + 1e-9) for i in range(S)]
    for S in [2, 20, 100, 500]:
        assert int(de.make_timesteps(T, S, "quadratic")[-1]) == T - 1


@pytest.mark.parametrize("schedule, steps", [("linear", [2, 5, 10, 17]), ("cosine", [2, 3, 5])])
def test_log_snr_is_nearest_to_uniform_log_snr(schedule, steps):
    """τ_i has the λ = log SNR nearest to the i-th of S values spaced evenly from λ(0) to λ(T − 1)
    (Lu et al. 2022's logSNR grid), for the schedule whose ᾱ is passed."""
    sched = getattr(de.NoiseSchedule, schedule)(T=1000)
    lam = sched.log_snr()
    for S in steps:          # few enough that no value is pushed to the next free integer (cosine: λ(999) ≈ −∞)
        ts = de.make_timesteps(1000, S, "log_snr", sched.alpha_bar).tolist()
        goal = torch.linspace(float(lam[0]), float(lam[-1]), S, dtype=torch.float64)
        assert ts[0] == 0 and ts[-1] == 999
        for t, g in zip(ts, goal):
            assert all(abs(lam[t] - g) <= abs(lam[u] - g) for u in (t - 1, t + 1) if 0 <= u < 1000), (S, t)


def test_log_snr_defaults_to_the_linear_schedule_and_checks_alpha_bar():
    lin = de.NoiseSchedule.linear(T=1000)
    assert torch.equal(de.make_timesteps(1000, 20, "log_snr"), de.make_timesteps(1000, 20, "log_snr", lin.alpha_bar))
    assert de.make_timesteps(1000, 10, "log_snr").tolist() == [0, 5, 22, 73, 202, 410, 603, 757, 886, 999]
    with pytest.raises(ValueError, match=r"alpha_bar must have shape \(1000,\)"):
        de.make_timesteps(1000, 10, "log_snr", lin.alpha_bar[:10])


def test_single_step_and_all_steps():
    assert de.make_timesteps(1000, 1).tolist() == [0]
    assert de.make_timesteps(1000, 1000, "quadratic").tolist() == list(range(1000))
    assert de.make_timesteps(1000, 1000, "log_snr").tolist() == list(range(1000))
    assert de.make_timesteps(1000, 1, "log_snr").tolist() == [0]


@pytest.mark.parametrize("T, steps, skip, exc, message", [
    (1000, 0, "uniform", ValueError, r"steps must be in \[1, 1000\], got 0"),
    (1000, 1001, "uniform", ValueError, r"steps must be in \[1, 1000\], got 1001"),
    (1000, 10.0, "uniform", TypeError, "steps must be an int"),
    (1000, 10, "cubic", ValueError, "skip must be one of 'uniform', 'linspace', 'quadratic', 'log_snr', got 'cubic'"),
    (0, 1, "uniform", ValueError, "T must be in"),
])
def test_bad_arguments(T, steps, skip, exc, message):
    with pytest.raises(exc, match=message):
        de.make_timesteps(T, steps, skip)


def test_resolve_steps_none_is_the_default_and_steps_must_match_timesteps():
    from ddim_edu.diffusion.timesteps import DEFAULT_STEPS, resolve_timesteps
    assert torch.equal(resolve_timesteps(1000, None, "uniform", None), de.make_timesteps(1000, DEFAULT_STEPS))
    taus = list(range(0, 1000, 50))                      # 20 values
    assert resolve_timesteps(1000, 20, "quadratic", taus).tolist() == taus   # skip is unused
    assert resolve_timesteps(1000, None, "uniform", torch.tensor(taus)).tolist() == taus
    with pytest.raises(ValueError, match=r"steps=10 disagrees with timesteps \(20 values: \[0, 50, .*, 550, …\]\)"):
        resolve_timesteps(1000, 10, "uniform", taus)
    with pytest.raises(TypeError, match="steps must be an int, got 20.0"):
        resolve_timesteps(1000, 20.0, "uniform", taus)
