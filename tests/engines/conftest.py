"""Engine fixtures: every engine test body runs once per backend.

A backend that is not installed fails (CI must install both), it is never skipped.
"""

from __future__ import annotations

import pytest

from ptychopinn_plugin.config import Backend

BACKENDS = [Backend.PYTORCH, Backend.TENSORFLOW]


@pytest.fixture(params=BACKENDS, ids=[b.value for b in BACKENDS])
def backend(request) -> Backend:
    return request.param
