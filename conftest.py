"""Every pytest run: with pytest-xdist's workers (pyproject.toml runs one per core), each worker and
the notebook kernels it starts use one CPU thread, so that two workers on two cores do not run four
threads. Without workers (``pytest -n 0``) PyTorch keeps its default."""
import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"     # inherited by nbval's kernels
    import torch
    torch.set_num_threads(1)
