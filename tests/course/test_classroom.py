"""Classroom mode: student versions leave no solution behind and still run; the grader
executes submissions and writes one row per notebook, crashes included."""
import csv
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from ddim_edu.course import classroom

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
EX01 = ["ex01.alpha_bar", "ex01.q_sample", "ex01.posterior_variance"]


def _blocks(source):
    return [m.group(0) for m in re.finditer(r"# BEGIN SOLUTION\n(.*?)# END SOLUTION", source, re.S)]


def test_student_versions_leave_no_solution_text(tmp_path):
    written = classroom.make_student_versions(NOTEBOOKS, tmp_path)
    assert {p.name for p in written} == {p.name for p in NOTEBOOKS.glob("[0-9]*.ipynb")}
    n_blocks = 0
    for path in written:
        teacher = nbformat.read(NOTEBOOKS / path.name, as_version=4)
        student = nbformat.read(path, as_version=4)
        student_code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
        assert "BEGIN SOLUTION" not in student_code and "END SOLUTION" not in student_code
        for c in teacher.cells:
            for block in _blocks(c.source):
                n_blocks += 1
                body = block.split("\n", 1)[1].rsplit("# END SOLUTION", 1)[0].strip()
                assert body and body not in student_code, f"{path.name}: solution text survived"
        assert student_code.count(classroom.PLACEHOLDER) == sum(len(_blocks(c.source)) for c in teacher.cells)
        assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
    assert n_blocks >= 18          # every exercise of notebooks 01–06 has a marked solution


def test_instructor_cells_are_removed_and_indentation_kept():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("def f(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION\n\nprint(f)"),
        nbformat.v4.new_code_cell("secret = 1", metadata={"tags": ["instructor"]}),
        nbformat.v4.new_code_cell("# INSTRUCTOR ONLY\nsecret = 2")])
    out = classroom.student_notebook(nb)
    assert len(out.cells) == 1
    assert out.cells[0].source == f"def f(x):\n    {classroom.PLACEHOLDER}\n\nprint(f)"


def _small(nb):
    """The set-up cell and the exercise section only: the checks need nothing else."""
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    start = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "## Exercises" in c.source)
    nb.cells = [nb.cells[first_code]] + nb.cells[start:]
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("classroom")
    classroom.make_student_versions(NOTEBOOKS, root / "student")
    student = _small(nbformat.read(root / "student" / "01_forward_process.ipynb", as_version=4))
    teacher = _small(nbformat.read(NOTEBOOKS / "01_forward_process.ipynb", as_version=4))
    subs = root / "submissions"
    subs.mkdir()
    nbformat.write(teacher, subs / "alice.ipynb")                         # all correct
    full = nbformat.read(root / "student" / "01_forward_process.ipynb", as_version=4)
    nbformat.write(full, subs / "untouched.ipynb")    # a whole student notebook, end to end, nothing attempted
    partly = nbformat.from_dict(student)                                 # one right, one wrong, one left
    for c in partly.cells:
        if "def my_alpha_bar(" in c.source:
            c.source = c.source.replace(classroom.PLACEHOLDER, "return torch.cumprod(1 - betas, dim=0)")
        if "def my_q_sample(" in c.source:
            c.source = c.source.replace(
                classroom.PLACEHOLDER, "ab = sched.alpha_bar.to(x0.dtype)[t].reshape(-1, *([1] * (x0.dim() - 1)))\n"
                                       "    return (1 - ab).sqrt() * x0 + ab.sqrt() * noise")
    nbformat.write(partly, subs / "bob.ipynb")
    crash = nbformat.from_dict(student)
    crash.cells.insert(1, nbformat.v4.new_code_cell("raise RuntimeError('boom')"))
    nbformat.write(crash, subs / "carol.ipynb")
    (subs / "broken.ipynb").write_text("{ not json")
    out = root / "grades.csv"
    rows = classroom.grade(subs, out, timeout=120)
    with open(out) as f:
        from_csv = {r["submission"]: r for r in csv.DictReader(f)}
    return rows, from_csv


