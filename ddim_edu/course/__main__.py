"""The classroom command line: ``python -m ddim_edu.course student|grade …`` (see :mod:`.classroom`)."""
import sys

from .classroom import main

sys.exit(main())
