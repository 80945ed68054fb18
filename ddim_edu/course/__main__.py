"""The classroom command line: ``python -m ddim_edu.course student|grade …`` (see :mod:`.classroom`)."""
import sys

from .classroom import main

if __name__ == "__main__":
    sys.exit(main())
