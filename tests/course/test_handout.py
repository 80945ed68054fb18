"""The handout students get and the key the teacher keeps (``python -m ddim_edu.course handout|key``),
and the committed student notebooks that Colab opens.

The handout is built once (a module fixture, ~15 s) from a copy of this checkout into which an
``docs/answer_key.md`` is planted, so that leaving it out is tested even before the real one exists.
Everything that runs inside the handout runs in a subprocess whose ``ddim_edu`` is the handout's.
"""
import ast
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import nbformat
import pytest

from ddim_edu.course import classroom, handout
from ddim_edu.course.exercises import ALL, BY_NOTEBOOK

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
STUDENT_COPIES = ROOT / "student_notebooks"
REGENERATE = "python -m ddim_edu.course student notebooks/ student_notebooks/"
PLANTED = "PLANTED-ANSWER-KEY: the written answers must stay with the teacher"


def _checkout_with_answer_key(tmp: Path) -> Path:
    """A stand-in source checkout: this one's files, plus a docs/answer_key.md."""
    root = tmp / "checkout"
    (root / "docs").mkdir(parents=True)
    for name in ("notebooks", "results", "pyproject.toml"):
        (root / name).symlink_to(ROOT / name)
    (root / "docs" / "answer_key.md").write_text(f"# Answer key\n\n{PLANTED}\n")
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("classroom")
    root = _checkout_with_answer_key(tmp)
    mp = pytest.MonkeyPatch()
    mp.setattr(handout, "source_checkout", lambda: root)
    try:
        handout.make_handout(tmp / "handout")
        handout.write_answer_key(tmp / "key")
    finally:
        mp.undo()
    return tmp / "handout", tmp / "key"


def _in_handout(folder: Path, code: str, timeout=300) -> str:
    """Run ``code`` with the handout's package first on the path (as after `pip install -e .` there)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DDIM_EDU_CHECKPOINTS", "PYTHONPATH")}
    env.update(PYTHONPATH=str(folder), DDIM_EDU_FAST="1", DDIM_EDU_OFFLINE="1", MPLBACKEND="Agg",
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=folder, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _solution_body(f) -> str:
    """The non-blank lines of the solution function ``f``'s body, its docstring left out."""
    src = textwrap.dedent(inspect.getsource(f))
    fn = ast.parse(src).body[0]
    has_doc = isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant)
    return "\n".join(ln for ln in src.splitlines()[fn.body[0].end_lineno if has_doc else fn.lineno:] if ln.strip())


def _text_files(folder: Path):
    return [p for p in folder.rglob("*") if p.is_file() and p.suffix in (".py", ".md", ".ipynb", ".toml", ".json")]


# ----------------------------------------------------------------------------- what is in the handout
def test_handout_holds_the_student_notebooks_package_weights_and_a_readme(built):
    ho, _ = built
    assert sorted(p.name for p in ho.iterdir()) == ["README.md", "checkpoints", "ddim_edu", "notebooks",
                                                    "pyproject.toml", "results"]
    instructor = {p.name for p in NOTEBOOKS.glob("[0-9]*.ipynb")}
    assert {p.name for p in (ho / "notebooks").glob("*.ipynb")} == instructor
    for name in instructor:                                  # exactly what `student` writes
        assert nbformat.read(ho / "notebooks" / name, as_version=4) == classroom.student_notebook(
            nbformat.read(NOTEBOOKS / name, as_version=4))
    readme = (ho / "README.md").read_text()
    assert "pip install -e ." in readme and "jupyter lab notebooks/" in readme
    assert "[tool.pytest" not in (ho / "pyproject.toml").read_text()
    assert (ho / "checkpoints" / "mnist" / "model.safetensors").is_file()


def test_handout_installs_with_its_one_command(built):
    """`pip install -e .` in the handout: a dry run, offline, with the build tools already here."""
    ho, _ = built
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index",
                          "--no-build-isolation", "-e", str(ho)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "Would install ddim-edu" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]


