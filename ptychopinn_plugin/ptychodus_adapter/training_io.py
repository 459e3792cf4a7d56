"""What ``train(input_path, output_path)`` reads and writes besides the model archive.

Inputs: a directory of contract NPZ files (``train_data.npz`` first, then every other ``*.npz``,
all used), a single NPZ file, or a Ptychodus standard workflow directory (``product.h5`` and
``diffraction.h5``, no NPZ), which is read with Ptychodus's own readers and paired by scan index
exactly as Ptychodus pairs them for a reconstructor (``ptychodus_io.workflow_dir``).

Ground truth (Supervised mode and the real-space loss terms): patches are cut from the object the
data carry (``objectGuess`` / the product's object) only when that object is informative, that is
neither flat (Ptychodus's default initial guess is a constant) nor white noise (the ``Random``
builder with a deviation); otherwise :class:`DataContractError` explains what to provide.

Outputs: the loss history as CSV and a PNG of the loss curves. The reconstructor is in
``reconstructor.py``.
"""

from __future__ import annotations

import csv
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from ptychodus.api.io import StandardFileLayout

from ..core.contract import TrainingData, read_training_data
from ..core.files import atomic_output
from ..core.protocol import EpochReport
from ..core.stitching import extract_patches
from ..errors import DataContractError, ReconstructionError
from ..ptychodus_io.layout import DIFFRACTION_FILE, PRODUCT_FILE, is_workflow_directory
from ..ptychodus_io.workflow_dir import read_workflow_directory

logger = logging.getLogger(__name__)

__all__ = [
    'LOSS_CSV',
    'LOSS_PNG',
    'MODEL_FILE',
    'TRAIN_FILE',
    'check_output_directory',
    'is_informative_object',
    'read_training_inputs',
    'with_ground_truth',
    'write_loss_csv',
    'write_loss_png',
]

MODEL_FILE = f'{StandardFileLayout.MODEL_BASENAME}.zip'
"""Name of the trained model in the output directory (what batch reconstruct looks for)."""
TRAIN_FILE = 'train_data.npz'
LOSS_CSV = 'loss_history.csv'
LOSS_PNG = 'loss_curves.png'

FLAT_RELATIVE_STD = 1e-3
"""An object whose amplitude varies by less than this (relative) and whose phase varies by less
than this (radians) over the scanned region is treated as a flat initial guess."""
NOISE_CORRELATION = 0.2
"""Neighbouring pixels of a real object are strongly correlated (typically > 0.8); white noise
gives about 0. Below this lag-one correlation in both amplitude and phase the object is noise."""


def read_training_inputs(input_path: Path) -> list[TrainingData]:
    """The training datasets found at ``input_path`` (see the module docstring)."""
    input_path = Path(input_path)
    if input_path.is_file():
        if input_path.suffix != '.npz':
            raise DataContractError(
                f'{input_path} is not an NPZ file; train from contract NPZ files or a Ptychodus '
                'workflow directory (product.h5 and diffraction.h5)'
            )
        logger.info('training data: %s', input_path)
        return [read_training_data(input_path)]
    if not input_path.is_dir():
        raise DataContractError(f'training input {input_path} does not exist')
    npz_files = sorted(input_path.glob('*.npz'), key=lambda p: (p.name != TRAIN_FILE, p.name))
    if npz_files:
        logger.info('training data: %s', ', '.join(p.name for p in npz_files))
        return [read_training_data(path) for path in npz_files]
    if is_workflow_directory(input_path):
        logger.info('training data: Ptychodus workflow directory %s', input_path)
        return [read_workflow_directory(input_path).data]
    raise DataContractError(
        f'no training data in {input_path}: expected contract NPZ files (train_data.npz, '
        f'test_data.npz or any *.npz, e.g. from Export Training Data) or a Ptychodus workflow '
        f'directory with {PRODUCT_FILE} and {DIFFRACTION_FILE}'
    )


def is_informative_object(data: TrainingData) -> bool:
    """True when the data's object looks like a real object rather than an initial guess.

    Flat objects (relative amplitude and phase spread below :data:`FLAT_RELATIVE_STD` over the
    scanned region) and white noise (lag-one correlation below :data:`NOISE_CORRELATION`) are not.
    A smooth random guess (Ptychodus's ``Random`` builder with blur) cannot be told from a real
    object and is accepted: the user states that the object is the truth by training Supervised.
    """
    object_ = data.object_guess
    if object_ is None:
        return False
    region = _scanned_box(object_, data.positions_px, data.pattern_size_px)
    amplitude = np.abs(region).astype(np.float64)
    mean_amplitude = float(np.mean(amplitude))
    if mean_amplitude <= 0:
        return False
    phase = np.angle(region * np.exp(-1j * np.angle(np.mean(region))))
    flat = (
        float(np.std(amplitude)) / mean_amplitude < FLAT_RELATIVE_STD
        and float(np.std(phase)) < FLAT_RELATIVE_STD
    )
    if flat:
        return False
    noise = _lag_one_correlation(amplitude) < NOISE_CORRELATION and (
        _lag_one_correlation(phase) < NOISE_CORRELATION
    )
    return not noise


