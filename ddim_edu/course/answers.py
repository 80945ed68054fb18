"""What a graded notebook's functions answered, carried out of the grading sandbox as data.

Inside the sandbox (:mod:`ddim_edu.course.runner`), :func:`install_recorder` makes every
``Exercise.check(fn)`` call the student's function on the exercise's cases and write the
:class:`~ddim_edu.course.engine.Outcome` of each case to ``ANSWERS/NNN.json`` (structure, numbers,
text) and ``ANSWERS/NNN.safetensors`` (tensors). Nothing is judged there: the grader reads the
answers back with :func:`read_answers` (JSON and safetensors only — never pickle, so a forged file
can give wrong data but cannot run code) and judges them against references it computes itself
(:meth:`Exercise.judge`). A printed verdict line, a patched ``compare`` or a prefilled output
changes nothing.
"""
from __future__ import annotations

import json
import numbers
import re
from pathlib import Path

import torch

from .engine import CheckResult, Outcome, run_case

MAX_JSON_BYTES = 5_000_000
MAX_TENSOR_BYTES = 200_000_000
MAX_FILES = 200
_MAX_DEPTH = 20


class Opaque:
    """A returned value the answer format cannot carry (a model, a generator …): equal to nothing."""

    def __init__(self, type_name: str, text: str):
        self.type_name, self.text = type_name, text

    def __eq__(self, other):
        return False

    __hash__ = None

    def __repr__(self) -> str:
        return f"<{self.type_name}: {self.text}>"


# ----------------------------------------------------------------------------- encoding (sandbox side)
def _encode(value, tensors: dict, depth: int = 0):
    if depth > _MAX_DEPTH:
        return {"opaque": "nested too deeply", "repr": ""}
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.layout != torch.strided:
            return {"opaque": f"{value.dtype} {value.layout} tensor", "repr": ""}
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().to("cpu").contiguous().clone()
        return {"tensor": key}
    if value is None or isinstance(value, (bool, str)):
        return {"plain": value if not isinstance(value, str) else value[:1000]}
    if isinstance(value, numbers.Integral):
        return {"plain": int(value)}
    if isinstance(value, numbers.Real):
        return {"float": repr(float(value))}
    if hasattr(value, "__array__") and type(value).__module__.startswith("numpy"):
        try:
            return _encode(torch.as_tensor(value), tensors, depth + 1)
        except (TypeError, ValueError, RuntimeError):
            pass
    if isinstance(value, (list, tuple)):
        return {type(value).__name__ if type(value) in (list, tuple) else "list":
                [_encode(v, tensors, depth + 1) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, (str, int)) for k in value):
        return {"dict": [[k, _encode(v, tensors, depth + 1)] for k, v in value.items()]}
    return {"opaque": type(value).__name__, "repr": repr(value)[:200]}


def encode_outcomes(outcomes) -> tuple[list, dict]:
    """Outcomes → (JSON-ready list, {key: tensor})."""
    tensors: dict = {}
    rows = [{"kind": o.kind, "error": o.error[:500],
             "value": _encode(o.value, tensors) if o.kind == "value" else None} for o in outcomes]
    return rows, tensors


def write_answers(folder, name: str, outcomes) -> Path:
    """Write one exercise's outcomes as the next ``NNN.json`` (+ ``NNN.safetensors``) in ``folder``."""
    from safetensors.torch import save_file
    folder = Path(folder)
    index = len(list(folder.glob("*.json")))
    rows, tensors = encode_outcomes(outcomes)
    if tensors:
        save_file(tensors, str(folder / f"{index:03d}.safetensors"))
    path = folder / f"{index:03d}.json"
    path.write_text(json.dumps({"exercise": name, "outcomes": rows}))
    return path


# ----------------------------------------------------------------------------- decoding (grader side)
def _decode(obj, tensors: dict, depth: int = 0):
    if depth > _MAX_DEPTH or not isinstance(obj, dict) or len(obj) not in (1, 2):
        raise ValueError("malformed answer")
    if "tensor" in obj:
        return tensors[str(obj["tensor"])]
    if "plain" in obj:
        if obj["plain"] is not None and not isinstance(obj["plain"], (bool, str, int)):
            raise ValueError("malformed answer")
        return obj["plain"]
    if "float" in obj:
        return float(str(obj["float"]))
    if "list" in obj or "tuple" in obj:
        items = [_decode(v, tensors, depth + 1) for v in obj.get("list", obj.get("tuple"))]
        return items if "list" in obj else tuple(items)
    if "dict" in obj:
        return {k if isinstance(k, (str, int)) else str(k): _decode(v, tensors, depth + 1) for k, v in obj["dict"]}
    if "opaque" in obj:
        name = re.sub(r"\W", "", str(obj["opaque"]))[:50] or "object"
        return Opaque(name, str(obj.get("repr", ""))[:200])
    raise ValueError("malformed answer")


