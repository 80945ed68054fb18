"""Exercise modules without their reference solutions: the grader's copy of the package
(references and near-miss mistakes removed too) and the handout's (checks kept working, because
no check or mistake calls a reference solution: they call the package's own functions).

    strip_solutions(source, {"my_sigma", "my_ddim_step"})                     # the grader's
    strip_solutions(source, names, stub=HANDOUT_STUB, keep_checks=True)       # a handout's

Edits are made on the source text at the positions ``ast`` gives, so everything else in the
module (comments, layout) is kept byte for byte.
"""
from __future__ import annotations

import ast

STRIPPED = "raise NotImplementedError('reference solutions are not available while grading')"
HANDOUT_STUB = ("raise NotImplementedError('the reference solutions are not included in this handout: "
                "your teacher has the answer key')")


def _offsets(source: bytes) -> list[int]:
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def strip_solutions(source: str, names, stub: str = STRIPPED, keep_checks: bool = False) -> str:
    """``source`` of an exercise module with the bodies of the functions ``names`` replaced by
    ``stub`` (docstrings kept).

    For the grader (``keep_checks=False``) every ``Exercise(name, reference, …)``'s reference is
    replaced by ``None`` (unless it is one of those functions, already stripped) and its
    ``mistakes`` by ``()`` (a near-miss often holds the answer). For a handout (``keep_checks=True``)
    the checks must still run on the student's machine, so references and mistakes are kept; none
    may call a stripped function (it would run the stub), else ValueError naming the call."""
    tree, raw = ast.parse(source), source.encode()
    at = _offsets(raw)

    def span(node):
        return at[node.lineno - 1] + node.col_offset, at[node.end_lineno - 1] + node.end_col_offset

    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names}
    if keep_checks:
        _refuse_checks_calling(tree, defs)
    edits = [edit for node in defs.values() for edit in _body_edit(node, span, stub)]
    if not keep_checks:
        edits += _checks_removed(tree, names, span)
    for start, end, text in sorted(edits, reverse=True):
        raw = raw[:start] + text.encode() + raw[end:]
    stripped = raw.decode()
    compile(stripped, "<stripped>", "exec")
    return stripped


def _body_edit(node, span, stub) -> list:
    """The edit that replaces the body of the function ``node`` (its docstring kept) by ``stub``."""
    body = node.body
    doc = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
    if doc and len(body) == 1:
        return []
    first = body[1] if doc else body[0]
    return [(span(first)[0], span(body[-1])[1], stub)]


def _checks_removed(tree, names, span) -> list:
    """The grader's edits: each ``Exercise``'s reference → ``None`` (unless it is a stripped
    function), its ``mistakes`` → ``()``."""
    edits = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Exercise"):
            continue
        ref = node.args[1] if len(node.args) > 1 else next(
            (k.value for k in node.keywords if k.arg == "reference"), None)
        if ref is not None and not (isinstance(ref, ast.Name) and ref.id in names):
            edits.append((*span(ref), "None"))
        edits += [(*span(k.value), "()") for k in node.keywords if k.arg == "mistakes"]
    return edits


def _refuse_checks_calling(tree, defs) -> None:
    """ValueError when a check, a mistake or a helper calls a function whose body is stripped: in a
    handout it would run the stub, so the check could not run or the mistake never be named."""
    uses = _uses_outside(tree, defs)
    if uses:
        calls = ", ".join(f"{n.id} (line {n.lineno})" for n in uses)
        raise ValueError(f"a check, a mistake or a helper calls the reference solution {calls}, whose body the "
                         "handout leaves out: call the package's own function there instead")


def _names_in(node, defs) -> list:
    """The ``ast.Name`` nodes under ``node`` that name a function of ``defs`` (not counting what an
    ``Exercise``'s ``solution=`` shows)."""
    found = []

    class Visitor(ast.NodeVisitor):
        def visit_keyword(self, k):
            if k.arg != "solution":
                self.generic_visit(k)

        def visit_Name(self, n):
            if n.id in defs:
                found.append(n)

    Visitor().visit(node)
    return found


def _uses_outside(tree, defs) -> list:
    """Uses of the stripped functions outside their own bodies (references, mistakes, helpers)."""
    return [n for node in tree.body if not (isinstance(node, ast.FunctionDef) and node.name in defs)
            for n in _names_in(node, defs)]
