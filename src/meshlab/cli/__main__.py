"""``python -m meshlab.cli``: the ``meshlab`` command (used where the entry point is not on PATH)."""

import sys

from meshlab.cli import main

sys.exit(main())
