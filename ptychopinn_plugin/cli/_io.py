"""Files the ``ptychopinn`` command reads and writes besides archives and contract NPZ files.

A *scan* is a contract NPZ file or a Ptychodus standard workflow directory (``product.h5`` and
``diffraction.h5``, paired by scan index exactly as Ptychodus pairs them for a reconstructor). An
*object file* is what ``reconstruct`` writes (``object.npz``), a contract NPZ (its
``objectGuess``), or a Ptychodus product (``.h5``). Ptychodus files are read and written with
Ptychodus's own readers and writers; the conversion from and to the contract is
``core.translate``. Ptychodus is imported only when a Ptychodus file is touched.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.contract import ContractKey, DiffractionQuantity, TrainingData, read_training_data
from ..errors import DataContractError
from ._common import atomic_output

__all__ = [
    'ObjectFile',
    'Scan',
    'is_workflow_directory',
    'load_object_file',
    'load_scan',
    'object_shape_for',
    'write_figures',
    'write_object_npz',
    'write_product',
    'write_workflow_directory',
]

PRODUCT_FILE = 'product.h5'
DIFFRACTION_FILE = 'diffraction.h5'
SETTINGS_FILE = 'settings.ini'
OBJECT_KEY = 'object'
"""Key of the reconstructed object in the NPZ ``reconstruct`` writes."""


@dataclass(frozen=True, eq=False)
class Scan:
    """A scan read from disk: contract data, and the Ptychodus product when it came from one."""

    data: TrainingData
    product: Any | None
    """``ptychodus.api.product.Product`` for a workflow directory, else None."""
    source: Path


def is_workflow_directory(path: Path) -> bool:
    """True for a directory holding ``product.h5`` and ``diffraction.h5``."""
    return (path / PRODUCT_FILE).is_file() and (path / DIFFRACTION_FILE).is_file()


def load_scan(path: Path) -> Scan:
    """Read a contract NPZ file or a Ptychodus workflow directory.

    Raises
    ------
    DataContractError
        For a path that is neither, or files that cannot be read.
    """
    path = Path(path)
    if path.is_file() and path.suffix == '.npz':
        return Scan(read_training_data(path), None, path)
    if path.is_dir() and is_workflow_directory(path):
        return _load_workflow_directory(path)
    if not path.exists():
        raise DataContractError(f'no such file or directory: {path}')
    raise DataContractError(
        f'{path} is neither a contract NPZ file (.npz) nor a Ptychodus workflow directory '
        f'holding {PRODUCT_FILE} and {DIFFRACTION_FILE}; give one of those (ptychopinn convert '
        'turns one into the other)'
    )


def _load_workflow_directory(directory: Path) -> Scan:
    from dataclasses import replace

    from ptychodus.api.io import load_diffraction_data, load_product
    from ptychodus.api.reconstruct import prepare_reconstruct_input

    from ..core.translate import training_data_from_reconstruct_input

    try:
        product = load_product(directory / PRODUCT_FILE)
        assembled = load_diffraction_data(directory / DIFFRACTION_FILE)
        parameters = prepare_reconstruct_input(assembled, product)
    except (OSError, KeyError, ValueError) as exc:
        raise DataContractError(
            f'cannot read the Ptychodus workflow files in {directory}: {exc}; check that '
            f'{PRODUCT_FILE} and {DIFFRACTION_FILE} were written by Ptychodus'
        ) from exc
    data = training_data_from_reconstruct_input(parameters)
    metadata = replace(data.metadata, source=f'{directory} ({product.metadata.name!r})')
    return Scan(replace(data, metadata=metadata), parameters.product, directory)


def object_shape_for(data: TrainingData) -> tuple[int, int]:
    """The object grid of a scan: its object's shape, else the smallest grid holding every patch."""
    if data.object_guess is not None:
        return data.object_guess.shape
    half = (data.pattern_size_px - 1) / 2 + 1
    width = math.ceil(float(np.max(data.positions_px[:, 0])) + half) + 1
    height = math.ceil(float(np.max(data.positions_px[:, 1])) + half) + 1
    return height, width


