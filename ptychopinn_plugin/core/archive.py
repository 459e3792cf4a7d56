"""Model archives: a zip of a JSON manifest and canonical weights, checked before loading.

``manifest.json`` holds the format version, the backend that trained the model, the full
configuration, the normalisation, a training summary, framework versions and the sha256 of the
weights. ``weights.npz`` holds the canonical weights (``core/weights.py``) as plain float32 arrays:
nothing in an archive can carry code, nothing is unpickled, no framework is imported. Loading
validates member names, sizes, checksums and weight shapes and raises :class:`ArchiveError` for
anything unexpected. Nothing is extracted to disk: members are read into memory, each bounded by
the size the stored configuration implies (so a decompression bomb or a manifest that lies about the
network is refused before memory is spent), and weights are parsed from their ``.npy`` headers.
Saving writes a temporary file in the target directory and renames it, so an
existing archive is replaced whole or not at all. Either engine loads an archive written by the
other.

A *checkpoint* (``core/checkpoint.py``) is an archive with a :class:`TrainingState`: a third
member, ``optimizer.npz`` (Adam's moments in canonical names and layout, read as strictly as the
weights), and the per-epoch history and the fingerprint of the data and settings in the manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import stat
import tokenize
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from ..config import PluginConfig
from ..errors import ArchiveError
from .files import MAX_COMPRESSION_RATIO_MODEL, atomic_output, exceeds_declared_limits
from .protocol import OptimizerState
from .weights import check_weights, weight_specs

__all__ = [
    'ARCHIVE_EXTENSION',
    'Archive',
    'TrainingState',
    'load_archive',
    'read_manifest',
    'save_archive',
]

ARCHIVE_EXTENSION = '.zip'
FORMAT_NAME = 'ptychopinn-plugin-model'
FORMAT_VERSION = 1
MANIFEST = 'manifest.json'
WEIGHTS = 'weights.npz'
OPTIMIZER = 'optimizer.npz'
"""The optimiser's moments, only in checkpoints (``first.<weight>``, ``second.<weight>``)."""
_MOMENTS = ('first', 'second')
MAX_MANIFEST_BYTES = 4 * 1024**2
MAX_WEIGHTS_BYTES = 2 * 1024**3
"""Declared uncompressed sizes above these are refused before anything is decompressed."""
NPY_HEADER_BYTES = 4096
"""Room for one ``.npy`` header (NumPy writes 128 bytes; a hand-made header may be longer)."""
ZIP_ENTRY_OVERHEAD_BYTES = 512
"""Local and central zip headers of one ``weights.npz`` member, with its name."""


@dataclass(frozen=True, eq=False)
class TrainingState:
    """What continuing an interrupted training needs besides the weights (``core/checkpoint.py``).

    Attributes
    ----------
    history : one dict per finished epoch (the fields of ``EpochReport``).
    optimizer : Adam's state after the last of them.
    fingerprint : what the training was run on (data checksum and settings), checked on resume.
    """

    history: list[dict[str, Any]]
    optimizer: OptimizerState
    fingerprint: dict[str, Any]


@dataclass(frozen=True, eq=False)
class Archive:
    """A trained model: configuration, canonical weights and what is known about its training."""

    config: PluginConfig
    weights: dict[str, np.ndarray]
    normalization: dict[str, Any] = field(default_factory=dict)
    training_summary: dict[str, Any] = field(default_factory=dict)
    trained_backend: str = ''
    framework_versions: dict[str, str] = field(default_factory=dict)
    training_state: TrainingState | None = None
    """Only in a checkpoint: what resuming its training needs."""

    def __post_init__(self) -> None:
        check_weights(self.config.model, self.weights)


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    plain = {name: np.asarray(value, np.float32) for name, value in arrays.items()}
    np.savez(buffer, **plain)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    return buffer.getvalue()