def test_handout_leaves_out_every_solution_and_the_answer_key(built):
    ho, _ = built
    assert not list(ho.rglob("answer_key*")) and not (ho / "docs").exists() and not (ho / "tests").exists()
    for path in _text_files(ho):
        text = path.read_text(errors="replace")
        assert PLANTED not in text, path
        assert path.suffix != ".ipynb" or "BEGIN SOLUTION" not in text, path
    solved = {f for ex in ALL.values() for f in ex.solution_functions}
    for f in solved:   # each solution's body is gone from the module students import, under any name
        module = (ho / "ddim_edu" / "course" / (f.__module__.rsplit(".", 1)[-1] + ".py")).read_text()
        assert re.search(rf"def {f.__name__}\(.*?\n(.*?)(?=\n\S|\Z)", module, re.S).group(1).count(
            "not included in this handout") == 1, f.__name__
        assert _solution_body(f) not in module and "_check_" not in module, f.__name__


def test_handout_package_imports_and_its_solutions_say_not_included(built):
    ho, _ = built
    out = _in_handout(ho, """
        import contextlib, io, json
        import ddim_edu as de
        from ddim_edu.course.exercises import ALL
        shown = {}
        for name, ex in ALL.items():
            for reveal in (False, True):
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf):
                    ex.solution(reveal=reveal)
                shown[f"{name}/{reveal}"] = buf.getvalue()
        print(json.dumps({"file": de.__file__, "pretrained": de.available_pretrained(), "shown": shown}))
        """)
    got = json.loads(out.splitlines()[-1])
    assert Path(got["file"]).resolve().is_relative_to(ho.resolve())
    assert "mnist" in got["pretrained"]
    assert sorted(got["shown"]) == sorted(f"{n}/{r}" for n in ALL for r in (False, True))
    for key, text in got["shown"].items():      # with or without reveal=True: one line, no code
        assert "is not included in this handout" in text and "reveal=True" not in text, text
        assert "return" not in text and "def " not in text, f"{key}: .solution() shows code in the handout:\n{text}"


def test_instructor_package_still_reveals_the_solutions(capsys):
    for name, ex in ALL.items():
        ex.solution(reveal=True)
        text = capsys.readouterr().out
        assert "not included" not in text and all(f"def {f.__name__}(" in text for f in ex.solution_functions)


def test_handout_checks_accept_the_key_and_still_name_mistakes(built):
    """A student's correct answer (the key's) passes every check in the handout; each known mistake
    still runs there (so its diagnosis is shown); a blank exercise is "not attempted"."""
    ho, key = built
    out = _in_handout(ho, f"""
        import contextlib, inspect, io, json, runpy
        from pathlib import Path
        from ddim_edu.course.exercises import ALL, BY_NOTEBOOK
        from ddim_edu.course.engine import _fresh
        report = {{}}
        for notebook, exercises in BY_NOTEBOOK.items():
            ns = runpy.run_path(str(Path({str(key)!r}) / (Path(notebook).stem + ".py")))
            for ex in vars(exercises).values():
                n = len(inspect.signature(ex.adapt).parameters)
                mine = [ns[f.__name__] for f in ex.solution_functions][-n:]
                with contextlib.redirect_stdout(io.StringIO()):
                    verdict = ex.check(*mine).verdict
                    blank = ex.check(*[lambda *a: (_ for _ in ()).throw(NotImplementedError())] * n).verdict
                broken = []
                first = ex.cases()[0]
                for wrong, message in ex.mistakes:
                    try:
                        wrong(*_fresh(first.args))
                    except NotImplementedError:
                        broken.append(message)
                    except Exception:
                        pass
                report[ex.name] = [verdict, blank, broken]
        print(json.dumps(report))
        """)
    report = json.loads(out.splitlines()[-1])
    assert sorted(report) == sorted(ALL)
    for name, (verdict, blank, broken) in report.items():
        assert (verdict, blank, broken) == ("pass", "not-attempted", []), name