# --- contract -> Ptychodus -------------------------------------------------------------------


def product_from_data(data: TrainingData, object_: np.ndarray, name: str):
    """A far-field Ptychodus ``Product`` for contract data, with ``object_`` as its object.

    The object pixel size comes from the metadata when known, else from a default far-field
    geometry (10 keV, 2 m, 75 um detector pixels); the detector distance is chosen so that
    Ptychodus's far-field relation reproduces that pixel size. Positions round-trip exactly.
    """
    from ptychodus.api.constants import energy_eV_to_wavelength_m

    from ..core import translate

    n_px = data.pattern_size_px
    wavelength_m = energy_eV_to_wavelength_m(translate.DEFAULT_PHOTON_ENERGY_EV)
    pixel_size_m = data.metadata.object_pixel_width_m or translate.far_field_object_pixel_size_m(
        n_px, wavelength_m=wavelength_m
    )
    distance_m = pixel_size_m * n_px * translate.DEFAULT_DETECTOR_PIXEL_SIZE_M / wavelength_m
    return translate.make_product(
        object_,
        data.probe,
        data.positions_px,
        pixel_size_m=pixel_size_m,
        wavelength_m=wavelength_m,
        detector_distance_m=distance_m,
        name=name,
    )


def write_product(path: Path, product) -> Path:
    """Write a Ptychodus product file with Ptychodus's writer, atomically."""
    from ptychodus.api.io import save_product

    with atomic_output(path) as temporary:
        save_product(temporary, product)
    return path


def write_workflow_directory(
    directory: Path,
    data: TrainingData,
    *,
    object_: np.ndarray,
    settings: dict[str, dict[str, object]] | None,
    name: str,
) -> list[Path]:
    """Write contract data as a Ptychodus workflow directory; returns the files written.

    ``diffraction.h5`` holds counts (the squared amplitudes; for amplitude data of unknown dose
    these are relative counts), ``product.h5`` the probe, positions and ``object_``, and
    ``settings.ini`` (when ``settings`` is given) the Ptychodus settings.
    """
    from ptychodus.api.assemble import AssembledDiffractionData
    from ptychodus.api.geometry import PixelGeometry
    from ptychodus.api.io import save_diffraction_data

    from ..core import translate
    from ..ptychodus_adapter.workflow_dir import write_settings

    product = product_from_data(data, object_, name)
    counts = np.square(data.diffraction_amplitude.astype(np.float64))
    if data.metadata.source_quantity is DiffractionQuantity.COUNTS:
        counts = np.rint(counts)  # sqrt then square: undo float32 rounding of integer counts
    detector_px = translate.DEFAULT_DETECTOR_PIXEL_SIZE_M
    assembled = AssembledDiffractionData(
        indexes=np.asarray(data.scan_index, dtype=np.intp),
        patterns=counts,
        pixel_geometry=PixelGeometry(width_m=detector_px, height_m=detector_px),
        bad_pixels=np.zeros(counts.shape[1:], dtype=bool),
    )
    directory.mkdir(parents=True, exist_ok=True)
    written = [write_product(directory / PRODUCT_FILE, product)]
    with atomic_output(directory / DIFFRACTION_FILE) as temporary:
        save_diffraction_data(temporary, assembled)
    written.append(directory / DIFFRACTION_FILE)
    if settings is not None:
        with atomic_output(directory / SETTINGS_FILE) as temporary:
            write_settings(temporary, settings)
        written.append(directory / SETTINGS_FILE)
    return written


# --- objects ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ObjectFile:
    """A complex object read from disk and, when known, the scan that covers it."""

    object_: np.ndarray
    """(H, W) complex object."""
    positions_px: np.ndarray | None
    """(n, 2) scan positions (x, y) in object pixels, when the file carries them."""
    pattern_size_px: int | None
    stitch_crop_px: int | None


