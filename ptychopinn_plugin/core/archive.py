"""Model archives: a zip of a JSON manifest and canonical weights, checked before loading.

``manifest.json`` holds the format version, the backend that trained the model, the full
configuration, the normalisation, a training summary, framework versions and the sha256 of the
weights. ``weights.npz`` holds the canonical weights (``core/weights.py``) as plain float32 arrays:
nothing in an archive can carry code, nothing is unpickled, no framework is imported. Loading
validates member names, sizes, checksums and weight shapes and raises :class:`ArchiveError` for
anything unexpected. Saving writes a temporary file in the target directory and renames it, so an
existing archive is replaced whole or not at all. Either engine loads an archive written by the
other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from ..config import PluginConfig
from ..errors import ArchiveError
from .weights import check_weights

__all__ = ['ARCHIVE_EXTENSION', 'Archive', 'load_archive', 'read_manifest', 'save_archive']

ARCHIVE_EXTENSION = '.zip'
FORMAT_NAME = 'ptychopinn-plugin-model'
FORMAT_VERSION = 1
MANIFEST = 'manifest.json'
WEIGHTS = 'weights.npz'
MAX_MANIFEST_BYTES = 4 * 1024**2
MAX_WEIGHTS_BYTES = 2 * 1024**3
"""Declared uncompressed sizes above these are refused before anything is decompressed."""
MAX_COMPRESSION_RATIO = 200
"""A member that claims to expand more than this is treated as a decompression bomb."""


@dataclass(frozen=True, eq=False)
class Archive:
    """A trained model: configuration, canonical weights and what is known about its training."""

    config: PluginConfig
    weights: dict[str, np.ndarray]
    normalization: dict[str, Any] = field(default_factory=dict)
    training_summary: dict[str, Any] = field(default_factory=dict)
    trained_backend: str = ''
    framework_versions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_weights(self.config.model, self.weights)


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def save_archive(path: Path | str, archive: Archive, *, overwrite: bool = False) -> Path:
    """Write ``archive`` to ``path`` (``.zip``) atomically; refuse to overwrite unless asked."""
    path = Path(path)
    if path.suffix != ARCHIVE_EXTENSION:
        raise ArchiveError(f'model archives end in {ARCHIVE_EXTENSION}, got {path.name!r}')
    if path.exists() and not overwrite:
        raise FileExistsError(f'{path} exists; choose another name or allow overwriting')
    buffer = io.BytesIO()
    np.savez(
        buffer, **{name: np.asarray(value, np.float32) for name, value in archive.weights.items()}
    )
    weights_bytes = buffer.getvalue()
    manifest = {
        'format': FORMAT_NAME,
        'format_version': FORMAT_VERSION,
        'created': dt.datetime.now(dt.UTC).isoformat(timespec='seconds'),
        'trained_backend': archive.trained_backend,
        'mode': archive.config.model.mode.value,
        'pattern_size_px': archive.config.model.pattern_size_px,
        'gridsize': archive.config.model.gridsize,
        'config': json.loads(archive.config.to_json()),
        'normalization': archive.normalization,
        'training_summary': archive.training_summary,
        'framework_versions': archive.framework_versions,
        'members': {WEIGHTS: {'sha256': _sha256(weights_bytes), 'bytes': len(weights_bytes)}},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f'.{path.stem}-', suffix='.zip', dir=path.parent)
    try:
        with os.fdopen(handle, 'wb') as stream:
            with zipfile.ZipFile(stream, 'w', compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
                zf.writestr(WEIGHTS, weights_bytes)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_manifest(path: Path | str) -> dict[str, Any]:
    """The validated manifest of the archive at ``path`` (weights are not read)."""
    with _open(Path(path)) as zf:
        return _manifest(zf, Path(path))


def load_archive(path: Path | str) -> Archive:
    """Read and validate the archive at ``path``; no framework is imported, no code is run."""
    path = Path(path)
    with _open(path) as zf:
        manifest = _manifest(zf, path)
        payload = _read_member(zf, WEIGHTS, MAX_WEIGHTS_BYTES, path)
    expected = manifest['members'][WEIGHTS]
    if _sha256(payload) != expected.get('sha256'):
        raise ArchiveError(f'{path}: weights.npz does not match its checksum; the file is corrupt')
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            weights = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f'{path}: unreadable weights ({exc})') from exc
    try:
        config = PluginConfig.model_validate(manifest['config'])
    except ValidationError as exc:
        raise ArchiveError(f'{path}: the stored configuration is invalid: {exc}') from exc
    return Archive(
        config=config,
        weights=weights,
        normalization=dict(manifest.get('normalization', {})),
        training_summary=dict(manifest.get('training_summary', {})),
        trained_backend=str(manifest.get('trained_backend', '')),
        framework_versions=dict(manifest.get('framework_versions', {})),
    )


def _open(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise ArchiveError(f'no model archive at {path}')
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(
            f'{path} is not a model archive (not a readable zip file: {exc}); '
            'choose a model.zip written by ptychopinn-plugin'
        ) from exc
    names = sorted(zf.namelist())
    if names != sorted([MANIFEST, WEIGHTS]):
        zf.close()
        raise ArchiveError(
            f'{path} holds {names[:6]}, not the members of a ptychopinn-plugin model '
            f"({MANIFEST}, {WEIGHTS}); it may be another program's file"
        )
    return zf


def _read_member(zf: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    info = zf.getinfo(name)
    if info.file_size > limit or info.file_size > MAX_COMPRESSION_RATIO * max(
        info.compress_size, 1
    ):
        raise ArchiveError(
            f'{path}: member {name} declares {info.file_size} bytes from {info.compress_size} '
            'compressed; refusing to decompress it'
        )
    try:
        with zf.open(info) as member:
            payload = member.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f'{path}: member {name} is corrupt ({exc})') from exc
    if len(payload) > limit:
        raise ArchiveError(f'{path}: member {name} is larger than declared')
    return payload


def _manifest(zf: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    payload = _read_member(zf, MANIFEST, MAX_MANIFEST_BYTES, path)
    try:
        manifest = json.loads(payload.decode('utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f'{path}: manifest.json is not valid JSON ({exc})') from exc
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT_NAME:
        raise ArchiveError(f'{path} is not a ptychopinn-plugin model archive (unknown format)')
    version = manifest.get('format_version')
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArchiveError(
            f'{path} uses archive format version {version!r}, newer than this plugin reads '
            f'({FORMAT_VERSION}); upgrade ptychopinn-plugin'
        )
    members = manifest.get('members')
    if not isinstance(members, dict) or not isinstance(members.get(WEIGHTS), dict):
        raise ArchiveError(f'{path}: manifest.json lacks the checksum of {WEIGHTS}')
    if not isinstance(manifest.get('config'), dict):
        raise ArchiveError(f'{path}: manifest.json lacks the model configuration')
    return manifest
