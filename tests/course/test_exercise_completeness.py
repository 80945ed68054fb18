"""Every exercise of every notebook is complete and known to the grader.

In a notebook an exercise is a markdown cell starting "**Exercise k.**" followed (before the next
exercise or section) by a code cell holding the solution between ``# BEGIN SOLUTION`` and
``# END SOLUTION`` and by exactly one ``de.course.exNN.<name>.check(…)`` call. Each such exercise
is registered (``de.course.ALL``, which the grader reads) and each registered exercise appears in
its notebook once, with a check, a hint, a solution, cases and known mistakes. Notebooks are
found by their ``NN_`` names: a new notebook with exercises is checked without a change here.
"""
import json
import re
from pathlib import Path

import pytest

import ddim_edu as de
from ddim_edu.course import classroom
from ddim_edu.course.engine import Case
from ddim_edu.course.exercises import ALL, BY_NOTEBOOK

NB_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(p.name for p in NB_DIR.glob("[0-9][0-9]_*.ipynb"))
HEADING = re.compile(r"^\*\*Exercise (\d+)\.\*\*", re.M)
CHECK = re.compile(r"de\.course\.(ex\d\d)\.(\w+)\.check\(")


def exercise_problems(cells: list[dict], number: str, registered: set[str]) -> list[str]:
    """What is wrong with notebook ``number``'s exercises (``cells``: nbformat dicts with a string
    source) against the ``registered`` exercise names of that notebook."""
    problems, sections = [], []
    for cell in cells:
        src = cell["source"]
        if cell["cell_type"] == "markdown":
            m = HEADING.search(src)
            if m:
                sections.append({"k": int(m.group(1)), "checks": [], "solution": False})
            elif src.lstrip().startswith("#"):
                sections.append(None)            # a new section ends the exercise
        elif sections and sections[-1] is not None:
            sections[-1]["checks"] += [f"{ns}.{name}" for ns, name in CHECK.findall(src)]
            sections[-1]["solution"] |= "# BEGIN SOLUTION" in src and "# END SOLUTION" in src
    exercises = [s for s in sections if s is not None]
    if [s["k"] for s in exercises] != list(range(1, len(exercises) + 1)):
        problems.append(f"exercises are numbered {[s['k'] for s in exercises]}, not 1, 2, …")
    seen = []
    for s in exercises:
        if len(s["checks"]) != 1:
            problems.append(f"exercise {s['k']} should call exactly one check, calls {s['checks']}")
        if not s["solution"]:
            problems.append(f"exercise {s['k']} has no solution block (# BEGIN SOLUTION … # END SOLUTION)")
        for name in s["checks"]:
            if not name.startswith(f"ex{number}."):
                problems.append(f"exercise {s['k']} checks {name}, an exercise of another notebook")
            elif name not in registered:
                problems.append(f"exercise {s['k']} checks {name}, which is not registered (de.course.ALL)")
            seen.append(name)
    problems += [f"{name} is registered but no exercise of the notebook checks it" for name in sorted(registered - set(seen))]
    problems += [f"{name} is checked by two exercises" for name in sorted({n for n in seen if seen.count(n) > 1})]
    return problems


def _cells(name: str) -> list[dict]:
    nb = json.loads((NB_DIR / name).read_text(encoding="utf-8"))
    return [{"cell_type": c["cell_type"], "source": "".join(c["source"])} for c in nb["cells"]]


def _registered(number: str) -> set[str]:
    return {n for n in ALL if n.startswith(f"ex{number}.")}


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_exercises_map_to_registered_ones(notebook):
    problems = exercise_problems(_cells(notebook), notebook[:2], _registered(notebook[:2]))
    assert not problems, f"{notebook}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_a_notebook_has_exercises_exactly_when_it_is_registered(notebook):
    has = bool(HEADING.search("\n".join(c["source"] for c in _cells(notebook) if c["cell_type"] == "markdown")))
    assert has == (notebook in BY_NOTEBOOK), (
        f"{notebook}: {'has exercises but is not' if has else 'is registered but has no exercises, yet is'} "
        "in de.course.exercises.BY_NOTEBOOK")


def test_registered_notebooks_exist_and_name_their_exercises_after_them():
    assert set(BY_NOTEBOOK) <= set(NOTEBOOKS)
    for notebook, exercises in BY_NOTEBOOK.items():
        names = [ex.name for ex in vars(exercises).values()]
        assert names and all(n.startswith(f"ex{notebook[:2]}.") for n in names), (notebook, names)
        assert getattr(de.course, f"ex{notebook[:2]}") is exercises       # de.course.exNN is this notebook's
        assert classroom.notebook_exercises(f"{notebook[:2]}_anything.ipynb") == sorted(names)   # the grader's view


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_exercise_has_a_check_hint_solution_cases_and_mistakes(name, capsys):
    ex = ALL[name]
    assert callable(ex.check) and callable(ex.reference)
    cases = ex.cases()
    assert cases and all(isinstance(c, Case) and c.label for c in cases)
    ex.hint()
    hint = capsys.readouterr().out
    assert hint.startswith(f"Hint ({name}): ") and len(hint.strip()) > len(f"Hint ({name}):") + 10
    assert ex.solution_functions and all(f.__name__.startswith("my_") for f in ex.solution_functions)
    ex.solution(reveal=True)
    shown = capsys.readouterr().out
    assert all(f"def {f.__name__}(" in shown for f in ex.solution_functions)
    assert ex.mistakes and all(callable(w) and m for w, m in ex.mistakes)


# ----------------------------------------------------------------------------- the checker itself
def _md(text):
    return {"cell_type": "markdown", "source": text}


def _code(text):
    return {"cell_type": "code", "source": text}


SOLVED = "def my_f(x):\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION\n"


def test_a_complete_notebook_passes_and_each_planted_gap_is_caught():
    good = [_md("## Exercises\n\n**Exercise 1.** Do f."), _code(SOLVED), _code("de.course.ex09.f.check(my_f)"),
            _md("**Exercise 2.** Do g."), _code(SOLVED.replace("my_f", "my_g")), _code("de.course.ex09.g.check(my_g)"),
            _md("## Summary")]
    names = {"ex09.f", "ex09.g"}
    assert exercise_problems(good, "09", names) == []
    no_check = good[:2] + good[3:]
    assert any("exactly one check" in p for p in exercise_problems(no_check, "09", names))
    no_solution = good[:1] + [_code("def my_f(x):\n    return x\n")] + good[2:]
    assert any("no solution block" in p for p in exercise_problems(no_solution, "09", names))
    assert any("not registered" in p for p in exercise_problems(good, "09", {"ex09.f"}))
    assert any("no exercise of the notebook checks it" in p for p in exercise_problems(good, "09", names | {"ex09.h"}))
    other = [dict(c, source=c["source"].replace("ex09.g", "ex03.sigma")) for c in good]
    assert any("another notebook" in p for p in exercise_problems(other, "09", names))
    after_summary = good[:3] + [_md("## Summary"), _code("de.course.ex09.g.check(my_g)")]
    assert exercise_problems(after_summary, "09", {"ex09.f"}) == []       # a check after the section is not an exercise's
    renumbered = [dict(c, source=c["source"].replace("**Exercise 2.**", "**Exercise 3.**")) for c in good]
    assert any("numbered" in p for p in exercise_problems(renumbered, "09", names))
