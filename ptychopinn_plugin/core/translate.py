"""Translation between Ptychodus's objects and the NPZ data contract, and Ptychodus-made test data.

This is the only core module that imports Ptychodus. It turns a ``ReconstructInput`` (detector
counts, bad-pixel mask, product) into :class:`~ptychopinn_plugin.core.contract.TrainingData`,
turns a reconstructed array back into a Ptychodus ``Object`` / ``Product`` on the input product's
grid, and builds and simulates products with Ptychodus's own forward model so tests and demos use
data that nobody on this project wrote. Stitching patches onto the grid lives in
``stitching.py``; synthetic objects, probes and scans in ``simulate.py``.

Geometry follows Ptychodus exactly: positions in object pixels come from
``ObjectGeometry.map_probe_positions_to_object_x_px`` / ``_y_px`` (pixel centres at integers, the
object centre at ``(W - 1) / 2``), column 0 is x and column 1 is y.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
from ptychodus.api.assemble import AssembledDiffractionData
from ptychodus.api.constants import wavelength_m_to_energy_eV
from ptychodus.api.geometry import PixelGeometry
from ptychodus.api.object import Object, ObjectCenter, ObjectGeometry
from ptychodus.api.preprocess.diffraction import inpaint_bad_pixels as ptychodus_inpaint
from ptychodus.api.preprocess.diffraction import zero_bad_pixels
from ptychodus.api.probe import ProbeSequence
from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence
from ptychodus.api.product import Product, ProductMetadata
from ptychodus.api.reconstruct import (
    ReconstructInput,
    prepare_reconstruct_input,
    warn_if_propagation_regime_disagrees,
)
from ptychodus.api.simulate.diffraction import generate_diffraction_data

from ..errors import DataContractError
from .contract import DiffractionQuantity, ScanMetadata, TrainingData, amplitude_from_counts

logger = logging.getLogger(__name__)

__all__ = [
    'DEFAULT_DETECTOR_DISTANCE_M',
    'DEFAULT_DETECTOR_PIXEL_SIZE_M',
    'DEFAULT_PHOTON_ENERGY_EV',
    'SimulatedScan',
    'far_field_object_pixel_size_m',
    'make_product',
    'object_from_array',
    'product_with_object',
    'product_with_probe_power',
    'simulate_with_ptychodus',
    'training_data_from_reconstruct_input',
]

DEFAULT_PHOTON_ENERGY_EV = 10_000.0
"""Hard X-rays (wavelength about 0.124 nm), typical of coherent-scattering beamlines."""
DEFAULT_DETECTOR_DISTANCE_M = 2.0
"""Sample-to-detector distance of a typical far-field ptychography set-up."""
DEFAULT_DETECTOR_PIXEL_SIZE_M = 75e-6
"""Pixel pitch of common hybrid photon-counting detectors (Eiger, Pilatus)."""

PIXEL_SIZE_RTOL = 1e-6
"""Largest relative difference tolerated between probe and object pixel sizes (same grid)."""
INPAINT_CHUNK_PATTERNS = 1024
"""Patterns repaired per call, to bound the float64 working copy of the inpainting."""


def far_field_object_pixel_size_m(
    pattern_size_px: int,
    *,
    wavelength_m: float,
    detector_distance_m: float = DEFAULT_DETECTOR_DISTANCE_M,
    detector_pixel_size_m: float = DEFAULT_DETECTOR_PIXEL_SIZE_M,
) -> float:
    """Object-plane pixel size of a far-field geometry, ``lambda * z / (N * detector_pixel)``.

    Parameters
    ----------
    pattern_size_px : int
        Side N of the (cropped) diffraction patterns.
    wavelength_m, detector_distance_m, detector_pixel_size_m : float
        Photon wavelength, sample-to-detector distance and detector pixel pitch, in metres.

    Returns
    -------
    float
        Pixel size in metres (the same relation Ptychodus uses for the probe geometry).
    """
    for name, value in (
        ('pattern_size_px', pattern_size_px),
        ('wavelength_m', wavelength_m),
        ('detector_distance_m', detector_distance_m),
        ('detector_pixel_size_m', detector_pixel_size_m),
    ):
        if not np.isfinite(value) or value <= 0:
            raise DataContractError(f'{name} must be positive and finite, got {value!r}')
    return wavelength_m * detector_distance_m / (pattern_size_px * detector_pixel_size_m)


# --- Ptychodus -> contract ---------------------------------------------------------------------


def training_data_from_reconstruct_input(
    parameters: ReconstructInput, *, inpaint_bad_pixels: bool = True
) -> TrainingData:
    """Convert what Ptychodus hands a reconstructor into the contract's :class:`TrainingData`.

    Parameters
    ----------
    parameters : ReconstructInput
        ``diffraction_patterns`` (n, N, N) detector counts, row-aligned with
        ``product.probe_positions`` (``prepare_reconstruct_input`` pairs them by scan index);
        ``bad_pixels`` (N, N) bool or None; ``product`` with probe, object and positions.
    inpaint_bad_pixels : bool
        Fill bad pixels by biharmonic inpainting (Ptychodus's own repair, the one its NPZ export
        uses) when True; set them to zero when False.

    Returns
    -------
    TrainingData
        ``diffraction_amplitude`` (n, N, N) float32 = sqrt(repaired counts); ``positions_px``
        (n, 2) float64 (x, y) in object pixels by Ptychodus's mapping; ``probe`` (N, N) complex64,
        incoherent mode 0 of the probe without OPR; ``object_guess`` layer 0 of the object;
        ``scan_index`` the positions' Ptychodus scan indexes. ``metadata.num_photons`` is the mean
        total counts per repaired pattern.
    """
    product = parameters.product
    counts = _check_patterns(parameters.diffraction_patterns)
    num_patterns, height_px, width_px = counts.shape
    geometry = _object_geometry(product.object_)
    probe, modes_dropped = _probe_mode_zero(product, (height_px, width_px))
    _check_same_pixel_grid(product)

    positions = product.probe_positions
    if len(positions) != num_patterns:
        raise DataContractError(
            f'{num_patterns} diffraction patterns but {len(positions)} probe positions; pass the '
            'ReconstructInput built by ptychodus.api.reconstruct.prepare_reconstruct_input, which '
            'pairs patterns and positions by scan index'
        )
    positions_px = np.stack(
        [
            np.asarray(geometry.map_probe_positions_to_object_x_px(positions), dtype=np.float64),
            np.asarray(geometry.map_probe_positions_to_object_y_px(positions), dtype=np.float64),
        ],
        axis=1,
    )
    _warn_patches_outside(positions_px, height_px, geometry.width_px, geometry.height_px)

    repaired, bad_pixels = _repair_bad_pixels(counts, parameters.bad_pixels, inpaint_bad_pixels)
    num_photons = float(np.mean(np.sum(repaired, axis=(1, 2), dtype=np.float64)))

    object_ = product.object_
    if object_.num_layers > 1:
        logger.warning(
            'object has %d layers; PtychoPINN is single-slice, using layer 0 as the object guess',
            object_.num_layers,
        )
    metadata = ScanMetadata(
        source_quantity=DiffractionQuantity.COUNTS,
        num_photons=num_photons,
        object_pixel_width_m=float(geometry.pixel_width_m),
        object_pixel_height_m=float(geometry.pixel_height_m),
        object_center_x_m=float(geometry.center_x_m),
        object_center_y_m=float(geometry.center_y_m),
        probe_modes_dropped=modes_dropped,
        num_bad_pixels=int(np.count_nonzero(bad_pixels)),
        source=f'Ptychodus product {product.metadata.name!r}',
    )
    return TrainingData(
        diffraction_amplitude=amplitude_from_counts(repaired),
        positions_px=positions_px,
        probe=probe,
        object_guess=np.array(object_.get_layer(0), dtype=np.complex64),  # a copy, not a view
        scan_index=np.array(positions.get_indexes(), dtype=np.int64),
        metadata=metadata,
    )


def _check_patterns(patterns: np.ndarray) -> np.ndarray:
    patterns = np.asarray(patterns)
    if patterns.ndim != 3:
        raise DataContractError(
            f'diffraction patterns must be a (n, N, N) stack of detector counts, got shape '
            f'{patterns.shape}'
        )
    if patterns.shape[0] == 0:
        raise DataContractError(
            'the ReconstructInput holds no diffraction patterns; load or assemble a diffraction '
            'dataset in Ptychodus and check that its scan indexes overlap the probe positions'
        )
    if patterns.shape[1] != patterns.shape[2]:
        raise DataContractError(
            f'diffraction patterns are {patterns.shape[1]} x {patterns.shape[2]} pixels; '
            'PtychoPINN needs square patterns: set a square crop (a power of two, e.g. 64 or '
            "128) in Ptychodus's diffraction settings"
        )
    return patterns


def _object_geometry(object_: Object) -> ObjectGeometry:
    if object_.width_px == 0 or object_.height_px == 0:
        raise DataContractError(
            'the product has an empty object (0 x 0 pixels); build or load an object in Ptychodus '
            'before reconstructing, so the result has a grid to live on'
        )
    try:
        return object_.get_geometry()
    except ValueError as exc:
        raise DataContractError(
            f'the product object has no pixel geometry or centre ({exc}); rebuild the object in '
            'Ptychodus so positions can be mapped to object pixels'
        ) from exc


def _probe_mode_zero(product: Product, pattern_shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Mode 0 of the probe without OPR, and how many incoherent modes were dropped."""
    probes = product.probes
    if probes.num_coherent_modes > 1:
        logger.info(
            'probe has %d OPR (coherent) modes; using the unrelaxed probe (OPR mode 0)',
            probes.num_coherent_modes,
        )
    probe = probes.get_probe_no_opr()
    probe_shape = (probe.height_px, probe.width_px)
    if probe_shape != pattern_shape:
        raise DataContractError(
            f'probe is {probe_shape[0]} x {probe_shape[1]} pixels but the diffraction patterns are '
            f'{pattern_shape[0]} x {pattern_shape[1]}; they must match. In Ptychodus either crop '
            f'the patterns to {probe_shape[0]} x {probe_shape[1]} (diffraction crop settings) or '
            f'rebuild/resample the probe at {pattern_shape[0]} x {pattern_shape[1]} (Probe panel)'
        )
    num_modes = probe.num_incoherent_modes
    if num_modes > 1:
        power = probe.get_incoherent_mode_relative_power(0)
        logger.warning(
            'probe has %d incoherent modes; PtychoPINN uses one, keeping mode 0 (%.1f %% of the '
            'power) and dropping %d',
            num_modes,
            100.0 * power,
            num_modes - 1,
        )
    return np.asarray(probe.get_incoherent_mode(0)), num_modes - 1


