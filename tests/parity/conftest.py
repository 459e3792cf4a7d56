"""Fixtures of the parity tests: the installed-copy check of the integration tests, reused.

Tests that run the ``ptychodus`` console script use the installed (non-editable) copy of this
package; ``installed_copy`` fails them when it differs from the source tree.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_INTEGRATION_CONFTEST = Path(__file__).resolve().parents[1] / 'integration' / 'conftest.py'
_spec = importlib.util.spec_from_file_location('_integration_conftest', _INTEGRATION_CONFTEST)
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)


@pytest.fixture(scope='session')
def installed_copy() -> Path:
    stale = _integration.stale_installed_files()
    if stale:
        pytest.fail(
            'the installed ptychopinn-plugin differs from the source tree in '
            f'{", ".join(stale[:5])}; reinstall it as a regular wheel '
            '(python -m pip install --no-deps --force-reinstall .)'
        )
    return _integration._site_packages()
