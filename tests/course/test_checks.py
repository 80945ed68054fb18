"""The exercise self-checks: accept the reference solutions, reject realistic wrong answers with
a message that names the mistake, report stubs as "not attempted", and never raise."""
import pytest

import ddim_edu as de
from ddim_edu.course.exercises import ALL
from ddim_edu.course.ex01_forward import my_q_sample
from ddim_edu.course.ex03_sampling import my_sigma
from ddim_edu.course.ex06_inversion import my_invert_step

TWO_FUNCTIONS = {"ex04.xbar"}     # the exercises whose check takes two functions


def _solution(name):
    """What the notebook passes to the check: the solution (its helpers, like my_sigma, come first)."""
    fns = ALL[name].solution_functions
    return fns if name in TWO_FUNCTIONS else fns[-1:]


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
    assert len(NAMES) == 22 and all(len(ALL[n].mistakes) >= 2 for n in NAMES)      # notebooks 01–06, 08, 09
    assert all(f.__name__.startswith("my_") for n in NAMES for f in ALL[n].solution_functions)


@pytest.mark.parametrize("name", NAMES)
def test_reference_solution_passes(name, capsys):
    result = ALL[name].check(*_solution(name))
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
    n_fns = 2 if name in TWO_FUNCTIONS else 1
    result = ALL[name].check(*[_stub] * n_fns)
    assert result.passed is None and result.verdict == "not-attempted"
    out = capsys.readouterr().out
    assert "not attempted yet" in out and "raise NotImplementedError" in out
    assert f"[ddim_edu.check] {name}: not-attempted" in out


@pytest.mark.parametrize("name", NAMES)
def test_crashes_and_odd_input_give_a_failure_not_an_exception(name):
    def crashes(*args):
        return 1 / 0
    n_fns = 2 if name in TWO_FUNCTIONS else 1
    result = ALL[name].check(*[crashes] * n_fns)
    assert result.passed is False and "ZeroDivisionError" in result.message
    assert ALL[name].check("not a function").passed is False
    assert ALL[name].check(*[lambda *a: None] * n_fns).passed is False


def test_examples_from_the_brief(capsys):
    ex03, ex01, ex05, ex06 = de.course.ex03, de.course.ex01, de.course.ex05, de.course.ex06
    import math
    r = ex03.sigma.check(lambda a, ap, eta: eta * (1 - ap) / (1 - a) * math.sqrt(1 - a / ap))
    assert not r and "square root" in r.message and "expected" in r.message and "got" in r.message
    r = ex01.q_sample.check(lambda x0, t, n, s: my_q_sample(n, t, x0, s))
    assert not r and "swapped" in r.message
    r = ex05.slerp.check(de.lerp)
    assert not r and "lerp" in r.message
    r = ex06.invert_step.check(lambda x, e, a, b, s: my_invert_step(x, e, b, b, s))
    assert not r and "t_from" in r.message
    # a float32 answer for float64 inputs is pointed out
    r = ex01.q_sample.check(lambda x0, t, n, s: my_q_sample(x0.float(), t, n.float(), s))
    assert not r and "float64" in r.message


def test_hint_and_solution_print(capsys):
    de.course.ex03.ddim_step.solution()                    # one deliberate step away: not yet
    out = capsys.readouterr().out
    assert "def my_" not in out and "solution(reveal=True)" in out
    de.course.ex03.ddim_step.hint()
    de.course.ex03.ddim_step.solution(reveal=True)
    de.course.ex04.xbar.solution(reveal=True)
    out = capsys.readouterr().out
    assert "Hint (ex03.ddim_step)" in out and "def my_ddim_step(" in out and "def my_sigma(" in out
    assert "def my_x_to_xbar(" in out and "def my_xbar_to_x(" in out


def test_solutions_agree_with_the_golden_values(sched):
    """A golden value (computed from DDIM eq. 16 in float64): σ² of the η = 1 step 420 → 400 on the linear schedule."""
    assert abs(my_sigma(sched.alpha_bar_at(420), sched.alpha_bar_at(400), 1.0) ** 2 - 0.14771) < 1e-5


def test_registry_and_notebook_namespaces_agree():
    assert {n.split(".")[0] for n in NAMES} == {f"ex0{i}" for i in (1, 2, 3, 4, 5, 6, 8, 9)}
    for name in NAMES:
        notebook, attr = name.split(".")
        assert getattr(getattr(de.course, notebook), attr) is ALL[name]
