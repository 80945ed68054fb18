"""The exercise self-checks: accept the reference solutions, reject realistic wrong answers with
a message that names the mistake, report stubs as "not attempted", and never raise."""
import pytest
import torch

import ddim_edu as de
from ddim_edu.course import solutions as sol
from ddim_edu.course.checks import ALL

SOLUTIONS = {
    "ex01.alpha_bar": sol.alpha_bar, "ex01.q_sample": sol.q_sample, "ex01.posterior_variance": sol.posterior_variance,
    "ex02.loss": sol.loss, "ex02.embedding": sol.timestep_embedding, "ex02.ema": sol.ema_update,
    "ex03.sigma": sol.sigma, "ex03.ddim_step": sol.ddim_step, "ex03.sigma_hat_step": sol.sigma_hat_step,
    "ex04.xbar": (sol.x_to_xbar, sol.xbar_to_x), "ex04.euler_step": sol.euler_step, "ex04.heun_step": sol.heun_step,
    "ex05.slerp": sol.slerp, "ex05.midpoint_norm": sol.lerp_midpoint_norm, "ex05.roughness": sol.roughness,
    "ex06.invert_step": sol.invert_step, "ex06.invert": sol.invert, "ex06.roundtrip": sol.roundtrip_errors,
}
NAMES = sorted(ALL)


def _as_student(name, fn):
    """Turn a check's wrong-answer function (same signature as its reference) into what a student passes."""
    if name == "ex04.xbar":
        return (lambda x, s: fn(x, s)[0], lambda x, s: fn(x, s)[1])
    if name == "ex02.ema":
        def update(ema_params, params, decay):
            out = fn(ema_params, params, decay)
            if out is not ema_params:
                for e, o in zip(ema_params, out):
                    if o is not e:
                        e.copy_(o)
        return (update,)
    return (fn,)


def _stub(*args, **kwargs):
    raise NotImplementedError


def test_every_exercise_has_a_check_and_a_solution():
    assert sorted(SOLUTIONS) == NAMES
    assert len(NAMES) == 18 and all(len(ALL[n].mistakes) >= 2 for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_reference_solution_passes(name, capsys):
    fns = SOLUTIONS[name] if isinstance(SOLUTIONS[name], tuple) else (SOLUTIONS[name],)
    result = ALL[name].check(*fns)
    out = capsys.readouterr().out
    assert result.passed is True, result.message
    assert "✓ correct" in out and f"[ddim_edu.check] {name}: pass" in out


@pytest.mark.parametrize("name", NAMES)
def test_wrong_answers_are_rejected_with_the_mistake_named(name, capsys):
    for wrong, message in ALL[name].mistakes:
        result = ALL[name].check(*_as_student(name, wrong))
        assert result.passed is False, f"{name} accepted a wrong answer ({message})"
        assert message in result.message, f"{name}: expected «{message}» in\n{result.message}"
        assert "expected" in result.message or "raised" in result.message
    assert f"[ddim_edu.check] {name}: fail" in capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_stub_is_not_attempted(name, capsys):
    n_fns = 2 if name == "ex04.xbar" else 1
    result = ALL[name].check(*[_stub] * n_fns)
    assert result.passed is None and result.verdict == "not-attempted"
    out = capsys.readouterr().out
    assert "not attempted yet" in out and "raise NotImplementedError" in out
    assert f"[ddim_edu.check] {name}: not-attempted" in out


@pytest.mark.parametrize("name", NAMES)
def test_crashes_and_odd_input_give_a_failure_not_an_exception(name):
    def crashes(*args):
        return 1 / 0
    n_fns = 2 if name == "ex04.xbar" else 1
    result = ALL[name].check(*[crashes] * n_fns)
    assert result.passed is False and "ZeroDivisionError" in result.message
    assert ALL[name].check("not a function").passed is False
    assert ALL[name].check(*[lambda *a: None] * n_fns).passed is False


def test_examples_from_the_brief(capsys):
    ex03, ex01, ex05, ex06 = de.course.ex03, de.course.ex01, de.course.ex05, de.course.ex06
    import math
    r = ex03.sigma.check(lambda a, ap, eta: eta * (1 - ap) / (1 - a) * math.sqrt(1 - a / ap))
    assert not r and "square root" in r.message and "expected" in r.message and "got" in r.message
    r = ex01.q_sample.check(lambda x0, t, n, s: sol.q_sample(n, t, x0, s))
    assert not r and "swapped" in r.message
    r = ex05.slerp.check(de.lerp)
    assert not r and "lerp" in r.message
    r = ex06.invert_step.check(lambda x, e, a, b, s: sol.invert_step(x, e, b, b, s))
    assert not r and "t_from" in r.message
    # a float32 answer for float64 inputs is pointed out
    r = ex01.q_sample.check(lambda x0, t, n, s: sol.q_sample(x0.float(), t, n.float(), s))
    assert not r and "float64" in r.message


def test_hint_and_solution_print(capsys):
    de.course.ex03.ddim_step.hint()
    de.course.ex03.ddim_step.solution()
    de.course.ex04.xbar.solution()
    out = capsys.readouterr().out
    assert "Hint (ex03.ddim_step)" in out and "def ddim_step(" in out and "def sigma(" in out
    assert "def x_to_xbar(" in out and "def xbar_to_x(" in out


def test_solutions_agree_with_the_package(sched):
    torch.manual_seed(0)
    assert torch.allclose(sol.alpha_bar(sched.betas), sched.alpha_bar)
    assert torch.allclose(sol.posterior_variance(sched.alpha_bar, sched.betas), sched.posterior_variance[1:])
    assert abs(sol.sigma(sched.alpha_bar_at(420), sched.alpha_bar_at(400), 1.0) ** 2 - 0.14771) < 1e-5
