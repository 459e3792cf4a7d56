"""Synthetic ptychography datasets (objects, probes, scans, Poisson noise) for tests and demos.

Everything here is NumPy / SciPy / scikit-image and seeded. :func:`make_scan` is the one-call entry
point; the pieces (object generators, :func:`disk_probe`, :func:`raster_scan`,
:func:`fermat_spiral_scan`, :func:`simulate_dataset`) combine freely. The forward model used to
simulate is the plain one: counts ~ Poisson(c * |F(probe * patch)|**2) with ``F`` the
Parseval-preserving far field of ``physics.py`` and ``c`` chosen so that the mean total count per
pattern is ``num_photons``. A simulator built on Ptychodus's own models is
``ptychodus_io/simulation.py``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import numpy as np
from scipy import ndimage
from skimage import data as skimage_data
from skimage import draw, transform
from skimage.util import img_as_float

from ..errors import ConfigurationError, DataContractError
from .contract import DiffractionQuantity, ScanMetadata, TrainingData
from .physics import farfield_amplitude, power_diameter_px
from .stitching import extract_patches

logger = logging.getLogger(__name__)

_E = TypeVar('_E', bound=StrEnum)

__all__ = [
    'DEFAULT_AMPLITUDE_RANGE',
    'DEFAULT_PHASE_RANGE_RAD',
    'ObjectKind',
    'ScanKind',
    'SimulatedScan',
    'disk_probe',
    'fermat_spiral_scan',
    'image_object',
    'lines_object',
    'make_object',
    'make_scan',
    'power_diameter_px',
    'raster_scan',
    'siemens_star_object',
    'simulate_dataset',
    'smooth_random_object',
    'step_for_overlap',
]

DEFAULT_AMPLITUDE_RANGE = (0.5, 1.0)
"""Object amplitude (transmission modulus) range of every generator, unless overridden."""
DEFAULT_PHASE_RANGE_RAD = (-np.pi / 2, np.pi / 2)
"""Object phase range in radians of every generator, unless overridden (no wrapping)."""
SCAN_MARGIN_PX = 1.0
"""Extra distance kept between every patch and the object border (room for sub-pixel cutting)."""
FERMAT_NEAREST_NEIGHBOR_RATIO = 1.69
"""Median nearest-neighbour distance of the Fermat spiral ``r = c sqrt(k)``, in units of ``c``
(measured numerically); used so that the spiral's neighbour distance equals the requested step."""
GOLDEN_ANGLE_RAD = np.pi * (3.0 - np.sqrt(5.0))
SUPERSAMPLING = 4
"""Sub-samples per pixel and axis when drawing the Siemens star (anti-aliasing)."""
LINE_AREA_PX2 = 2500
"""Default object area per line segment of :func:`lines_object`, in square pixels."""
LINE_BLUR_PX = 0.7
"""Gaussian blur of the drawn lines (softens them to about two pixels wide)."""
DEFAULT_STEP_FRACTION = 0.25
"""Default scan step of :func:`make_scan`, as a fraction of N (N/4: about 50 % linear overlap)."""
DEFAULT_JITTER_FRACTION = 0.1
"""Default raster jitter of :func:`make_scan`, as a fraction of the step."""
PROBE_RADIUS_FRACTION = 0.2
"""Aperture radius of :func:`make_scan`'s probe, as a fraction of N."""
PROBE_PROPAGATION_FRACTION = 0.4
"""Fresnel propagation ``lambda z / pixel**2`` of :func:`make_scan`'s probe, as a fraction of N."""
PROBE_ABERRATION_RAD = 3.0
"""Aperture aberration of :func:`make_scan`'s probe (radians): no real probe is centrosymmetric."""


class ObjectKind(StrEnum):
    """Synthetic objects of :func:`make_object`."""

    CAMERA = 'camera'
    """scikit-image's camera (amplitude) and coins (phase) images."""
    SMOOTH = 'smooth'
    """Gaussian-filtered random noise."""
    LINES = 'lines'
    """Random anti-aliased line segments."""
    SIEMENS = 'siemens'
    """A Siemens star."""


