"""``python -m ferbench``: the same command line as ``ferbench``."""

import sys

from .cli import main

sys.exit(main())
