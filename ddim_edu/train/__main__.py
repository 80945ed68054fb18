"""``python -m ddim_edu.train``: the training command line (see :mod:`ddim_edu.train.cli`)."""
import sys

from .cli import main

sys.exit(main())
