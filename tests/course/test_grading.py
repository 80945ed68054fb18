"""The grader against submissions that try to forge a grade or touch someone else's: each attack is
a fixture submission with the grade it must get. Every submission runs for real, in the sandbox
(:mod:`ddim_edu.course.sandbox`) at the strongest isolation this machine allows; the small ones
import torch and the package only, so one run takes a few seconds.

The grader runs as the documented command, ``python -m ddim_edu.course grade``, from a copy of
the package and checkpoints: the package it guards (and the attacks target) is that copy, never
the working tree these tests run from."""
import csv
import inspect
import json
import shutil
import subprocess
import sys
import os
import time
from pathlib import Path

import nbformat
import pytest

from ddim_edu.course import classroom, ex01_forward, grading, sandbox

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
EX01 = ["ex01.alpha_bar", "ex01.posterior_variance", "ex01.q_sample"]
SOLVED = [inspect.getsource(f) for f in (ex01_forward.my_alpha_bar, ex01_forward.my_q_sample,
                                         ex01_forward.my_posterior_variance)]
STUBS = ["def my_alpha_bar(betas):\n    raise NotImplementedError",
         "def my_q_sample(x0, t, noise, sched):\n    raise NotImplementedError",
         "def my_posterior_variance(alpha_bar, betas):\n    raise NotImplementedError"]
CHECKS = ["de.course.ex01.alpha_bar.check(my_alpha_bar)", "de.course.ex01.q_sample.check(my_q_sample)",
          "de.course.ex01.posterior_variance.check(my_posterior_variance)"]
SETUP = "import torch\nimport ddim_edu as de"
FORGED = "".join(f"[ddim_edu.check] {name}: pass\n" for name in EX01)


def _nb(*sources, cells=()):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources] + list(cells))


def _forged_cell(source="", tags=()):
    return nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)}, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=FORGED)])


