"""``python -m ptychopinn_plugin.evidence.parity --out DIR``: see ``command.py``."""

import sys

from .command import main

sys.exit(main())