def test_every_handout_notebook_import_resolves(built):
    ho, _ = built
    wanted = set()
    for path in (ho / "notebooks").glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            code = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in cell.source.splitlines())
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.Import):
                    wanted |= {(a.name, None) for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    wanted |= {(node.module, a.name) for a in node.names}
            wanted |= {(f"ddim_edu.course.{m[0]}", m[1]) for m in re.findall(r"de\.course\.(ex\d\d)\.(\w+)", cell.source)}
    assert ("ddim_edu", None) in wanted
    out = _in_handout(ho, f"""
        import importlib, json
        import ddim_edu as de
        missing = []
        for module, name in {sorted(wanted, key=str)!r}:
            try:
                if module.startswith("ddim_edu.course.ex"):
                    obj = getattr(de.course, module.rsplit(".", 1)[1])
                else:
                    obj = importlib.import_module(module)
                if name is not None and not hasattr(obj, name):
                    importlib.import_module(module + "." + name)
            except Exception as exc:
                missing.append(f"{{module}} {{name}}: {{type(exc).__name__}}")
        print(json.dumps(missing))
        """)
    assert json.loads(out.splitlines()[-1]) == []


def test_a_student_notebook_runs_in_the_handout(built, monkeypatch):
    """One cheap notebook, executed in the handout as a student gets it: every cell runs, and each
    blank exercise's check says "not attempted"."""
    ho, _ = built
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(ho / "notebooks" / "01_forward_process.ipynb", as_version=4)
    for key, value in {"PYTHONPATH": str(ho), "DDIM_EDU_FAST": "1", "DDIM_EDU_OFFLINE": "1",
                       "MPLBACKEND": "Agg"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DDIM_EDU_CHECKPOINTS", raising=False)
    code = "import ddim_edu; print(ddim_edu.__file__)"
    nb.cells.append(nbformat.v4.new_code_cell(code))
    nbclient.NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(ho / "notebooks")}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert text.count("[ddim_edu.check] ex01.") == text.count(": not-attempted") == sum(n.startswith("ex01.") for n in ALL)
    assert Path(text.strip().splitlines()[-1]).resolve().is_relative_to(ho.resolve())


def test_handout_exercise_modules_hold_no_solution_and_their_checks_run():
    """The exercise modules exactly as the handout writes them: no reference solution's body survives
    (no check calls one, so none is kept under another name), and, each run as a fresh module of
    the package, every check passes the key's solutions and names each known mistake."""
    from test_checks import _as_student, _solution
    from ddim_edu.course.grading import grading_package
    from ddim_edu.course.stripping import HANDOUT_STUB, _uses_outside
    files = grading_package(HANDOUT_STUB, keep_checks=True)
    for notebook, exercises in BY_NOTEBOOK.items():
        short = next(iter(vars(exercises).values())).solution_functions[0].__module__.rsplit(".", 1)[1]
        source = files[f"course/{short}.py"].decode()
        tree = ast.parse(source)
        solutions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("my_")}
        assert _uses_outside(tree, solutions) == [] and "_check_" not in source, short
        module = types.ModuleType(f"ddim_edu.course._handout_{short}")
        module.__package__ = "ddim_edu.course"
        exec(compile(source, f"handout/ddim_edu/course/{short}.py", "exec"), module.__dict__)
        for ex in vars(getattr(module, f"ex{notebook[:2]}")).values():
            assert all(_solution_body(f) not in source for f in ALL[ex.name].solution_functions), ex.name
            assert ex.check(*_solution(ex.name)).passed is True, ex.name
            for wrong, message in ex.mistakes:
                result = ex.check(*_as_student(ex.name, wrong))
                assert result.passed is False and message in result.message, (ex.name, message, result.message)


