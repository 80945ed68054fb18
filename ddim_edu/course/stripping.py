"""Exercise modules without their reference solutions: the grader's copy of the package
(references and near-miss mistakes removed too) and the handout's (checks kept working).

    strip_solutions(source, {"my_sigma", "my_ddim_step"})                     # the grader's
    strip_solutions(source, names, stub=HANDOUT_STUB, keep_checks=True)       # a handout's

Edits are made on the source text at the positions ``ast`` gives, so everything else in the
module (comments, layout) is kept byte for byte.
"""
from __future__ import annotations

import ast
import copy

STRIPPED = "raise NotImplementedError('reference solutions are not available while grading')"
HANDOUT_STUB = ("raise NotImplementedError('the reference solutions are not included in this handout: "
                "your teacher has the answer key')")
PRIVATE = "_check_"          # the prefix of a stripped function's copy that a handout's checks call


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
    the checks must still run on the student's machine: references and mistakes are kept, and a
    stripped function that one of them calls lives on under the private name ``_check_<name>``,
    which ``.solution()`` does not print."""
    tree, raw = ast.parse(source), source.encode()
    at = _offsets(raw)

    def span(node):
        return at[node.lineno - 1] + node.col_offset, at[node.end_lineno - 1] + node.end_col_offset

    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names}
    kept = _needed_by_checks(tree, defs) if keep_checks else set()
    edits = []
    for name, node in defs.items():
        body = node.body
        doc = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
        first, last = (body[1] if doc and len(body) > 1 else body[0]), body[-1]
        if not (doc and len(body) == 1):
            edits.append((span(first)[0], span(last)[1], stub))
        if name in kept:
            end = span(node)[1]
            edits.append((end, end, "\n\n\n" + _private_copy(node, kept)))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Exercise"):
            continue
        ref = node.args[1] if len(node.args) > 1 else next(
            (k.value for k in node.keywords if k.arg == "reference"), None)
        if keep_checks:
            if isinstance(ref, ast.Name) and ref.id in kept and not any(k.arg == "solution" for k in node.keywords):
                edits.append((*span(ref), f"{PRIVATE}{ref.id}, solution={ref.id}"))   # .solution() shows the stub
            continue
        if ref is not None and not (isinstance(ref, ast.Name) and ref.id in names):
            edits.append((*span(ref), "None"))
        edits += [(*span(k.value), "()") for k in node.keywords if k.arg == "mistakes"]
    if keep_checks:
        done = {e[0] for e in edits}
        edits += [(*span(n), PRIVATE + n.id) for n in _uses_outside(tree, defs) if span(n)[0] not in done]
    for start, end, text in sorted(edits, reverse=True):
        raw = raw[:start] + text.encode() + raw[end:]
    stripped = raw.decode()
    compile(stripped, "<stripped>", "exec")
    return stripped



def _names_in(node, defs, skip_solution: bool = True) -> list:
    """The ``ast.Name`` nodes under ``node`` that name a function of ``defs`` (not counting what an
    ``Exercise``'s ``solution=`` shows)."""
    found = []

    class Visitor(ast.NodeVisitor):
        def visit_keyword(self, k):
            if not (skip_solution and k.arg == "solution"):
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


def _needed_by_checks(tree, defs) -> set:
    """The stripped functions a check still calls, directly or through one another."""
    kept = {n.id for n in _uses_outside(tree, defs)}
    todo = list(kept)
    while todo:
        for n in _names_in(defs[todo.pop()], defs, skip_solution=False):
            if n.id not in kept:
                kept.add(n.id)
                todo.append(n.id)
    return kept


def _private_copy(node, kept) -> str:
    """The function ``node`` renamed ``_check_<name>``, its calls to the other kept functions renamed too."""
    node = copy.deepcopy(node)
    node.name = PRIVATE + node.name
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id in kept:
            n.id = PRIVATE + n.id
    return ast.unparse(node)
