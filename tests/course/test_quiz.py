"""The conceptual questions: every stored answer is what the package computes (where it can be
computed), and blank, wrong, malformed and right answers behave."""
import math

import pytest
import torch

import ddim_edu as de
from ddim_edu.course import quiz

SCHED = de.NoiseSchedule.linear(T=1000)


def right(qid, answer):
    q = quiz.QUESTIONS[qid]
    return math.isclose(float(answer), float(q.answer), abs_tol=q.tol + 1e-12)


# ----------------------------------------------------------------------------- stored answers, recomputed
def test_00_calls_is_ddpm_over_ddim():
    assert right("00.calls", de.SAMPLERS["ddpm"].nfe(1000) / de.SAMPLERS["ddim"].nfe(50))


@pytest.mark.parametrize("eta, deterministic", [(0.0, True), (0.5, False), (1.0, False)])
def test_03_deterministic_eta(eta, deterministic):
    mixture = de.diffusion.analytic.GaussianMixture.ring(k=4, radius=1.0, std=0.2)
    model = mixture.eps_model(SCHED)
    x_T = torch.randn(64, 2, generator=de.env.generator(0), dtype=torch.float64)
    a = de.ddim_sample(model, x_T, SCHED, steps=10, eta=eta, generator=de.env.generator(1), progress=False)
    b = de.ddim_sample(model, x_T, SCHED, steps=10, eta=eta, generator=de.env.generator(2), progress=False)
    assert torch.equal(a, b) is deterministic
    choices = quiz.QUESTIONS["03.deterministic"].choices
    assert (choices[quiz.QUESTIONS["03.deterministic"].answer] == f"η = {eta:g}") is deterministic


def test_03_ddpm_eta_gives_posterior_variance():
    eta = quiz.QUESTIONS["03.ddpm_eta"].answer
    for t in (1, 100, 500, 999):
        s2 = de.ddim_sigma(SCHED.alpha_bar_at(t), SCHED.alpha_bar_at(t - 1), eta) ** 2
        assert math.isclose(s2, float(SCHED.posterior_variance[t]), rel_tol=1e-9)
    s2 = de.ddim_sigma(SCHED.alpha_bar_at(500), SCHED.alpha_bar_at(499), 0.5) ** 2
    assert not math.isclose(s2, float(SCHED.posterior_variance[500]), rel_tol=1e-3)


def test_03_first_step():
    assert right("03.first_step", int(de.make_timesteps(1000, 50)[-1]))


def test_01_values():
    assert right("01.alpha_bar_500", float(SCHED.alpha_bar[500]))
    assert right("01.alpha_bar_500", 0.08)                       # "two decimals" counts as right
    ab = quiz.QUESTIONS["01.equal_weight"].answer
    assert math.isclose(ab / (1 - ab), 1.0)
    assert quiz.QUESTIONS["01.paper_alpha"].answer == "b"


def test_04_values():
    assert right("04.heun_nfe", de.SAMPLERS["heun"].nfe(10))
    assert right("04.sigma_bar_T", float(SCHED.sigma()[999]))
    assert right("04.sigma_bar_T", 157)                          # "nearest integer" counts as right


def test_04_euler_error_halves_when_S_doubles():
    """DDIM from t = 600 to data against the exact ODE solution (RK4) on a 2-D mixture with exact ε:
    doubling S roughly halves the error (order 1)."""
    mixture = de.diffusion.analytic.GaussianMixture.ring(k=4, radius=1.0, std=0.5)
    model = mixture.eps_model(SCHED)
    t0 = 600
    x_t = torch.randn(64, 2, generator=de.env.generator(3), dtype=torch.float64)
    exact = mixture.ode_solution(x_t, float(SCHED.sigma()[t0]), n_steps=2000)
    errors = []
    for S in (20, 40, 80):
        ts = torch.linspace(0, t0, S).round().long()
        out = de.ddim_sample(model, x_t, SCHED, timesteps=ts, progress=False)
        errors.append(float((out - exact).norm(dim=1).mean()))
    ratios = [b / a for a, b in zip(errors, errors[1:])]
    assert all(0.35 < r < 0.65 for r in ratios), ratios
    assert quiz.QUESTIONS["04.order"].choices[quiz.QUESTIONS["04.order"].answer] == "×1/2"


