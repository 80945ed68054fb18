"""Classroom mode: student versions leave no solution behind and still run; the grader
executes submissions and writes one row per notebook, crashes included."""
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
    assert {p.name for p in written} == {p.name for p in NOTEBOOKS.glob("[0-9]*.ipynb")} | {"NOTATION.md"}
    assert (tmp_path / "NOTATION.md").read_text() == (NOTEBOOKS / "NOTATION.md").read_text()
    written = [p for p in written if p.suffix == ".ipynb"]
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


def test_cli_student(tmp_path, capsys):
    assert classroom.main(["student", str(NOTEBOOKS), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "03_ddpm_vs_ddim.ipynb").exists() and "wrote" in capsys.readouterr().out


def test_cli_entry_point():
    """The documented command: ``python -m ddim_edu.course student|handout|key|grade …``."""
    out = subprocess.run([sys.executable, "-m", "ddim_edu.course", "--help"], capture_output=True, text=True,
                         check=True, cwd=NOTEBOOKS.parent).stdout
    assert "python -m ddim_edu.course" in out and all(c in out for c in ("student", "handout", "key", "grade"))


# ----------------------------------------------------------------------------- argument checks
# Fast: nothing below runs a submission (grading itself is tested in test_grading.py).
def _verdict_nb():
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass")])


@pytest.fixture
def no_run(monkeypatch):
    from ddim_edu.course import grading
    monkeypatch.setattr(grading, "grade_submission", lambda *a, **k: {"status": "ok", "verdicts": {}})


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
def test_grade_refuses_jobs_that_are_not_positive(tmp_path, capsys, value):
    nbformat.write(_verdict_nb(), tmp_path / "a.ipynb")
    err = _cli_error(capsys, ["grade", str(tmp_path), "--jobs", value, "--out", str(tmp_path / "g.csv")])
    assert "--jobs" in err and repr(value) in err
    with pytest.raises(classroom.ClassroomError, match="jobs"):
        classroom.grade(tmp_path, tmp_path / "g.csv", jobs=0)


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_grade_refuses_a_timeout_that_is_not_positive(tmp_path, capsys, value):
    nbformat.write(_verdict_nb(), tmp_path / "a.ipynb")
    err = _cli_error(capsys, ["grade", str(tmp_path), "--timeout", value, "--out", str(tmp_path / "g.csv")])
    assert "--timeout" in err and repr(value) in err and "positive" in err
    with pytest.raises(classroom.ClassroomError, match="positive"):
        classroom.grade(tmp_path, tmp_path / "g.csv", timeout=0)


def test_grade_checks_out_before_grading(tmp_path, capsys, monkeypatch):
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(_verdict_nb(), subs / "a.ipynb")
    graded = []
    from ddim_edu.course import grading
    monkeypatch.setattr(grading, "grade_submission", lambda *a, **k: graded.append(a))
    err = _cli_error(capsys, ["grade", str(subs), "--out", str(tmp_path)])          # a folder
    assert "--out" in err and str(tmp_path) in err and "folder" in err
    (tmp_path / "file").write_text("")
    err = _cli_error(capsys, ["grade", str(subs), "--out", str(tmp_path / "file" / "g.csv")])   # parent is a file
    assert "--out" in err and "not a folder" in err
    assert graded == []


def test_grade_creates_the_parent_of_out(tmp_path, no_run):
    nbformat.write(_verdict_nb(), tmp_path / "a.ipynb")
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
