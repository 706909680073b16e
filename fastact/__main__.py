"""``python -m fastact``: see :mod:`fastact._cli`."""

import sys

from fastact._cli import main

if __name__ == "__main__":
    sys.exit(main())