def save_archive(
    path: Path | str, archive: Archive, *, overwrite: bool = False, compress: bool = True
) -> Path:
    """Write ``archive`` to ``path`` (``.zip``) atomically; refuse to overwrite unless asked.

    ``compress``: deflate the members (off for checkpoints, written every epoch: float weights
    shrink little and deflating them takes time).
    """
    path = Path(path)
    if path.suffix != ARCHIVE_EXTENSION:
        raise ArchiveError(f'model archives end in {ARCHIVE_EXTENSION}, got {path.name!r}')
    if path.exists() and not overwrite:
        raise FileExistsError(f'{path} exists; choose another name or allow overwriting')
    weights_bytes = _npz_bytes(archive.weights)
    members = {WEIGHTS: weights_bytes}
    state = archive.training_state
    if state is not None:
        optimizer = state.optimizer
        members[OPTIMIZER] = _npz_bytes(
            {f'first.{name}': value for name, value in optimizer.first_moments.items()}
            | {f'second.{name}': value for name, value in optimizer.second_moments.items()}
        )
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
        'members': {
            name: {'sha256': _sha256(payload), 'bytes': len(payload)}
            for name, payload in members.items()
        },
    }
    if state is not None:
        manifest['training_state'] = {
            'history': state.history,
            'fingerprint': state.fingerprint,
            'optimizer_step': state.optimizer.step,
        }
    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with (
        atomic_output(path) as temporary,
        zipfile.ZipFile(temporary, 'w', compression=compression) as zf,
    ):
        zf.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
        for name, payload in members.items():
            zf.writestr(name, payload)
    return path


def read_manifest(path: Path | str) -> dict[str, Any]:
    """The validated manifest of the archive at ``path`` (weights are not read)."""
    path = Path(path)
    with _open(path) as zf:
        manifest = _manifest(zf, path)
    _config(manifest, path)
    return manifest


def load_archive(path: Path | str) -> Archive:
    """Read and validate the archive at ``path``; no framework is imported, no code is run.

    Nothing is extracted to disk: both members are read into memory, each bounded by the size the
    model configuration implies, and the weights are parsed from their ``.npy`` headers without
    pickle. Every problem raises :class:`ArchiveError`.
    """
    path = Path(path)
    with _open(path) as zf:
        manifest = _manifest(zf, path)
        config = _config(manifest, path)
        specs = {spec.name: spec.shape for spec in weight_specs(config.model)}
        payload = _checked_member(zf, manifest, WEIGHTS, specs, config, path)
        weights = _read_weights(payload, specs, path)
        training_state = None
        if OPTIMIZER in zf.namelist():
            moment_specs = {
                f'{kind}.{name}': shape for kind in _MOMENTS for name, shape in specs.items()
            }
            payload = _checked_member(zf, manifest, OPTIMIZER, moment_specs, config, path)
            moments = _read_weights(payload, moment_specs, path)
            training_state = _training_state(manifest, moments, path)
    return Archive(
        config=config,
        weights=weights,
        normalization=_mapping(manifest, 'normalization', path),
        training_summary=_mapping(manifest, 'training_summary', path),
        trained_backend=str(manifest.get('trained_backend', '')),
        framework_versions={
            str(k): str(v) for k, v in _mapping(manifest, 'framework_versions', path).items()
        },
        training_state=training_state,
    )


def _checked_member(
    zf: zipfile.ZipFile,
    manifest: dict[str, Any],
    name: str,
    specs: dict[str, tuple[int, ...]],
    config: PluginConfig,
    path: Path,
) -> bytes:
    """The bytes of the array member ``name``, within the size its arrays imply and checksummed."""
    record = manifest['members'].get(name)
    if not isinstance(record, dict):
        raise ArchiveError(f'{path}: manifest.json lacks the checksum of {name}')
    limit = _weights_bytes_bound(specs)
    declared = record.get('bytes')
    if not isinstance(declared, int) or isinstance(declared, bool) or not 0 < declared <= limit:
        raise ArchiveError(
            f'{path}: the manifest declares {declared!r} bytes of {name}, but a '
            f'{_describe(config)} network needs at most {limit}; the manifest is corrupt or '
            'was edited'
        )
    payload = _read_member(zf, name, declared, path)
    if len(payload) != declared:
        raise ArchiveError(
            f'{path}: {name} holds {len(payload)} bytes but the manifest declares {declared}; '
            'the file is truncated or was edited'
        )
    if _sha256(payload) != record.get('sha256'):
        raise ArchiveError(f'{path}: {name} does not match its checksum; the file is corrupt')
    return payload