def _scanned_box(object_: np.ndarray, positions_px: np.ndarray, size_px: int) -> np.ndarray:
    height, width = object_.shape
    half = size_px / 2
    x0 = max(0, int(np.floor(positions_px[:, 0].min() - half)))
    x1 = min(width, int(np.ceil(positions_px[:, 0].max() + half)) + 1)
    y0 = max(0, int(np.floor(positions_px[:, 1].min() - half)))
    y1 = min(height, int(np.ceil(positions_px[:, 1].max() + half)) + 1)
    box = object_[y0:y1, x0:x1]
    return box if box.size else object_


def _lag_one_correlation(image: np.ndarray) -> float:
    values = image - np.mean(image)
    variance = float(np.mean(values**2))
    if variance == 0 or min(values.shape) < 2:
        return 0.0
    horizontal = float(np.mean(values[:, 1:] * values[:, :-1]))
    vertical = float(np.mean(values[1:, :] * values[:-1, :]))
    return 0.5 * (horizontal + vertical) / variance


def with_ground_truth(datasets: Sequence[TrainingData], reason: str) -> list[TrainingData]:
    """``datasets`` with ground-truth patches, cut from each informative object where missing.

    Raises
    ------
    DataContractError
        For a dataset with neither ground-truth patches nor an informative object.
    """
    result = []
    for data in datasets:
        if data.has_ground_truth:
            result.append(data)
            continue
        source = data.metadata.source or 'the training data'
        if data.object_guess is None:
            raise DataContractError(
                f'{reason} needs ground truth, but {source} holds neither ground-truth patches '
                "('Y') nor an object; train in PINN mode, or provide data with a known object"
            )
        if not is_informative_object(data):
            raise DataContractError(
                f'{reason} needs ground truth, but the object of {source} is flat or noise '
                "(Ptychodus's default initial guess), not a known object; train in PINN mode, or "
                'use a product whose object is the truth (a simulation, or a reconstruction by an '
                'iterative solver) or NPZ files with ground-truth patches (Y)'
            )
        logger.info(
            'cutting %d ground-truth patches from the object of %s', data.num_patterns, source
        )
        patches = extract_patches(data.object_guess, data.positions_px, data.pattern_size_px)
        result.append(replace(data, ground_truth_patches=patches))
    return result


def check_output_directory(output_path: Path) -> Path:
    """Create ``output_path`` if needed and prove it writable, before any training time is spent.

    Raises
    ------
    ReconstructionError
        When the directory cannot be created or written (names the path and the OS error).
    """
    output_path = Path(output_path)
    try:
        output_path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output_path, prefix='.write-test-'):
            pass
    except OSError as exc:
        raise ReconstructionError(
            f'cannot write the training outputs to {output_path} ({type(exc).__name__}: {exc}); '
            'choose an output directory you can write to (ptychodus -b train -o DIR)'
        ) from exc
    return output_path


def write_loss_csv(path: Path, history: Sequence[EpochReport]) -> Path:
    """Write the per-epoch losses, learning rate, time and intensity scale (atomic)."""
    with atomic_output(path) as temporary, open(temporary, 'w', newline='') as stream:
        writer = csv.writer(stream)
        writer.writerow(
            [
                'epoch',
                'training_loss',
                'validation_loss',
                'learning_rate',
                'seconds',
                'intensity_scale',
            ]
        )
        for report in history:
            writer.writerow(
                [
                    report.epoch,
                    repr(report.training_loss),
                    '' if report.validation_loss is None else repr(report.validation_loss),
                    repr(report.learning_rate),
                    f'{report.seconds:.4f}',
                    repr(report.intensity_scale),
                ]
            )
    return path


def write_loss_png(path: Path, history: Sequence[EpochReport], title: str) -> Path | None:
    """Plot the training and validation losses; None (and a log line) without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        logger.info('matplotlib is not installed; no loss-curve figure written')
        return None
    epochs = [report.epoch for report in history]
    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(epochs, [report.training_loss for report in history], 'o-', label='training')
    validation = [(r.epoch, r.validation_loss) for r in history if r.validation_loss is not None]
    if validation:
        axes.plot(*zip(*validation, strict=True), 's-', label='validation')
    axes.set_xlabel('epoch')
    axes.set_ylabel('loss')
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    return path
