"""The exercise engine: an :class:`Exercise` runs a student's function against a reference on a
list of cases, prints a verdict and names a known mistake when the answer matches one; it never raises.

The cases are random inputs and edge cases (t = 0, the last step t_prev = −1, η = 0 and 1,
float64, a batch of one). A stub that still raises ``NotImplementedError`` is "not attempted",
a crash or a wrong value is a failure that shows the case, expected vs got, and the hint.

The exercises themselves live in one module per notebook (``ex01_forward`` … ``ex06_inversion``),
their shared inputs in :mod:`ddim_edu.course.fixtures`.

Every verdict ends with one machine-readable line that the classroom grader parses::

    [ddim_edu.check] ex03.sigma: pass          (or: fail, not-attempted)
"""
from __future__ import annotations

import copy
import inspect
import math
import numbers
import textwrap
from dataclasses import dataclass

import torch

TAG = "[ddim_edu.check]"
VERDICTS = ("pass", "fail", "not-attempted")
NOT_ATTEMPTED = "not attempted yet: replace the `raise NotImplementedError` line with your code"


@dataclass
class CheckResult:
    """What a check found: ``passed`` is True, False, or None (not attempted)."""
    name: str
    passed: bool | None
    message: str

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "fail", None: "not-attempted"}[self.passed]

    def __bool__(self) -> bool:
        return bool(self.passed)

    def __repr__(self) -> str:
        return f"CheckResult({self.name}: {self.verdict})"

    def _ipython_display_(self):   # the verdict is already printed; show nothing more in a notebook
        pass


@dataclass
class Case:
    """One input: ``args`` are passed to the student's function and to the reference."""
    label: str
    args: tuple


def _short(v) -> str:
    if isinstance(v, torch.Tensor):
        if v.numel() <= 4:
            return f"tensor({[round(float(x), 6) for x in v.detach().flatten().tolist()]}, shape={tuple(v.shape)})"
        f = v.detach().double().flatten()
        return (f"tensor(shape={tuple(v.shape)}, dtype={str(v.dtype).replace('torch.', '')}, "
                f"first values {[round(float(x), 5) for x in f[:3].tolist()]}, mean {float(f.mean()):.5g})")
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)) and len(v) > 4:
        return f"{type(v).__name__} of {len(v)} items"
    return repr(v)


def compare(got, want, rtol: float, atol: float, where: str = "the result") -> str | None:
    """None when ``got`` matches ``want``, otherwise a sentence saying how it differs."""
    if isinstance(want, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"{where} should be a torch.Tensor, got {type(got).__name__}"
        if tuple(got.shape) != tuple(want.shape):
            return f"{where} has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
        if want.dtype == torch.float64 and got.dtype != torch.float64:
            return f"{where} is {got.dtype} for float64 inputs: keep the input's dtype (don't cast down)"
        if torch.float64 not in (got.dtype, want.dtype):   # float32 arithmetic: round-off of ~1e-6 is fine
            rtol, atol = max(rtol, 1e-5), max(atol, 1e-5)
        g = got.detach().to("cpu", torch.float64)
        w = want.detach().to("cpu", torch.float64)
        if not torch.isfinite(g).all() and torch.isfinite(w).all():
            return f"{where} contains NaN or inf"
        if not torch.allclose(g, w, rtol=rtol, atol=atol):
            err = float((g - w).abs().max())
            return f"{where} differs: expected {_short(want)}, got {_short(got)} (largest difference {err:.3g})"
        return None
    if isinstance(want, numbers.Real) and not isinstance(want, bool):
        try:
            g = float(got)
        except (TypeError, ValueError, RuntimeError):
            return f"{where} should be a number, got {type(got).__name__}"
        if not math.isclose(g, float(want), rel_tol=rtol, abs_tol=atol):
            return f"{where} differs: expected {float(want):.8g}, got {g:.8g}"
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict) or sorted(got) != sorted(want):
            keys = sorted(got) if isinstance(got, dict) else type(got).__name__
            return f"{where} should be a dict with keys {sorted(want)}, got {keys}"
        for k in want:
            msg = compare(got[k], want[k], rtol, atol, f"{where}[{k!r}]")
            if msg:
                return msg
        return None
    if isinstance(want, (list, tuple)):
        if not isinstance(got, (list, tuple)) or len(got) != len(want):
            return f"{where} should be a {type(want).__name__} of {len(want)} items, got {_short(got)}"
        for i, (g, w) in enumerate(zip(got, want)):
            msg = compare(g, w, rtol, atol, f"{where}[{i}]")
            if msg:
                return msg
        return None
    return None if got == want else f"{where}: expected {want!r}, got {got!r}"


def _fresh(args):
    """A deep copy of the inputs, so a function that modifies them can't spoil the next call."""
    return tuple(a if callable(a) and not isinstance(a, torch.Tensor) else copy.deepcopy(a) for a in args)