def write_object_npz(
    path: Path,
    object_: np.ndarray,
    *,
    coverage: np.ndarray | None,
    positions_px: np.ndarray,
    pattern_size_px: int,
    stitch_crop_px: int,
    info: dict[str, Any],
) -> Path:
    """Write a reconstructed object with its coverage, positions and provenance, atomically."""
    arrays: dict[str, np.ndarray] = {
        OBJECT_KEY: np.asarray(object_, np.complex64),
        'positions_px': np.asarray(positions_px, np.float64),
        'pattern_size_px': np.array(pattern_size_px),
        'stitch_crop_px': np.array(stitch_crop_px),
        'info_json': np.array(json.dumps(info, sort_keys=True)),
    }
    if coverage is not None:
        arrays['coverage'] = np.asarray(coverage, np.float32)
    with atomic_output(path) as temporary:
        with temporary.open('wb') as stream:
            np.savez(stream, **arrays)
    return path


def load_object_file(path: Path) -> ObjectFile:
    """Read an object from ``object.npz``, a contract NPZ (``objectGuess``) or a product ``.h5``."""
    path = Path(path)
    if not path.is_file():
        raise DataContractError(f'no such file: {path}')
    if path.suffix == '.npz':
        try:
            with np.load(path, allow_pickle=False) as npz:
                names = set(npz.files)
                if OBJECT_KEY in names:
                    return ObjectFile(
                        object_=npz[OBJECT_KEY],
                        positions_px=npz['positions_px'] if 'positions_px' in names else None,
                        pattern_size_px=_scalar(npz, 'pattern_size_px'),
                        stitch_crop_px=_scalar(npz, 'stitch_crop_px'),
                    )
        except (OSError, ValueError) as exc:
            raise DataContractError(f'{path} is not a readable NPZ file: {exc}') from exc
        if str(ContractKey.OBJECT) not in names:
            raise DataContractError(
                f'{path} holds no object: expected an {OBJECT_KEY!r} array (ptychopinn '
                f'reconstruct) or {ContractKey.OBJECT.value!r} (a contract file); found '
                f'{sorted(names)[:8]}'
            )
        data = read_training_data(path)
        return ObjectFile(data.object_guess, data.positions_px, data.pattern_size_px, None)
    if path.suffix in ('.h5', '.hdf5'):
        return _load_product_object(path)
    raise DataContractError(
        f'{path}: unknown object file type {path.suffix!r}; give object.npz from ptychopinn '
        'reconstruct, a contract .npz with objectGuess, or a Ptychodus product .h5'
    )


def _scalar(npz, key: str) -> int | None:
    return int(npz[key]) if key in npz.files else None


def _load_product_object(path: Path) -> ObjectFile:
    from ptychodus.api.io import load_product

    try:
        product = load_product(path)
    except (OSError, KeyError, ValueError) as exc:
        raise DataContractError(f'cannot read the Ptychodus product {path}: {exc}') from exc
    object_ = product.object_
    geometry = object_.get_geometry()
    positions = product.probe_positions
    positions_px = np.stack(
        [
            geometry.map_probe_positions_to_object_x_px(positions),
            geometry.map_probe_positions_to_object_y_px(positions),
        ],
        axis=1,
    )
    return ObjectFile(object_.get_layer(0), positions_px, product.probes.width_px, None)


def write_figures(directory: Path, object_: np.ndarray, stem: str = '') -> list[Path]:
    """PNG images of the amplitude and the phase of ``object_``; [] without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return []
    written = []
    for part, image, cmap in (
        ('amplitude', np.abs(object_), 'gray'),
        ('phase', np.angle(object_), 'twilight'),
    ):
        figure = Figure(figsize=(5, 5 * object_.shape[0] / object_.shape[1] + 0.4), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        shown = axes.imshow(image, cmap=cmap)
        figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04, label=part)
        axes.set_title(f'{stem}{part}')
        axes.set_axis_off()
        figure.tight_layout()
        path = directory / f'{part}.png'
        with atomic_output(path) as temporary:
            figure.savefig(temporary, format='png')
        written.append(path)
    return written
