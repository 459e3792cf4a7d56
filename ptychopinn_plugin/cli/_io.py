"""Files the ``ptychopinn`` command reads and writes besides archives and contract NPZ files.

A *scan* is a contract NPZ file or a Ptychodus standard workflow directory (``product.h5`` and
``diffraction.h5``, paired by scan index exactly as Ptychodus pairs them for a reconstructor). An
*object file* is what ``reconstruct`` writes (``object.npz``), a contract NPZ (its
``objectGuess``), or a Ptychodus product (``.h5``). Ptychodus files are read and written with
Ptychodus's own readers and writers, through ``ptychodus_io`` (the package the reconstructor
uses too). Ptychodus is imported only when a Ptychodus file is touched.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.contract import ContractKey, TrainingData, read_training_data
from ..errors import DataContractError
from ..ptychodus_io.layout import (
    DIFFRACTION_FILE,
    PRODUCT_FILE,
    is_workflow_directory,
    product_file,
)
from ._common import atomic_output

__all__ = [
    'ObjectFile',
    'Scan',
    'load_object_file',
    'load_scan',
    'object_shape_for',
    'write_consistency_figure',
    'write_figures',
    'write_object_npz',
]

OBJECT_KEY = 'object'
"""Key of the reconstructed object in the NPZ ``reconstruct`` writes."""


@dataclass(frozen=True, eq=False)
class Scan:
    """A scan read from disk: contract data, and the Ptychodus product when it came from one."""

    data: TrainingData
    product: Any | None
    """``ptychodus.api.product.Product`` for a workflow directory, else None."""
    source: Path


def load_scan(path: Path) -> Scan:
    """Read a contract NPZ file or a Ptychodus workflow directory.

    A workflow directory holds ``diffraction.h5`` and ``product.h5``, or instead of the latter the
    ``product.NNNNNN.h5`` files of a Ptychodus batch reconstruction (the latest is read).

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
    if path.is_dir() and product_file(path) is not None:
        raise DataContractError(
            f'{path} holds a product ({product_file(path).name}) but no {DIFFRACTION_FILE}: it '
            'looks like the output of a Ptychodus batch reconstruction; copy the diffraction.h5 '
            'of its input directory beside it'
        )
    raise DataContractError(
        f'{path} is neither a contract NPZ file (.npz) nor a Ptychodus workflow directory '
        f'holding {PRODUCT_FILE} and {DIFFRACTION_FILE}; give one of those (ptychopinn convert '
        'turns one into the other)'
    )


def _load_workflow_directory(directory: Path) -> Scan:
    from ..ptychodus_io.workflow_dir import read_workflow_directory

    read = read_workflow_directory(directory)
    return Scan(read.data, read.product, directory)


def object_shape_for(data: TrainingData) -> tuple[int, int]:
    """The object grid of a scan: its object's shape, else the smallest grid holding every patch."""
    if data.object_guess is not None:
        return data.object_guess.shape
    half = (data.pattern_size_px - 1) / 2 + 1
    width = math.ceil(float(np.max(data.positions_px[:, 0])) + half) + 1
    height = math.ceil(float(np.max(data.positions_px[:, 1])) + half) + 1
    return height, width


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
    from ..ptychodus_io.inputs import positions_in_object_px
    from ..ptychodus_io.products import read_product

    product = read_product(path)
    object_ = product.object_
    positions_px = positions_in_object_px(object_.get_geometry(), product.probe_positions)
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


def write_consistency_figure(
    path: Path, consistency: Any, object_shape: tuple[int, int]
) -> Path | None:
    """A map of each pattern's misfit over Poisson noise at its scan position; None without
    matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import LogNorm
        from matplotlib.figure import Figure
    except ImportError:
        return None
    height, width = object_shape
    figure = Figure(figsize=(5.5, 5 * height / width + 0.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    ratio = np.clip(consistency.noise_ratio, 1e-2, None)
    x, y = consistency.positions_px.T
    shown = axes.scatter(x, y, c=ratio, s=12, cmap='magma', norm=LogNorm())
    figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04, label='misfit / Poisson noise')
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)
    axes.set_aspect('equal')
    axes.set_title(
        f'data consistency: median {consistency.median_noise_ratio:.2f} x noise, '
        f'R {consistency.median_r_factor:.3f}',
        fontsize=9,
    )
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format='png')
    return path
