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
