"""Classroom mode: student versions of the notebooks, and a grader for submissions.

    python -m ddim_edu.course student notebooks/ OUT/
    python -m ddim_edu.course grade SUBMISSIONS/ --out grades.csv [--timeout 600]

``student``: code between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` becomes
``raise NotImplementedError  # your code here``; cells tagged ``instructor`` (cell metadata
tags) or starting with ``# INSTRUCTOR ONLY`` are removed; outputs are cleared.

``grade``: executes every submitted notebook (offline, fast mode, a per-notebook timeout),
reads the checks' ``[ddim_edu.check] exNN.name: pass|fail|not-attempted`` lines from its
outputs and writes one CSV row per submission. A notebook that crashes or times out gets a
row saying so; the grader itself does not stop. ``total`` is the number of exercises of the
notebook the row's submission is: its file name's ``NN_`` prefix (or a declared notebook file
name it contains), else the notebooks its verdict lines name.

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
import time
from pathlib import Path

import nbformat

from .engine import TAG
from .handout import PLACEHOLDER, ClassroomError, make_student_versions, student_notebook  # noqa: F401

VERDICT_RE = re.compile(re.escape(TAG) + r" (ex\d\d\.\w+): (pass|fail|not-attempted)")
NUMBER_RE = re.compile(r"^(\d\d)_")


# ----------------------------------------------------------------------------- grading
def _as_text(value) -> str:
    """An output's text as a str whatever the notebook holds there (str, list of str, int, None)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "".join(_as_text(v) for v in value)
    return value if isinstance(value, str) else str(value)


def _outputs(nb):
    """Every output of every cell that is a mapping (malformed entries skipped), with its cell's index."""
    for i, c in enumerate(nb.get("cells", []) or []):
        outputs = c.get("outputs", []) if isinstance(c, dict) else []
        for o in outputs if isinstance(outputs, list) else []:
            if isinstance(o, dict):
                yield i, o


def _outputs_text(nb) -> str:
    parts = []
    for _, o in _outputs(nb):
        if o.get("output_type") == "stream":
            parts.append(_as_text(o.get("text", "")))
        elif o.get("output_type") in ("execute_result", "display_data"):
            data = o.get("data", {})
            parts.append(_as_text(data.get("text/plain", "") if isinstance(data, dict) else ""))
    return "\n".join(parts)


def _first_error(nb) -> str:
    for i, o in _outputs(nb):
        if o.get("output_type") == "error":
            return f"error in cell {i}: {_as_text(o.get('ename'))}: {_as_text(o.get('evalue'))}"[:200]
    return ""


def _check_timeout(timeout) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ClassroomError(f"timeout must be a positive number of seconds, got {timeout!r}")


def positive_seconds(text: str) -> int:
    """argparse type of ``--timeout``: a whole number of seconds, at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number of seconds (1 or more), "
                                         f"got {text!r}")
    return value


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


def grade_notebook(path: str | Path, timeout: int = 600) -> dict:
    """Execute one submission; returns {"status": ok|error ...|timeout|unreadable ..., "verdicts": {...}}."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    _check_timeout(timeout)
    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        return {"status": f"unreadable: {type(exc).__name__}: {exc}"[:200], "verdicts": {}}
    env_keys = {"DDIM_EDU_FAST": "1", "DDIM_EDU_OFFLINE": "1", "MPLBACKEND": "Agg"}
    repo_root = str(Path(__file__).resolve().parents[2])
    old = {k: os.environ.get(k) for k in [*env_keys, "PYTHONPATH"]}
    os.environ.update(env_keys)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [repo_root, old["PYTHONPATH"]] if p)
    status = "ok"
    start = time.monotonic()
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute()
        except CellTimeoutError:
            status = f"timeout (a cell ran past {timeout} s)"
        except DeadKernelError as exc:
            status = f"kernel died: {exc}"[:200]
        except Exception as exc:
            status = f"could not execute: {type(exc).__name__}: {exc}"[:200]
        if status == "ok" and time.monotonic() - start > timeout:
            status = f"timeout (ran past {timeout} s)"
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if status == "ok":
        status = _first_error(nb) or "ok"
    verdicts = dict(VERDICT_RE.findall(_outputs_text(nb)))
    return {"status": status, "verdicts": verdicts}


def grade(submissions: str | Path, out_csv: str | Path, timeout: int = 600) -> list[dict]:
    """Grade every ``*.ipynb`` under ``submissions`` (recursively) and write ``out_csv``.

    The arguments are checked first (:class:`ClassroomError`). A submission the grader itself
    fails on gets a ``grader error: …`` row; the others are graded and the CSV is written.
    ``total`` is the number of exercises of that row's notebook (:func:`notebook_exercises`);
    ``passed`` counts the passed exercises among those.
    """
    from .exercises import ALL
    _check_timeout(timeout)
    paths = _submission_paths(submissions)
    out_csv = _check_out(out_csv)
    results = {}
    for p in paths:
        try:
            r = grade_notebook(p, timeout)
            verdicts = {str(k): str(v) for k, v in dict(r["verdicts"]).items()}
            results[p] = {"status": str(r["status"]), "verdicts": verdicts}
        except Exception as exc:  # noqa: BLE001 -- one bad notebook must not stop the CSV
            results[p] = {"status": f"grader error: {type(exc).__name__}: {exc}"[:200], "verdicts": {}}
    expected = {p: notebook_exercises(p, r["verdicts"]) for p, r in results.items()}
    seen = {name for r in results.values() for name in r["verdicts"]}
    known = {name for names in expected.values() for name in names}
    prefixes = {name.split(".")[0] for name in seen | known}
    columns = sorted(n for n in ALL if n.split(".")[0] in prefixes) + sorted(seen - set(ALL))
    rows = []
    for p, r in results.items():
        row = {"submission": str(p.relative_to(submissions)), "status": r["status"]}
        for name in columns:
            row[name] = r["verdicts"].get(name, "missing")
        mine = expected[p]
        row["passed"] = sum(r["verdicts"].get(n) == "pass" for n in mine)
        row["total"] = len(mine)
        rows.append(row)
    with open(out_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["submission", "status", *columns, "passed", "total"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddim_edu.course", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("student", help="write student versions of the notebooks")
    s.add_argument("src", metavar="SRC", help="folder of instructor notebooks")
    s.add_argument("out", metavar="OUT", help="folder to write the student notebooks to (not SRC)")
    g = sub.add_parser("grade", help="execute submissions and write a CSV of verdicts")
    g.add_argument("submissions", metavar="SUBMISSIONS", help="folder of submitted .ipynb files (searched recursively)")
    g.add_argument("--out", default="grades.csv", help="CSV file to write (default grades.csv)")
    g.add_argument("--timeout", type=positive_seconds, default=600,
                   help="seconds per cell, a whole number of 1 or more (default 600)")
    args = parser.parse_args(argv)
    if args.command == "student":
        try:
            written = make_student_versions(args.src, args.out)
        except ClassroomError as exc:
            s.error(str(exc))
        for p in written:
            print(f"wrote {p}")
    else:
        try:
            rows = grade(args.submissions, args.out, args.timeout)
        except ClassroomError as exc:
            g.error(str(exc))
        for r in rows:
            print(f"{r['submission']}: {r['status']}, {r['passed']}/{r['total']} passed")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