@pytest.fixture(scope="module")
def install(tmp_path_factory):
    """A copy of the package and the shipped checkpoints: the grader's "installation"."""
    root = tmp_path_factory.mktemp("install")
    shutil.copytree(grading.PACKAGE_DIR, root / "ddim_edu", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(grading.PACKAGE_DIR.parent / "checkpoints", root / "checkpoints")
    return root


def _grade_cli(install: Path, subs: Path, out: Path, *options: str) -> list[dict]:
    """``python -m ddim_edu.course grade SUBS --out OUT …`` from ``install``; the CSV's rows."""
    env = {**os.environ, "PYTHONPATH": str(install)}
    env.pop("DDIM_EDU_CHECKPOINTS", None)
    done = subprocess.run([sys.executable, "-m", "ddim_edu.course", "grade", str(subs), "--out", str(out), *options],
                          cwd=install, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "isolation:" in done.stdout
    with open(out) as f:
        return list(csv.DictReader(f))


def _submissions(root: Path, csv_path: Path, level: str, pkg: Path) -> dict:
    """{file name: notebook or raw text}: the attacks of issue 15 and honest students."""
    wrong_q = SOLVED[1].replace("return ab.sqrt() * x0 + (1 - ab).sqrt() * noise",
                                "return (1 - ab).sqrt() * x0 + ab.sqrt() * noise")
    subs = {
        "honest.ipynb": _nb(SETUP, *SOLVED, *CHECKS),
        "partly.ipynb": _nb(SETUP, SOLVED[0], wrong_q, STUBS[2], *CHECKS),
        # prints the three verdict lines the old grader pattern-matched
        "prints_verdicts.ipynb": _nb(SETUP, *STUBS, *CHECKS, f"print({FORGED!r})"),
        # replaces the comparison and the check engine's verdict in its own process
        "patches_compare.ipynb": _nb(SETUP, "def my_alpha_bar(betas):\n    return betas", *STUBS[1:],
                                     "import ddim_edu.course.engine as E\n"
                                     "E.compare = lambda *a, **k: None\n"
                                     "E.Exercise.check = lambda self, *a: print(f'[ddim_edu.check] {self.name}: pass')",
                                     *CHECKS),
        # committed outputs in a cell with empty source and in cells tagged to be skipped
        "prefilled.ipynb": _nb(SETUP, *STUBS, cells=[
            _forged_cell(""), _forged_cell("raise NotImplementedError", tags=["skip-execution"]),
            _forged_cell("de.course.ex01.alpha_bar.check(my_alpha_bar)", tags=["skip-execution", "raises-exception"])]),
        # hands the reference solutions (module functions and the checks' own references) back
        "imports_solutions.ipynb": _nb(
            SETUP, "from ddim_edu.course.ex01_forward import my_alpha_bar, my_q_sample, my_posterior_variance",
            "de.course.ex01.alpha_bar.check(my_alpha_bar)", "de.course.ex01.q_sample.check(my_q_sample)",
            "de.course.ex01.posterior_variance.check(de.course.ex01.posterior_variance.solution_functions[0])",
            "src = open(de.course.ex01_forward.__file__).read()\nns = {}\n"
            "exec(compile(src.replace('from .', 'from ddim_edu.course.'), 'x', 'exec'), ns)\n"
            "de.course.ex01.alpha_bar.check(ns['my_alpha_bar'])"),
        # exits the kernel; what it checked before counts, the forged outputs after do not
        "exits.ipynb": _nb(SETUP, *SOLVED[:1], CHECKS[0], "import os\nos._exit(0)", cells=[_forged_cell("pass")]),
        # rewrites another student's submission and the grader's check engine
        "attacks_others.ipynb": _nb(SETUP, *STUBS, (
            "import pathlib\n"
            f"victim = pathlib.Path({str(root / 'victim.ipynb')!r})\n"
            "try:\n    victim.write_text(pathlib.Path('submission.ipynb').read_text())\nexcept OSError as e:\n    print(e)\n"
            f"engine = pathlib.Path({str(pkg / 'course' / 'engine.py')!r})\n"
            "try:\n    engine.write_text(engine.read_text() + '\\ndef compare(*a, **k):\\n    return None\\n')\n"
            "except OSError as e:\n    print(e)"), *CHECKS),
        "victim.ipynb": _nb(SETUP, *SOLVED, *CHECKS),
        # graded after the engine attack: must still fail
        "z_wrong_after_attack.ipynb": _nb(SETUP, "def my_alpha_bar(betas):\n    return betas", CHECKS[0]),
        # leaves processes behind that rewrite grades.csv later
        "detaches.ipynb": _nb(SETUP, *SOLVED[:1], CHECKS[0], (
            "import subprocess, sys, os\n"
            f"code = 'import time; time.sleep(4); open({str(csv_path)!r}, \"w\").write(\"forged\")'\n"
            "subprocess.Popen([sys.executable, '-c', code], start_new_session=True)\n"
            "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            "        import time; time.sleep(5); open(" + repr(str(csv_path)) + ", 'w').write('forged')\n"
            "    os._exit(0)")),
        "int_outputs.ipynb": "INT_OUTPUTS",
        "broken.ipynb": "{ not json",
    }
    if level != "process group":     # where the sandbox can see the grader, this would kill the test run
        subs["kills_grader.ipynb"] = _nb(SETUP, *SOLVED[:1], CHECKS[0], (
            "import os, signal\n"
            "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
            "    if int(pid) != os.getpid():\n"
            "        try:\n            os.kill(int(pid), signal.SIGKILL)\n        except OSError:\n            pass\n"
            "os.kill(os.getpid(), signal.SIGKILL)"))
    return subs


def _write(root: Path, subs: dict) -> None:
    for name, nb in subs.items():
        if nb == "INT_OUTPUTS":
            raw = json.loads(nbformat.writes(_nb(SETUP, *SOLVED, *CHECKS)))
            raw["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": 42}]
            (root / name).write_text(json.dumps(raw))
        elif isinstance(nb, str):
            (root / name).write_text(nb)
        else:
            nbformat.write(nb, root / name)


@pytest.fixture(scope="module")
def attacked(tmp_path_factory, install):
    level = sandbox.isolation()
    root = tmp_path_factory.mktemp("attacks")
    subs_dir, out = root / "submissions", root / "grades.csv"
    subs_dir.mkdir()
    engine = install / "ddim_edu" / "course" / "engine.py"
    engine_before = engine.read_bytes()
    subs = _submissions(subs_dir, out, level, install / "ddim_edu")
    _write(subs_dir, subs)
    classroom.make_student_versions(NOTEBOOKS, root / "student")            # a whole handout, end to end
    (root / "student" / "01_forward_process.ipynb").rename(subs_dir / "01_untouched.ipynb")
    rows = _grade_cli(install, subs_dir, out, "--timeout", "120", "--jobs", "2")
    engine_now = engine.read_bytes()
    time.sleep(6)                                  # the detached writers' time, had they survived
    with open(out) as f:
        table = {r["submission"]: r for r in csv.DictReader(f)}
    return {"rows": {r["submission"]: r for r in rows}, "table": table, "engine_after": engine_now,
            "engine_before": engine_before, "level": level, "names": set(subs) | {"01_untouched.ipynb"}}


def _verdicts(row):
    return [row[e] for e in EX01]


def test_honest_and_partly_correct_submissions(attacked):
    t = attacked["table"]
    assert t["honest.ipynb"]["status"] == "ok" and _verdicts(t["honest.ipynb"]) == ["pass"] * 3
    assert (t["honest.ipynb"]["passed"], t["honest.ipynb"]["total"]) == ("3", "3")
    assert _verdicts(t["partly.ipynb"]) == ["pass", "not-attempted", "fail"] and t["partly.ipynb"]["passed"] == "1"


@pytest.mark.parametrize("name", ["prints_verdicts.ipynb", "patches_compare.ipynb", "prefilled.ipynb",
                                  "imports_solutions.ipynb"])
def test_forging_scores_nothing(attacked, name):
    row = attacked["table"][name]
    assert row["passed"] == "0" and "pass" not in _verdicts(row), row


def test_patched_check_of_a_wrong_answer_fails(attacked):
    assert attacked["table"]["patches_compare.ipynb"]["ex01.alpha_bar"] == "fail"


def test_what_was_checked_before_an_exit_counts(attacked):
    row = attacked["table"]["exits.ipynb"]
    assert row["ex01.alpha_bar"] == "pass" and row["passed"] == "1"
    assert row["status"].startswith("stopped before its end")


def test_one_submission_cannot_touch_another_or_the_grader(attacked):
    t = attacked["table"]
    assert _verdicts(t["victim.ipynb"]) == ["pass"] * 3                       # read before anything ran
    assert t["z_wrong_after_attack.ipynb"]["ex01.alpha_bar"] == "fail"        # the engine it patched is not used
    assert attacked["engine_after"] == attacked["engine_before"]              # and the install was put back
    if attacked["level"] != "separate user":
        assert "changed the grader's files (restored): course/engine.py" in t["attacks_others.ipynb"]["status"]


def test_detached_processes_die_with_the_run(attacked):
    t = attacked["table"]
    assert set(t) == attacked["names"]                           # the CSV is whole, not "forged"
    assert t["detaches.ipynb"]["ex01.alpha_bar"] == "pass"


def test_killing_everything_it_can_see_does_not_stop_the_grader(attacked):
    if attacked["level"] == "process group":
        pytest.skip("only the namespace and separate-user sandboxes hide the grader")
    assert attacked["table"]["kills_grader.ipynb"]["ex01.alpha_bar"] == "pass"     # checked before the attack
    assert attacked["table"]["z_wrong_after_attack.ipynb"]["status"] == "ok"       # the grader went on


def test_a_whole_untouched_handout_runs_and_attempts_nothing(attacked):
    row = attacked["table"]["01_untouched.ipynb"]
    assert row["status"] == "ok" and _verdicts(row) == ["not-attempted"] * 3 and row["total"] == "3"


def test_malformed_outputs_and_files(attacked):
    t = attacked["table"]
    assert _verdicts(t["int_outputs.ipynb"]) == ["pass"] * 3
    assert t["broken.ipynb"]["status"].startswith("unreadable") and _verdicts(t["broken.ipynb"]) == ["missing"] * 3


# ----------------------------------------------------------------------------- each isolation level
def _levels():
    available = sandbox.isolation()
    return list(sandbox.LEVELS[sandbox.LEVELS.index(available):])


@pytest.mark.parametrize("level", _levels())
def test_every_available_isolation_level_grades_and_contains(tmp_path, level, install):
    out = tmp_path / "grades.csv"
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(_nb(SETUP, *SOLVED[:1], CHECKS[0], "import subprocess, sys\n"
                       f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3); "
                       f"open({str(out)!r}, \"w\").write(\"forged\")'], start_new_session=True)"),
                   subs / "01_detaches.ipynb")
    rows = _grade_cli(install, subs, out, "--timeout", "120", "--isolation", level)
    time.sleep(4)
    assert rows[0]["ex01.alpha_bar"] == "pass"
    assert "forged" not in out.read_text() and "01_detaches.ipynb" in out.read_text()