def _check_same_pixel_grid(product: Product) -> None:
    probe_pixel = product.probes.get_pixel_geometry()
    object_pixel = product.object_.get_pixel_geometry()
    for axis, probe_m, object_m in (
        ('width', probe_pixel.width_m, object_pixel.width_m),
        ('height', probe_pixel.height_m, object_pixel.height_m),
    ):
        if not np.isclose(probe_m, object_m, rtol=PIXEL_SIZE_RTOL, atol=0.0):
            raise DataContractError(
                f'probe pixel {axis} {probe_m:.6g} m differs from object pixel {axis} '
                f'{object_m:.6g} m; PtychoPINN needs probe and object on one grid. Rebuild the '
                'object in Ptychodus (it then takes the probe pixel size) or resample it'
            )


def _warn_patches_outside(
    positions_px: np.ndarray, pattern_size_px: int, width_px: int, height_px: int
) -> None:
    outside = _patches_outside_object(positions_px, pattern_size_px, width_px, height_px)
    if np.any(outside):
        logger.warning(
            '%d of %d scan positions put an %d x %d patch partly outside the %d x %d object; '
            'those regions cannot be stitched onto the product grid (enlarge the object)',
            int(np.count_nonzero(outside)),
            outside.size,
            pattern_size_px,
            pattern_size_px,
            width_px,
            height_px,
        )


