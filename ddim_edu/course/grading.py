"""Grading one submission so that it can neither forge its grade nor touch anyone else's.

The trust model (README, "Classroom mode"):

* The grade is never read from the notebook's outputs. The submission runs in a sandbox
  (:mod:`ddim_edu.course.sandbox`) on a copy with every output, tag and cell metadata removed,
  every cell executed. Its checks only *record* what the student's functions return on each case
  (:mod:`ddim_edu.course.answers`); the grader judges those answers against references it
  computes itself, with the check engine it imported before any submission ran. Printed verdict
  lines, a patched ``compare``, prefilled or skipped cells change nothing.
* Each submission gets its own temporary folder, its own copy of the package in which the
  reference solutions are removed (importing them gives "not attempted"), and its own copy of the
  shipped checkpoints; all submissions are read into memory before the first one runs.
* After each run the grader compares the installed package and checkpoints with their state
  just before it and puts back anything the run changed, and says so in that submission's row.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from . import answers as _answers
from . import sandbox
from .exercises import ALL
from .stripping import STRIPPED, strip_solutions

PACKAGE_DIR = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- a clean copy of the package
def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def grading_package(stub: str = STRIPPED, keep_checks: bool = False) -> dict[str, bytes]:
    """The installed package's files, the exercise modules without their solutions
    (:func:`strip_solutions`; ``keep_checks=True`` is the handout's copy, whose checks still run)."""
    files = {k: v for k, v in _files(PACKAGE_DIR).items() if "__pycache__" not in k}
    names_by_module: dict[str, set] = {}
    for ex in ALL.values():
        for f in ex.solution_functions:
            names_by_module.setdefault(f.__module__.rsplit(".", 1)[-1], set()).add(f.__name__)
    for module, names in names_by_module.items():
        key = f"course/{module}.py"
        files[key] = strip_solutions(files[key].decode(), names, stub, keep_checks).encode()
    return files


class Guard:
    """The files a submission must not change (the installed package, the shipped checkpoints):
    :meth:`begin` reads them right before a run, :meth:`restore` puts back whatever the run
    changed, added or removed, and names it."""

    def __init__(self, *roots: Path):
        self.roots = [r for r in roots if r.is_dir()]
        self.saved: dict = {}

    def begin(self) -> None:
        self.saved = {r: _files(r) for r in self.roots}

    def restore(self) -> list[str]:
        changed = []
        for root, saved in self.saved.items():
            now = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}
            for rel in sorted(now - set(saved)):
                changed.append(rel)
                (root / rel).unlink()
            for rel, data in saved.items():
                path = root / rel
                if path.is_symlink() or not path.is_file() or path.read_bytes() != data:
                    changed.append(rel)
                    if path.is_symlink() or path.is_file():
                        path.unlink()
                    elif path.is_dir():
                        shutil.rmtree(path)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
        return changed


# ----------------------------------------------------------------------------- one submission
def clean_notebook(raw: bytes):
    """The submission with every output, execution count, tag and metadata removed (raises on
    a file that is not a notebook)."""
    nb = nbformat.reads(raw.decode("utf-8", errors="replace"), as_version=4)
    cells = []
    for c in nb.cells:
        if c.cell_type == "code":
            cells.append(nbformat.v4.new_code_cell(str(c.source)))
        elif c.cell_type == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(str(c.source)))
    return nbformat.v4.new_notebook(cells=cells)


def _write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _environment(box: Path) -> dict:
    home = box / "home"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
           "PYTHONPATH": str(box / "pkg"), "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "DDIM_EDU_FAST": "1", "DDIM_EDU_OFFLINE": "1", "MPLBACKEND": "Agg",
           "DDIM_EDU_CHECKPOINTS": str(box / "checkpoints"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "IPYTHONDIR": str(home / "ipython"), "MPLCONFIGDIR": str(home / "mpl"), "XDG_CACHE_HOME": str(home)}
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "DDIM_EDU_DEVICE", "CUDA_VISIBLE_DEVICES"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _status(box: Path, result) -> str:
    if result.timed_out:
        return f"timeout (ran past {result.seconds:.0f} s)"
    try:
        record = json.loads((box / "status.json").read_text()[:10_000])
    except (OSError, ValueError):
        record = {}
    if not isinstance(record, dict) or record.get("finished") is not True:
        return f"stopped before its end (exit code {result.returncode}){_last_line(box / 'log.txt')}"
    return str(record.get("first_error") or "ok")[:200]


def _last_line(log: Path) -> str:
    try:
        with open(log, "rb") as f:
            f.seek(max(0, log.stat().st_size - 2000))
            lines = [x for x in f.read().decode("utf-8", "replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return f": {lines[-1].strip()}" if lines else ""


def judge(answers: dict) -> dict[str, str]:
    """{exercise: pass|fail|not-attempted} for every known exercise with recorded answers."""
    verdicts = {}
    for name, outcomes in answers.items():
        if name not in ALL:
            continue
        ex = ALL[name]
        try:
            verdicts[name] = ex.judge(ex.cases(), outcomes, echo=False).verdict
        except Exception:  # noqa: BLE001 -- an answer the comparison cannot handle is a wrong answer
            verdicts[name] = "fail"
    return verdicts


def grade_submission(raw: bytes, exercises: list[str], timeout: float, package: dict, checkpoints: dict,
                     level: str | None = None) -> dict:
    """Run one submission (its bytes) in a fresh sandbox; returns {"status", "verdicts", "isolation"}."""
    try:
        nb = clean_notebook(raw)
    except Exception as exc:  # noqa: BLE001
        return {"status": f"unreadable: {type(exc).__name__}: {exc}"[:200], "verdicts": {}, "isolation": ""}
    level = level or sandbox.isolation()
    box = Path(tempfile.mkdtemp(prefix="ddim_edu_grade_"))
    try:
        _write_tree(box / "pkg" / "ddim_edu", package)
        _write_tree(box / "checkpoints", checkpoints)
        for sub in ("answers", "work", "home"):
            (box / sub).mkdir()
        nbformat.write(nb, box / "work" / "submission.ipynb")
        sandbox.hand_over(box, level)
        argv = [sys.executable, "-m", "ddim_edu.course.runner", str(box / "work" / "submission.ipynb"),
                str(box / "answers"), str(box / "status.json"), *exercises]
        result = sandbox.run(argv, box / "work", _environment(box), timeout, level, log=box / "log.txt")
        answers, problems = _answers.read_answers(box / "answers")
        status = _status(box, result)
        if problems:
            status += f"; unreadable answers: {problems[0]}"
        return {"status": status[:300], "verdicts": judge(answers), "isolation": level}
    finally:
        shutil.rmtree(box, ignore_errors=True)
