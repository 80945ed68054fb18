"""The course machinery: each notebook's exercises (check, hint and solution side by side), the
engine that runs a check, the registry the grader reads, the classroom tools and the published
numbers the notebooks quote.

    de.course.ex03.sigma.check(my_sigma)    # prints "✓ correct" or the failing case and a hint
    de.course.ex03.sigma.hint()
    de.course.ex03.sigma.solution(reveal=True)   # prints the reference solution
    de.course.paper.TABLE1_CIFAR10_FID      # the paper's Table 1 (and Table 2) numbers

    python -m ddim_edu.course student notebooks/ handout/     # student versions (classroom.py)
    python -m ddim_edu.course grade submissions/ --out grades.csv

Modules: ``engine`` (Exercise, Case, CheckResult, compare), ``fixtures`` (shared inputs),
``ex01_forward``, ``ex02_training``, ``ex03_sampling``, ``ex04_ode``, ``ex05_interpolation``,
``ex06_inversion``, ``ex08_likelihood`` (one per notebook), ``exercises`` (the registry ``ALL``), ``classroom``
(student versions and the grader), ``paper`` (Tables 1 and 2), ``quiz`` (short conceptual questions
with self-checks: ``de.course.quiz.check_answer("03.deterministic", answer)``).

Where a solution lives. Each reference solution is written once, in its notebook's exercise
module, as the notebook's own function (``my_sigma``, same signature, same body); the instructor
notebook carries the same body between ``# BEGIN SOLUTION`` and ``# END SOLUTION``. The module
is the source of truth because ``.solution(reveal=True)`` must print it where only the installed package
exists (Colab), and because there it is executed by the tests (it passes its check, and each
listed mistake is told apart from it). ``tests/course/test_solutions_match_notebooks.py``
fails, showing both versions, when a notebook's solution and the module's differ in anything
but whitespace and the docstring: change one, copy it to the other.
"""
from .._lazy import lazy_attributes

_MODULES = ("engine", "fixtures", "exercises", "classroom", "paper", "ex01_forward", "ex02_training",
            "ex03_sampling", "ex04_ode", "ex05_interpolation", "ex06_inversion", "ex08_likelihood", "ex09_guidance",
            "quiz")

__getattr__, __dir__ = lazy_attributes(__name__, {
    "ex01": ".ex01_forward", "ex02": ".ex02_training", "ex03": ".ex03_sampling", "ex04": ".ex04_ode",
    "ex05": ".ex05_interpolation", "ex06": ".ex06_inversion", "ex08": ".ex08_likelihood", "ex09": ".ex09_guidance", "ALL": ".exercises",
    **{name: f".{name}" for name in _MODULES}})
del lazy_attributes, _MODULES