def test_grader_rows(graded):
    rows, table = graded
    assert set(table) == {"alice.ipynb", "bob.ipynb", "carol.ipynb", "untouched.ipynb", "broken.ipynb"}
    alice, bob, carol, untouched = (table[k] for k in ("alice.ipynb", "bob.ipynb", "carol.ipynb", "untouched.ipynb"))
    assert alice["status"] == "ok" and [alice[e] for e in EX01] == ["pass"] * 3
    assert (alice["passed"], alice["total"]) == ("3", "3")
    assert bob["status"] == "ok" and [bob[e] for e in EX01] == ["pass", "fail", "not-attempted"] and bob["passed"] == "1"
    assert untouched["status"] == "ok" and [untouched[e] for e in EX01] == ["not-attempted"] * 3
    assert "RuntimeError" in carol["status"] and "boom" in carol["status"] and carol["passed"] == "0"
    assert table["broken.ipynb"]["status"].startswith("unreadable")
    assert [table["broken.ipynb"][e] for e in EX01] == ["missing"] * 3


def test_cli_student(tmp_path, capsys):
    assert classroom.main(["student", str(NOTEBOOKS), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "03_ddpm_vs_ddim.ipynb").exists() and "wrote" in capsys.readouterr().out


def test_cli_entry_point():
    """The documented command: ``python -m ddim_edu.course student|grade …``."""
    out = subprocess.run([sys.executable, "-m", "ddim_edu.course", "--help"], capture_output=True, text=True,
                         check=True, cwd=NOTEBOOKS.parent).stdout
    assert "python -m ddim_edu.course" in out and "student" in out and "grade" in out


# ----------------------------------------------------------------------------- argument checks and robustness
# Fast: nothing below starts a kernel (the notebook client is replaced by one that runs nothing,
# so a submission's stored outputs are what the grader reads).
class _NoRun:
    def __init__(self, nb, **kwargs):
        self.nb = nb

    def execute(self):
        return self.nb


@pytest.fixture
def no_kernel(monkeypatch):
    import nbclient
    monkeypatch.setattr(nbclient, "NotebookClient", _NoRun)


def _verdict_nb(lines):
    from ddim_edu.course.engine import TAG
    text = "".join(f"{TAG} {name}: {verdict}\n" for name, verdict in lines)
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "pass", outputs=[nbformat.v4.new_output("stream", name="stdout", text=text)])])