class Exercise:
    """A self-check: ``.check(student_fn)``, ``.hint()``, ``.solution(reveal=True)``.

    ``reference`` computes the expected answer with the tested package (same call signature as
    the student's function); ``solution`` is the teaching implementation whose source
    ``.solution()`` prints; ``cases()`` returns the inputs; ``mistakes`` are ``(wrong_fn, message)``
    pairs: when a wrong answer equals ``wrong_fn``'s on the failing case, its message is shown.
    ``adapt(*student_fns)`` turns what the student passes into one function (default: the one).
    """

    def __init__(self, name, reference, cases, hint, solution=None, mistakes=(), rtol=1e-7, atol=1e-9,
                 adapt=None):
        self.name, self.reference, self.cases, self._hint = name, reference, cases, hint
        self._solution, self.mistakes, self.rtol, self.atol = solution or reference, list(mistakes), rtol, atol
        self.adapt = adapt or (lambda fn: fn)

    def __repr__(self) -> str:
        return f"<exercise {self.name}: .check(your_function), .hint(), .solution(reveal=True)>"

    def hint(self) -> None:
        print(f"Hint ({self.name}): {self._hint}")

    @property
    def solution_functions(self) -> tuple:
        """The functions ``.solution()`` prints: the reference solution and any helper it calls."""
        return tuple(self._solution) if isinstance(self._solution, (list, tuple)) else (self._solution,)

    def solution(self, reveal: bool = False) -> None:
        """Print the reference solution, only when asked twice: ``.solution()`` says how,
        ``.solution(reveal=True)`` prints it (one deliberate step, so a glance can't spoil it)."""
        if self._left_out():
            print(f"The reference solution of {self.name} is not included in this handout: your teacher "
                  "has the answer key. .hint() gives a hint.")
            return
        if reveal is not True:
            print(f"This would show the reference solution of {self.name}. Try .hint() first; "
                  f"to see the solution, run .solution(reveal=True).")
            return
        print("\n".join(textwrap.dedent(inspect.getsource(f)) for f in self.solution_functions))

    def _left_out(self) -> bool:
        """Whether the solution was stubbed out (a student handout, ``course/stripping.py``)."""
        from .stripping import HANDOUT_STUB
        try:
            return any(HANDOUT_STUB in inspect.getsource(f) for f in self.solution_functions)
        except (OSError, TypeError):
            return False

    def _diagnose(self, got, want, case) -> str:
        for wrong, message in self.mistakes:
            try:
                bad = wrong(*_fresh(case.args))
                if compare(bad, want, self.rtol, self.atol) and compare(got, bad, self.rtol, self.atol) is None:
                    return message
            except Exception:   # a wrong answer that crashes on this case just doesn't match
                continue
        return ""

    def _finish(self, passed, message, echo: bool = True) -> CheckResult:
        if echo:
            print(message)
            print(f"{TAG} {self.name}: {CheckResult(self.name, passed, message).verdict}")
        return CheckResult(self.name, passed, message)

    def check(self, *student_fns) -> CheckResult:
        """Run the student's function(s) on every case; print and return the verdict. Never raises."""
        try:
            if not student_fns or not all(callable(f) for f in student_fns):
                return self._finish(False, f"✗ {self.name}: pass your function itself, e.g. .check(my_function)")
            fn = self.adapt(*student_fns)
            cases = self.cases()
            return self.judge(cases, (run_case(fn, case) for case in cases))
        except Exception as exc:   # a bug in a case or an odd argument must not stop the notebook
            return self._finish(False, f"✗ {self.name}: the check could not run ({type(exc).__name__}: {exc})")

    def judge(self, cases, outcomes, echo: bool = True) -> CheckResult:
        """The verdict on what the student's function did on each case (:class:`Outcome`, in the
        order of ``cases``; an iterable, read only up to the first failing case). The grader calls
        this with outcomes recorded in a sandbox, against references it computes itself."""
        outcomes = iter(outcomes)
        for i, case in enumerate(cases):
            out = next(outcomes, None)
            if out is None:
                return self._finish(False, f"✗ {self.name}: no answer recorded for case «{case.label}»", echo)
            if out.kind == "not-implemented":
                if i == 0:
                    return self._finish(None, f"… {self.name}: {NOT_ATTEMPTED}", echo)
                return self._finish(False, f"✗ {self.name}: raised NotImplementedError on case «{case.label}» "
                                           f"although earlier cases ran\n  Hint: {self._hint}", echo)
            if out.kind == "error":
                return self._finish(False, f"✗ {self.name}: your function raised {out.error}\n"
                                           f"  on case «{case.label}»\n  Hint: {self._hint}", echo)
            msg = self._mismatch(out.value, case)
            if msg:
                return self._finish(False, msg + f"\n  Hint: {self._hint}", echo)
        return self._finish(True, f"✓ correct — {self.name} ({len(cases)} cases)", echo)

    def _mismatch(self, got, case) -> str:
        """'' when ``got`` is the reference's answer on ``case``, else the failure message."""
        want = self.reference(*_fresh(case.args))
        if got is None and want is not None:
            msg = "your function returned None: did you forget `return`?"
        else:
            msg = compare(got, want, self.rtol, self.atol)
        if not msg:
            return ""
        text = f"✗ {self.name} failed on case «{case.label}»: {msg}"
        likely = self._diagnose(got, want, case) if got is not None else ""
        return text + (f"\n  Likely mistake: {likely}" if likely else "")


@dataclass
class Outcome:
    """What a student's function did on one case: ``kind`` is "value" (it returned ``value``),
    "not-implemented" (it raised NotImplementedError) or "error" (``error`` says what it raised)."""
    kind: str
    value: object = None
    error: str = ""


def run_case(fn, case: Case) -> Outcome:
    """Call ``fn`` on a fresh copy of ``case``'s inputs and record what happened."""
    try:
        return Outcome("value", fn(*_fresh(case.args)))
    except NotImplementedError:
        return Outcome("not-implemented")
    except Exception as exc:
        return Outcome("error", error=f"{type(exc).__name__}: {exc}"[:500])