def _patches_outside_object(
    positions_px: np.ndarray, pattern_size_px: int, width_px: int, height_px: int
) -> np.ndarray:
    """(n,) bool: the integer patch Ptychodus cuts (``resolve_patch_bounds``) leaves the object."""
    half_px = (pattern_size_px - 1) / 2
    lower = np.floor(positions_px - half_px)
    upper = lower + pattern_size_px
    limits = np.array([width_px, height_px])
    return np.any((lower < 0) | (upper > limits), axis=1)


def _repair_bad_pixels(
    counts: np.ndarray, bad_pixels: np.ndarray | None, inpaint: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Repaired counts (n, N, N) and the (N, N) bool mask of repaired pixels."""
    if bad_pixels is None:
        return counts, np.zeros(counts.shape[1:], dtype=bool)
    bad_pixels = np.asarray(bad_pixels, dtype=bool)
    if bad_pixels.shape != counts.shape[1:]:
        raise DataContractError(
            f'bad-pixel mask has shape {bad_pixels.shape} but the patterns are '
            f'{counts.shape[1:]}; crop the mask together with the patterns'
        )
    num_bad = int(np.count_nonzero(bad_pixels))
    if num_bad == 0:
        return counts, bad_pixels
    if num_bad == bad_pixels.size:
        raise DataContractError(
            'every detector pixel is marked bad; check the bad-pixel mask in Ptychodus'
        )
    # Zero first so NaN or saturated values at bad pixels cannot leak into the fill.
    repaired = zero_bad_pixels(counts, bad_pixels)
    if inpaint:
        repaired = np.concatenate(
            [
                ptychodus_inpaint(repaired[start : start + INPAINT_CHUNK_PATTERNS], bad_pixels)
                for start in range(0, repaired.shape[0], INPAINT_CHUNK_PATTERNS)
            ]
        )
        # Biharmonic fills can undershoot below zero next to dark pixels; counts cannot.
        repaired[:, bad_pixels] = np.maximum(repaired[:, bad_pixels], 0)
    logger.info(
        '%s %d bad detector pixels in each of %d patterns',
        'inpainted' if inpaint else 'zeroed',
        num_bad,
        counts.shape[0],
    )
    return repaired, bad_pixels


# --- contract -> Ptychodus ---------------------------------------------------------------------


def object_from_array(array: np.ndarray, like: Object) -> Object:
    """A single-layer Ptychodus ``Object`` holding ``array`` on the same grid as ``like``.

    Parameters
    ----------
    array : ndarray, shape (H, W), complex
        Object transmission, on the pixel grid of ``like`` (same shape, pixel size and centre).
    like : Object
        The object whose grid the result shares (usually the input product's object).

    Returns
    -------
    Object
        ``like``'s pixel geometry and centre, one layer (no layer spacing), dtype of ``like`` when
        that is complex, else complex64.
    """
    array = np.asarray(array)
    expected = (like.height_px, like.width_px)
    if array.shape != expected:
        raise DataContractError(
            f'object array has shape {array.shape} but the product object grid is '
            f'{expected[0]} x {expected[1]}; stitch the reconstruction onto the product grid '
            '(core.stitching) before building the Ptychodus object'
        )
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise DataContractError(f'object array must be numeric, got dtype {array.dtype}')
    if not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise DataContractError(f'object array holds {bad} NaN or infinite values')
    dtype = like.dtype if np.issubdtype(like.dtype, np.complexfloating) else np.complex64
    return Object(
        array=array.astype(dtype),
        pixel_geometry=like.get_pixel_geometry().copy(),
        center=like.get_center().copy(),
        layer_spacing_m=[],
    )


def product_with_object(product: Product, array: np.ndarray) -> Product:
    """``product`` with its object replaced by ``array`` (H, W) complex on the same grid.

    Metadata, probe positions, probes and losses are passed through unchanged.
    """
    return Product(
        metadata=product.metadata,
        probe_positions=product.probe_positions,
        probes=product.probes,
        object_=object_from_array(array, product.object_),
        losses=list(product.losses),
    )


def make_product(
    object_array: np.ndarray,
    probe: np.ndarray,
    positions_px: np.ndarray,
    *,
    pixel_size_m: float,
    wavelength_m: float,
    detector_distance_m: float = DEFAULT_DETECTOR_DISTANCE_M,
    name: str = 'ptychopinn',
) -> Product:
    """Build a far-field Ptychodus ``Product`` from arrays in object pixels.

    Parameters
    ----------
    object_array : ndarray, shape (H, W), complex
        Object transmission; the object geometry is centred at (0, 0) m.
    probe : ndarray, shape (N, N) or (modes, N, N), complex
        Probe (incoherent modes) on the object pixel grid.
    positions_px : ndarray, shape (n, 2), float
        Scan positions (x, y) in object pixels; stored in metres so that Ptychodus's
        ``map_probe_positions_to_object_x_px`` / ``_y_px`` return them (to rounding, ~1e-12 px).
        Scan indexes are 0..n-1.
    pixel_size_m : float
        Object (and probe) pixel size in metres (see :func:`far_field_object_pixel_size_m`).
    wavelength_m, detector_distance_m : float
        Photon wavelength and sample-to-detector distance in metres.
    name : str
        Product name shown in Ptychodus.

    Returns
    -------
    Product
        Far-field metadata (``probe_photon_count`` = sum of the probe intensity, Ptychodus's
        convention), the positions, the probe and the single-layer object; no losses.
    """
    object_array = _complex_array(object_array, 'object', ndim=(2,))
    probe = _complex_array(probe, 'probe', ndim=(2, 3))
    if probe.shape[-1] != probe.shape[-2]:
        raise DataContractError(f'probe must be square, got shape {probe.shape}')
    positions_px = np.asarray(positions_px, dtype=np.float64)
    if positions_px.ndim != 2 or positions_px.shape[1] != 2 or positions_px.shape[0] == 0:
        raise DataContractError(
            f'positions_px must have shape (n, 2) with n >= 1, got {positions_px.shape}'
        )
    if not np.all(np.isfinite(positions_px)):
        raise DataContractError('positions_px holds NaN or infinite values')
    for label, value in (
        ('pixel_size_m', pixel_size_m),
        ('wavelength_m', wavelength_m),
        ('detector_distance_m', detector_distance_m),
    ):
        if not np.isfinite(value) or value <= 0:
            raise DataContractError(f'{label} must be positive and finite, got {value!r}')

    pixel_geometry = PixelGeometry(width_m=float(pixel_size_m), height_m=float(pixel_size_m))
    center = ObjectCenter(x_m=0.0, y_m=0.0)
    height_px, width_px = object_array.shape
    x_m = (positions_px[:, 0] - (width_px - 1) / 2) * pixel_size_m + center.x_m
    y_m = (positions_px[:, 1] - (height_px - 1) / 2) * pixel_size_m + center.y_m
    probe_positions = ProbePositionSequence(
        [
            ProbePosition(index=index, x_m=float(x), y_m=float(y))
            for index, (x, y) in enumerate(zip(x_m, y_m, strict=True))
        ]
    )
    metadata = ProductMetadata(
        name=name,
        comments='built by ptychopinn_plugin.core.translate.make_product',
        detector_distance_m=float(detector_distance_m),
        photon_energy_eV=float(wavelength_m_to_energy_eV(wavelength_m)),
        probe_photon_count=float(np.sum(np.abs(probe) ** 2)),
        exposure_time_s=0.0,
        mass_attenuation_m2_per_kg=0.0,
        tomography_angle_deg=0.0,
        far_field=True,
    )
    product = Product(
        metadata=metadata,
        probe_positions=probe_positions,
        probes=ProbeSequence(array=probe, opr_weights=None, pixel_geometry=pixel_geometry),
        object_=Object(array=object_array, pixel_geometry=pixel_geometry, center=center),
        losses=[],
    )
    warn_if_propagation_regime_disagrees(product)
    return product


def _complex_array(array: np.ndarray, what: str, *, ndim: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim not in ndim or array.size == 0:
        raise DataContractError(
            f'{what} must be a non-empty {" or ".join(f"{d}-D" for d in ndim)} array, got shape '
            f'{array.shape}'
        )
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise DataContractError(f'{what} must be numeric, got dtype {array.dtype}')
    if not np.all(np.isfinite(array)):
        raise DataContractError(f'{what} holds NaN or infinite values')
    if np.issubdtype(array.dtype, np.complexfloating):
        return array
    return array.astype(np.complex64)


# --- simulation through Ptychodus --------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedScan:
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
) -> SimulatedScan:
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
    SimulatedScan
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
    calibrated = _product_with_scaled_probe(product, amplitude_scale)
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
    return SimulatedScan(
        reconstruct_input=prepare_reconstruct_input(assembled, calibrated),
        product=calibrated,
        assembled=assembled,
        probe_amplitude_scale=amplitude_scale,
        incident_photons_per_pattern=incident,
    )


def _check_patches_inside(product: Product) -> None:
    geometry = _object_geometry(product.object_)
    probe_geometry = product.probes.get_geometry()
    if probe_geometry.width_px != probe_geometry.height_px:
        raise DataContractError(
            f'probe must be square, got {probe_geometry.width_px} x {probe_geometry.height_px}'
        )
    positions = product.probe_positions
    positions_px = np.stack(
        [
            geometry.map_probe_positions_to_object_x_px(positions),
            geometry.map_probe_positions_to_object_y_px(positions),
        ],
        axis=1,
    )
    outside = _patches_outside_object(
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


def product_with_probe_power(product: Product, photons_per_pattern: float) -> Product:
    """``product`` with its probe modes rescaled to a total ``sum |P|^2`` of the given counts.

    That is the probe a unitary far-field model (pty-chi's) needs to predict ``photons_per_pattern``
    counts from a transparent object, and what Ptychodus's probe builders produce from their photon
    count. A probe simulated through ``ptychodus.api.simulate.diffraction`` is not: that simulator's
    Fresnel prefactor needs a probe about 1,800 times stronger in amplitude at N = 64 (see
    :func:`simulate_with_ptychodus`). PtychoPINN normalises the probe itself and is unaffected.
    """
    if not np.isfinite(photons_per_pattern) or photons_per_pattern <= 0:
        raise DataContractError(
            f'photons_per_pattern must be positive and finite, got {photons_per_pattern!r}'
        )
    power = float(np.sum(np.abs(product.probes.get_array()) ** 2))
    if not np.isfinite(power) or power <= 0:
        raise DataContractError(f'the probe has no power to rescale (sum |P|^2 = {power!r})')
    return _product_with_scaled_probe(product, float(np.sqrt(photons_per_pattern / power)))


def _product_with_scaled_probe(product: Product, amplitude_scale: float) -> Product:
    probes = product.probes
    array = probes.get_array()
    scaled = (array * amplitude_scale).astype(array.dtype)
    opr_weights = probes.get_opr_weights_or_none()
    metadata = replace(
        product.metadata,
        probe_photon_count=float(np.sum(np.abs(scaled[0]) ** 2)),
    )
    return Product(
        metadata=metadata,
        probe_positions=product.probe_positions,
        probes=ProbeSequence(
            array=scaled,
            opr_weights=None if opr_weights is None else opr_weights.copy(),
            pixel_geometry=probes.get_pixel_geometry().copy(),
        ),
        object_=product.object_,
        losses=list(product.losses),
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
