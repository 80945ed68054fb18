"""Notebook 09's exercises (ddim_edu.course.ex09_guidance): the reference solutions pass, each listed
mistake is rejected with its message, a stub is "not attempted", and the notebook's solution blocks
equal the module's (notebooks/09_guidance.ipynb, or its draft notebooks/_09_guidance.ipynb)."""
import importlib.util
from pathlib import Path

import pytest

from ddim_edu.course import ex09_guidance

NB_DIR = Path(__file__).resolve().parents[2] / "notebooks"
EXERCISES = vars(ex09_guidance.ex09)


def _helpers():
    """The notebook/module comparison of test_solutions_match_notebooks (one implementation)."""
    spec = importlib.util.spec_from_file_location("_match", Path(__file__).with_name("test_solutions_match_notebooks.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _notebook():
    for name in ("09_guidance.ipynb", "_09_guidance.ipynb"):
        if (NB_DIR / name).is_file():
            return name
    pytest.fail("notebooks/09_guidance.ipynb (or its draft _09_guidance.ipynb) is missing")


def test_the_namespace_is_de_course_ex09():
    import ddim_edu as de
    assert de.course.ex09 is ex09_guidance.ex09 and sorted(EXERCISES) == ["guided_eps", "label_edit"]
    assert all(ex.name == f"ex09.{key}" for key, ex in EXERCISES.items())


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_reference_solution_passes_and_mistakes_are_named(key, capsys):
    ex = EXERCISES[key]
    assert ex.check(*ex.solution_functions[-1:]).passed is True
    assert len(ex.mistakes) >= 2
    for wrong, message in ex.mistakes:
        result = ex.check(wrong)
        assert result.passed is False, f"{ex.name} accepted a wrong answer ({message})"
        assert message in result.message, f"{ex.name}: expected «{message}» in\n{result.message}"

    def stub(*args):
        raise NotImplementedError
    assert ex.check(stub).passed is None
    capsys.readouterr()


def test_notebook_solution_blocks_equal_the_module():
    m = _helpers()
    notebook = _notebook()
    in_notebook = m._notebook_solutions(notebook)
    in_module = {f.__name__: f for ex in EXERCISES.values() for f in ex.solution_functions}
    assert sorted(in_notebook) == sorted(in_module)
    for name, fn in in_module.items():
        assert m._module_code(fn) == in_notebook[name], name
    calls = [mm.groups() for cell in m._notebook_code_cells(notebook) for mm in m.CHECK_CALL.finditer(cell)]
    assert sorted(f"{ns}.{ex}({args})" for ns, ex, args in calls) == [
        "ex09.guided_eps(my_guided_eps)", "ex09.label_edit(my_label_edit)"]
