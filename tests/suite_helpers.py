"""Helpers shared by the whole test suite, imported by name (``from suite_helpers import ...``).

Pytest puts ``tests/`` on ``sys.path`` when it loads ``tests/conftest.py`` (the suite has no
``__init__.py`` packages), so any test module can import this one, from the repository root with
``python -m pytest`` as ``make test`` runs it, or with a path to one file.
"""

from __future__ import annotations

from ptychopinn_plugin.config import Backend

__all__ = ['BACKENDS', 'BACKEND_NAMES']

BACKENDS = (Backend.PYTORCH, Backend.TENSORFLOW)
"""Every engine the tests run on. A backend that is not installed fails its tests (CI installs
both); it is never skipped. Test modules parametrize with this tuple, or take the ``backend``
fixture of ``tests/conftest.py``."""
BACKEND_NAMES = tuple(backend.value for backend in BACKENDS)
"""The same backends as the plain strings a settings file or a command line takes."""
