"""What Ptychodus hands a reconstructor, converted to the contract's :class:`TrainingData`.

A ``ReconstructInput`` (detector counts, bad-pixel mask, product) becomes amplitudes, positions in
object pixels, probe mode 0 and the object guess; bad pixels are repaired with Ptychodus's own
inpainting, and every mismatch (pattern and probe sizes, pixel grids, counts of patterns and
positions) is refused with a message that says what to change in Ptychodus.

Geometry follows Ptychodus exactly: positions in object pixels come from
``ObjectGeometry.map_probe_positions_to_object_x_px`` / ``_y_px`` (pixel centres at integers, the
object centre at ``(W - 1) / 2``), column 0 is x and column 1 is y.
"""

from __future__ import annotations

import logging

import numpy as np
from ptychodus.api.object import Object, ObjectGeometry
from ptychodus.api.preprocess.diffraction import inpaint_bad_pixels as ptychodus_inpaint
from ptychodus.api.preprocess.diffraction import zero_bad_pixels
from ptychodus.api.probe_positions import ProbePositionSequence
from ptychodus.api.product import Product
from ptychodus.api.reconstruct import ReconstructInput

from ..core.contract import DiffractionQuantity, ScanMetadata, TrainingData, amplitude_from_counts
from ..errors import DataContractError

logger = logging.getLogger(__name__)

__all__ = [
    'object_geometry',
    'patches_outside_object',
    'positions_in_object_px',
    'training_data_from_reconstruct_input',
]

PIXEL_SIZE_RTOL = 1e-6
"""Largest relative difference tolerated between probe and object pixel sizes (same grid)."""
INPAINT_CHUNK_PATTERNS = 1024
"""Patterns repaired per call, to bound the float64 working copy of the inpainting."""


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
    geometry = object_geometry(product.object_)
    probe, modes_dropped = _probe_mode_zero(product, (height_px, width_px))
    _check_same_pixel_grid(product)

    positions = product.probe_positions
    if len(positions) != num_patterns:
        raise DataContractError(
            f'{num_patterns} diffraction patterns but {len(positions)} probe positions; pass the '
            'ReconstructInput built by ptychodus.api.reconstruct.prepare_reconstruct_input, which '
            'pairs patterns and positions by scan index'
        )
    positions_px = positions_in_object_px(geometry, positions)
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


def positions_in_object_px(
    geometry: ObjectGeometry, positions: ProbePositionSequence
) -> np.ndarray:
    """(n, 2) float64 scan positions (x, y) in object pixels, by Ptychodus's own mapping."""
    return np.stack(
        [
            np.asarray(geometry.map_probe_positions_to_object_x_px(positions), dtype=np.float64),
            np.asarray(geometry.map_probe_positions_to_object_y_px(positions), dtype=np.float64),
        ],
        axis=1,
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


def object_geometry(object_: Object) -> ObjectGeometry:
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
    outside = patches_outside_object(positions_px, pattern_size_px, width_px, height_px)
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


def patches_outside_object(
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
