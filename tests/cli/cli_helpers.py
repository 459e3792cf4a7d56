"""Helpers of the ``ptychopinn`` command tests (imported by the test modules and conftest)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(sys.executable).with_name('ptychopinn')
NUM_PATTERNS = 64
"""Tiny scans: an 8 x 8 raster of 64 px patterns (a training epoch takes about a second)."""


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def run_script(*args: object, cwd: Path | None = None, timeout: float = 300) -> Result:
    """Run the installed ``ptychopinn`` console script in a subprocess."""
    executable = shutil.which('ptychopinn', path=str(SCRIPT.parent)) or str(SCRIPT)
    environment = {k: v for k, v in os.environ.items() if k not in ('RANK', 'LOCAL_RANK')}
    completed = subprocess.run(
        [executable, *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)