def _cli_error(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        classroom.main(argv)
    assert exc.value.code != 0
    return capsys.readouterr().err


def test_grade_refuses_a_missing_or_empty_folder(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    err = _cli_error(capsys, ["grade", str(missing), "--out", str(tmp_path / "g.csv")])
    assert "SUBMISSIONS" in err and str(missing) in err and "does not exist" in err
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("no notebooks here")
    err = _cli_error(capsys, ["grade", str(empty), "--out", str(tmp_path / "g.csv")])
    assert "SUBMISSIONS" in err and str(empty) in err and "no .ipynb" in err
    assert not (tmp_path / "g.csv").exists()
    with pytest.raises(classroom.ClassroomError):
        classroom.grade(empty, tmp_path / "g.csv")


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_grade_refuses_a_timeout_that_is_not_positive(tmp_path, capsys, value):
    nbformat.write(_verdict_nb([]), tmp_path / "a.ipynb")
    err = _cli_error(capsys, ["grade", str(tmp_path), "--timeout", value, "--out", str(tmp_path / "g.csv")])
    assert "--timeout" in err and repr(value) in err and "positive" in err
    with pytest.raises(classroom.ClassroomError, match="positive"):
        classroom.grade(tmp_path, tmp_path / "g.csv", timeout=0)


def test_grade_checks_out_before_grading(tmp_path, capsys, monkeypatch):
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(_verdict_nb([]), subs / "a.ipynb")
    graded = []
    monkeypatch.setattr(classroom, "grade_notebook", lambda p, t=600: graded.append(p))
    err = _cli_error(capsys, ["grade", str(subs), "--out", str(tmp_path)])          # a folder
    assert "--out" in err and str(tmp_path) in err and "folder" in err
    (tmp_path / "file").write_text("")
    err = _cli_error(capsys, ["grade", str(subs), "--out", str(tmp_path / "file" / "g.csv")])   # parent is a file
    assert "--out" in err and "not a folder" in err
    assert graded == []


def test_grade_creates_the_parent_of_out(tmp_path, no_kernel):
    nbformat.write(_verdict_nb([("ex01.alpha_bar", "pass")]), tmp_path / "a.ipynb")
    out = tmp_path / "new" / "dir" / "g.csv"
    classroom.grade(tmp_path, out)
    assert out.exists()


def test_student_refuses_to_overwrite_the_sources(tmp_path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    teacher = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n")])
    nbformat.write(teacher, src / "01_a.ipynb")
    before = (src / "01_a.ipynb").read_text()
    for out in [src, Path(str(src) + "/"), src / ".." / "notebooks"]:
        err = _cli_error(capsys, ["student", str(src), str(out)])
        assert "OUT" in err and "SRC" in err and "overwrite" in err
    link = tmp_path / "link"
    link.symlink_to(src, target_is_directory=True)
    err = _cli_error(capsys, ["student", str(src), str(link)])
    assert "overwrite" in err
    assert (src / "01_a.ipynb").read_text() == before
    assert classroom.main(["student", str(src), str(tmp_path / "student")]) == 0      # elsewhere is fine
    assert "x = 1" not in (tmp_path / "student" / "01_a.ipynb").read_text()


def test_malformed_outputs_and_a_failing_notebook_do_not_stop_the_csv(tmp_path, no_kernel, monkeypatch):
    bad = _verdict_nb([("ex01.alpha_bar", "pass")])
    raw = nbformat.writes(bad)
    import json
    data = json.loads(raw)
    data["cells"][0]["outputs"].append({"output_type": "stream", "name": "stdout", "text": 42})
    data["cells"][0]["outputs"].append({"output_type": "execute_result", "execution_count": 1, "metadata": {},
                                        "data": {"text/plain": 7}})
    data["cells"][0]["outputs"].append({"output_type": "error", "ename": 3, "evalue": None, "traceback": []})
    (tmp_path / "int_text.ipynb").write_text(json.dumps(data))
    nbformat.write(_verdict_nb([("ex01.alpha_bar", "pass")]), tmp_path / "good.ipynb")
    nbformat.write(_verdict_nb([]), tmp_path / "explodes.ipynb")
    real = classroom.grade_notebook

    def flaky(path, timeout=600):
        if Path(path).name == "explodes.ipynb":
            raise MemoryError("grader blew up")
        return real(path, timeout)
    monkeypatch.setattr(classroom, "grade_notebook", flaky)
    out = tmp_path / "g.csv"
    classroom.grade(tmp_path, out)
    with open(out) as f:
        table = {r["submission"]: r for r in csv.DictReader(f)}
    assert set(table) == {"int_text.ipynb", "good.ipynb", "explodes.ipynb"}
    assert table["int_text.ipynb"]["ex01.alpha_bar"] == "pass" and table["int_text.ipynb"]["passed"] == "1"
    assert "3" in table["int_text.ipynb"]["status"]                   # the error output, read safely
    assert table["good.ipynb"]["status"] == "ok" and table["good.ipynb"]["passed"] == "1"
    assert table["explodes.ipynb"]["status"].startswith("grader error") and "grader blew up" in table["explodes.ipynb"]["status"]


def test_total_counts_the_exercises_of_that_notebook(tmp_path, no_kernel):
    from ddim_edu.course.exercises import ALL
    ex01 = sorted(n for n in ALL if n.startswith("ex01."))
    ex03 = sorted(n for n in ALL if n.startswith("ex03."))
    nbformat.write(_verdict_nb([(ex01[0], "pass")]), tmp_path / "alice.ipynb")                 # by its verdicts
    nbformat.write(_verdict_nb([(ex03[0], "pass"), (ex03[1], "fail")]), tmp_path / "03_bob.ipynb")   # by name
    nbformat.write(_verdict_nb([]), tmp_path / "carol_03_ddpm_vs_ddim.ipynb")   # declared file name, no verdicts
    out = tmp_path / "g.csv"
    classroom.grade(tmp_path, out)
    with open(out) as f:
        table = {r["submission"]: r for r in csv.DictReader(f)}
    assert (table["alice.ipynb"]["passed"], table["alice.ipynb"]["total"]) == ("1", str(len(ex01)))
    assert (table["03_bob.ipynb"]["passed"], table["03_bob.ipynb"]["total"]) == ("1", str(len(ex03)))
    assert table["carol_03_ddpm_vs_ddim.ipynb"]["total"] == str(len(ex03))
    assert table["alice.ipynb"][ex03[0]] == "missing" and table["03_bob.ipynb"][ex01[0]] == "missing"