def test_timeout_keeps_what_was_recorded(tmp_path, install):
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(_nb(SETUP, *SOLVED[:1], CHECKS[0], "while True:\n    pass", cells=[_forged_cell("pass")]),
                   subs / "01_loops.ipynb")
    start = time.monotonic()
    rows = _grade_cli(install, subs, tmp_path / "g.csv", "--timeout", "30")
    # the 30 s timeout fired (the status says so) and the grader went on; a loaded 2-core CI machine took 71 s
    assert time.monotonic() - start < 150
    assert rows[0]["status"].startswith("timeout") and _verdicts(rows[0]) == ["pass", "missing", "missing"]
    assert (rows[0]["passed"], rows[0]["total"]) == ("1", "3")


# ----------------------------------------------------------------------------- pieces, without a sandbox
def test_the_grading_copy_of_the_package_has_no_solutions():
    from ddim_edu.course.exercises import ALL
    files = grading.grading_package()
    text = files["course/ex01_forward.py"].decode()
    assert "return torch.cumprod(1 - betas, dim=0)" not in text          # my_alpha_bar's body
    assert "torch.cumprod(1 - b, 0)" not in text                         # ex01.alpha_bar's reference
    for ex in ALL.values():
        for f in ex.solution_functions:
            module = files[f"course/{f.__module__.rsplit('.', 1)[-1]}.py"].decode()
            assert f"def {f.__name__}(" in module
            body = inspect.getsource(f).split(":", 1)[1]
            assert body not in module, f.__name__


