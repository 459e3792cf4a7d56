"""Scans simulated with Ptychodus's own forward model, and simulated workflow directories.

:func:`simulate_with_ptychodus` runs ``ptychodus.api.simulate.diffraction`` on a product at a
calibrated dose and returns a :class:`PtychodusSimulation` (what Ptychodus would hand a
reconstructor, and the simulator's output), so tests and demos use data that nobody on this project
wrote. (The NumPy simulator of the core, whose result is ``core.simulate.SimulatedScan``, is the
other one.) :func:`make_workflow_scan` simulates a jittered raster over an object from
``core.simulate``; :func:`write_workflow_scan` writes it as a standard workflow directory. Used by
the demo, the evidence commands and the integration tests.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from ptychodus.api.assemble import AssembledDiffractionData
from ptychodus.api.constants import energy_eV_to_wavelength_m
from ptychodus.api.object import Object, ObjectCenter
from ptychodus.api.probe import ProbeSequence
from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence
from ptychodus.api.product import Product
from ptychodus.api.reconstruct import ReconstructInput, prepare_reconstruct_input
from ptychodus.api.simulate.diffraction import generate_diffraction_data

from ..core import simulate
from ..core.contract import TrainingData
from ..errors import DataContractError
from .inputs import (
    object_geometry,
    patches_outside_object,
    positions_in_object_px,
    training_data_from_reconstruct_input,
)
from .products import (
    DEFAULT_PHOTON_ENERGY_EV,
    far_field_object_pixel_size_m,
    make_product,
    product_with_object,
    product_with_probe_power,
    product_with_scaled_probe,
)
from .workflow_dir import write_workflow_directory

logger = logging.getLogger(__name__)

__all__ = [
    'PtychodusSimulation',
    'ScanSpec',
    'WorkflowScan',
    'make_workflow_scan',
    'simulate_with_ptychodus',
    'write_workflow_scan',
]


@dataclass(frozen=True)
class PtychodusSimulation:
    """A scan simulated by Ptychodus's own forward model, dose-calibrated.

    Attributes
    ----------
    reconstruct_input : ReconstructInput
        What Ptychodus would hand a reconstructor: Poisson counts (n, N, N) float64, an all-False
        bad-pixel mask, and :attr:`product` paired by scan index.
    product : Product
        The input product with the probe rescaled so that the noise-free mean total counts per
        pattern equal the requested ``num_photons`` (the true object, the scaled probe).
    assembled : AssembledDiffractionData
        The simulator's output (indexes, counts, detector pixel geometry).
    probe_amplitude_scale : float
        Factor applied to the probe amplitude, ``sqrt(num_photons / uncalibrated mean counts)``.
    incident_photons_per_pattern : float
        Counts a transparent object would give per pattern with the calibrated probe (the dose
        before the sample absorbs or scatters outside the detector).
    """

    reconstruct_input: ReconstructInput
    product: Product
    assembled: AssembledDiffractionData
    probe_amplitude_scale: float
    incident_photons_per_pattern: float

    @property
    def counts(self) -> np.ndarray:
        """(n, N, N) float64 simulated detector counts."""
        return np.asarray(self.reconstruct_input.diffraction_patterns)


def simulate_with_ptychodus(
    product: Product, *, num_photons: float, rng: np.random.Generator | None
) -> PtychodusSimulation:
    """Simulate far-field counts with ``ptychodus.api.simulate.diffraction`` at a given dose.

    The simulator's Fresnel transform carries an amplitude prefactor (about
    ``dx^2 / (wavelength * distance)``), so a probe normalised to N photons gives far fewer
    counts. The dose is therefore calibrated through the simulator itself: simulate noise-free,
    rescale the probe amplitude by ``sqrt(num_photons / mean total counts)`` (intensity is
    quadratic in the probe), then simulate again with Poisson noise from ``rng``.

    Parameters
    ----------
    product : Product
        Far-field product (see :func:`make_product`); every patch must lie inside the object.
    num_photons : float
        Target mean total counts per pattern (noise-free expectation), > 0.
    rng : numpy.random.Generator or None
        Source of Poisson noise; None gives noise-free (expected) counts.

    Returns
    -------
    PtychodusSimulation
    """
    if not np.isfinite(num_photons) or num_photons <= 0:
        raise DataContractError(f'num_photons must be positive and finite, got {num_photons!r}')
    if not product.metadata.far_field:
        raise DataContractError(
            f'product {product.metadata.name!r} declares near-field propagation; PtychoPINN is a '
            'far-field model. Set far_field=True in the product metadata'
        )
    _check_patches_inside(product)

    uncalibrated = generate_diffraction_data(product, rng=None)
    mean_counts = float(np.mean(np.sum(uncalibrated.get_patterns(), axis=(1, 2))))
    if not np.isfinite(mean_counts) or mean_counts <= 0:
        raise DataContractError(
            f'the noise-free simulation gives {mean_counts!r} mean counts per pattern; the probe '
            'or the object is zero where the scan points are'
        )
    amplitude_scale = float(np.sqrt(num_photons / mean_counts))
    calibrated = product_with_scaled_probe(product, amplitude_scale)
    assembled = generate_diffraction_data(calibrated, rng=rng)
    incident = _transparent_counts_per_pattern(calibrated)
    logger.info(
        'simulated %d patterns: probe amplitude x %.4g for %.4g mean counts per pattern '
        '(incident %.4g)',
        assembled.get_num_patterns(),
        amplitude_scale,
        num_photons,
        incident,
    )
    return PtychodusSimulation(
        reconstruct_input=prepare_reconstruct_input(assembled, calibrated),
        product=calibrated,
        assembled=assembled,
        probe_amplitude_scale=amplitude_scale,
        incident_photons_per_pattern=incident,
    )


def _check_patches_inside(product: Product) -> None:
    geometry = object_geometry(product.object_)
    probe_geometry = product.probes.get_geometry()
    if probe_geometry.width_px != probe_geometry.height_px:
        raise DataContractError(
            f'probe must be square, got {probe_geometry.width_px} x {probe_geometry.height_px}'
        )
    positions_px = positions_in_object_px(geometry, product.probe_positions)
    outside = patches_outside_object(
        positions_px, probe_geometry.width_px, geometry.width_px, geometry.height_px
    )
    if np.any(outside):
        first = int(np.argmax(outside))
        raise DataContractError(
            f'{int(np.count_nonzero(outside))} scan positions put the {probe_geometry.width_px}-px '
            f'probe partly outside the {geometry.width_px} x {geometry.height_px} object (first: '
            f'x={positions_px[first, 0]:.2f}, y={positions_px[first, 1]:.2f} px); pad the object '
            f'by at least {probe_geometry.width_px // 2 + 1} px beyond the scan'
        )


def _transparent_counts_per_pattern(product: Product) -> float:
    """Total counts the simulator gives for one pattern through a transparent object."""
    probes = product.probes
    size_px = probes.width_px
    pixel_geometry = probes.get_pixel_geometry()
    transparent = Product(
        metadata=product.metadata,
        probe_positions=ProbePositionSequence([ProbePosition(index=0, x_m=0.0, y_m=0.0)]),
        probes=ProbeSequence(
            array=probes.get_array()[:1], opr_weights=None, pixel_geometry=pixel_geometry
        ),
        object_=Object(
            array=np.ones((probes.height_px, size_px), dtype=np.complex128),
            pixel_geometry=pixel_geometry.copy(),
            center=ObjectCenter(x_m=0.0, y_m=0.0),
        ),
        losses=[],
    )
    patterns = generate_diffraction_data(transparent, rng=None).get_patterns()
    return float(np.sum(patterns))


# --- simulated workflow scans ------------------------------------------------------------------


@dataclass(frozen=True)
class ScanSpec:
    """What to simulate: a jittered raster over an object of one kind."""

    pattern_size_px: int = 32
    step_px: float = 6.0
    columns: int = 12
    rows: int = 12
    num_photons: float = 1e5
    kind: str = 'smooth'
    aberration_rad: float = 3.0


@dataclass(frozen=True)
class WorkflowScan:
    """A simulated scan: the truth, Ptychodus's simulation and the positions in object pixels."""

    truth: np.ndarray
    simulated: PtychodusSimulation
    positions_px: np.ndarray

    @property
    def initial_guess(self) -> np.ndarray:
        """Ptychodus's default initial object (all ones)."""
        return np.ones_like(self.truth)

    def training_data(self) -> TrainingData:
        """The scan as Ptychodus's reconstructor hands it to the plugin (counts and product)."""
        return training_data_from_reconstruct_input(
            prepare_reconstruct_input(self.simulated.assembled, self.simulated.product)
        )

    def with_probe_power_of_data(self) -> WorkflowScan:
        """This scan with the product's probe rescaled to the measured mean counts per pattern.

        The probe an iterative solver with a unitary far-field model expects (see
        ``products.product_with_probe_power``); the patterns and positions are unchanged.
        """
        counts = self.simulated.assembled.get_patterns()
        photons = float(np.mean(np.sum(counts, axis=(-2, -1), dtype=np.float64)))
        product = product_with_probe_power(self.simulated.product, photons)
        return replace(self, simulated=replace(self.simulated, product=product))


