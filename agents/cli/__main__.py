"""``python -m agents.cli``: the ``proteus`` console script without its entry-point wrapper."""

import sys

from agents.cli import main

sys.exit(main())