def _training_state(
    manifest: dict[str, Any], moments: dict[str, np.ndarray], path: Path
) -> TrainingState:
    record = _mapping(manifest, 'training_state', path)
    history, fingerprint = record.get('history'), record.get('fingerprint')
    step = record.get('optimizer_step')
    first = {k.removeprefix('first.'): v for k, v in moments.items() if k.startswith('first.')}
    second = {k.removeprefix('second.'): v for k, v in moments.items() if k.startswith('second.')}
    if (
        not isinstance(history, list)
        or not all(isinstance(epoch, dict) for epoch in history)
        or not isinstance(fingerprint, dict)
        or not isinstance(step, int)
        or isinstance(step, bool)
        or step < 0
        or set(first) != set(second)
    ):
        raise ArchiveError(
            f'{path}: the training state of this checkpoint is incomplete or corrupt (history, '
            'fingerprint, optimiser step, matching first and second moments); start the training '
            'again without it'
        )
    return TrainingState(history, OptimizerState(step, first, second), fingerprint)


def _describe(config: PluginConfig) -> str:
    model = config.model
    return (
        f'N = {model.pattern_size_px}, gridsize {model.gridsize}, n_filters_scale '
        f'{model.n_filters_scale}'
    )


def _weights_bytes_bound(specs: dict[str, tuple[int, ...]]) -> int:
    """Most bytes a ``weights.npz`` of float32 arrays of these shapes takes (zip headers too)."""
    data = sum(4 * int(np.prod(shape)) for shape in specs.values())
    return data + len(specs) * (NPY_HEADER_BYTES + ZIP_ENTRY_OVERHEAD_BYTES) + 4096


def _open(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise ArchiveError(f'no model archive at {path}')
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ArchiveError(
            f'{path} is not a model archive (not a readable zip file: {exc}); '
            'choose a model.zip written by ptychopinn-plugin'
        ) from exc
    names = zf.namelist()
    if sorted(names) not in (sorted([MANIFEST, WEIGHTS]), sorted([MANIFEST, WEIGHTS, OPTIMIZER])):
        zf.close()
        raise ArchiveError(
            f'{path} holds {names[:6]}, not the members of a ptychopinn-plugin model '
            f'({MANIFEST}, {WEIGHTS}, and {OPTIMIZER} in a checkpoint); it may be another '
            "program's file"
        )
    for info in zf.infolist():
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode) or info.is_dir() or info.flag_bits & 0x1:
            zf.close()
            raise ArchiveError(
                f'{path}: member {info.filename} is a symbolic link, a directory or encrypted; a '
                'model archive holds plain files only. Refusing it'
            )
    return zf


