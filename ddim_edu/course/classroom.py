"""Classroom mode: student versions of the notebooks, the handout, the answer key, and a grader.

    python -m ddim_edu.course student notebooks/ OUT/
    python -m ddim_edu.course handout OUT/       # what students get: student notebooks + package, no solutions
    python -m ddim_edu.course key OUT/           # what the teacher keeps: every reference solution
    python -m ddim_edu.course grade SUBMISSIONS/ --out grades.csv [--timeout 1200]

``handout`` and ``key`` (:mod:`.handout`) write into a new or empty folder and are built from a
source checkout of the course.

``student``: code between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` becomes
``raise NotImplementedError  # your code here``; cells tagged ``instructor`` (cell metadata
tags) or starting with ``# INSTRUCTOR ONLY`` are removed; outputs are cleared.

``grade``: runs every submitted notebook in its own sandbox (offline, fast mode, a wall-clock
limit per submission) and judges what its functions return on each exercise's cases against
references the grader computes itself (:mod:`ddim_edu.course.grading` says what this stops and
:mod:`ddim_edu.course.sandbox` how it is isolated). Nothing the notebook prints or stores counts.
It writes one CSV row per submission as each finishes; a notebook that crashes or times out gets
a row saying so, and the grader goes on. ``total`` is the number of exercises of the notebook the
row's submission is: its file name's ``NN_`` prefix (or a declared notebook file name it
contains), else the notebooks its recorded answers name.

Both commands check their arguments before doing any work, and refuse (exit status 2, a
message naming the argument, its value and what is allowed): a ``SUBMISSIONS`` that is not a
folder holding ``.ipynb`` files, a ``--timeout`` that is not a positive whole number of
seconds, an ``--out`` that is a folder or cannot be written, an ``OUT`` that would overwrite
a notebook of ``SRC``.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from pathlib import Path

from .sandbox import LEVELS
from .handout import (PLACEHOLDER, ClassroomError, make_handout, make_student_versions,  # noqa: F401
                      student_notebook, write_answer_key)

NUMBER_RE = re.compile(r"^(\d\d)_")


# ----------------------------------------------------------------------------- grading
def _check_timeout(timeout) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ClassroomError(f"timeout must be a positive number of seconds, got {timeout!r}")


def _at_least_1(text: str, what: str) -> int:
    """``text`` as a whole number of 1 or more, or argparse's error naming ``what`` is expected."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be {what} (1 or more), got {text!r}")
    return value


def positive_seconds(text: str) -> int:
    """argparse type of ``--timeout``: a whole number of seconds, at least 1."""
    return _at_least_1(text, "a positive whole number of seconds")


def positive_int(text: str) -> int:
    """argparse type of ``--jobs``: a whole number, at least 1."""
    return _at_least_1(text, "a whole number")


