"""Every cross-reference in the course resolves: the notebooks (markdown and code), README.md, the
notes next to the notebooks and docs/syllabus.md.

* "notebook NN" (also "notebooks 03 and 07", "notebooks 01–06") names a notebook that exists; a
  notebook's "Next: notebook MM" names the one after it, its "Prerequisites" earlier ones;
* a link ``[NN_name](…NN_name.ipynb)`` says the name of the notebook it opens;
* relative links (markdown links and images) and repository paths (``docs/…``, ``results/…``,
  ``checkpoints/…``, globs allowed) exist;
* notebook 00's course map has one row per notebook, each row's title fits that notebook (a word
  in common with its title or file name) and what it needs comes before it;
* ``exNN.name`` (``de.course.ex03.sigma``) is a registered exercise, a quiz id
  (``de.course.quiz.check_answer("03.deterministic", …)``) a stored question, "exercise k" in a notebook is
  one of its exercises, and README's count of exercises is the registry's.

Notebooks are found by their ``NN_`` names, so a new notebook is checked without a change here.
Each checker returns the problems it finds; the last tests plant broken references to show
that each one is caught. Anchors (``#section``) are not checked.
"""
import json
import re
from pathlib import Path

import pytest

from ddim_edu.course.exercises import ALL, BY_NOTEBOOK

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NUMBERS = {p.name[:2]: p for p in sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))}
EXERCISE_HEADING = re.compile(r"^\*\*Exercise (\d+)\.\*\*", re.M)

LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
REPO_PATH = re.compile(r"(?<![\w/.-])((?:docs|results|checkpoints)/[\w.*/-]*[\w*])")
NOTEBOOK_MENTION = re.compile(r"\b[Nn]otebooks?\s+(\d\d(?:\s*(?:,|and|or|–|-|to)\s*\d\d)*)")
EXERCISE_NAME = re.compile(r"\bex(\d\d)\.([A-Za-z_]\w*)")
QUIZ_ID = re.compile(r"quiz\.(?:ask|check_answer)\(\s*[\"']([^\"']+)[\"']")
EXERCISE_MENTION = re.compile(r"\b[Ee]xercises? (\d)\b(?! of notebook| in notebook)")


def _numbers(spec: str) -> list[str]:
    """'03 and 07' → ['03', '07']; '01–06' → ['01', …, '06']."""
    out = []
    for part in re.split(r"\s*(?:,|and|or)\s*", spec):
        ends = re.split(r"\s*(?:–|-|to)\s*", part)
        if len(ends) == 2:
            out += [f"{n:02d}" for n in range(int(ends[0]), int(ends[1]) + 1)]
        else:
            out += ends
    return out


