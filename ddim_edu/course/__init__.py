"""The course machinery: each notebook's exercises (check, hint, solution), the engine that
runs a check, the classroom grader, and the published numbers the notebooks quote."""
from .._lazy import lazy_attributes

__getattr__, __dir__ = lazy_attributes(__name__, {
    **{f"ex0{i}": ".checks" for i in range(1, 7)}, "ALL": ".checks", "checks": ".checks",
    "engine": ".engine", "classroom": ".classroom", "solutions": ".solutions"})
