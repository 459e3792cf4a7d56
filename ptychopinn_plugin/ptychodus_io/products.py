"""Ptychodus products from arrays and contract data; product files read and written.

:func:`make_product` builds a far-field ``Product`` from an object, a probe and positions in
object pixels (positions round-trip through Ptychodus's own mapping); :func:`product_from_data`
does so for contract data; :func:`product_with_object` puts a reconstruction back on the input
product's grid; :func:`product_with_probe_power` rescales the probe to a photon count. Product
files are read and written with Ptychodus's own ``load_product`` / ``save_product``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from ptychodus.api.constants import energy_eV_to_wavelength_m, wavelength_m_to_energy_eV
from ptychodus.api.geometry import PixelGeometry
from ptychodus.api.io import load_product, save_product
from ptychodus.api.object import Object, ObjectCenter
from ptychodus.api.probe import ProbeSequence
from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence
from ptychodus.api.product import Product, ProductMetadata
from ptychodus.api.reconstruct import warn_if_propagation_regime_disagrees

from ..core.contract import TrainingData
from ..core.files import atomic_output
from ..errors import DataContractError

__all__ = [
    'DEFAULT_DETECTOR_DISTANCE_M',
    'DEFAULT_DETECTOR_PIXEL_SIZE_M',
    'DEFAULT_PHOTON_ENERGY_EV',
    'far_field_object_pixel_size_m',
    'make_product',
    'object_from_array',
    'product_from_data',
    'product_with_object',
    'product_with_probe',
    'product_with_probe_power',
    'product_with_scaled_probe',
    'read_product',
    'write_product',
]

DEFAULT_PHOTON_ENERGY_EV = 10_000.0
"""Hard X-rays (wavelength about 0.124 nm), typical of coherent-scattering beamlines."""
DEFAULT_DETECTOR_DISTANCE_M = 2.0
"""Sample-to-detector distance of a typical far-field ptychography set-up."""
DEFAULT_DETECTOR_PIXEL_SIZE_M = 75e-6
"""Pixel pitch of common hybrid photon-counting detectors (Eiger, Pilatus)."""


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


def product_with_probe(product: Product, probe: np.ndarray, *, note: str | None = None) -> Product:
    """``product`` with its first probe mode replaced by ``probe`` (N, N), rescaled to the replaced
    mode's power (the photon count stays), other modes and the rest passed through; ``note``, a
    line added to the metadata's comments (which probe this is, and why)."""
    array = np.array(product.probes.get_array(), copy=True)
    probe = np.asarray(probe, dtype=np.complex128)
    if probe.shape != array.shape[-2:]:
        raise DataContractError(
            f"the replacement probe is {probe.shape}, the product's probe {array.shape[-2:]}"
        )
    old_power = float(np.sum(np.abs(array[0, 0]) ** 2))
    new_power = float(np.sum(np.abs(probe) ** 2))
    if new_power > 0.0 and old_power > 0.0:
        probe = probe * np.sqrt(old_power / new_power)
    array[0, 0] = probe.astype(array.dtype)
    metadata = product.metadata if note is None else _commented(product.metadata, note)
    return _with_probe_array(product, array, metadata)


def product_with_used_probe(
    product: Product, probe: np.ndarray, note: str, *, replaces: bool
) -> Product:
    """``product`` carrying the probe a reconstruction used and ``note`` saying which and why:
    the probe replaces the first mode when ``replaces`` (the model's probe, or one refined on the
    scan), else the product keeps its own probe objects and only gains the note."""
    if replaces:
        return product_with_probe(product, probe, note=note)
    return product_with_comment(product, note)


def product_with_comment(product: Product, note: str) -> Product:
    """``product`` with ``note`` added as a line of its metadata's comments; all else the same
    objects."""
    return Product(
        metadata=_commented(product.metadata, note),
        probe_positions=product.probe_positions,
        probes=product.probes,
        object_=product.object_,
        losses=product.losses,
    )