def _read_one(path: Path) -> tuple[str, list[Outcome]]:
    from safetensors.torch import load_file
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"{path.name} is over {MAX_JSON_BYTES} bytes")
    record = json.loads(path.read_text())
    tensor_file = path.with_suffix(".safetensors")
    tensors = {}
    if tensor_file.exists():
        if tensor_file.stat().st_size > MAX_TENSOR_BYTES:
            raise ValueError(f"{tensor_file.name} is over {MAX_TENSOR_BYTES} bytes")
        tensors = load_file(str(tensor_file))
    outcomes = []
    for row in record["outcomes"]:
        kind = str(row["kind"])
        if kind not in ("value", "not-implemented", "error"):
            raise ValueError(f"unknown outcome kind {kind!r}")
        value = _decode(row["value"], tensors) if kind == "value" else None
        outcomes.append(Outcome(kind, value, str(row.get("error", ""))[:500]))
    return str(record["exercise"]), outcomes


def read_answers(folder) -> tuple[dict, list[str]]:
    """{exercise name: outcomes} from ``folder`` (the last record of an exercise wins, as in a
    notebook run top to bottom), and a list of problems with files that could not be read."""
    answers, problems = {}, []
    files = sorted(Path(folder).glob("*.json"))
    for path in files[:MAX_FILES]:
        try:
            name, outcomes = _read_one(path)
            answers[name] = outcomes
        except Exception as exc:  # noqa: BLE001 -- anything in a forged file is just unreadable
            problems.append(f"{path.name}: {type(exc).__name__}: {exc}"[:200])
    if len(files) > MAX_FILES:
        problems.append(f"only the first {MAX_FILES} answer files were read")
    return answers, problems


# ----------------------------------------------------------------------------- the recorder (sandbox side)
_NAMES: dict = {}   # {exercise name: the notebook's function names (my_alpha_bar, …)}


def record(exercise, folder, *student_fns) -> None:
    """Call the student's function(s) on every case of ``exercise`` and write the outcomes."""
    if not student_fns or not all(callable(f) for f in student_fns):
        return
    fn = exercise.adapt(*student_fns)
    write_answers(folder, exercise.name, [run_case(fn, case) for case in exercise.cases()])


def install_recorder(folder) -> None:
    """Inside the sandbox: ``Exercise.check`` records answers instead of judging, and the
    exercises lose their references and solutions (a submission cannot hand them back)."""
    from . import engine
    from .exercises import ALL
    _NAMES.update({n: tuple(getattr(f, "__name__", "") for f in ex.solution_functions) for n, ex in ALL.items()})
    for ex in ALL.values():
        ex.reference, ex._solution, ex.mistakes = None, _unavailable, []

    def check(self, *student_fns):
        try:
            record(self, folder, *student_fns)
        except Exception as exc:  # noqa: BLE001 -- the notebook goes on; the grader reports no answer
            print(f"{self.name}: could not record the answers ({type(exc).__name__}: {exc})")
        print(f"{self.name}: answers recorded; the grader judges them after the run")
        return CheckResult(self.name, None, "recorded for grading")
    engine.Exercise.check = check


def record_by_name(folder, namespace: dict, names) -> None:
    """At the end of a run: exercises whose check was never called are recorded from the
    notebook's own function names (``my_alpha_bar`` …), when the notebook defines them."""
    from .exercises import ALL
    done = {json.loads(p.read_text()).get("exercise") for p in Path(folder).glob("*.json")}
    for name in names:
        if name in done or name not in ALL:
            continue
        fns = [namespace.get(f) for f in _NAMES.get(name, ())]
        if fns and all(callable(f) for f in fns):
            record(ALL[name], folder, *fns)


def _unavailable(*args, **kwargs):
    raise NotImplementedError("reference solutions are not available while grading")
