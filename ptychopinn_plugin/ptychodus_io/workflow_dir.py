"""Ptychodus standard workflow directories: the one reader and the one writer.

A workflow directory holds ``product.h5`` (probe, positions, object), ``diffraction.h5`` (detector
counts by scan index) and optionally ``settings.ini``: what ``ptychodus -b`` reads and what the
``ptychopinn`` command and the reconstructor's ``train`` accept. :func:`read_workflow_directory`
reads one with Ptychodus's own readers, pairs patterns and positions by scan index exactly as
Ptychodus pairs them for a reconstructor, and converts the result to the contract
(``inputs.training_data_from_reconstruct_input``). :func:`write_workflow_directory` writes a
product and diffraction data (and settings) with Ptychodus's own writers, each file atomically;
:func:`diffraction_from_data` turns contract data back into counts for it.
"""

from __future__ import annotations

import configparser
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from ptychodus.api.assemble import AssembledDiffractionData
from ptychodus.api.geometry import PixelGeometry
from ptychodus.api.io import load_diffraction_data, load_product, save_diffraction_data
from ptychodus.api.product import Product
from ptychodus.api.reconstruct import prepare_reconstruct_input

from ..core.contract import DiffractionQuantity, TrainingData
from ..core.files import atomic_output
from ..errors import DataContractError
from .inputs import training_data_from_reconstruct_input
from .layout import DIFFRACTION_FILE, PRODUCT_FILE, SETTINGS_FILE, product_file
from .products import DEFAULT_DETECTOR_PIXEL_SIZE_M, write_product

logger = logging.getLogger(__name__)

__all__ = [
    'WorkflowInput',
    'diffraction_from_data',
    'read_workflow_directory',
    'write_settings',
    'write_workflow_directory',
]


@dataclass(frozen=True, eq=False)
class WorkflowInput:
    """A workflow directory read: contract data, and the product they were paired with."""

    data: TrainingData
    product: Product


def read_workflow_directory(directory: Path) -> WorkflowInput:
    """Read ``product.h5`` and ``diffraction.h5`` of ``directory`` into contract data.

    ``data.metadata.source`` names the directory and the product.

    Raises
    ------
    DataContractError
        When the files cannot be read or paired, or the product does not fit the data.
    """
    directory = Path(directory)
    product_path = product_file(directory) or directory / PRODUCT_FILE
    if product_path.name != PRODUCT_FILE:
        logger.info(
            '%s has no %s: reading %s, the latest batch result',
            directory,
            PRODUCT_FILE,
            product_path.name,
        )
    try:
        product = load_product(product_path)
        assembled = load_diffraction_data(directory / DIFFRACTION_FILE)
        parameters = prepare_reconstruct_input(assembled, product)
    except (OSError, KeyError, ValueError) as exc:
        raise DataContractError(
            f'cannot read the Ptychodus workflow files {PRODUCT_FILE} / {DIFFRACTION_FILE} in '
            f'{directory}: {exc}; check that they were written by Ptychodus'
        ) from exc
    data = training_data_from_reconstruct_input(parameters)
    metadata = replace(data.metadata, source=f'{product_path} ({product.metadata.name!r})')
    return WorkflowInput(replace(data, metadata=metadata), parameters.product)


def diffraction_from_data(data: TrainingData) -> AssembledDiffractionData:
    """Detector counts of contract data, as Ptychodus's diffraction data (by scan index).

    The counts are the squared amplitudes (for amplitude data of unknown dose, relative counts),
    rounded when the data came from counts; detector pixels are the default 75 um, none bad.
    """
    counts = np.square(data.diffraction_amplitude.astype(np.float64))
    if data.metadata.source_quantity is DiffractionQuantity.COUNTS:
        counts = np.rint(counts)  # sqrt then square: undo float32 rounding of integer counts
    return AssembledDiffractionData(
        indexes=np.asarray(data.scan_index, dtype=np.intp),
        patterns=counts,
        pixel_geometry=PixelGeometry(
            width_m=DEFAULT_DETECTOR_PIXEL_SIZE_M, height_m=DEFAULT_DETECTOR_PIXEL_SIZE_M
        ),
        bad_pixels=np.zeros(counts.shape[1:], dtype=bool),
    )


def write_workflow_directory(
    directory: Path,
    product: Product,
    diffraction: AssembledDiffractionData,
    settings: dict[str, dict[str, object]] | None = None,
) -> list[Path]:
    """Write ``product.h5``, ``diffraction.h5`` and (given ``settings``) ``settings.ini``.

    Each file is written atomically with Ptychodus's own writers; returns the files written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = [write_product(directory / PRODUCT_FILE, product)]
    with atomic_output(directory / DIFFRACTION_FILE) as temporary:
        save_diffraction_data(temporary, diffraction)
    written.append(directory / DIFFRACTION_FILE)
    if settings is not None:
        written.append(write_settings(directory / SETTINGS_FILE, settings))
    return written


def write_settings(path: Path, settings: dict[str, dict[str, object]]) -> Path:
    """Write an INI settings file keeping Ptychodus's CamelCase names (atomically)."""
    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str  # type: ignore[assignment,method-assign]
    for group, values in settings.items():
        config[group] = {name: str(value) for name, value in values.items()}
    with atomic_output(path) as temporary, temporary.open('w') as stream:
        config.write(stream)
    return path