# ----------------------------------------------------------------------------- the checkers
def broken_links(text: str, base: Path) -> list[str]:
    problems = []
    for label, target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        path = (base / target.split("#")[0].split("?")[0]).resolve()
        if not path.exists():
            problems.append(f"link [{label}]({target}): no {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        elif re.fullmatch(r"\d\d_\w+", label) and path.suffix == ".ipynb" and path.stem != label:
            problems.append(f"link [{label}]({target}) opens {path.name}")
    return problems


def broken_paths(text: str) -> list[str]:
    problems = []
    for path in REPO_PATH.findall(text):
        if "*" in path:
            if not list(ROOT.glob(path)):
                problems.append(f"{path}: matches no file")
        elif not (ROOT / path).exists():
            problems.append(f"{path}: does not exist")
    return problems


def unknown_notebooks(text: str, number: str | None = None) -> list[str]:
    """"notebook NN" that does not exist; in notebook ``number``, a "Next" that is not the next
    notebook or a prerequisite that is not an earlier one."""
    problems = []
    for spec in NOTEBOOK_MENTION.findall(text):
        problems += [f"notebook {n}: there is none" for n in _numbers(spec) if n not in NUMBERS]
    if number is not None:
        later = sorted(n for n in NUMBERS if n > number)
        for n in re.findall(r"\*\*Next[:.]?\**\s*(?:[Nn]otebook\s+)?(\d\d)", text):
            if not later or n != later[0]:
                problems.append(f"'Next: notebook {n}' in notebook {number}; the next one is {later[:1]}")
        for prereq in re.findall(r"\*\*Prerequisites\.\*\*(.*?)(?:\n\n|$)", text, re.S):
            for spec in NOTEBOOK_MENTION.findall(prereq):
                problems += [f"prerequisite notebook {n} of notebook {number} is not an earlier one"
                             for n in _numbers(spec) if n >= number]
    return problems


def unknown_exercises(text: str, number: str | None = None, headings: int = 0) -> list[str]:
    """``exNN.name`` not registered; in notebook ``number``, "exercise k" past its ``headings``."""
    problems = [f"ex{nn}.{name}: no such exercise (de.course.ALL has {sorted(n for n in ALL if n[2:4] == nn)})"
                for nn, name in EXERCISE_NAME.findall(text) if f"ex{nn}.{name}" not in ALL]
    if QUIZ_ID.search(text):
        from ddim_edu.course.quiz import QUESTIONS
        problems += [f"quiz question {q!r}: no such question" for q in QUIZ_ID.findall(text) if q not in QUESTIONS]
    if number is not None:
        problems += [f"exercise {k} in notebook {number}, which has {headings} exercises"
                     for k in EXERCISE_MENTION.findall(text) if not 1 <= int(k) <= headings]
    return problems


CELL = r"(?:\\\||[^|\n])*"                     # a table cell's text; "\|" is a pipe inside it
MAP_ROW = re.compile(rf"^\| \*\*(\d\d) · ([^*]+)\*\*{CELL}\|{CELL}\|({CELL})\|\s*$", re.M)
STOP = {"the", "and", "vs", "a", "an", "of", "to", "as", "one", "two"}


def _words(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z]+", text.lower().replace("-", "")) if w not in STOP and len(w) > 2}


def course_map_problems(text: str, titles: dict[str, str]) -> list[str]:
    """The map in notebook 00 (rows ``| **NN · title** | … | needs |``) against ``titles``
    ({NN: the notebook's first line and file name})."""
    rows = MAP_ROW.findall(text)
    problems = [f"the course map has no row for notebook {n}" for n in titles if n not in {r[0] for r in rows}]
    for n, title, needs in rows:
        if n not in titles:
            problems.append(f"the course map lists notebook {n}, which does not exist")
        elif not _words(title) & _words(titles[n]):
            problems.append(f"course map row {n} «{title}» does not fit notebook {n} «{titles[n]}»")
        problems += [f"course map row {n} needs notebook {m}, which is not an earlier one"
                     for m in _numbers(", ".join(re.findall(r"\d\d(?:–\d\d)?", needs))) if m >= n]
    return problems


def _titles() -> dict[str, str]:
    return {n: _notebook_text(p)[0].split("\n", 1)[0] + " " + p.stem for n, p in NUMBERS.items()}


# ----------------------------------------------------------------------------- what is checked
def _notebook_text(path: Path) -> tuple[str, str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    md = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    code = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return md, code


DOCUMENTS = [ROOT / "README.md", *sorted(NB_DIR.glob("*.md")), *sorted((ROOT / "docs").glob("syllabus*.md"))]
KNOWN_BROKEN: dict[str, str] = {}   # {"file: checker": why} for real broken references the owners are fixing


def _case(name, fn):
    reason = KNOWN_BROKEN.get(name)
    return pytest.param(name, fn, id=name, marks=[pytest.mark.xfail(strict=True, reason=reason)] if reason else [])


def _cases():
    for path in DOCUMENTS:
        text, rel = path.read_text(encoding="utf-8"), path.relative_to(ROOT)
        yield _case(f"{rel}: links", lambda text=text, path=path: broken_links(text, path.parent))
        yield _case(f"{rel}: paths", lambda text=text: broken_paths(text))
        yield _case(f"{rel}: notebooks", lambda text=text: unknown_notebooks(text))
        yield _case(f"{rel}: exercises", lambda text=text: unknown_exercises(text))
    for number, path in NUMBERS.items():
        md, code = _notebook_text(path)
        rel, n_ex = path.relative_to(ROOT), len(EXERCISE_HEADING.findall(md))
        yield _case(f"{rel}: links", lambda md=md: broken_links(md, NB_DIR))
        yield _case(f"{rel}: paths", lambda md=md, code=code: broken_paths(md + "\n" + code))
        yield _case(f"{rel}: notebooks", lambda md=md, code=code, n=number: unknown_notebooks(md, n)
                    + unknown_notebooks(code))
        yield _case(f"{rel}: exercises", lambda md=md, code=code, n=number, k=n_ex: unknown_exercises(md, n, k)
                    + unknown_exercises(code))


@pytest.mark.parametrize("name, find", list(_cases()))
def test_references_resolve(name, find):
    problems = find()
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


def test_the_course_map_lists_every_notebook():
    assert "00" in NUMBERS
    problems = course_map_problems(_notebook_text(NUMBERS["00"])[0], _titles())
    assert not problems, "\n".join(problems)


def test_the_syllabus_covers_every_notebook_and_exercise():
    """docs/syllabus.md has a row per notebook in its time table and names every registered exercise."""
    text = (ROOT / "docs" / "syllabus.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| \[(\d\d) · [^\]]+\]\(\.\./student_notebooks/\1_\w+\.ipynb\)", text, re.M))
    assert rows == set(NUMBERS), f"time table rows {sorted(rows)}, notebooks {sorted(NUMBERS)}"
    assert set(re.findall(r"`(ex\d\d\.\w+)`", text)) == set(ALL)


def test_readme_counts_the_registered_exercises():
    m = re.search(r"Notebooks ([\d–,\s]+(?:and \d\d)?) hold (\d+) exercises", (ROOT / "README.md").read_text())
    assert m, "README should say which notebooks hold how many exercises ('Notebooks … hold N exercises')"
    assert sorted(_numbers(m.group(1).strip())) == sorted(nb[:2] for nb in BY_NOTEBOOK), m.group(0)
    assert int(m.group(2)) == len(ALL), f"{m.group(0)!r}, but the registry has {len(ALL)}"


# ----------------------------------------------------------------------------- planted breakage
def test_a_planted_broken_link_is_caught():
    assert broken_links("[notation](NOTATION.md), [paper](https://arxiv.org/abs/2010.02502), [top](#top)", NB_DIR) == []
    assert broken_links("see [the notes](NOTATON.md)", NB_DIR)
    assert broken_links("![figure](../docs/figures/no_such_figure.png)", NB_DIR)
    assert broken_links("[03_ddpm_vs_ddim](04_ode_view.ipynb)", NB_DIR)       # the label names another notebook
    assert broken_links("[04_ode_view](04_ode_view.ipynb)", NB_DIR) == []


def test_a_planted_missing_file_is_caught():
    assert broken_paths("`results/solvers.md`, `results/table2_mnist*.json`, `checkpoints/mnist/`") == []
    assert broken_paths("see `results/no_such_table.md`") == ["results/no_such_table.md: does not exist"]
    assert broken_paths("`results/nothing_like_this*.json`") and broken_paths("docs/CORRECTNESS.md")


def test_a_planted_wrong_notebook_number_is_caught():
    last = max(NUMBERS)
    missing = f"{int(last) + 1:02d}"
    assert unknown_notebooks("notebook 01 and notebooks 02 and 03") == []
    assert unknown_notebooks(f"as notebook {missing} shows") and unknown_notebooks(f"notebooks 01–{missing}")
    assert unknown_notebooks("**Next: notebook 05.** more", "02")
    assert unknown_notebooks("**Next: notebook 03.** more", "02") == []
    assert unknown_notebooks("**Prerequisites.** Notebook 04 (the ODE).\n\nText", "03")


def test_a_planted_unknown_exercise_is_caught():
    assert unknown_exercises("de.course.ex03.sigma.check(my_sigma)") == []
    assert unknown_exercises("de.course.ex03.sigmaa.check(my_sigma)")
    assert unknown_exercises("de.course.ex42.sigma.hint()")
    assert unknown_exercises("use your code from exercise 4", "04", headings=3)
    assert unknown_exercises("use your code from exercise 3", "04", headings=3) == []


def test_a_planted_unknown_quiz_question_is_caught():
    quiz = pytest.importorskip("ddim_edu.course.quiz")
    known = sorted(quiz.QUESTIONS)[0]
    assert unknown_exercises(f'de.course.quiz.check_answer("{known}", answer)') == []
    assert unknown_exercises('de.course.quiz.ask("99.no_such_question")')


def test_a_planted_course_map_mistake_is_caught():
    titles = {"00": "# 00 · Set-up and a tour 00_setup_and_tour", "01": "# 01 · The forward process 01_forward_process",
              "04": "# 04 · DDIM as an ODE solver 04_ode_view"}
    good = ("| **00 · set-up and tour** (this one) | x | nothing |\n| **01 · the forward process** | x | Gaussians |\n"
            "| **04 · the ODE view** | x | 01 |\n")
    assert course_map_problems(good, titles) == []
    assert course_map_problems(good.replace("| **04 · the ODE view** | x | 01 |\n", ""), titles)       # a row missing
    assert course_map_problems(good.replace("04 · the ODE view", "04 · interpolation"), titles)    # another topic
    assert course_map_problems(good.replace("| x | 01 |", "| x | 01, 04 |"), titles)               # needs itself
    assert course_map_problems(good + "| **09 · guidance** | x | 04 |\n", titles)                  # no such notebook