def _commented(metadata: ProductMetadata, note: str) -> ProductMetadata:
    return replace(metadata, comments='\n'.join(line for line in (metadata.comments, note) if line))


def _with_probe_array(product: Product, array: np.ndarray, metadata: ProductMetadata) -> Product:
    """``product`` with the probe modes ``array`` (same geometry and OPR weights) and
    ``metadata``; positions, object and losses passed through."""
    probes = product.probes
    opr_weights = probes.get_opr_weights_or_none()
    return Product(
        metadata=metadata,
        probe_positions=product.probe_positions,
        probes=ProbeSequence(
            array=array,
            opr_weights=None if opr_weights is None else opr_weights.copy(),
            pixel_geometry=probes.get_pixel_geometry().copy(),
        ),
        object_=product.object_,
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
        comments='built by ptychopinn_plugin.ptychodus_io.products.make_product',
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


def product_from_data(data: TrainingData, object_: np.ndarray, name: str) -> Product:
    """A far-field Ptychodus ``Product`` for contract data, with ``object_`` as its object.

    The object pixel size comes from the metadata when known, else from a default far-field
    geometry (10 keV, 2 m, 75 um detector pixels); the detector distance is chosen so that
    Ptychodus's far-field relation reproduces that pixel size. Positions round-trip exactly.
    """
    n_px = data.pattern_size_px
    wavelength_m = energy_eV_to_wavelength_m(DEFAULT_PHOTON_ENERGY_EV)
    pixel_size_m = data.metadata.object_pixel_width_m or far_field_object_pixel_size_m(
        n_px, wavelength_m=wavelength_m
    )
    distance_m = pixel_size_m * n_px * DEFAULT_DETECTOR_PIXEL_SIZE_M / wavelength_m
    return make_product(
        object_,
        data.probe,
        data.positions_px,
        pixel_size_m=pixel_size_m,
        wavelength_m=wavelength_m,
        detector_distance_m=distance_m,
        name=name,
    )


def product_with_probe_power(product: Product, photons_per_pattern: float) -> Product:
    """``product`` with its probe modes rescaled to a total ``sum |P|^2`` of the given counts.

    That is the probe a unitary far-field model (pty-chi's) needs to predict ``photons_per_pattern``
    counts from a transparent object, and what Ptychodus's probe builders produce from their photon
    count. A probe simulated through ``ptychodus.api.simulate.diffraction`` is not: that simulator's
    Fresnel prefactor needs a probe about 1,800 times stronger in amplitude at N = 64 (see
    ``simulation.simulate_with_ptychodus``). PtychoPINN normalises the probe itself and is
    unaffected.
    """
    if not np.isfinite(photons_per_pattern) or photons_per_pattern <= 0:
        raise DataContractError(
            f'photons_per_pattern must be positive and finite, got {photons_per_pattern!r}'
        )
    power = float(np.sum(np.abs(product.probes.get_array()) ** 2))
    if not np.isfinite(power) or power <= 0:
        raise DataContractError(f'the probe has no power to rescale (sum |P|^2 = {power!r})')
    return product_with_scaled_probe(product, float(np.sqrt(photons_per_pattern / power)))


def product_with_scaled_probe(product: Product, amplitude_scale: float) -> Product:
    """``product`` with every probe mode multiplied by ``amplitude_scale``; photon count updated."""
    array = product.probes.get_array()
    scaled = (array * amplitude_scale).astype(array.dtype)
    metadata = replace(
        product.metadata,
        probe_photon_count=float(np.sum(np.abs(scaled[0]) ** 2)),
    )
    return _with_probe_array(product, scaled, metadata)


def read_product(path: Path) -> Product:
    """A Ptychodus product file, read with Ptychodus's reader."""
    try:
        return load_product(path)
    except (OSError, KeyError, ValueError) as exc:
        raise DataContractError(f'cannot read the Ptychodus product {path}: {exc}') from exc


def write_product(path: Path, product: Product) -> Path:
    """Write a Ptychodus product file with Ptychodus's writer, atomically."""
    with atomic_output(path) as temporary:
        save_product(temporary, product)
    return path
