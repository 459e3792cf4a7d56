"""Fixtures of the GUI tests, which open the real Ptychodus main window without a display.

Qt picks its platform plugin when the first ``QApplication`` is built, so ``QT_QPA_PLATFORM`` is
set here, before any test module imports PyQt5 (the Makefile sets it too). Like the integration
tests, these need the regular (non-editable) install of this package: Ptychodus finds the bridge
module only there.
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pytest

os.environ.setdefault('QT_QPA_PLATFORM', 'offscreen')

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='session')
def installed_plugin() -> Path:
    """The site-packages directory, after checking that the installed package is current."""
    import ptychodus

    site = Path(ptychodus.__file__).resolve().parent.parent
    bridge = REPO_ROOT / 'bridge' / 'ptychodus' / 'plugins' / 'ptychopinn_plugin_bridge.py'
    pairs = [(bridge, site / 'ptychodus' / 'plugins' / bridge.name)]
    pairs += [
        (source, site / source.relative_to(REPO_ROOT))
        for source in (REPO_ROOT / 'ptychopinn_plugin' / 'ptychodus_adapter').glob('*.py')
    ]
    stale = [
        str(source.relative_to(REPO_ROOT))
        for source, installed in pairs
        if not installed.is_file() or not filecmp.cmp(source, installed, shallow=False)
    ]
    if stale:
        pytest.fail(
            f'the installed ptychopinn-plugin differs from the source tree in {", ".join(stale)}; '
            'reinstall it as a regular wheel (make install, or: python -m pip install --no-deps '
            '--force-reinstall .)'
        )
    return site
