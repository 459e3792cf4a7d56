"""Fixtures of the GUI tests, which open the real Ptychodus main window without a display.

Qt picks its platform plugin when the first ``QApplication`` is built, so ``QT_QPA_PLATFORM`` is
set here, before any test module imports PyQt5 (the Makefile sets it too). Like the integration
tests, these need the regular (non-editable) install of this package (Ptychodus finds the bridge
module only there): they request ``installed_copy`` (``tests/conftest.py``).
"""

from __future__ import annotations

import os

os.environ.setdefault('QT_QPA_PLATFORM', 'offscreen')