def test_05_code_norm():
    z = torch.randn(2000, 784, generator=de.env.generator(4))
    assert right("05.code_norm", float(z.norm(dim=1).mean()))
    assert right("05.code_norm", math.sqrt(784))


def test_06_roundtrip_counts_network_calls():
    calls = []

    class Counting(torch.nn.Module):
        def forward(self, x, t):
            calls.append(1)
            return torch.zeros_like(x)
    x0 = torch.zeros(2, 1, 4, 4)
    z = de.ddim_invert(Counting(), x0, SCHED, steps=50, progress=False)
    de.ddim_sample(Counting(), z, SCHED, steps=50, progress=False)
    assert right("06.roundtrip_nfe", len(calls))


def test_06_inversion_is_the_eta0_step():
    x, eps = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    up = de.ddim_invert_step(x, eps, 400, 420, SCHED)
    up = up[0] if isinstance(up, tuple) else up
    back = de.ddim_step(up, eps, 420, 400, SCHED, eta=0.0)[0]      # the same ε: the η = 0 step undoes it
    assert torch.allclose(back, x)
    assert quiz.QUESTIONS["06.inversion_noise"].answer == "a" and right("06.euler_slope", -1.0)


def test_08_values():
    assert right("08.simple_weight", 1.0)
    assert quiz.QUESTIONS["08.ddim_bound"].answer == "a"


# ----------------------------------------------------------------------------- the registry and the checks
def test_every_question_is_well_formed():
    per_notebook = {}
    for qid, q in quiz.QUESTIONS.items():
        per_notebook[q.notebook] = per_notebook.get(q.notebook, 0) + 1
        assert q.prompt and q.explanation and q.hint and q.tol >= 0
        if q.kind == "choice":
            assert q.answer in q.choices and len(q.choices) >= 3
        else:
            assert isinstance(q.answer, (int, float)) and math.isfinite(q.answer)
        assert str(q.answer) not in q.hint or q.kind == "choice"     # a hint never states the number
    assert set(per_notebook) == {"00", "01", "03", "04", "05", "06", "08"}
    assert all(2 <= k <= 3 for k in per_notebook.values())


@pytest.mark.parametrize("qid", sorted(quiz.QUESTIONS))
def test_blank_wrong_right(qid, capsys):
    q = quiz.QUESTIONS[qid]
    assert quiz.check_answer(qid, None) is None and quiz.check_answer(qid, "  ") is None
    assert "not answered yet" in capsys.readouterr().out
    assert quiz.check_answer(qid, q.answer) is True
    assert "✓" in capsys.readouterr().out
    if q.kind == "choice":
        wrong = next(c for c in q.choices if c != q.answer)
        assert quiz.check_answer(qid, f"({q.answer.upper()})") is True
        assert quiz.check_answer(qid, "z") is False
    else:
        wrong = float(q.answer) + 10 * q.tol + 1 + abs(float(q.answer))
        assert quiz.check_answer(qid, str(q.answer)) is True
        assert quiz.check_answer(qid, "not a number") is False and quiz.check_answer(qid, True) is False
        assert quiz.check_answer(qid, float("nan")) is False
    capsys.readouterr()
    assert quiz.check_answer(qid, wrong) is False
    out = capsys.readouterr().out
    assert "✗" in out and "Hint" in out and q.explanation not in out


def test_ask_prints_the_question_and_unknown_ids_fail(capsys):
    quiz.ask("03.deterministic")
    out = capsys.readouterr().out
    assert "(a) η = 0" in out and "deterministic" in out
    with pytest.raises(ValueError, match="qid must be one of"):
        quiz.check_answer("99.nope", "a")
    assert quiz.questions("03") == ["03.deterministic", "03.ddpm_eta", "03.first_step"]


def test_quiz_is_lazy():
    assert "quiz" in dir(de.course) and de.course.quiz is quiz


def test_notebooks_ask_every_question_blank():
    """Each question is asked in its own notebook, with a blank answer (the handout stays unanswered)."""
    import json
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[2] / "notebooks"
    asked = {}
    for path in sorted(root.glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            src = "".join(cell["source"])
            for qid in re.findall(r'check_answer\("([^"]+)"', src):
                asked[qid] = path.name[:2]
                assert re.search(r"^answer = None\b", src, re.MULTILINE), f"{path.name}: {qid} must start unanswered"
                assert f'ask("{qid}")' in src
    assert asked == {qid: q.notebook for qid, q in quiz.QUESTIONS.items()}
