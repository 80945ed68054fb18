"""The registry of every notebook exercise, keyed by the name its verdict line prints
(``"ex03.sigma"``): the grader and the tests iterate over it, and a new notebook's exercise
module joins the course by one entry in ``BY_NOTEBOOK``."""
from __future__ import annotations

from . import (ex01_forward, ex02_training, ex03_sampling, ex04_ode, ex05_interpolation, ex06_inversion,
               ex08_likelihood, ex09_guidance)

BY_NOTEBOOK = {
    ex01_forward.NOTEBOOK: ex01_forward.ex01,
    ex02_training.NOTEBOOK: ex02_training.ex02,
    ex03_sampling.NOTEBOOK: ex03_sampling.ex03,
    ex04_ode.NOTEBOOK: ex04_ode.ex04,
    ex05_interpolation.NOTEBOOK: ex05_interpolation.ex05,
    ex06_inversion.NOTEBOOK: ex06_inversion.ex06,
    ex08_likelihood.NOTEBOOK: ex08_likelihood.ex08,
    ex09_guidance.NOTEBOOK: ex09_guidance.ex09,
}
"""{notebook file name: the namespace of its exercises (``de.course.ex01`` …)}."""

ALL = {ex.name: ex for exercises in BY_NOTEBOOK.values() for ex in vars(exercises).values()}
"""{"ex03.sigma": Exercise, …}: every exercise of notebooks 01–06, 08 and 09."""
