"""Atomic output: complete files or the old file, never half; permissions as a plain open gives."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ptychopinn_plugin.core.files import atomic_output


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_finished_write_replaces_the_file_with_the_umask_permissions(tmp_path: Path) -> None:
    target = tmp_path / 'sub' / 'model.zip'
    previous = os.umask(0o027)
    try:
        with atomic_output(target) as temporary:
            temporary.write_bytes(b'new')
    finally:
        os.umask(previous)
    assert target.read_bytes() == b'new'
    assert _mode(target) == 0o640  # not the 0o600 of a temporary file
    assert list(target.parent.iterdir()) == [target]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / 'data.npz'
    target.write_bytes(b'old')

    def interrupted_write() -> None:
        with atomic_output(target) as temporary:
            temporary.write_bytes(b'half')
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_write()
    assert target.read_bytes() == b'old'
    assert list(tmp_path.iterdir()) == [target]


def test_the_zip_guard_refuses_members_too_large_or_expanding_too_much(tmp_path: Path) -> None:
    import zipfile

    from ptychopinn_plugin.core.files import exceeds_declared_limits

    path = tmp_path / 'members.zip'
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr('zeros', bytes(100_000))
        archive.writestr('noise', os.urandom(1000))
    with zipfile.ZipFile(path) as archive:
        zeros, noise = archive.getinfo('zeros'), archive.getinfo('noise')
    assert zeros.file_size > 10 * zeros.compress_size
    assert exceeds_declared_limits(zeros, max_bytes=10**6, max_ratio=10)
    assert not exceeds_declared_limits(zeros, max_bytes=10**6, max_ratio=10**4)
    assert exceeds_declared_limits(noise, max_bytes=999, max_ratio=10)
    assert not exceeds_declared_limits(noise, max_bytes=1000, max_ratio=10)
