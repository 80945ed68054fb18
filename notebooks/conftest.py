"""pytest runs the notebooks (through nbval) in fast mode unless asked for full mode.

``pytest`` (or ``pytest notebooks/``) sets ``DDIM_EDU_FAST=1``, exactly as CI does (.ci/run), so
README's test command is CI's run. ``DDIM_EDU_FULL=1 pytest notebooks/`` runs every notebook at
full size instead (it sets ``DDIM_EDU_FAST=0``). An explicit ``DDIM_EDU_FAST`` is kept when
``DDIM_EDU_FULL`` is not set. nbval's kernels are started by this process and inherit its
environment, so the notebooks' ``de.env.fast_mode()`` sees the choice.
"""
import os

_TRUE = {"1", "true", "yes", "on"}

if os.environ.get("DDIM_EDU_FULL", "").strip().lower() in _TRUE:
    os.environ["DDIM_EDU_FAST"] = "0"
else:
    os.environ.setdefault("DDIM_EDU_FAST", "1")

FULL_MODE_CELL_TIMEOUT = 1800     # seconds: notebook 02 trains for MINUTES = 10 in one cell


def pytest_configure(config):
    """Full mode gives each cell longer than the 300 s that pyproject.toml's nbval options set for
    fast mode: notebook 02's training cell runs for its whole time budget."""
    if os.environ.get("DDIM_EDU_FAST") == "0" and hasattr(config.option, "nbval_cell_timeout"):
        config.option.nbval_cell_timeout = max(config.option.nbval_cell_timeout or 0, FULL_MODE_CELL_TIMEOUT)