class ScanKind(StrEnum):
    """Scan patterns of :func:`make_scan`."""

    RASTER = 'raster'
    SPIRAL = 'spiral'


# ---------------------------------------------------------------------------------------- objects


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    if len(shape) != 2 or min(shape) < 1:
        raise ConfigurationError(f'object shape must be two positive sizes (H, W), got {shape!r}')
    return int(shape[0]), int(shape[1])


def _complex_object(
    amplitude01: np.ndarray,
    phase01: np.ndarray,
    amplitude_range: tuple[float, float],
    phase_range_rad: tuple[float, float],
) -> np.ndarray:
    """Map two [0, 1] maps linearly onto the amplitude and phase ranges."""
    low_amp, high_amp = amplitude_range
    low_phase, high_phase = phase_range_rad
    if not 0 <= low_amp <= high_amp:
        raise ConfigurationError(
            f'amplitude_range must satisfy 0 <= low <= high, got {amplitude_range!r}'
        )
    if not low_phase <= high_phase:
        raise ConfigurationError(
            f'phase_range_rad must satisfy low <= high, got {phase_range_rad!r}'
        )
    amplitude = low_amp + (high_amp - low_amp) * np.clip(amplitude01, 0.0, 1.0)
    phase = low_phase + (high_phase - low_phase) * np.clip(phase01, 0.0, 1.0)
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def _rescale01(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high == low:
        return np.zeros_like(values, dtype=np.float64)
    return (values - low) / (high - low)


def image_object(
    shape: tuple[int, int],
    *,
    amplitude_image: str = 'camera',
    phase_image: str = 'coins',
    amplitude_range: tuple[float, float] = DEFAULT_AMPLITUDE_RANGE,
    phase_range_rad: tuple[float, float] = DEFAULT_PHASE_RANGE_RAD,
) -> np.ndarray:
    """Object from two of scikit-image's bundled grey images, resized to ``shape``.

    Parameters
    ----------
    shape : (int, int)
        Object size (H, W) in pixels.
    amplitude_image, phase_image : str
        Names of 2-D images in ``skimage.data`` (e.g. 'camera', 'moon', 'coins', 'brick').
    amplitude_range, phase_range_rad : (float, float)
        Each image is min-max rescaled onto its range (amplitude dimensionless, phase radians).

    Returns
    -------
    ndarray, shape (H, W), complex64
    """
    shape = _check_shape(shape)
    maps = [_bundled_image(name, shape) for name in (amplitude_image, phase_image)]
    return _complex_object(maps[0], maps[1], amplitude_range, phase_range_rad)


def _bundled_image(name: str, shape: tuple[int, int]) -> np.ndarray:
    loader = getattr(skimage_data, name, None)
    if loader is None or not callable(loader):
        raise ConfigurationError(f'skimage.data has no image {name!r}; try camera, moon or coins')
    image = img_as_float(loader())
    if image.ndim != 2:
        raise ConfigurationError(f'skimage.data.{name} is not a grey image (shape {image.shape})')
    resized = transform.resize(image, shape, order=1, anti_aliasing=True, mode='reflect')
    return _rescale01(resized)


def smooth_random_object(
    shape: tuple[int, int],
    *,
    correlation_px: float = 8.0,
    seed: int | np.random.Generator = 0,
    amplitude_range: tuple[float, float] = DEFAULT_AMPLITUDE_RANGE,
    phase_range_rad: tuple[float, float] = DEFAULT_PHASE_RANGE_RAD,
) -> np.ndarray:
    """Object whose amplitude and phase are independent Gaussian-filtered white noise.

    Parameters
    ----------
    shape : (int, int)
        Object size (H, W) in pixels.
    correlation_px : float
        Standard deviation of the Gaussian filter, in pixels (feature size).
    seed : int or numpy Generator
    amplitude_range, phase_range_rad : (float, float)
        Each filtered field is min-max rescaled onto its range.

    Returns
    -------
    ndarray, shape (H, W), complex64
    """
    shape = _check_shape(shape)
    if not correlation_px > 0:
        raise ConfigurationError(f'correlation_px must be positive, got {correlation_px!r}')
    rng = np.random.default_rng(seed)
    maps = [
        _rescale01(ndimage.gaussian_filter(rng.standard_normal(shape), correlation_px, mode='wrap'))
        for _ in range(2)
    ]
    return _complex_object(maps[0], maps[1], amplitude_range, phase_range_rad)


def lines_object(
    shape: tuple[int, int],
    *,
    num_lines: int | None = None,
    seed: int | np.random.Generator = 0,
    amplitude_range: tuple[float, float] = DEFAULT_AMPLITUDE_RANGE,
    phase_range_rad: tuple[float, float] = DEFAULT_PHASE_RANGE_RAD,
) -> np.ndarray:
    """Object of random anti-aliased line segments: low amplitude and high phase on the lines.

    Parameters
    ----------
    shape : (int, int)
        Object size (H, W) in pixels.
    num_lines : int, optional
        Number of segments; default one per ``LINE_AREA_PX2`` square pixels.
    seed : int or numpy Generator
    amplitude_range, phase_range_rad : (float, float)
        Background: highest amplitude, lowest phase; line cores: lowest amplitude, highest phase.

    Returns
    -------
    ndarray, shape (H, W), complex64
    """
    height, width = _check_shape(shape)
    rng = np.random.default_rng(seed)
    if num_lines is None:
        num_lines = max(1, height * width // LINE_AREA_PX2)
    lines = np.zeros((height, width), dtype=np.float64)
    for _ in range(num_lines):
        r0, r1 = rng.integers(0, height, size=2)
        c0, c1 = rng.integers(0, width, size=2)
        rows, cols, values = draw.line_aa(int(r0), int(c0), int(r1), int(c1))
        lines[rows, cols] = np.maximum(lines[rows, cols], values)
    lines = ndimage.gaussian_filter(lines, LINE_BLUR_PX)
    lines = lines / max(float(lines.max()), 1e-12)
    return _complex_object(1.0 - lines, lines, amplitude_range, phase_range_rad)


def siemens_star_object(
    shape: tuple[int, int],
    *,
    num_spokes: int = 36,
    amplitude_range: tuple[float, float] = DEFAULT_AMPLITUDE_RANGE,
    phase_range_rad: tuple[float, float] = DEFAULT_PHASE_RANGE_RAD,
) -> np.ndarray:
    """Siemens star of ``num_spokes`` dark, phase-shifting spokes, anti-aliased.

    The star is centred at ``((H-1)/2, (W-1)/2)`` with radius 0.45 min(H, W); outside it and
    between spokes the object has the highest amplitude and the lowest phase.

    Returns
    -------
    ndarray, shape (H, W), complex64
    """
    height, width = _check_shape(shape)
    if num_spokes < 1:
        raise ConfigurationError(f'num_spokes must be at least 1, got {num_spokes!r}')
    step = 1.0 / SUPERSAMPLING
    offsets = (np.arange(SUPERSAMPLING) + 0.5) * step - 0.5
    rows = (np.arange(height)[:, None] + offsets[None, :]).ravel() - (height - 1) / 2
    cols = (np.arange(width)[:, None] + offsets[None, :]).ravel() - (width - 1) / 2
    radius = np.hypot(rows[:, None], cols[None, :])
    angle = np.arctan2(rows[:, None], cols[None, :])
    spokes = (np.cos(num_spokes * angle) > 0) & (radius <= 0.45 * min(height, width))
    star = transform.downscale_local_mean(spokes.astype(np.float64), SUPERSAMPLING)
    return _complex_object(1.0 - star, star, amplitude_range, phase_range_rad)


def make_object(
    kind: ObjectKind | str, shape: tuple[int, int], *, seed: int | np.random.Generator = 0
) -> np.ndarray:
    """Object of the given kind with default ranges (complex64, shape ``shape``)."""
    kind = _enum(ObjectKind, kind, 'object kind')
    if kind is ObjectKind.CAMERA:
        return image_object(shape)
    if kind is ObjectKind.SMOOTH:
        return smooth_random_object(shape, seed=seed)
    if kind is ObjectKind.LINES:
        return lines_object(shape, seed=seed)
    return siemens_star_object(shape)


# ----------------------------------------------------------------------------------------- probes


def disk_probe(
    n_px: int,
    radius_px: float | None = None,
    *,
    propagation_px2: float = 0.0,
    aberration_rad: float = 0.0,
) -> np.ndarray:
    """Disk aperture of unit amplitude, optionally Fresnel-propagated (a defocused probe).

    The aperture is ``clip(radius + 0.5 - r, 0, 1)`` with ``r`` the distance from ``(N-1)/2`` (a one
    pixel soft edge). Propagation multiplies its spectrum by ``exp(-i pi P (fx**2 + fy**2))``, with
    ``fx, fy`` in cycles per pixel (``numpy.fft.fftfreq``) and ``P = lambda z / pixel_size**2``: the
    paraxial transfer function, unitary, which keeps the probe centred at ``(N-1)/2``. Fringes
    appear for Fresnel numbers ``radius**2 / P`` of a few to a few tens.

    Parameters
    ----------
    n_px : int
        Probe side N in pixels.
    radius_px : float, optional
        Aperture radius in pixels; default N/4.
    propagation_px2 : float
        ``P`` in square pixels, between 0 (no propagation) and N (the transfer function aliases
        beyond).

    aberration_rad : float
        Peak phase, in radians, of an aberration of the aperture (coma ``x^3 + y^3 / 2`` plus
        astigmatism ``x y``, with x, y in units of the radius). It breaks the centrosymmetry that
        no real probe has: with a centrosymmetric probe every single pattern also fits the
        flipped, conjugated object (the twin image), and a gridsize-1 network cannot tell them
        apart (measured: phase SSIM 0.13 with a symmetric probe, 0.43 with 3 rad of aberration,
        after the same short training).

    Returns
    -------
    ndarray, shape (N, N), complex64
    """
    if n_px < 2:
        raise ConfigurationError(f'probe size must be at least 2 pixels, got {n_px!r}')
    radius = n_px / 4 if radius_px is None else float(radius_px)
    if not 0 < radius <= n_px / 2:
        raise ConfigurationError(
            f'radius_px must be in (0, N/2] = (0, {n_px / 2}], got {radius_px!r}'
        )
    if not 0 <= propagation_px2 <= n_px:
        raise ConfigurationError(
            f'propagation_px2 must be in [0, N] = [0, {n_px}] (beyond N the Fresnel transfer '
            f'function aliases), got {propagation_px2!r}; use a larger N or less propagation'
        )
    index = np.arange(n_px, dtype=np.float64) - (n_px - 1) / 2
    distance = np.hypot(index[:, None], index[None, :])
    probe = np.clip(radius + 0.5 - distance, 0.0, 1.0).astype(np.complex128)
    if aberration_rad:
        x, y = index[None, :] / radius, index[:, None] / radius
        probe *= np.exp(1j * aberration_rad * (x**3 + 0.5 * y**3 + x * y))
    if propagation_px2 > 0:
        freq = np.fft.fftfreq(n_px)
        transfer = np.exp(-1j * np.pi * propagation_px2 * (freq[:, None] ** 2 + freq[None, :] ** 2))
        probe = np.fft.ifft2(np.fft.fft2(probe) * transfer)
    return probe.astype(np.complex64)


# ------------------------------------------------------------------------------------------ scans


def step_for_overlap(probe_diameter_px: float, overlap_fraction: float) -> float:
    """Scan step giving a linear overlap ``1 - step / diameter`` between neighbouring probes."""
    if not 0 <= overlap_fraction < 1:
        raise ConfigurationError(f'overlap_fraction must be in [0, 1), got {overlap_fraction!r}')
    if not probe_diameter_px > 0:
        raise ConfigurationError(f'probe_diameter_px must be positive, got {probe_diameter_px!r}')
    return probe_diameter_px * (1.0 - overlap_fraction)


def _allowed_box(
    object_shape: tuple[int, int], pattern_size_px: int, margin_px: float
) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) of scan points whose patch lies inside the object."""
    height, width = _check_shape(object_shape)
    half = (pattern_size_px - 1) / 2 + margin_px
    box = (half, width - 1 - half, half, height - 1 - half)
    if box[1] < box[0] or box[3] < box[2]:
        raise ConfigurationError(
            f'an object of {height} x {width} pixels cannot hold a {pattern_size_px} px patch with '
            f'a {margin_px} px margin; make the object at least '
            f'{math.ceil(pattern_size_px + 2 * margin_px)} pixels on each side'
        )
    return box


def raster_scan(
    object_shape: tuple[int, int],
    pattern_size_px: int,
    step_px: float,
    *,
    jitter_px: float = 0.0,
    seed: int | np.random.Generator = 0,
    margin_px: float = SCAN_MARGIN_PX,
) -> np.ndarray:
    """Rectangular raster, centred on the object, every patch inside it.

    Parameters
    ----------
    object_shape : (int, int)
        Object size (H, W) in pixels.
    pattern_size_px : int
        Patch side N.
    step_px : float
        Grid spacing in pixels, both axes.
    jitter_px : float
        Each point moves by a uniform random amount in ``[-jitter, jitter]`` per axis, then is
        clipped so its patch stays inside the object.
    seed : int or numpy Generator
        Seeds the jitter.
    margin_px : float
        Distance kept between every patch and the object border.

    Returns
    -------
    ndarray, shape (n, 2), float64
        Positions (x, y) in object pixels, row by row.
    """
    if not step_px > 0:
        raise ConfigurationError(f'step_px must be positive, got {step_px!r}')
    x_min, x_max, y_min, y_max = _allowed_box(object_shape, pattern_size_px, margin_px)
    axes = []
    for low, high in ((x_min, x_max), (y_min, y_max)):
        count = math.floor((high - low) / step_px + 1e-9) + 1
        start = low + (high - low - (count - 1) * step_px) / 2
        axes.append(start + step_px * np.arange(count))
    grid_y, grid_x = np.meshgrid(axes[1], axes[0], indexing='ij')
    positions = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
    if jitter_px > 0:
        rng = np.random.default_rng(seed)
        positions = positions + rng.uniform(-jitter_px, jitter_px, size=positions.shape)
        positions[:, 0] = np.clip(positions[:, 0], x_min, x_max)
        positions[:, 1] = np.clip(positions[:, 1], y_min, y_max)
    return positions


def fermat_spiral_scan(
    object_shape: tuple[int, int],
    pattern_size_px: int,
    step_px: float,
    *,
    num_points: int | None = None,
    margin_px: float = SCAN_MARGIN_PX,
) -> np.ndarray:
    """Fermat spiral centred on the object, median nearest-neighbour distance about ``step_px``.

    Point k sits at radius ``c sqrt(k)`` and angle ``k`` times the golden angle, with
    ``c = step_px / FERMAT_NEAREST_NEIGHBOR_RATIO``; points whose patch would leave the object are
    dropped.

    Parameters
    ----------
    object_shape : (int, int)
        Object size (H, W) in pixels.
    pattern_size_px : int
        Patch side N.
    step_px : float
        Desired nearest-neighbour distance in pixels.
    num_points : int, optional
        Keep the innermost ``num_points``; default every point that fits.
    margin_px : float
        Distance kept between every patch and the object border.

    Returns
    -------
    ndarray, shape (n, 2), float64
        Positions (x, y) in object pixels, from the centre outwards.
    """
    if not step_px > 0:
        raise ConfigurationError(f'step_px must be positive, got {step_px!r}')
    x_min, x_max, y_min, y_max = _allowed_box(object_shape, pattern_size_px, margin_px)
    spacing = step_px / FERMAT_NEAREST_NEIGHBOR_RATIO
    max_radius = math.hypot(x_max - x_min, y_max - y_min) / 2
    index = np.arange(int((max_radius / spacing) ** 2) + 1, dtype=np.float64)
    radius = spacing * np.sqrt(index)
    angle = index * GOLDEN_ANGLE_RAD
    x = (x_min + x_max) / 2 + radius * np.cos(angle)
    y = (y_min + y_max) / 2 + radius * np.sin(angle)
    inside = (x >= x_min) & (x <= x_max) & (y >= y_min) & (y <= y_max)
    positions = np.stack([x[inside], y[inside]], axis=1)
    if num_points is not None:
        if num_points > len(positions):
            raise ConfigurationError(
                f'only {len(positions)} spiral points with step {step_px} px fit in the object, '
                f'{num_points} were requested; enlarge the object or reduce the step'
            )
        positions = positions[:num_points]
    return positions


# -------------------------------------------------------------------------------------- simulation


def simulate_dataset(
    object_: np.ndarray,
    probe: np.ndarray,
    positions_px: np.ndarray,
    num_photons: float,
    *,
    seed: int | np.random.Generator = 0,
    poisson: bool = True,
    source: str = 'ptychopinn_plugin.core.simulate',
) -> TrainingData:
    """Simulate diffraction counts of ``object_`` scanned by ``probe`` at ``positions_px``.

    Expected counts are ``c * |F(probe * patch)|**2`` (``F``: ``physics.farfield_amplitude``, zero
    frequency at N // 2) with ``c = num_photons / mean_i sum |F_i|**2``, so the mean total expected
    count per pattern is ``num_photons``. The counts are a Poisson draw of them (or the expected
    values themselves without ``poisson``).

    Parameters
    ----------
    object_ : ndarray, shape (H, W), complex
        Object transmission.
    probe : ndarray, shape (N, N), complex
        Probe on the object grid, centred at ``(N-1)/2`` (used as given, not normalised).
    positions_px : ndarray, shape (n, 2), float
        Scan positions (x, y) in object pixels; every patch must lie inside the object.
    num_photons : float
        Mean total counts per pattern before noise.
    seed : int or numpy Generator
        Seeds the Poisson noise.
    poisson : bool
        Draw Poisson counts (True) or keep the expected counts (False).
    source : str
        Recorded in the metadata.

    Returns
    -------
    TrainingData
        ``diffraction_amplitude = sqrt(counts)``; ``ground_truth_patches`` the patches cut by
        ``stitching.extract_patches``; ``object_guess`` the true object; metadata with source
        quantity counts and ``num_photons`` measured as the mean total counts.
    """
    if not num_photons > 0 or not math.isfinite(num_photons):
        raise ConfigurationError(f'num_photons must be positive and finite, got {num_photons!r}')
    object_ = np.asarray(object_)
    probe = np.asarray(probe)
    if object_.ndim != 2:
        raise DataContractError(f'the object must be a 2-D array, got shape {object_.shape}')
    if probe.ndim != 2 or probe.shape[0] != probe.shape[1]:
        raise DataContractError(f'the probe must be square and 2-D, got shape {probe.shape}')
    patches = extract_patches(object_, positions_px, probe.shape[0])
    intensity = farfield_amplitude(probe.astype(np.complex128) * patches) ** 2
    mean_total = float(np.mean(np.sum(intensity, axis=(1, 2))))
    if mean_total == 0.0:
        raise DataContractError('the probe does not illuminate the object: every pattern is zero')
    expected = intensity * (num_photons / mean_total)
    counts = np.random.default_rng(seed).poisson(expected) if poisson else expected
    counts = np.asarray(counts, dtype=np.float64)
    metadata = ScanMetadata(
        source_quantity=DiffractionQuantity.COUNTS,
        num_photons=float(np.mean(np.sum(counts, axis=(1, 2)))),
        source=source,
    )
    logger.info(
        'simulated %d patterns of %d px, %.3g mean counts',
        len(counts),
        probe.shape[0],
        metadata.num_photons,
    )
    return TrainingData(
        diffraction_amplitude=np.sqrt(counts).astype(np.float32),
        positions_px=np.asarray(positions_px, dtype=np.float64),
        probe=probe.astype(np.complex64),
        object_guess=object_.astype(np.complex64),
        ground_truth_patches=patches,
        metadata=metadata,
    )


@dataclass(frozen=True, eq=False)
class SimulatedScan:
    """A simulated scan and how it was made.

    Attributes
    ----------
    data : TrainingData
        The dataset (its ``object_guess`` is the true object, its ``probe`` the true probe).
    object_kind : ObjectKind
    scan_kind : ScanKind
    step_px : float
        Scan step (raster spacing or spiral neighbour distance), in pixels.
    seed : int
    """

    data: TrainingData
    object_kind: ObjectKind
    scan_kind: ScanKind
    step_px: float
    seed: int

    @property
    def object_(self) -> np.ndarray:
        """The true object, (H, W) complex64."""
        if self.data.object_guess is None:
            raise DataContractError('this simulated scan lost its object')
        return self.data.object_guess

    @property
    def probe(self) -> np.ndarray:
        """The true probe, (N, N) complex64."""
        return self.data.probe


def make_scan(
    kind: ObjectKind | str = ObjectKind.CAMERA,
    num_patterns: int = 1024,
    pattern_size_px: int = 64,
    num_photons: float = 1e6,
    seed: int = 0,
    *,
    scan: ScanKind | str = ScanKind.RASTER,
    step_px: float | None = None,
    poisson: bool = True,
) -> SimulatedScan:
    """Simulate a whole scan in one call: object sized to fit, defocused disk probe, noise.

    The step defaults to N/4 (about 50 % linear overlap of the probe). A raster has
    ``ceil(sqrt(n))`` columns and enough rows for at least ``num_patterns`` points (jittered by a
    tenth of the step); a spiral has exactly ``num_patterns``. The probe is a disk of radius
    0.2 N aberrated by 3 rad and propagated with ``P = 0.4 N`` (:func:`disk_probe`). Object, scan
    jitter and noise use independent streams spawned from ``seed``.
    """
    object_kind = _enum(ObjectKind, kind, 'object kind')
    scan_kind = _enum(ScanKind, scan, 'scan kind')
    if num_patterns < 1:
        raise ConfigurationError(f'num_patterns must be at least 1, got {num_patterns!r}')
    step = DEFAULT_STEP_FRACTION * pattern_size_px if step_px is None else float(step_px)
    object_seed, jitter_seed, noise_seed = np.random.SeedSequence(seed).spawn(3)
    border = pattern_size_px + 2 * SCAN_MARGIN_PX
    if scan_kind is ScanKind.RASTER:
        columns = math.ceil(math.sqrt(num_patterns))
        rows = math.ceil(num_patterns / columns)
        shape = (math.ceil((rows - 1) * step + border), math.ceil((columns - 1) * step + border))
    else:
        spiral_radius = step / FERMAT_NEAREST_NEIGHBOR_RATIO * math.sqrt(num_patterns)
        side = math.ceil(2 * spiral_radius + border)
        shape = (side, side)
    object_ = make_object(object_kind, shape, seed=np.random.default_rng(object_seed))
    if scan_kind is ScanKind.RASTER:
        positions = raster_scan(
            shape,
            pattern_size_px,
            step,
            jitter_px=DEFAULT_JITTER_FRACTION * step,
            seed=np.random.default_rng(jitter_seed),
        )
    else:
        positions = fermat_spiral_scan(shape, pattern_size_px, step, num_points=num_patterns)
    probe = disk_probe(
        pattern_size_px,
        PROBE_RADIUS_FRACTION * pattern_size_px,
        propagation_px2=PROBE_PROPAGATION_FRACTION * pattern_size_px,
        aberration_rad=PROBE_ABERRATION_RAD,
    )
    data = simulate_dataset(
        object_,
        probe,
        positions,
        num_photons,
        seed=np.random.default_rng(noise_seed),
        poisson=poisson,
        source=f'simulate.make_scan({object_kind.value!r}, {scan_kind.value}, seed={seed})',
    )
    return SimulatedScan(
        data=data, object_kind=object_kind, scan_kind=scan_kind, step_px=step, seed=seed
    )


def _enum(enum: type[_E], value: _E | str, what: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        choices = ', '.join(member.value for member in enum)
        raise ConfigurationError(f'unknown {what} {value!r}; choose one of {choices}') from None