def make_workflow_scan(seed: int = 0, spec: ScanSpec | None = None) -> WorkflowScan:
    """Simulate a far-field scan with Ptychodus's forward model (dose calibrated to the spec)."""
    spec = spec or ScanSpec()
    n = spec.pattern_size_px
    border = n + 4
    shape = (
        math.ceil((spec.rows - 1) * spec.step_px + border),
        math.ceil((spec.columns - 1) * spec.step_px + border),
    )
    rng = np.random.default_rng(seed)
    truth = simulate.make_object(spec.kind, shape, seed=rng)
    positions = simulate.raster_scan(shape, n, spec.step_px, jitter_px=0.1 * spec.step_px, seed=rng)
    probe = simulate.disk_probe(
        n, 0.2 * n, propagation_px2=0.4 * n, aberration_rad=spec.aberration_rad
    )
    wavelength_m = energy_eV_to_wavelength_m(DEFAULT_PHOTON_ENERGY_EV)
    product = make_product(
        truth,
        probe,
        positions,
        pixel_size_m=far_field_object_pixel_size_m(n, wavelength_m=wavelength_m),
        wavelength_m=wavelength_m,
        name=f'simulated-{spec.kind}-{seed}',
    )
    simulated = simulate_with_ptychodus(product, num_photons=spec.num_photons, rng=rng)
    return WorkflowScan(truth=truth, simulated=simulated, positions_px=positions)


def write_workflow_scan(
    directory: Path,
    scan: WorkflowScan,
    settings: dict[str, dict[str, object]],
    *,
    object_is_truth: bool = False,
) -> Path:
    """Write a simulated scan as a workflow directory (:func:`write_workflow_directory`).

    The product holds the calibrated probe, the positions and either the flat initial guess (a
    user's product before reconstruction) or the truth (``object_is_truth``). Returns
    ``directory``.
    """
    object_ = scan.truth if object_is_truth else scan.initial_guess
    write_workflow_directory(
        directory,
        product_with_object(scan.simulated.product, object_),
        scan.simulated.assembled,
        settings,
    )
    return directory