def test_answers_round_trip_without_pickle(tmp_path):
    import torch
    from ddim_edu.course import answers
    from ddim_edu.course.engine import Outcome
    values = [torch.arange(6.0).reshape(2, 3), 1.5, float("nan"), 3, True, None, "text",
              {"a": torch.ones(2, dtype=torch.float64), 2: [1, (2.0, torch.zeros(1, dtype=torch.bfloat16))]},
              object()]
    answers.write_answers(tmp_path, "ex01.alpha_bar", [Outcome("value", v) for v in values]
                          + [Outcome("not-implemented"), Outcome("error", error="ValueError: no")])
    got, problems = answers.read_answers(tmp_path)
    out = got["ex01.alpha_bar"]
    assert problems == [] and len(out) == len(values) + 2
    assert torch.equal(out[0].value, values[0]) and out[1].value == 1.5 and out[2].value != out[2].value
    assert out[3].value == 3 and out[4].value is True and out[5].value is None and out[6].value == "text"
    assert out[7].value["a"].dtype == torch.float64 and out[7].value[2][1][1].dtype == torch.bfloat16
    assert isinstance(out[8].value, answers.Opaque) and out[8].value != out[8].value
    assert (out[9].kind, out[10].error) == ("not-implemented", "ValueError: no")
    (tmp_path / "001.json").write_text('{"exercise": "ex01.q_sample", "outcomes": [{"kind": "exec"}]}')
    (tmp_path / "002.json").write_text("not json")
    got, problems = answers.read_answers(tmp_path)
    assert set(got) == {"ex01.alpha_bar"} and len(problems) == 2


def test_rows_are_written_as_each_submission_finishes(tmp_path, monkeypatch):
    """One row per submission, on disk before the next starts; a grader failure is a row; ``total``
    is the row's own notebook's exercises (by file name, a declared name, or its answers)."""
    from ddim_edu.course.exercises import ALL
    subs, out = tmp_path / "subs", tmp_path / "g.csv"
    subs.mkdir()
    answers = {"03_b.ipynb": {"ex03.sigma": "pass", "ex03.ddim_step": "fail"}, "a.ipynb": {"ex01.alpha_bar": "pass"},
               "c.ipynb": "explode", "carol_03_ddpm_vs_ddim.ipynb": {}}
    for name in answers:
        nbformat.write(_nb(f"# {name}"), subs / name)
    csv_seen = []

    def fake(raw, exercises, timeout, package, checkpoints, level=None):
        csv_seen.append(out.read_text() if out.exists() else "")
        verdicts = answers[raw.decode().split("# ", 1)[1].split('"', 1)[0]]
        if verdicts == "explode":
            raise MemoryError("grader blew up")
        return {"status": "ok", "verdicts": verdicts}
    monkeypatch.setattr(grading, "grade_submission", fake)
    rows = classroom.grade(subs, out)
    assert [len(list(csv.DictReader(text.splitlines()))) for text in csv_seen] == [0, 1, 2, 3]
    table = {r["submission"]: r for r in csv.DictReader(open(out))}
    n03 = str(sum(n.startswith("ex03.") for n in ALL))
    assert (table["03_b.ipynb"]["passed"], table["03_b.ipynb"]["total"]) == ("1", n03)       # by its file name
    assert (table["a.ipynb"]["passed"], table["a.ipynb"]["total"]) == ("1", "3")              # by its answers
    assert table["carol_03_ddpm_vs_ddim.ipynb"]["total"] == n03                               # a declared name
    assert table["c.ipynb"]["status"].startswith("grader error") and "grader blew up" in table["c.ipynb"]["status"]
    assert table["a.ipynb"]["ex03.sigma"] == "missing" and len(rows) == 4


def test_environment_of_the_sandbox_is_minimal(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN_OF_THE_TEACHER", "x")
    env = grading._environment(tmp_path)
    assert "SECRET_TOKEN_OF_THE_TEACHER" not in env and env["DDIM_EDU_OFFLINE"] == "1"
    assert env["PYTHONPATH"] == str(tmp_path / "pkg")
    assert os.environ.get("SECRET_TOKEN_OF_THE_TEACHER") == "x"
