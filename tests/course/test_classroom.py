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
