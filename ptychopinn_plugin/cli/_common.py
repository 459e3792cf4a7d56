"""What every subcommand of the ``ptychopinn`` command shares: exit codes, outputs, messages.

Exit codes (documented in ``ptychopinn --help`` and ``docs/user-guide.md``) are :class:`ExitCode`;
:func:`exit_code_for` maps an exception to one. Outputs are never overwritten unless the user passes
``--overwrite`` (:func:`check_outputs`, checked before any work starts) and are written atomically
(:func:`atomic_output`: a temporary file in the target directory, renamed into place when complete).
Reading scans and objects is in ``_io.py``; each subcommand lives in its own module.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any

from ..core.files import atomic_output
from ..errors import (
    BackendUnavailableError,
    ConfigurationError,
    DeviceUnavailableError,
    PtychoPINNError,
)

__all__ = [
    'ExitCode',
    'OutputExistsError',
    'atomic_output',
    'check_outputs',
    'exit_code_for',
    'global_rank',
    'progress_bar',
    'say',
]


class ExitCode(IntEnum):
    """Exit statuses of ``ptychopinn`` that scripts can rely on (see :data:`EXIT_MEANINGS`)."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    BAD_INPUT = 3
    UNAVAILABLE = 4
    OUTPUT_EXISTS = 5
    IO_ERROR = 6
    BELOW_THRESHOLD = 7
    OUT_OF_MEMORY = 8
    INTERRUPTED = 130


EXIT_MEANINGS = {
    ExitCode.OK: 'success',
    ExitCode.INTERNAL: 'unexpected error (a bug): run again with --debug and report the traceback',
    ExitCode.USAGE: 'bad command line: unknown option, invalid or inconsistent value',
    ExitCode.BAD_INPUT: 'input data or model archive missing, unreadable or inconsistent',
    ExitCode.UNAVAILABLE: 'the backend is not installed, or the requested device is not available',
    ExitCode.OUTPUT_EXISTS: 'an output exists and --overwrite was not given; nothing was written',
    ExitCode.IO_ERROR: 'a file could not be written (permissions, disk full, ...)',
    ExitCode.BELOW_THRESHOLD: 'evaluate --min: a score is below its required minimum',
    ExitCode.OUT_OF_MEMORY: 'the device (or the host) ran out of memory: lower --batch-size',
    ExitCode.INTERRUPTED: 'interrupted (Ctrl-C); no output was written',
}
"""What each exit status means (shown by ``ptychopinn --help`` and in docs/user-guide.md)."""

EXIT_CODE_TABLE = '\n'.join(f'  {code.value:>3}  {EXIT_MEANINGS[code]}' for code in ExitCode)
"""The exit statuses as a help-text table."""


class OutputExistsError(PtychoPINNError, FileExistsError):
    """An output that exists and may not be overwritten."""


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit status for an exception raised by a subcommand."""
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(error, MemoryError):
        return ExitCode.OUT_OF_MEMORY
    if isinstance(error, FileExistsError):
        return ExitCode.OUTPUT_EXISTS
    if isinstance(error, BackendUnavailableError | DeviceUnavailableError):
        return ExitCode.UNAVAILABLE
    if isinstance(error, ConfigurationError):
        return ExitCode.USAGE
    if isinstance(error, PtychoPINNError | FileNotFoundError | IsADirectoryError):
        return ExitCode.BAD_INPUT
    if isinstance(error, OSError):
        return ExitCode.IO_ERROR
    return ExitCode.INTERNAL


def say(message: str) -> None:
    """Write a progress or status line to stderr (stdout is kept for results)."""
    print(message, file=sys.stderr, flush=True)


def progress_bar(total: int, description: str, unit: str, *, shown: bool) -> Any:
    """A tqdm progress bar on stderr, drawn when ``shown`` and stderr is a terminal.

    Off a terminal (a log file, a batch job) tqdm draws nothing and the status lines of
    :func:`say` carry the progress alone; write those through the bar's ``write`` (with
    ``file=sys.stderr``) so that they appear above a drawn bar. ``PTYCHOPINN_PROGRESS=1`` draws the
    bar on any stream, ``0`` never.
    """
    from tqdm import tqdm

    forced = os.environ.get('PTYCHOPINN_PROGRESS')
    disable: bool | None = None  # tqdm: off when the stream is not a terminal
    if not shown or forced == '0':
        disable = True
    elif forced == '1':
        disable = False
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        file=sys.stderr,
        disable=disable,
        dynamic_ncols=True,
        leave=True,
    )


def check_outputs(paths: Sequence[Path], overwrite: bool) -> None:
    """Refuse, before any work starts, to replace existing outputs unless ``overwrite``.

    Raises
    ------
    OutputExistsError
        Naming every existing output and the option that allows replacing them.
    """
    existing = [str(path) for path in paths if path.exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f'output already exists: {", ".join(existing)}; choose another output name or pass '
            '--overwrite to replace it'
        )


def global_rank() -> int:
    """This process's rank in a distributed training (0 when not distributed).

    Lightning's launcher starts the other processes of a node with ``LOCAL_RANK`` and
    ``NODE_RANK`` set; cluster launchers set ``RANK`` or ``SLURM_PROCID``. Only rank 0 writes
    outputs and progress lines.
    """
    for name in ('RANK', 'SLURM_PROCID'):
        if name in os.environ:
            return _int_env(name)
    return max(_int_env('LOCAL_RANK'), _int_env('NODE_RANK'))


def _int_env(name: str) -> int:
    try:
        return int(os.environ.get(name, '0'))
    except ValueError:
        return 0


def add_overwrite_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace existing outputs (default: refuse and exit with status 5)',
    )
