"""The grading sandbox's side of ``grade``: run one submission, record its answers.

    python -m ddim_edu.course.runner NOTEBOOK ANSWERS STATUS EXERCISE [EXERCISE ...]

Started by the grader (:mod:`ddim_edu.course.grading`) inside the sandbox, on a copy of the
submission whose outputs, tags and metadata the grader already removed. Every cell runs (none is
skipped; errors do not stop the run) in an IPython shell, as in a notebook, after a first cell that installs the
answer recorder (:func:`ddim_edu.course.answers.install_recorder`) and before a last cell that
records, by their function names, the notebook's exercises whose check the notebook never called.
``STATUS`` gets one JSON line: whether the run reached its end and the first error.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def run(notebook: str, answers: str, status: str, exercises: list[str]) -> None:
    import nbformat
    from IPython.core.interactiveshell import InteractiveShell
    nb = nbformat.read(notebook, as_version=4)
    class Shell(InteractiveShell):
        def enable_gui(self, gui=None):   # %matplotlib inline: figures are not shown while grading
            pass
    shell = Shell.instance()
    shell.run_cell("from ddim_edu.course.answers import install_recorder as _install_recorder\n"
                   f"_install_recorder({answers!r}); del _install_recorder")
    first_error = ""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        result = shell.run_cell(cell.source, store_history=True)
        error = result.error_before_exec or result.error_in_exec
        if error is not None and not first_error:
            first_error = f"error in cell {i}: {type(error).__name__}: {error}"[:200]
    shell.run_cell("from ddim_edu.course.answers import record_by_name as _record_by_name\n"
                   f"_record_by_name({answers!r}, globals(), {exercises!r})")
    Path(status).write_text(json.dumps({"finished": True, "first_error": first_error}))


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
