"""Student versions of the instructor notebooks: every solution block replaced by a
placeholder, instructor-only cells removed, outputs cleared (``python -m ddim_edu.course student``)."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

SOLUTION_RE = re.compile(r"^([ \t]*)# BEGIN SOLUTION[^\n]*\n.*?^[ \t]*# END SOLUTION[^\n]*(\n|$)", re.S | re.M)
PLACEHOLDER = "raise NotImplementedError  # your code here"
INSTRUCTOR_TAGS = {"instructor", "instructor-only", "solution"}


class ClassroomError(ValueError):
    """A bad argument to ``student`` or ``grade``; its message names the argument, its value
    and what is allowed. The command line prints it and exits with status 2."""


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
    """Write the student version of every notebook in ``src`` (drafts ``_*`` skipped) to ``out``,
    with the notes the notebooks link to (``src``'s ``*.md`` files, e.g. NOTATION.md), copied."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ClassroomError(f"SRC must be a folder of notebooks, got {str(src)!r}")
    if out.exists() and not out.is_dir():
        raise ClassroomError(f"OUT must be a folder (existing or to create), got {str(out)!r}, which is a file")
    paths = [p for p in sorted(src.glob("*.ipynb")) if not p.name.startswith("_")]
    if out.resolve() == src.resolve():
        raise ClassroomError(f"OUT must not be SRC: OUT {str(out)!r} is the folder SRC {str(src)!r}, and writing "
                             "there would overwrite the instructor notebooks (every solution lost); "
                             "choose another folder")
    sources = {p.resolve() for p in src.glob("*.ipynb")}
    clash = [p.name for p in paths if (out / p.name).resolve() in sources]
    if clash:
        raise ClassroomError(f"OUT {str(out)!r} would overwrite source notebooks of SRC {str(src)!r} "
                             f"({', '.join(clash)}); choose a folder holding no notebook of SRC")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        nb = student_notebook(nbformat.read(path, as_version=4))
        nbformat.write(nb, out / path.name)
        written.append(out / path.name)
    for note in sorted(src.glob("*.md")):
        if (out / note.name).resolve() != note.resolve():
            (out / note.name).write_bytes(note.read_bytes())
            written.append(out / note.name)
    return written
