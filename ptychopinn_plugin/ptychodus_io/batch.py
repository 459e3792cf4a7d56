"""Headless ``ptychodus -b`` runs on a workflow directory (the demo, evidence and tests).

``run_ptychodus`` runs the real ``ptychodus`` console script (by default the one next to the
running interpreter) and keeps its log next to the output directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ['PTYCHODUS', 'BatchRun', 'run_ptychodus']

PTYCHODUS = Path(sys.executable).with_name('ptychodus')


@dataclass(frozen=True)
class BatchRun:
    """Exit status, combined output and duration of one ``ptychodus -b`` run."""

    returncode: int
    log: str
    seconds: float


def run_ptychodus(
    action: str,
    input_directory: Path,
    output_directory: Path,
    *,
    timeout_s: float = 600,
    python_prelude: str | None = None,
    env: dict[str, str] | None = None,
    executable: Path | None = None,
) -> BatchRun:
    """Run ``ptychodus -b ACTION -i IN -o OUT``; its log is also saved next to ``OUT``.

    ``python_prelude`` runs Python code in the subprocess before Ptychodus starts (through a
    ``sitecustomize`` module on ``PYTHONPATH``), e.g. to make a framework unimportable.
    ``executable``: another environment's ``ptychodus`` script (default: this environment's).
    """
    input_directory, output_directory = input_directory.resolve(), output_directory.resolve()
    environment = {**os.environ, **(env or {})}
    environment.pop('PYTHONPATH', None)
    if python_prelude is not None:
        prelude_dir = output_directory.parent / f'{output_directory.name}-prelude'
        prelude_dir.mkdir(parents=True, exist_ok=True)
        (prelude_dir / 'sitecustomize.py').write_text(python_prelude)
        environment['PYTHONPATH'] = str(prelude_dir)
    command = [
        str(PTYCHODUS if executable is None else executable),
        '-b',
        action,
        '-i',
        str(input_directory),
        '-o',
        str(output_directory),
    ]
    start = time.perf_counter()
    completed = subprocess.run(
        command,
        cwd=input_directory.parent,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    seconds = time.perf_counter() - start
    (output_directory.parent / f'{output_directory.name}-{action}.log').write_text(completed.stdout)
    return BatchRun(completed.returncode, completed.stdout, seconds)
