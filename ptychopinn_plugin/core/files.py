"""Atomic file output shared by every writer, and the decompression-bomb guard of the zip readers.

A file is written to a temporary name in the target's directory and renamed over the target only
when the write has finished, so a crash, a full disk or an interrupt leaves any previous file
intact and never a half-written one. The finished file gets the permissions a plain ``open`` would
have given it (``0o666`` less the umask), not the private ``0o600`` of a temporary file, so models
and data shared on a cluster stay readable by the group as the user's umask intends.

Both zip formats we read (contract NPZ files, model archives) check every member with
:func:`exceeds_declared_limits` before decompressing it: a member that declares more bytes than its
reader allows, or an expansion beyond the ratio its kind of data can reach, is refused.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    'MAX_COMPRESSION_RATIO_DATA',
    'MAX_COMPRESSION_RATIO_MODEL',
    'atomic_output',
    'exceeds_declared_limits',
]

FALLBACK_FILE_MODE = 0o644
"""Mode of new files where the process umask cannot be read (not Linux)."""

MAX_COMPRESSION_RATIO_DATA = 2000
"""Largest expansion accepted for a member of a contract NPZ file: diffraction counts with many
zeros compress well, typically 10 to 100 times, never thousands."""
MAX_COMPRESSION_RATIO_MODEL = 200
"""Largest expansion accepted for a member of a model archive: float32 weights are close to
incompressible and the manifest is short JSON text. Count data compress far more than weights, so
the two readers keep two named limits rather than one."""


@contextlib.contextmanager
def atomic_output(path: Path | str, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds.

    Parameters
    ----------
    path : the final file; its directory is created when missing.
    fsync : flush the finished file to disk before the rename (a power cut then leaves either
        file whole).

    Raises whatever the block raises, after removing the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f'.{path.stem}-', suffix=path.suffix, dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, _new_file_mode())
        if fsync:
            with open(temporary, 'rb') as stream:
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _new_file_mode() -> int:
    """``0o666`` less this process's umask, read without changing it (thread-safe)."""
    try:
        with open('/proc/self/status', encoding='ascii') as status:
            for line in status:
                if line.startswith('Umask:'):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return FALLBACK_FILE_MODE


def exceeds_declared_limits(info: zipfile.ZipInfo, *, max_bytes: int, max_ratio: int) -> bool:
    """True when a zip member must not be decompressed (a decompression-bomb guard).

    Parameters
    ----------
    info : the member, as listed by the archive (nothing is read).
    max_bytes : the largest uncompressed size its reader accepts.
    max_ratio : the largest expansion (uncompressed over compressed size) its kind of data reaches,
        :data:`MAX_COMPRESSION_RATIO_DATA` or :data:`MAX_COMPRESSION_RATIO_MODEL`.
    """
    return info.file_size > max_bytes or info.file_size > max_ratio * max(info.compress_size, 1)
