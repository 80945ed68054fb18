"""What a teacher gives out and what a teacher keeps.

* ``student``: student versions of the instructor notebooks: every solution block replaced by a
  placeholder, instructor-only cells removed, outputs cleared (:func:`make_student_versions`).
* ``handout``: the folder students get (:func:`make_handout`): those notebooks, the package with
  its reference solutions taken out (:mod:`.stripping`; the checks still run), the shipped
  checkpoints and committed results the notebooks read, and a README with the install command.
* ``key``: the instructor's answer key, never part of the handout (:func:`write_answer_key`):
  every exercise's reference solution as code, one file per notebook, and ``docs/answer_key.md``
  (written answers to the open questions) when the checkout has it.
"""
from __future__ import annotations

import inspect
import re
import shutil
import textwrap
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


# ----------------------------------------------------------------------------- the handout and the key
STUDENT_README = """# ddim-edu: your copy of the course

Notebooks that teach Denoising Diffusion Implicit Models (Song, Meng & Ermon, ICLR 2021), and the
small package `ddim_edu` they import. Install once, from this folder (Python 3.10 or newer):

```bash
pip install -e . jupyterlab && jupyter lab notebooks/
```

Without an NVIDIA GPU, install PyTorch's CPU-only build first (much smaller):
`pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu`.

Every exercise is a `raise NotImplementedError  # your code here`: replace it with your code and run
the check below it, e.g. `de.course.ex03.sigma.check(my_sigma)`. It says "✓ correct", or which
case failed and why; `.hint()` gives a hint. The reference solutions are not in this copy
(`.solution(reveal=True)` says so): your teacher has them. `DDIM_EDU_FAST=1 jupyter lab notebooks/`
runs every notebook quickly with fewer samples. Symbols are in `notebooks/NOTATION.md`.
"""


def source_checkout() -> Path:
    """The folder holding the installed package, ``notebooks/`` and ``pyproject.toml``: the handout and
    the key are built from a source checkout (``pip install -e .``), not from an installed wheel."""
    from .grading import PACKAGE_DIR
    root = PACKAGE_DIR.parent
    missing = [n for n in ("pyproject.toml", "notebooks") if not (root / n).exists()]
    if missing:
        raise ClassroomError(f"the handout and the key are built from a source checkout of the course, but "
                             f"{str(root)!r} (the folder above the installed package) has no {' or '.join(missing)}; "
                             "clone the repository and `pip install -e .` it")
    return root


def _fresh_folder(out, what: str) -> Path:
    """``out`` as a new or empty folder, or a :class:`ClassroomError` naming it."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ClassroomError(f"{what} must be a folder to create (or an empty one), got {str(out)!r}, which is a file")
    if out.is_dir() and any(out.iterdir()):
        raise ClassroomError(f"{what} must be a new or empty folder, got {str(out)!r}, which is not empty; "
                             "choose another folder or empty it first (nothing is overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy the files under ``src`` (hidden names and ``__pycache__`` left out)."""
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_file() and not any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dst / rel)


def _handout_pyproject(text: str) -> str:
    """The repository's pyproject.toml without its pytest settings (they name the repository's tests)."""
    return re.sub(r"^\[tool\.pytest\.ini_options\]\n.*?(?=^\[|\Z)", "", text, flags=re.S | re.M).rstrip() + "\n"


def make_handout(out: str | Path) -> list[Path]:
    """Write the student handout to the new or empty folder ``out``: ``notebooks/`` (student versions),
    ``ddim_edu/`` (the package, reference solutions out, checks working), ``checkpoints/``,
    ``results/`` (what the notebooks read), ``pyproject.toml`` and ``README.md``. Returns those paths."""
    from ..train.pretrained import checkpoints_dir
    from .grading import grading_package
    from .stripping import HANDOUT_STUB
    root = source_checkout()
    out = _fresh_folder(out, "OUT")
    for rel, data in grading_package(HANDOUT_STUB, keep_checks=True).items():
        (out / "ddim_edu" / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / "ddim_edu" / rel).write_bytes(data)
    make_student_versions(root / "notebooks", out / "notebooks")
    for name, src in (("checkpoints", checkpoints_dir()), ("results", root / "results")):
        if src.is_dir():
            _copy_tree(src, out / name)
    (out / "pyproject.toml").write_text(_handout_pyproject((root / "pyproject.toml").read_text()))
    (out / "README.md").write_text(STUDENT_README)
    return sorted(out.iterdir())


def _key_module(notebook: str, exercises) -> str:
    """One notebook's reference solutions, in the notebook's order, as a Python file that runs on its own."""
    lines = [f'"""Answer key, notebook {notebook}: the reference solution of each exercise (instructors only)."""',
             "import math", "", "import torch", "", "import ddim_edu as de", ""]
    shown = set()
    for ex in vars(exercises).values():
        fns = ex.solution_functions
        passed = ", ".join(f.__name__ for f in fns[-len(inspect.signature(ex.adapt).parameters):])
        lines += ["", f"# {'-' * 40} {ex.name}: de.course.{ex.name}.check({passed})"]
        for fn in fns:
            lines += ["", f"# {fn.__name__}: above"] if fn.__name__ in shown else \
                ["", textwrap.dedent(inspect.getsource(fn)).rstrip(), ""]
            shown.add(fn.__name__)
    return "\n".join(lines).rstrip() + "\n"


def write_answer_key(out: str | Path) -> list[Path]:
    """Write the instructor's answer key to the new or empty folder ``out``: ``NN_name.py`` with every
    exercise's reference solution, one per notebook, and ``answer_key.md`` (the checkout's
    ``docs/answer_key.md``, written answers to the open questions) when there is one."""
    from .exercises import BY_NOTEBOOK
    root = source_checkout()
    out = _fresh_folder(out, "OUT")
    written = []
    for notebook, exercises in sorted(BY_NOTEBOOK.items()):
        path = out / (Path(notebook).stem + ".py")
        path.write_text(_key_module(notebook, exercises))
        written.append(path)
    notes = root / "docs" / "answer_key.md"
    if notes.is_file():
        shutil.copyfile(notes, out / "answer_key.md")
        written.append(out / "answer_key.md")
    return written
