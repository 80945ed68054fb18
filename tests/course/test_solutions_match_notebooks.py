"""Each reference solution is written once, in its notebook's exercise module (ddim_edu.course,
"Where a solution lives"); the instructor notebook repeats it between ``# BEGIN SOLUTION`` and
``# END SOLUTION``. These tests make the two copies impossible to let drift apart."""
import ast
import difflib
import inspect
import json
import re
import textwrap
from pathlib import Path

import pytest

from ddim_edu.course.exercises import ALL, BY_NOTEBOOK

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CHECK_CALL = re.compile(r"de\.course\.(ex\d\d)\.(\w+)\.check\(([^)]*)\)")


def _code(source: str, fn: ast.FunctionDef) -> str:
    """The function's decorators, signature and body, docstring and solution markers left out,
    each line stripped and its white space folded: what must agree between the two copies."""
    lines = source.splitlines()
    start = min([fn.lineno] + [d.lineno for d in fn.decorator_list])
    skip = set()
    first = fn.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        skip = set(range(first.lineno, first.end_lineno + 1))
    kept = [" ".join(lines[i - 1].split()) for i in range(start, fn.end_lineno + 1) if i not in skip]
    return "\n".join(k for k in kept if k and k not in ("# BEGIN SOLUTION", "# END SOLUTION"))


def _notebook_code_cells(name: str) -> list[str]:
    nb = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _notebook_solutions(name: str) -> dict[str, str]:
    """{function name: its code} for every function of the notebook that holds a solution block."""
    out = {}
    for cell in _notebook_code_cells(name):
        if "# BEGIN SOLUTION" not in cell:
            continue
        for node in ast.parse(cell).body:
            if isinstance(node, ast.FunctionDef):
                assert node.name not in out, f"{name}: {node.name} is defined twice"
                out[node.name] = _code(cell, node)
        assert cell.count("# BEGIN SOLUTION") == sum(
            "# BEGIN SOLUTION" in ast.get_source_segment(cell, n) for n in ast.parse(cell).body
            if isinstance(n, ast.FunctionDef)), f"{name}: a solution block outside an exercise function"
    return out


def _module_code(fn) -> str:
    source = textwrap.dedent(inspect.getsource(fn))
    return _code(source, ast.parse(source).body[0])


@pytest.mark.parametrize("notebook", sorted(BY_NOTEBOOK))
def test_notebook_solutions_equal_the_modules(notebook):
    in_notebook = _notebook_solutions(notebook)
    in_module = {f.__name__: f for ex in vars(BY_NOTEBOOK[notebook]).values() for f in ex.solution_functions}
    assert sorted(in_notebook) == sorted(in_module), (
        f"{notebook}: the solution functions of the notebook {sorted(in_notebook)} and of its exercise module "
        f"{sorted(in_module)} should be the same")
    for name, fn in in_module.items():
        mine, theirs = _module_code(fn), in_notebook[name]
        diff = "\n".join(difflib.unified_diff(mine.splitlines(), theirs.splitlines(), f"{fn.__module__}.{name}",
                                              f"{notebook}: {name}", lineterm=""))
        assert mine == theirs, f"the two copies of {name} differ; make them equal again:\n{diff}"


@pytest.mark.parametrize("notebook", sorted(BY_NOTEBOOK))
def test_notebook_checks_each_of_its_exercises_with_its_solution(notebook):
    calls = [m.groups() for cell in _notebook_code_cells(notebook) for m in CHECK_CALL.finditer(cell)]
    prefix = {n.split(".")[0] for n in (ex.name for ex in vars(BY_NOTEBOOK[notebook]).values())}
    assert sorted(f"{ns}.{ex}" for ns, ex, _ in calls) == sorted(n for n in ALL if n.split(".")[0] in prefix)
    for ns, ex, args in calls:
        passed = [a.strip() for a in args.split(",")]
        solutions = [f.__name__ for f in ALL[f"{ns}.{ex}"].solution_functions]
        assert passed == solutions[-len(passed):], f"{notebook}: {ns}.{ex}.check({args}) vs solution {solutions}"


def test_every_numbered_exercise_notebook_has_a_module():
    with_solutions = {p.name for p in NOTEBOOKS.glob("[0-9]*.ipynb") if "BEGIN SOLUTION" in p.read_text(encoding="utf-8")}
    assert with_solutions == set(BY_NOTEBOOK)


def test_a_changed_solution_is_caught():
    """The comparison itself: white space does not count, a changed token does."""
    nb = "def my_f(x):\n    \"\"\"Doc.\"\"\"\n    # BEGIN SOLUTION\n    return  x + 1\n    # END SOLUTION\n"
    same = "def my_f(x):\n    \"\"\"Another doc.\"\"\"\n    return x + 1\n"
    other = "def my_f(x):\n    return x - 1\n"
    code = [_code(s, ast.parse(s).body[0]) for s in (nb, same, other)]
    assert code[0] == code[1] != code[2]
