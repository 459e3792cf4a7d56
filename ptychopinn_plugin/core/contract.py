"""The NPZ data contract: what a PtychoPINN dataset holds, checked on every read and write.

One frozen value, :class:`TrainingData`, carries a scan: diffraction **amplitudes** (square root
of detector counts), scan positions in object pixels, one 2-D complex probe, and optional object
guess and ground-truth patches. The on-disk keys follow PtychoPINN's NPZ files (``diff3d`` holds
amplitude) and add ``metadata_json`` with the quantity the data came from, the photon count and
the object geometry. The reader also accepts Ptychodus's own export (counts in ``diff3d``, a
probe-mode stack) and converts it explicitly. Conversion from Ptychodus objects lives in
``ptychodus_io`` (outside the core); grouping in ``grouping.py``.

Conventions (see ``specs/ptychodus_api_spec.md``):
- positions: ``positions_px[:, 0]`` is x (column), ``positions_px[:, 1]`` is y (row), in object
  pixels whose centres sit at integers (Ptychodus's mapping);
- a patch of side N centred on a scan point covers object pixels ``x - (N-1)/2 .. x + (N-1)/2``,
  so the scan point sits at patch index ``(N-1)/2`` (the probe array's centre in Ptychodus);
- diffraction patterns have their zero frequency at index ``N // 2`` (fft-shifted).
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import numpy as np

from ..errors import DataContractError
from .files import MAX_COMPRESSION_RATIO_DATA, atomic_output, exceeds_declared_limits

logger = logging.getLogger(__name__)

__all__ = [
    'ContractKey',
    'DiffractionQuantity',
    'ScanMetadata',
    'TrainingData',
    'amplitude_from_counts',
    'read_training_data',
    'write_training_data',
]

CONTRACT_VERSION = 1
MAX_MEMBER_BYTES = 16 * 1024**3
"""Largest NPZ member we agree to decompress (guards against decompression bombs)."""


class ContractKey(StrEnum):
    """Array names in a contract NPZ file (PtychoPINN's names where they exist)."""

    X_PX = 'xcoords'
    Y_PX = 'ycoords'
    X_START_PX = 'xcoords_start'
    Y_START_PX = 'ycoords_start'
    DIFFRACTION = 'diff3d'
    PROBE = 'probeGuess'
    OBJECT = 'objectGuess'
    SCAN_INDEX = 'scan_index'
    GROUND_TRUTH_PATCHES = 'Y'
    BAD_PIXELS = 'bad_pixels'
    METADATA = 'metadata_json'


REQUIRED_KEYS = (ContractKey.X_PX, ContractKey.Y_PX, ContractKey.DIFFRACTION, ContractKey.PROBE)


class DiffractionQuantity(StrEnum):
    """What the numbers in a diffraction array mean."""

    COUNTS = 'counts'
    """Detector counts (intensity), as Ptychodus stores them."""
    AMPLITUDE = 'amplitude'
    """Square root of counts, as PtychoPINN consumes them."""


@dataclass(frozen=True)
class ScanMetadata:
    """Facts about a scan that are not arrays; stored as JSON under ``metadata_json``."""

    source_quantity: DiffractionQuantity = DiffractionQuantity.AMPLITUDE
    """Quantity the data were recorded as before conversion to amplitude."""
    num_photons: float | None = None
    """Mean total counts per pattern, when known (measured from counts or declared)."""
    object_pixel_width_m: float | None = None
    object_pixel_height_m: float | None = None
    object_center_x_m: float | None = None
    object_center_y_m: float | None = None
    probe_modes_dropped: int = 0
    """Incoherent probe modes discarded when a mode stack was reduced to mode 0."""
    num_bad_pixels: int = 0
    """Detector pixels that were repaired (inpainted or zeroed) rather than measured."""
    source: str = ''
    """Free text: where the data came from (file, product name, simulator)."""

    def to_json(self) -> str:
        values = dict(self.__dict__)
        values['source_quantity'] = str(self.source_quantity)
        values['contract_version'] = CONTRACT_VERSION
        return json.dumps(values, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ScanMetadata:
        try:
            values = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise DataContractError(f'metadata_json is not valid JSON: {exc}') from exc
        if not isinstance(values, dict):
            raise DataContractError('metadata_json must hold a JSON object')
        version = values.pop('contract_version', CONTRACT_VERSION)
        if not isinstance(version, int) or isinstance(version, bool):
            raise DataContractError(
                f'metadata_json contract_version must be an integer, got {version!r}'
            )
        if version > CONTRACT_VERSION:
            raise DataContractError(
                f'data file uses contract version {version!r}, newer than this plugin supports '
                f'({CONTRACT_VERSION}); upgrade ptychopinn-plugin'
            )
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            logger.warning('ignoring unknown metadata fields %s', unknown)
        try:
            values['source_quantity'] = DiffractionQuantity(
                values.get('source_quantity', DiffractionQuantity.AMPLITUDE)
            )
            for name, kinds in _METADATA_TYPES.items():
                value = values.get(name)
                if name in values and not (
                    isinstance(value, kinds) and not isinstance(value, bool)
                ):
                    raise TypeError(f'field {name} = {value!r} is not of type {kinds}')
            return cls(**{k: v for k, v in values.items() if k in known})
        except (TypeError, ValueError) as exc:
            raise DataContractError(f'invalid metadata_json: {exc}') from exc


_METADATA_TYPES: dict[str, tuple[type, ...]] = {
    'num_photons': (int, float, type(None)),
    'object_pixel_width_m': (int, float, type(None)),
    'object_pixel_height_m': (int, float, type(None)),
    'object_center_x_m': (int, float, type(None)),
    'object_center_y_m': (int, float, type(None)),
    'probe_modes_dropped': (int,),
    'num_bad_pixels': (int,),
    'source': (str,),
}
"""JSON types of the metadata fields (None where a value may be unknown)."""


def amplitude_from_counts(counts: np.ndarray) -> np.ndarray:
    """Convert detector counts to diffraction amplitude.

    Parameters
    ----------
    counts : ndarray, shape (n, N, N), real
        Detector counts (intensity), non-negative and finite.

    Returns
    -------
    ndarray, shape (n, N, N), float32
        ``sqrt(counts)``.
    """
    counts = np.asarray(counts)
    _check_real_finite(counts, 'diffraction counts')
    minimum = float(counts.min()) if counts.size else 0.0
    if minimum < 0:
        raise DataContractError(
            f'diffraction counts must be non-negative; the smallest value is {minimum:g}. '
            'Clip the background subtraction at zero before exporting.'
        )
    return np.sqrt(counts.astype(np.float32))


def _check_real_finite(array: np.ndarray, what: str) -> None:
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise DataContractError(f'{what} must be a numeric array, got dtype {array.dtype}')
    if np.iscomplexobj(array):
        raise DataContractError(f'{what} must be real, got complex dtype {array.dtype}')
    if array.size and not _all_finite(array):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise DataContractError(
            f'{what} contain {bad} NaN or infinite values; remove or repair those patterns'
        )


FINITE_CHUNK_ELEMENTS = 1 << 24
"""Elements checked for NaN at a time: a whole-scan boolean mask would take n * N * N bytes."""


def _all_finite(array: np.ndarray) -> bool:
    if array.ndim == 0 or array.size <= FINITE_CHUNK_ELEMENTS:
        return bool(np.all(np.isfinite(array)))
    step = max(1, FINITE_CHUNK_ELEMENTS // max(1, array[0].size))
    return all(
        bool(np.all(np.isfinite(array[start : start + step])))
        for start in range(0, array.shape[0], step)
    )


@dataclass(frozen=True, eq=False)
class TrainingData:
    """One scan in the form the network consumes; checks itself on construction.

    Attributes
    ----------
    diffraction_amplitude : ndarray, shape (n, N, N), float32
        Square root of detector counts, zero frequency at ``N // 2``.
    positions_px : ndarray, shape (n, 2), float64
        Scan positions in object pixels, columns (x, y).
    probe : ndarray, shape (N, N), complex64
        One probe mode on the object pixel grid, centred at ``(N-1)/2``.
    object_guess : ndarray, shape (H, W), complex64, optional
        Initial object (or the truth, for simulated data) on the grid the positions refer to.
    ground_truth_patches : ndarray, shape (n, N, N), complex64, optional
        Object patches at each scan position (Supervised training, evaluation).
    scan_index : ndarray, shape (n,), int64
        Ptychodus scan index of each pattern.
    metadata : ScanMetadata
        Quantity, photon count, object geometry.
    """

    diffraction_amplitude: np.ndarray
    positions_px: np.ndarray
    probe: np.ndarray
    object_guess: np.ndarray | None = None
    ground_truth_patches: np.ndarray | None = None
    scan_index: np.ndarray | None = None
    metadata: ScanMetadata = field(default_factory=ScanMetadata)

    def __post_init__(self) -> None:
        amplitude = np.asarray(self.diffraction_amplitude)
        _check_real_finite(amplitude, 'diffraction amplitudes')
        if amplitude.ndim != 3:
            raise DataContractError(
                f'diffraction amplitudes must have shape (n, N, N), got {amplitude.shape}'
            )
        num_patterns, height, width = amplitude.shape
        if num_patterns == 0:
            raise DataContractError('the dataset is empty: it holds no diffraction patterns')
        if height != width:
            raise DataContractError(
                f'diffraction patterns must be square, got {height} x {width}; '
                'crop them to a square (power-of-two) size in Ptychodus before exporting'
            )
        if float(amplitude.min()) < 0:
            raise DataContractError(
                f'diffraction amplitudes must be non-negative, smallest is {amplitude.min():g}'
            )
        if not np.any(amplitude):
            raise DataContractError(
                f'all {num_patterns} diffraction patterns are zero: there is nothing to fit or '
                'reconstruct; check the detector data (dark frames, a wrong HDF5 dataset, or a '
                'crop that misses the beam)'
            )
        _warn_zero_patterns(amplitude)
        object.__setattr__(self, 'diffraction_amplitude', amplitude.astype(np.float32, copy=False))

        positions = np.asarray(self.positions_px)
        _check_real_finite(positions, 'scan positions')
        if positions.ndim != 2 or positions.shape[1] != 2:
            raise DataContractError(f'positions must have shape (n, 2), got {positions.shape}')
        if positions.shape[0] != num_patterns:
            raise DataContractError(
                f'{num_patterns} diffraction patterns but {positions.shape[0]} scan positions; '
                'each pattern needs exactly one position (check the scan index pairing)'
            )
        _check_duplicate_positions(positions)
        object.__setattr__(self, 'positions_px', positions.astype(np.float64, copy=False))

        object.__setattr__(self, 'probe', _check_probe(self.probe, height))

        if self.object_guess is not None:
            guess = _numeric(self.object_guess, 'object guess')
            if guess.ndim != 2 or not np.all(np.isfinite(guess)):
                raise DataContractError(
                    f'object guess must be a finite 2-D array, got shape {guess.shape}'
                )
            object.__setattr__(self, 'object_guess', guess.astype(np.complex64, copy=False))

        if self.ground_truth_patches is not None:
            truth = _numeric(self.ground_truth_patches, 'ground-truth patches')
            if truth.shape != amplitude.shape or not np.all(np.isfinite(truth)):
                raise DataContractError(
                    f'ground-truth patches must be finite with shape {amplitude.shape} '
                    f'(one N x N patch per pattern), got {truth.shape}'
                )
            object.__setattr__(self, 'ground_truth_patches', truth.astype(np.complex64, copy=False))

        if self.scan_index is None:
            index = np.arange(num_patterns, dtype=np.int64)
        else:
            index = np.asarray(self.scan_index)
            if index.shape != (num_patterns,) or not np.issubdtype(index.dtype, np.integer):
                raise DataContractError(
                    f'scan_index must be {num_patterns} integers, got {index.dtype} {index.shape}'
                )
        object.__setattr__(self, 'scan_index', index.astype(np.int64, copy=False))

    @property
    def num_patterns(self) -> int:
        return int(self.diffraction_amplitude.shape[0])

    @property
    def pattern_size_px(self) -> int:
        return int(self.diffraction_amplitude.shape[-1])

    @property
    def has_ground_truth(self) -> bool:
        return self.ground_truth_patches is not None

    def mean_total_counts(self) -> float:
        """Mean over patterns of the summed squared amplitude (photons per pattern for counts)."""
        amplitude = self.diffraction_amplitude.astype(np.float64)
        return float(np.mean(np.sum(amplitude**2, axis=(1, 2))))

    def subset(self, indices: np.ndarray) -> TrainingData:
        """The patterns at ``indices`` (positions, truth and scan index follow)."""
        indices = np.asarray(indices)
        truth = self.ground_truth_patches
        return replace(
            self,
            diffraction_amplitude=self.diffraction_amplitude[indices],
            positions_px=self.positions_px[indices],
            ground_truth_patches=None if truth is None else truth[indices],
            scan_index=self.scan_index[indices] if self.scan_index is not None else None,
        )


DUPLICATE_DECIMALS = 3
"""Positions equal after rounding to this many decimals (a thousandth of a pixel) are duplicates."""


def _numeric(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise DataContractError(f'{what} must be a numeric array, got dtype {array.dtype}')
    return array


def _warn_zero_patterns(amplitude: np.ndarray) -> None:
    """Warn when some (not all) patterns are zero: they carry no information but do no harm."""
    empty = ~np.any(amplitude.reshape(amplitude.shape[0], -1), axis=1)
    num_empty = int(np.count_nonzero(empty))
    if num_empty:
        first = np.flatnonzero(empty)[:5].tolist()
        logger.warning(
            '%d of %d diffraction patterns are zero everywhere (first at index %s); they carry no '
            'information (dark frames or missed triggers?) and are kept as measured',
            num_empty,
            amplitude.shape[0],
            first,
        )


def _check_duplicate_positions(positions: np.ndarray) -> None:
    """Refuse a scan whose positions are all identical; warn about repeated positions.

    Repeated positions happen in real scans (a revisited point, a stalled stage) and are harmless
    to the model: they are warned about. When every position is the same, the positions were not
    read (all zero, or a constant motor record), which is an error.
    """
    num_points = positions.shape[0]
    if num_points < 2:
        return
    rounded = np.round(positions, DUPLICATE_DECIMALS)
    num_unique = np.unique(rounded, axis=0).shape[0]
    if num_unique == 1:
        raise DataContractError(
            f'all {num_points} scan positions are the same point ({positions[0, 0]:g}, '
            f'{positions[0, 1]:g}) px; the positions were probably not loaded (check the position '
            "file or the product's probe positions)"
        )
    if num_unique < num_points:
        logger.warning(
            '%d of %d scan positions repeat an earlier position (within %g px); kept as measured. '
            'If the scan did not revisit points, check the position data',
            num_points - num_unique,
            num_points,
            10.0**-DUPLICATE_DECIMALS,
        )


def _check_probe(probe: np.ndarray, pattern_size_px: int) -> np.ndarray:
    probe = np.asarray(probe)
    if probe.dtype == object or not np.issubdtype(probe.dtype, np.number):
        raise DataContractError(f'probe must be a numeric array, got dtype {probe.dtype}')
    if probe.ndim != 2:
        raise DataContractError(
            f'probe must be one 2-D mode of shape ({pattern_size_px}, {pattern_size_px}), got '
            f'shape {probe.shape}; pass mode 0 of a mode stack (the reader does this for NPZ files)'
        )
    if probe.shape != (pattern_size_px, pattern_size_px):
        raise DataContractError(
            f'probe shape {probe.shape} does not match the {pattern_size_px} x {pattern_size_px} '
            'diffraction patterns; the probe must be on the object grid with the pattern size'
        )
    if not np.all(np.isfinite(probe)):
        raise DataContractError('probe contains NaN or infinite values')
    if not np.any(probe):
        raise DataContractError('probe is zero everywhere')
    return probe.astype(np.complex64, copy=False)


def write_training_data(path: Path | str, data: TrainingData, *, overwrite: bool = False) -> Path:
    """Write ``data`` as a contract NPZ file, atomically.

    The file is written to a temporary name in the target directory and renamed into place, so an
    existing file is either replaced whole or left untouched. Without ``overwrite`` an existing file
    is an error.
    """
    path = Path(path)
    if path.suffix != '.npz':
        raise DataContractError(f'contract files end in .npz, got {path.name!r}')
    if path.exists() and not overwrite:
        raise FileExistsError(f'{path} exists; choose another name or pass overwrite=True')
    arrays: dict[ContractKey, np.ndarray] = {
        ContractKey.X_PX: data.positions_px[:, 0],
        ContractKey.Y_PX: data.positions_px[:, 1],
        ContractKey.X_START_PX: data.positions_px[:, 0],
        ContractKey.Y_START_PX: data.positions_px[:, 1],
        ContractKey.DIFFRACTION: data.diffraction_amplitude,
        ContractKey.PROBE: data.probe,
        ContractKey.SCAN_INDEX: np.asarray(data.scan_index, np.int64),  # set by __post_init__
        ContractKey.METADATA: np.array(data.metadata.to_json()),
    }
    if data.object_guess is not None:
        arrays[ContractKey.OBJECT] = data.object_guess
    if data.ground_truth_patches is not None:
        arrays[ContractKey.GROUND_TRUTH_PATCHES] = data.ground_truth_patches
    with atomic_output(path) as temporary, open(temporary, 'wb') as stream:
        members = {str(key): value for key, value in arrays.items()}
        np.savez(stream, **members)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    return path


def _physical_memory_bytes() -> int | None:
    """Physical memory of this machine, or None where the OS does not say."""
    try:
        return int(os.sysconf('SC_PAGE_SIZE')) * int(os.sysconf('SC_PHYS_PAGES'))
    except (ValueError, OSError, AttributeError):
        return None


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an NPZ file, without pickle; every failure is a :class:`DataContractError`."""
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
            memory = _physical_memory_bytes()
            if memory is not None and total > memory:
                raise DataContractError(
                    f'{path} declares {total} bytes of arrays, more than the {memory} bytes of '
                    'memory of this machine; split the scan into several files'
                )
            for info in archive.infolist():
                if exceeds_declared_limits(
                    info, max_bytes=MAX_MEMBER_BYTES, max_ratio=MAX_COMPRESSION_RATIO_DATA
                ):
                    raise DataContractError(
                        f'{path}: member {info.filename!r} declares {info.file_size} bytes from '
                        f'{info.compress_size} compressed; refusing to decompress it (at most '
                        f'{MAX_MEMBER_BYTES} bytes and a ratio of {MAX_COMPRESSION_RATIO_DATA})'
                    )
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except DataContractError:
        raise
    except zipfile.BadZipFile as exc:
        raise DataContractError(
            f'{path} is not an NPZ (zip) file or is truncated ({exc}); write it with numpy.savez'
        ) from exc
    except ValueError as exc:
        if 'pickle' in str(exc):
            raise DataContractError(
                f'{path} holds an array that needs pickle to load (object dtype); store plain '
                f'numeric arrays: {exc}'
            ) from exc
        raise DataContractError(
            f'{path} holds a member that is not a valid NumPy array ({exc}); write it with '
            'numpy.savez'
        ) from exc
    except (OSError, EOFError, zlib.error, NotImplementedError, KeyError) as exc:
        raise DataContractError(f'cannot read {path}: {type(exc).__name__}: {exc}') from exc
    except MemoryError:
        raise
    except Exception as exc:
        # NumPy parses a .npy header as a Python literal: a damaged header raises SyntaxError,
        # tokenize.TokenError, TypeError, ... Each means the same thing here.
        raise DataContractError(
            f'{path} holds a member whose NumPy header is damaged ({type(exc).__name__}: {exc}); '
            'the file is corrupt, write it again with numpy.savez'
        ) from exc


def read_training_data(
    path: Path | str, *, quantity: DiffractionQuantity | None = None
) -> TrainingData:
    """Read a contract NPZ, a PtychoPINN NPZ or a Ptychodus export into :class:`TrainingData`.

    Parameters
    ----------
    path : path of the ``.npz`` file.
    quantity : what ``diff3d`` holds, when the file does not say. Files written by
        :func:`write_training_data` say so in their metadata; Ptychodus exports (recognised by their
        ``bad_pixels`` array) hold counts; otherwise the quantity is inferred from the values and a
        warning says what was assumed.
    """
    path = Path(path)
    arrays = _load_npz(path)
    _check_required_keys(arrays, path)
    metadata, declared = _stored_metadata(arrays, path)
    diffraction = _diffraction(arrays, path)
    declared = _diffraction_quantity(diffraction, declared, quantity, arrays, path)
    amplitude, metadata = _as_amplitude(diffraction, declared, metadata, path)
    probe, metadata = _probe_mode_zero(arrays[ContractKey.PROBE], metadata, path)
    if str(ContractKey.BAD_PIXELS) in arrays:
        metadata = replace(
            metadata, num_bad_pixels=int(np.count_nonzero(arrays[ContractKey.BAD_PIXELS]))
        )
    return TrainingData(
        diffraction_amplitude=amplitude,
        positions_px=_positions_px(arrays, path),
        probe=probe,
        object_guess=arrays.get(ContractKey.OBJECT),
        ground_truth_patches=arrays.get(ContractKey.GROUND_TRUTH_PATCHES),
        scan_index=arrays.get(ContractKey.SCAN_INDEX),
        metadata=metadata,
    )


# --- reading, step by step: loading, then conversion, each with its checks ----------------------


def _check_required_keys(arrays: dict[str, np.ndarray], path: Path) -> None:
    missing = [str(key) for key in REQUIRED_KEYS if str(key) not in arrays]
    if missing:
        present = ', '.join(sorted(arrays)) or 'none'
        raise DataContractError(
            f'{path} lacks required arrays {missing} (present: {present}); a contract file needs '
            f'{[str(k) for k in REQUIRED_KEYS]}'
        )


def _stored_metadata(
    arrays: dict[str, np.ndarray], path: Path
) -> tuple[ScanMetadata, DiffractionQuantity | None]:
    """The file's metadata and the quantity it declares (our writer always stores amplitude)."""
    if str(ContractKey.METADATA) in arrays:
        metadata = ScanMetadata.from_json(str(arrays[ContractKey.METADATA]))
        return metadata, DiffractionQuantity.AMPLITUDE
    return ScanMetadata(source=str(path)), None


def _diffraction(arrays: dict[str, np.ndarray], path: Path) -> np.ndarray:
    diffraction = arrays[ContractKey.DIFFRACTION]
    _check_real_finite(diffraction, f'{path}: diff3d')
    if diffraction.ndim != 3 or diffraction.shape[0] == 0:
        raise DataContractError(
            f'{path}: diff3d must be a non-empty stack of patterns of shape (n, N, N), got '
            f'{diffraction.shape}'
        )
    return diffraction


def _diffraction_quantity(
    diffraction: np.ndarray,
    declared: DiffractionQuantity | None,
    requested: DiffractionQuantity | None,
    arrays: dict[str, np.ndarray],
    path: Path,
) -> DiffractionQuantity:
    """What ``diff3d`` holds: declared by the file, else requested, else recognised or inferred."""
    if declared is not None and requested is not None and requested != declared:
        raise DataContractError(
            f'{path} declares diff3d as {declared} but {requested} was requested; '
            'drop the quantity argument for files written by ptychopinn-plugin'
        )
    if declared is None:
        declared = requested
    if declared is None and str(ContractKey.BAD_PIXELS) in arrays:
        declared = DiffractionQuantity.COUNTS
        logger.info('%s looks like a Ptychodus export: treating diff3d as detector counts', path)
    if declared is None:
        declared = _infer_quantity(diffraction)
        logger.warning(
            '%s does not say whether diff3d holds counts or amplitude; assuming %s from its '
            'values. Pass quantity= to state it.',
            path,
            declared,
        )
    _check_quantity_plausible(diffraction, declared, path)
    if declared is DiffractionQuantity.COUNTS and _integer_fraction(diffraction) < 0.5:
        logger.warning(
            '%s: diff3d is treated as detector counts but most values are not integers; if it '
            "holds amplitudes (square roots of counts), read it with quantity='amplitude', or the "
            'square root is taken twice',
            path,
        )
    return declared


def _as_amplitude(
    diffraction: np.ndarray, quantity: DiffractionQuantity, metadata: ScanMetadata, path: Path
) -> tuple[np.ndarray, ScanMetadata]:
    """Amplitudes, and the metadata recording counts and their dose when converted from counts."""
    if quantity is not DiffractionQuantity.COUNTS:
        return diffraction, metadata
    amplitude = amplitude_from_counts(diffraction)
    metadata = replace(
        metadata,
        source_quantity=DiffractionQuantity.COUNTS,
        num_photons=float(np.mean(np.sum(diffraction.astype(np.float64), axis=(1, 2)))),
    )
    logger.info('converted detector counts to amplitude (square root) for %s', path)
    return amplitude, metadata


def _probe_mode_zero(
    probe: np.ndarray, metadata: ScanMetadata, path: Path
) -> tuple[np.ndarray, ScanMetadata]:
    """Mode 0 of a probe-mode stack (the number dropped recorded); a 2-D probe as it is."""
    if probe.ndim <= 2:
        return probe, metadata
    if probe.size == 0:
        raise DataContractError(f'{path}: probeGuess is empty, shape {probe.shape}')
    modes = int(np.prod(probe.shape[:-2]))
    logger.info('%s: probe is a stack of %d modes; using mode 0', path, modes)
    probe = probe.reshape(-1, *probe.shape[-2:])[0]
    return probe, replace(metadata, probe_modes_dropped=modes - 1)


def _positions_px(arrays: dict[str, np.ndarray], path: Path) -> np.ndarray:
    x_px, y_px = arrays[ContractKey.X_PX], arrays[ContractKey.Y_PX]
    _check_real_finite(x_px, f'{path}: xcoords')
    _check_real_finite(y_px, f'{path}: ycoords')
    if np.shape(x_px) != np.shape(y_px) or np.ndim(x_px) != 1:
        raise DataContractError(
            f'{path}: xcoords and ycoords must be 1-D of equal length, got '
            f'{np.shape(x_px)} and {np.shape(y_px)}'
        )
    return np.stack([x_px, y_px], axis=1)


def _integer_fraction(values: np.ndarray) -> float:
    sample = values.ravel()[:: max(1, values.size // 200_000)]
    nonzero = sample[sample != 0]
    if nonzero.size == 0:
        return 1.0
    return float(np.mean(np.abs(nonzero - np.round(nonzero)) < 1e-6))


def _infer_quantity(values: np.ndarray) -> DiffractionQuantity:
    """Counts are integers; amplitudes of counts are mostly irrational."""
    if _integer_fraction(values) > 0.99:
        return DiffractionQuantity.COUNTS
    return DiffractionQuantity.AMPLITUDE


def _check_quantity_plausible(
    values: np.ndarray, quantity: DiffractionQuantity, path: Path | str
) -> None:
    if quantity is not DiffractionQuantity.AMPLITUDE:
        return
    sample = values.ravel()[:: max(1, values.size // 200_000)]
    nonzero = sample[sample != 0]
    if nonzero.size < 100 or float(nonzero.max()) <= 1.0:
        return
    integers = np.abs(nonzero - np.round(nonzero)) < 1e-6
    perfect_squares = np.abs(np.sqrt(np.abs(nonzero)) - np.round(np.sqrt(np.abs(nonzero)))) < 1e-6
    if np.mean(integers) > 0.99 and np.mean(perfect_squares) < 0.5:
        raise DataContractError(
            f'{path}: diff3d is declared as amplitude but holds integers that are mostly not '
            'perfect squares, which is what detector counts (intensity) look like. Declare '
            "quantity='counts' (the square root is taken for you) or store sqrt(counts)."
        )