def _read_member(zf: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    """The bytes of member ``name``: refused unless it declares at most ``limit`` bytes."""
    info = zf.getinfo(name)
    if exceeds_declared_limits(info, max_bytes=limit, max_ratio=MAX_COMPRESSION_RATIO_MODEL):
        raise ArchiveError(
            f'{path}: member {name} declares {info.file_size} bytes from {info.compress_size} '
            f'compressed (at most {limit} expected); refusing to decompress it'
        )
    try:
        with zf.open(info) as member:
            payload = member.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
        raise ArchiveError(f'{path}: member {name} is corrupt ({exc})') from exc
    if len(payload) > info.file_size:
        raise ArchiveError(f'{path}: member {name} is larger than declared')
    return payload


def _read_weights(
    payload: bytes, specs: dict[str, tuple[int, ...]], path: Path
) -> dict[str, np.ndarray]:
    """Parse ``weights.npz`` in memory: every member a float32 ``.npy`` of its canonical shape."""
    weights: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as npz:
            infos = npz.infolist()
            names = [info.filename for info in infos]
            if len(set(names)) != len(names):
                raise ArchiveError(f'{path}: weights.npz repeats a member name')
            for info in infos:
                name = info.filename.removesuffix('.npy')
                if not info.filename.endswith('.npy') or name not in specs:
                    raise ArchiveError(
                        f'{path}: weights.npz holds {info.filename!r}, which is not a weight of '
                        f'the declared network; the manifest and the weights disagree'
                    )
                weights[name] = _read_npy(npz, info, specs[name], path)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
        raise ArchiveError(f'{path}: unreadable weights ({exc})') from exc
    return weights


def _read_npy(
    npz: zipfile.ZipFile, info: zipfile.ZipInfo, shape: tuple[int, ...], path: Path
) -> np.ndarray:
    name = info.filename
    expected = 4 * int(np.prod(shape))
    if info.file_size > expected + NPY_HEADER_BYTES:
        raise ArchiveError(
            f'{path}: weight {name} declares {info.file_size} bytes, more than a float32 array '
            f'of shape {shape} needs; refusing it'
        )
    with npz.open(info) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            if version not in _HEADER_READERS:
                raise ValueError(f'unsupported .npy format version {version}')
            header = _HEADER_READERS[version](stream)
        except (ValueError, SyntaxError, TypeError, tokenize.TokenError) as exc:
            raise ArchiveError(f'{path}: weight {name} is not a NumPy array ({exc})') from exc
        found_shape, fortran_order, dtype = header
        if tuple(found_shape) != tuple(shape) or dtype != np.dtype('<f4'):
            raise ArchiveError(
                f'{path}: weight {name} is {dtype} of shape {tuple(found_shape)}, expected '
                f'float32 of shape {shape}; the manifest lies about the network or the weights '
                'were edited'
            )
        data = stream.read(expected + 1)
    if len(data) != expected:
        raise ArchiveError(f'{path}: weight {name} holds {len(data)} bytes, expected {expected}')
    values = np.frombuffer(data, dtype='<f4').reshape(shape, order='F' if fortran_order else 'C')
    return values.astype(np.float32)


_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _mapping(manifest: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = manifest.get(key, {})
    if not isinstance(value, dict):
        raise ArchiveError(
            f'{path}: manifest field {key!r} must be a JSON object, got {type(value).__name__}'
        )
    return dict(value)


def _manifest(zf: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    payload = _read_member(zf, MANIFEST, MAX_MANIFEST_BYTES, path)
    try:
        manifest = json.loads(payload.decode('utf-8'))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ArchiveError(f'{path}: manifest.json is not valid JSON ({exc})') from exc
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT_NAME:
        raise ArchiveError(f'{path} is not a ptychopinn-plugin model archive (unknown format)')
    version = manifest.get('format_version')
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArchiveError(
            f'{path}: manifest format_version is {version!r}, not a positive integer; the '
            'manifest is corrupt'
        )
    if version > FORMAT_VERSION:
        raise ArchiveError(
            f'{path} uses archive format version {version}, newer than this plugin reads '
            f'({FORMAT_VERSION}); upgrade ptychopinn-plugin (pip install -U ptychopinn-plugin)'
        )
    members = manifest.get('members')
    if not isinstance(members, dict) or not isinstance(members.get(WEIGHTS), dict):
        raise ArchiveError(f'{path}: manifest.json lacks the checksum of {WEIGHTS}')
    if not isinstance(manifest.get('config'), dict):
        raise ArchiveError(f'{path}: manifest.json lacks the model configuration')
    return manifest


def _config(manifest: dict[str, Any], path: Path) -> PluginConfig:
    """The stored configuration, checked against the manifest's own summary fields."""
    try:
        config = PluginConfig.model_validate(manifest['config'])
    except ValidationError as exc:
        raise ArchiveError(f'{path}: the stored configuration is invalid: {exc}') from exc
    model = config.model
    for key, value in (
        ('mode', model.mode.value),
        ('pattern_size_px', model.pattern_size_px),
        ('gridsize', model.gridsize),
    ):
        if key in manifest and manifest[key] != value:
            raise ArchiveError(
                f'{path}: the manifest says {key} = {manifest[key]!r} but its configuration says '
                f'{value!r}; the manifest was edited or is corrupt'
            )
    return config
