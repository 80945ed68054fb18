"""Classroom mode: student versions of the notebooks, and a grader for submissions.

    python -m ddim_edu.course student notebooks/ OUT/
    python -m ddim_edu.course grade SUBMISSIONS/ --out grades.csv [--timeout 600]

``student``: code between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` becomes
``raise NotImplementedError  # your code here``; cells tagged ``instructor`` (cell metadata
tags) or starting with ``# INSTRUCTOR ONLY`` are removed; outputs are cleared.

``grade``: executes every submitted notebook (offline, fast mode, a per-notebook timeout),
reads the checks' ``[ddim_edu.check] exNN.name: pass|fail|not-attempted`` lines from its
outputs and writes one CSV row per submission. A notebook that crashes or times out gets a
row saying so; the grader itself does not stop.
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

SOLUTION_RE = re.compile(r"^([ \t]*)# BEGIN SOLUTION[^\n]*\n.*?^[ \t]*# END SOLUTION[^\n]*(\n|$)", re.S | re.M)
PLACEHOLDER = "raise NotImplementedError  # your code here"
INSTRUCTOR_TAGS = {"instructor", "instructor-only", "solution"}
VERDICT_RE = re.compile(re.escape(TAG) + r" (ex\d\d\.\w+): (pass|fail|not-attempted)")


# ----------------------------------------------------------------------------- student versions
def _instructor_only(cell) -> bool:
    tags = set(cell.get("metadata", {}).get("tags", []))
    return bool(tags & INSTRUCTOR_TAGS) or cell.source.lstrip().upper().startswith("# INSTRUCTOR ONLY")


def strip_solutions(source: str) -> str:
    """Replace every marked solution block by the placeholder, at the block's indentation."""
    return SOLUTION_RE.sub(lambda m: f"{m.group(1)}{PLACEHOLDER}{m.group(2)}", source)


def student_notebook(nb):
    """A student copy of an instructor notebook (a new object; outputs cleared)."""
    nb = nbformat.from_dict(nb)
    nb.cells = [c for c in nb.cells if not _instructor_only(c)]
    for c in nb.cells:
        if c.cell_type == "code":
            c.source = strip_solutions(c.source)
            c.outputs, c.execution_count = [], None
    return nb


def make_student_versions(src: str | Path, out: str | Path) -> list[Path]:
    """Write the student version of every notebook in ``src`` (drafts ``_*`` skipped) to ``out``."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ValueError(f"src must be a folder of notebooks, got {str(src)!r}")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(src.glob("*.ipynb")):
        if path.name.startswith("_"):
            continue
        nb = student_notebook(nbformat.read(path, as_version=4))
        nbformat.write(nb, out / path.name)
        written.append(out / path.name)
    return written


# ----------------------------------------------------------------------------- grading
def _outputs_text(nb) -> str:
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream":
                parts.append(o.get("text", ""))
            elif o.get("output_type") in ("execute_result", "display_data"):
                parts.append(o.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def _first_error(nb) -> str:
    for i, c in enumerate(nb.cells):
        for o in c.get("outputs", []):
            if o.get("output_type") == "error":
                return f"error in cell {i}: {o.get('ename')}: {o.get('evalue')}"[:200]
    return ""


def grade_notebook(path: str | Path, timeout: int = 600) -> dict:
    """Execute one submission; returns {"status": ok|error ...|timeout|unreadable ..., "verdicts": {...}}."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
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
    """Grade every ``*.ipynb`` under ``submissions`` (recursively) and write ``out_csv``."""
    from .exercises import ALL
    paths = sorted(p for p in Path(submissions).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    results = {p: grade_notebook(p, timeout) for p in paths}
    seen = {name for r in results.values() for name in r["verdicts"]}
    prefixes = {name.split(".")[0] for name in seen}
    columns = sorted(n for n in ALL if n.split(".")[0] in prefixes) + sorted(seen - set(ALL))
    rows = []
    for p, r in results.items():
        row = {"submission": str(p.relative_to(submissions)), "status": r["status"]}
        for name in columns:
            row[name] = r["verdicts"].get(name, "missing")
        row["passed"] = sum(v == "pass" for v in r["verdicts"].values())
        row["total"] = len(columns) if columns else 0
        rows.append(row)
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    with open(out_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["submission", "status", *columns, "passed", "total"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddim_edu.course", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("student", help="write student versions of the notebooks")
    s.add_argument("src"), s.add_argument("out")
    g = sub.add_parser("grade", help="execute submissions and write a CSV of verdicts")
    g.add_argument("submissions"), g.add_argument("--out", default="grades.csv")
    g.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    args = parser.parse_args(argv)
    if args.command == "student":
        for p in make_student_versions(args.src, args.out):
            print(f"wrote {p}")
    else:
        rows = grade(args.submissions, args.out, args.timeout)
        for r in rows:
            print(f"{r['submission']}: {r['status']}, {r['passed']}/{r['total']} passed")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