def test_handout_stripping_refuses_a_check_that_calls_a_solution():
    from ddim_edu.course.stripping import HANDOUT_STUB, STRIPPED, strip_solutions
    source = textwrap.dedent('''
        def my_f(x):
            """Doc."""
            return x * 2

        def my_g(x):
            return x - 1

        ex_f = Exercise("ex09.f", lambda x: x + x, solution=my_f, cases=None, mistakes=[(lambda x: 2 * x + 1, "off")])
        ex_g = Exercise("ex09.g", lambda x: x - 1, solution=my_g, cases=None, mistakes=[(lambda x: my_g(x) + 1, "no")])
        ''')
    names = {"my_f", "my_g"}
    with pytest.raises(ValueError, match=r"my_g \(line 10\).*package's own function"):
        strip_solutions(source, names, HANDOUT_STUB, keep_checks=True)
    graded = strip_solutions(source, names)                  # the grader's copy drops checks and mistakes
    assert graded.count(STRIPPED) == 2 and "off" not in graded and "return x" not in graded
    clean = source.replace("my_g(x) + 1", "x")
    ns = {"Exercise": lambda name, reference, **kw: dict(kw, name=name, reference=reference)}
    exec(strip_solutions(clean, names, HANDOUT_STUB, keep_checks=True), ns)
    for fn in ("my_f", "my_g"):                              # what .solution() prints: stubs
        with pytest.raises(NotImplementedError, match="not included"):
            ns[fn](1)
    assert ns["ex_f"]["reference"](1) == 2 and ns["ex_f"]["mistakes"][0][0](1) == 3    # checks still work
    assert ns["ex_f"]["solution"] is ns["my_f"] and ns["my_f"].__doc__ == "Doc."


# ----------------------------------------------------------------------------- the key
def test_key_holds_every_solution_per_notebook_and_the_written_answers(built):
    _, key = built
    assert sorted(p.name for p in key.glob("*.py")) == sorted(Path(nb).stem + ".py" for nb in BY_NOTEBOOK)
    assert PLANTED in (key / "answer_key.md").read_text()
    for notebook, exercises in BY_NOTEBOOK.items():
        text = (key / (Path(notebook).stem + ".py")).read_text()
        compile(text, notebook, "exec")
        for ex in vars(exercises).values():
            assert f"de.course.{ex.name}.check(" in text
            for f in ex.solution_functions:
                assert textwrap.dedent(inspect.getsource(f)).strip() in text


def test_key_without_written_answers_has_only_code(tmp_path, monkeypatch):
    root = tmp_path / "checkout"
    (root / "notebooks").mkdir(parents=True)
    monkeypatch.setattr(handout, "source_checkout", lambda: root)
    written = handout.write_answer_key(tmp_path / "key")
    assert {p.suffix for p in written} == {".py"} and not (tmp_path / "key" / "answer_key.md").exists()


# ----------------------------------------------------------------------------- the commands
@pytest.mark.parametrize("command", ["handout", "key"])
def test_commands_refuse_a_folder_that_is_not_empty_or_a_file(tmp_path, capsys, command):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep me")
    (tmp_path / "file").write_text("")
    for out, why in [(tmp_path / "full", "not empty"), (tmp_path / "file", "is a file")]:
        with pytest.raises(SystemExit) as exc:
            classroom.main([command, str(out)])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and "OUT" in err and str(out) in err and why in err
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep me"


def test_commands_refuse_an_installed_copy_without_the_course_files(tmp_path, monkeypatch):
    from ddim_edu.course import grading
    monkeypatch.setattr(grading, "PACKAGE_DIR", tmp_path / "site-packages" / "ddim_edu")
    with pytest.raises(classroom.ClassroomError, match="source checkout"):
        handout.make_handout(tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- Colab opens the student copies
def test_committed_student_notebooks_equal_a_fresh_generation(tmp_path):
    fresh = tmp_path / "fresh"
    classroom.make_student_versions(NOTEBOOKS, fresh)
    want = {p.name: p.read_bytes() for p in fresh.iterdir()}
    have = {p.name: p.read_bytes() for p in STUDENT_COPIES.iterdir() if p.is_file()} if STUDENT_COPIES.is_dir() else {}
    stale = sorted(n for n in set(want) | set(have) if want.get(n) != have.get(n))
    assert not stale, (f"student_notebooks/ is out of date ({', '.join(stale)}): delete the folder and run "
                       f"`{REGENERATE}`")


def test_readme_colab_badges_open_the_student_copies():
    urls = re.findall(r"https://colab\.research\.google\.com/github/[^)\s]+", (ROOT / "README.md").read_text())
    assert urls
    opened = set()
    for url in urls:
        path = re.sub(r"^https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^/]+/", "", url)
        assert path.startswith("student_notebooks/") and (ROOT / path).is_file(), url
        opened.add(Path(path).name)
    assert opened == {p.name for p in NOTEBOOKS.glob("[0-9]*.ipynb")}