def _submission_paths(submissions) -> list[Path]:
    """The ``*.ipynb`` under ``submissions``, or a :class:`ClassroomError` saying why there are none."""
    root = Path(submissions)
    if not root.exists():
        raise ClassroomError(f"SUBMISSIONS {str(submissions)!r} does not exist; "
                             "give a folder holding the submitted .ipynb files")
    if not root.is_dir():
        raise ClassroomError(f"SUBMISSIONS {str(submissions)!r} is not a folder; "
                             "give a folder holding the submitted .ipynb files")
    paths = sorted(p for p in root.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not paths:
        raise ClassroomError(f"SUBMISSIONS {str(submissions)!r} holds no .ipynb file (searched recursively); "
                             "give a folder holding the submitted .ipynb files")
    return paths


def _check_out(out_csv) -> Path:
    """``--out`` must be a file (new or to replace) whose folder exists or can be created, and is writable."""
    out = Path(out_csv)
    if out.is_dir():
        raise ClassroomError(f"--out {str(out_csv)!r} is a folder; give the path of a CSV file to write, "
                             "e.g. grades.csv")
    parent = out.parent
    existing = next((p for p in [parent, *parent.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ClassroomError(f"--out {str(out_csv)!r}: {str(existing)!r} is a file, not a folder, so the CSV "
                             "cannot be written there; give a path in a folder that exists or can be created")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ClassroomError(f"--out {str(out_csv)!r}: folder {str(existing)!r} is not writable; "
                             "give a path in a writable folder")
    if out.exists() and not os.access(out, os.W_OK):
        raise ClassroomError(f"--out {str(out_csv)!r} exists and is not writable; give a writable file path")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ClassroomError(f"--out {str(out_csv)!r}: cannot create its folder {str(parent)!r} ({exc}); "
                             "give a path in a folder that exists or can be created") from None
    return out


def notebook_exercises(path: str | Path, verdicts=()) -> list[str]:
    """The exercise names of the notebook a submission is: from its file name (a ``NN_`` prefix,
    or a declared notebook file name it contains), else from the notebooks its verdicts name."""
    from .exercises import ALL, BY_NOTEBOOK
    name = Path(path).name
    numbers = []
    m = NUMBER_RE.match(name)
    if m:
        numbers = [f"ex{m.group(1)}"]
    else:
        numbers = [f"ex{NUMBER_RE.match(nb).group(1)}" for nb in BY_NOTEBOOK
                   if NUMBER_RE.match(nb) and Path(nb).stem in name]
    names = sorted(n for n in ALL if n.split(".")[0] in numbers)
    if names:
        return names
    prefixes = {v.split(".")[0] for v in verdicts}
    return sorted(n for n in ALL if n.split(".")[0] in prefixes)


def _snapshot():
    """What every sandbox gets a copy of, and what the grader guards, read before any submission runs."""
    from ..train.pretrained import checkpoints_dir
    from . import grading
    ckpt = checkpoints_dir()
    checkpoints = grading._files(ckpt) if ckpt.is_dir() else {}
    return grading.grading_package(), checkpoints, grading.Guard(grading.PACKAGE_DIR, ckpt)


def grade_notebook(path: str | Path, timeout: int = 1200, level: str | None = None) -> dict:
    """Grade one submitted notebook in a sandbox: {"status": ok|error …|timeout …|unreadable …,
    "verdicts": {exercise: pass|fail|not-attempted}, "isolation": level}."""
    from . import grading
    _check_timeout(timeout)
    package, checkpoints, guard = _snapshot()
    guard.begin()
    result = grading.grade_submission(Path(path).read_bytes(), _candidates(path), timeout, package, checkpoints,
                                      level)
    changed = guard.restore()
    if changed:
        result["status"] += f"; changed the grader's files (restored): {', '.join(changed[:3])}"
    return result


def _candidates(path) -> list[str]:
    """The exercises to look for in a submission: its notebook's, or every one if its name says nothing."""
    from .exercises import ALL
    return notebook_exercises(path) or sorted(ALL)


def _row(path: Path, submissions: Path, result: dict) -> dict:
    mine = notebook_exercises(path, result["verdicts"])
    return {"submission": str(path.relative_to(submissions)), "status": result["status"],
            "verdicts": result["verdicts"], "passed": sum(result["verdicts"].get(n) == "pass" for n in mine),
            "total": len(mine), "mine": mine}


def _write_csv(out_csv: Path, rows: list[dict]) -> None:
    """All rows so far, written to a temporary file and renamed over ``out_csv`` (never half a file)."""
    from .exercises import ALL
    seen = {n for r in rows for n in r["verdicts"]} | {n for r in rows for n in r["mine"]}
    prefixes = {n.split(".")[0] for n in seen}
    columns = sorted(n for n in ALL if n.split(".")[0] in prefixes)
    tmp = out_csv.with_name(f".{out_csv.name}.partial")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["submission", "status", *columns, "passed", "total"])
        writer.writeheader()
        for r in rows:
            writer.writerow({"submission": r["submission"], "status": r["status"], "passed": r["passed"],
                             "total": r["total"], **{n: r["verdicts"].get(n, "missing") for n in columns}})
    os.replace(tmp, out_csv)


def grade(submissions: str | Path, out_csv: str | Path, timeout: int = 1200, level: str | None = None,
          on_row=None, jobs: int = 1) -> list[dict]:
    """Grade every ``*.ipynb`` under ``submissions`` (recursively), each in its own sandbox
    (:mod:`ddim_edu.course.grading`), ``jobs`` at a time, and write ``out_csv`` after each one.

    The arguments are checked first (:class:`ClassroomError`). Every submission is read before
    the first one runs. A submission the grader itself fails on gets a ``grader error: …`` row.
    ``total`` is the number of exercises of that row's notebook (:func:`notebook_exercises`);
    ``passed`` counts the passed exercises among those. ``on_row(row)`` is called as each
    submission finishes. ``level`` forces an isolation level of :mod:`ddim_edu.course.sandbox`.
    With ``jobs`` > 1, a change to the grader's files is restored after the run that was
    running, but may be reported in the row of one running beside it.
    """
    from concurrent.futures import ThreadPoolExecutor
    from threading import Lock
    from . import grading
    _check_timeout(timeout)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ClassroomError(f"jobs must be a whole number of 1 or more, got {jobs!r}")
    paths = _submission_paths(submissions)
    out_csv = _check_out(out_csv)
    raws = {p: p.read_bytes() for p in paths}
    package, checkpoints, guard = _snapshot()
    guard.begin()
    rows, lock = [], Lock()

    def one(p):
        try:
            result = grading.grade_submission(raws[p], _candidates(p), timeout, package, checkpoints, level)
        except Exception as exc:  # noqa: BLE001 -- one bad submission must not stop the others
            result = {"status": f"grader error: {type(exc).__name__}: {exc}"[:200], "verdicts": {}}
        with lock:
            changed = guard.restore()
            if changed:
                result["status"] += f"; changed the grader's files (restored): {', '.join(changed[:3])}"
            rows.append(_row(p, Path(submissions), result))
            rows.sort(key=lambda r: r["submission"])
            _write_csv(out_csv, rows)
            if on_row:
                on_row(next(r for r in rows if r["submission"] == str(p.relative_to(submissions))))

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, paths))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddim_edu.course", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("student", help="write student versions of the notebooks")
    s.add_argument("src", metavar="SRC", help="folder of instructor notebooks")
    s.add_argument("out", metavar="OUT", help="folder to write the student notebooks to (not SRC)")
    sub.add_parser("handout", help="write the folder students get (student notebooks, package without solutions)") \
        .add_argument("out", metavar="OUT", help="new or empty folder to write the handout to")
    sub.add_parser("key", help="write the instructor's answer key (every reference solution; not for students)") \
        .add_argument("out", metavar="OUT", help="new or empty folder to write the answer key to")
    g = sub.add_parser("grade", help="execute submissions and write a CSV of verdicts")
    g.add_argument("submissions", metavar="SUBMISSIONS", help="folder of submitted .ipynb files (searched recursively)")
    g.add_argument("--out", default="grades.csv", help="CSV file to write (default grades.csv)")
    g.add_argument("--timeout", type=positive_seconds, default=1200,
                   help="wall-clock seconds per submission, a whole number of 1 or more (default 1200)")
    g.add_argument("--isolation", choices=LEVELS, default=None,
                   help="force a sandbox level (default: the strongest that works here; see README)")
    g.add_argument("--jobs", type=positive_int, default=1,
                   help="submissions graded at the same time, a whole number of 1 or more (default 1)")
    args = parser.parse_args(argv)
    if args.command != "grade":
        make = {"student": lambda: make_student_versions(args.src, args.out),
                "handout": lambda: make_handout(args.out), "key": lambda: write_answer_key(args.out)}[args.command]
        try:
            written = make()
        except ClassroomError as exc:
            sub.choices[args.command].error(str(exc))
        for p in written:
            print(f"wrote {p}")
    else:
        from .sandbox import isolation
        try:
            print(f"grading in sandboxes (isolation: {args.isolation or isolation()}); rows are written to "
                  f"{args.out} as they finish", flush=True)
            grade(args.submissions, args.out, args.timeout, level=args.isolation, jobs=args.jobs, on_row=lambda r: print(
                f"{r['submission']}: {r['status']}, {r['passed']}/{r['total']} passed", flush=True))
        except ClassroomError as exc:
            g.error(str(exc))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
