"""The package's shape: light imports, no import cycles, every documented name reachable, and
modules small enough to read (DESIGN.md, "Layout")."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ddim_edu as de

PKG = Path(de.__file__).resolve().parent
HEAVY = ("matplotlib", "ipywidgets", "nbformat", "IPython")


def _modules():
    """{dotted module name: path} for every module of the package ('ddim_edu.diffusion' for an __init__)."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


def _imports(name: str, path: Path) -> set[str]:
    """Package modules that ``name`` imports, at module level or inside functions."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = _resolve(name, is_package, node.level, node.module) if node.level else node.module or ""
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                out.add(sub if sub in MODULES else mod)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m in MODULES and m != name}


def test_import_is_light():
    """``import ddim_edu`` loads the method and the networks, not plotting, widgets or the grader."""
    code = f"import sys, ddim_edu; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"import ddim_edu pulled in {out.strip()}"


def test_no_import_cycles():
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    # a package's __init__ re-exporting its own modules is not a cycle; a module importing its
    # own package's __init__ (or an ancestor's) would be
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " → ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name)


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    """The checker itself: two modules that import each other are reported."""
    (tmp_path / "a.py").write_text("from .b import f\n")
    (tmp_path / "b.py").write_text("def f():\n    from .a import g\n")
    fake = {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py"}
    monkeypatch.setattr(sys.modules[__name__], "MODULES", fake)
    assert _imports("pkg.a", fake["pkg.a"]) == {"pkg.b"} and _imports("pkg.b", fake["pkg.b"]) == {"pkg.a"}
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_no_import_cycles()


@pytest.mark.parametrize("name", sorted(de.__all__))
def test_every_documented_name_resolves(name):
    assert getattr(de, name) is not None


@pytest.mark.parametrize("package", ["train", "evaluation", "viz", "course", "diffusion", "nets"])
def test_subpackage_names_resolve(package):
    """Every attribute a subpackage lists (``dir``) is reachable, lazily loaded or not."""
    sub = getattr(de, package)
    for name in dir(sub):
        if not name.startswith("_"):
            assert getattr(sub, name) is not None, f"de.{package}.{name}"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sub.nope


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_short_and_says_its_concern(name):
    path = MODULES[name]
    lines = path.read_text().count("\n")
    assert lines <= 300, f"{name} has {lines} lines (DESIGN.md: a module past ~300 lines is two modules)"
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and len(doc.split()) >= 5, f"{name} should open with a sentence on its concern"
