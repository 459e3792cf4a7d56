"""Realistic scans for the quality benchmark: natural images, Ptychodus's zone plate, its simulator.

A scan here is what issue 14 asks the benchmark to stand on: an object from natural photographs
(amplitude from one image mapped to [0.5, 1], phase from another mapped to [-1, 1] rad; a
different image pair and crop for the training and the test scan) or a Siemens star; the probe of
one of Ptychodus's own Fresnel zone-plate presets (``ptychodus.plugins.fresnel_zone_plate``) made
by the function its zone-plate builder calls (``generate_fresnel_zone_plate_probe``), defocused;
a jittered raster or a Fermat spiral of a chosen number of points at a chosen linear overlap; and
counts from Ptychodus's simulator at a calibrated dose (:func:`simulation.simulate_with_ptychodus`).

:func:`make_realistic_scan` returns a :class:`simulation.WorkflowScan` (``write_workflow_scan``
writes it as a workflow directory). The geometry is Ptychodus's default one (10 keV, 1 m,
75 um pixels), where the default zone plate at 250 um defocus fills about 27 px of a 64-px
window and its far-field disc has a radius of about 16 px. The benchmark that uses these scans
is ``evidence/realistic.py``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from ptychodus.api.constants import energy_eV_to_wavelength_m
from ptychodus.api.plugins import PluginRegistry
from ptychodus.api.probe import ProbeGeometry
from ptychodus.api.simulate.probe import FresnelZonePlate, generate_fresnel_zone_plate_probe
from ptychodus.plugins.fresnel_zone_plate import register_plugins as register_zone_plates
from skimage import color, transform
from skimage import data as skimage_data
from skimage.util import img_as_float

from ..core import simulate
from ..errors import ConfigurationError
from .products import far_field_object_pixel_size_m, make_product
from .simulation import WorkflowScan, simulate_with_ptychodus

logger = logging.getLogger(__name__)

__all__ = [
    'AMPLITUDE_RANGE',
    'PHASE_RANGE_RAD',
    'ImagePair',
    'RealisticSpec',
    'Role',
    'ScanPattern',
    'TestObject',
    'make_realistic_scan',
    'natural_object',
    'realistic_object_shape',
    'realistic_positions',
    'scan_step_px',
    'zone_plate',
    'zone_plate_probe',
]

AMPLITUDE_RANGE = (0.5, 1.0)
"""Object amplitude range (issue 14's realistic objects)."""
PHASE_RANGE_RAD = (-1.0, 1.0)
"""Object phase range in radians (issue 14's realistic objects)."""
PTYCHODUS_PHOTON_ENERGY_EV = 10_000.0
"""Ptychodus's default ``[Products] PhotonEnergyInElectronVolts``."""
PTYCHODUS_DETECTOR_DISTANCE_M = 1.0
"""Ptychodus's default ``[Products] DetectorDistanceInMeters``."""
PTYCHODUS_DETECTOR_PIXEL_SIZE_M = 75e-6
"""Ptychodus's default ``[Detector] PixelWidthInMeters``."""
POWER_FRACTION = 0.9
"""The probe's diameter for the overlap is that of the centred disc holding 90 % of its power."""
CROP_FRACTION = 0.8
"""Side of the random image crop, as a fraction of the image's shorter side."""
JITTER_FRACTION = 0.1
"""Raster jitter, as a fraction of the step (no real stage lands on a perfect grid)."""


class Role(StrEnum):
    """Which scan of a benchmark pair: the one the model trains on, or the held-out one."""

    TRAIN = 'train'
    TEST = 'test'


class ScanPattern(StrEnum):
    """Scan trajectories."""

    RASTER = 'raster'
    """Jittered rectangular raster, row by row."""
    SPIRAL = 'spiral'
    """Fermat spiral from the centre outwards."""


class TestObject(StrEnum):
    """What the held-out (test) scan images; training always uses natural images."""

    NATURAL = 'natural'
    """Another pair of photographs than the training scan's."""
    SIEMENS = 'siemens'
    """A Siemens star (a resolution target) with the same amplitude and phase ranges."""


@dataclass(frozen=True)
class ImagePair:
    """Names of two ``skimage.data`` photographs: one for the amplitude, one for the phase."""

    amplitude_image: str
    phase_image: str


IMAGES = {
    Role.TRAIN: ImagePair(amplitude_image='camera', phase_image='astronaut'),
    Role.TEST: ImagePair(amplitude_image='coffee', phase_image='chelsea'),
}
"""Photographs of each role; bundled with scikit-image (no download)."""


@dataclass(frozen=True)
class RealisticSpec:
    """One benchmark scan geometry: probe, scan, dose, test object."""

    num_points: int = 1024
    """Scan points (diffraction patterns)."""
    pattern: ScanPattern = ScanPattern.RASTER
    num_photons: float = 5e5
    """Mean total counts per pattern (noise-free expectation)."""
    overlap_fraction: float = 0.7
    """Linear overlap ``1 - step / probe diameter`` (diameter: :data:`POWER_FRACTION`)."""
    pattern_size_px: int = 64
    zone_plate_preset: str = 'APS_Velociprobe'
    """Simple name of one of Ptychodus's zone-plate presets; its parameters are Ptychodus's
    default zone plate (180 um diameter, 50 nm outermost zone, 60 um central stop)."""
    defocus_m: float = 250e-6
    """Distance from the focus to the sample, as Ptychodus's builder's ``DefocusDistance``."""
    test_object: TestObject = TestObject.NATURAL

    def __post_init__(self) -> None:
        if self.num_points < 1:
            raise ConfigurationError(f'num_points must be at least 1, got {self.num_points}')
        if not np.isfinite(self.num_photons) or self.num_photons <= 0:
            raise ConfigurationError(f'num_photons must be positive, got {self.num_photons!r}')
        if not 0 <= self.overlap_fraction < 1:
            raise ConfigurationError(
                f'overlap_fraction must be in [0, 1), got {self.overlap_fraction!r}'
            )
        if self.pattern_size_px < 8:
            raise ConfigurationError(
                f'pattern_size_px must be at least 8, got {self.pattern_size_px}'
            )
        object.__setattr__(self, 'pattern', ScanPattern(self.pattern))
        object.__setattr__(self, 'test_object', TestObject(self.test_object))

    @property
    def wavelength_m(self) -> float:
        return float(energy_eV_to_wavelength_m(PTYCHODUS_PHOTON_ENERGY_EV))

    @property
    def pixel_size_m(self) -> float:
        """Object (and probe) pixel size of the far-field geometry."""
        return far_field_object_pixel_size_m(
            self.pattern_size_px,
            wavelength_m=self.wavelength_m,
            detector_distance_m=PTYCHODUS_DETECTOR_DISTANCE_M,
            detector_pixel_size_m=PTYCHODUS_DETECTOR_PIXEL_SIZE_M,
        )


# ------------------------------------------------------------------------------------------ probe


def zone_plate(preset: str) -> FresnelZonePlate:
    """One of Ptychodus's zone-plate presets, by simple or display name (e.g. 'APS_Velociprobe')."""
    registry = PluginRegistry()
    register_zone_plates(registry)
    try:
        return registry.fresnel_zone_plates.get_strategy_by_name(preset)
    except LookupError as exc:
        names = ', '.join(plugin.simple_name for plugin in registry.fresnel_zone_plates)
        raise ConfigurationError(
            f'Ptychodus has no zone-plate preset {preset!r}; choose one of {names}'
        ) from exc


def zone_plate_probe(spec: RealisticSpec) -> np.ndarray:
    """The preset's probe, defocused, on the object grid (unnormalised; the dose sets its scale).

    Returns
    -------
    ndarray, shape (N, N), complex128
    """
    n = spec.pattern_size_px
    pixel_m = spec.pixel_size_m
    geometry = ProbeGeometry(width_px=n, height_px=n, pixel_width_m=pixel_m, pixel_height_m=pixel_m)
    probe = generate_fresnel_zone_plate_probe(
        geometry,
        zone_plate(spec.zone_plate_preset),
        photon_wavelength_m=spec.wavelength_m,
        defocus_distance_m=spec.defocus_m,
    )
    return np.asarray(probe.get_array(), dtype=np.complex128).reshape(n, n)


def scan_step_px(spec: RealisticSpec, probe: np.ndarray) -> float:
    """Scan step giving the spec's linear overlap for this probe's 90 %-power diameter."""
    diameter_px = simulate.power_diameter_px(probe, POWER_FRACTION)
    return simulate.step_for_overlap(diameter_px, spec.overlap_fraction)


# ------------------------------------------------------------------------------------ scan, object


def _raster_grid(num_points: int) -> tuple[int, int]:
    columns = math.ceil(math.sqrt(num_points))
    return math.ceil(num_points / columns), columns


def realistic_object_shape(spec: RealisticSpec, step_px: float) -> tuple[int, int]:
    """Object size (H, W) that holds the scan with every patch inside it."""
    border = spec.pattern_size_px + 2 * simulate.SCAN_MARGIN_PX + 1
    if spec.pattern is ScanPattern.RASTER:
        rows, columns = _raster_grid(spec.num_points)
        return (
            math.ceil((rows - 1) * step_px + border),
            math.ceil((columns - 1) * step_px + border),
        )
    spacing = step_px / simulate.FERMAT_NEAREST_NEIGHBOR_RATIO
    side = math.ceil(2 * spacing * math.sqrt(spec.num_points) + border)
    return side, side


def realistic_positions(
    spec: RealisticSpec, shape: tuple[int, int], step_px: float, rng: np.random.Generator
) -> np.ndarray:
    """(num_points, 2) positions (x, y) in object pixels on ``shape``."""
    n = spec.pattern_size_px
    if spec.pattern is ScanPattern.RASTER:
        positions = simulate.raster_scan(
            shape, n, step_px, jitter_px=JITTER_FRACTION * step_px, seed=rng
        )
    else:
        positions = simulate.fermat_spiral_scan(shape, n, step_px, num_points=spec.num_points)
    if len(positions) < spec.num_points:
        raise ConfigurationError(
            f'the {spec.pattern.value} scan holds {len(positions)} points on a {shape} object, '
            f'{spec.num_points} were requested; this is a bug in realistic_object_shape'
        )
    return positions[: spec.num_points]


def _photograph(name: str) -> np.ndarray:
    loader = getattr(skimage_data, name, None)
    if loader is None or not callable(loader):
        raise ConfigurationError(f'skimage.data has no image {name!r}; try camera or astronaut')
    image = img_as_float(loader())
    if image.ndim == 3:
        image = color.rgb2gray(image[..., :3])
    return image


def _crop_resized(
    image: np.ndarray, shape: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """A random crop with the aspect of ``shape``, resized to it and rescaled to [0, 1]."""
    height, width = image.shape
    scale = CROP_FRACTION * min(height / shape[0], width / shape[1])
    crop_h, crop_w = max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    crop = image[top : top + crop_h, left : left + crop_w]
    resized = transform.resize(crop, shape, order=1, anti_aliasing=True, mode='reflect')
    low, high = float(resized.min()), float(resized.max())
    return (resized - low) / (high - low) if high > low else np.zeros(shape)


def natural_object(
    images: ImagePair, shape: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Amplitude and phase from random crops of two photographs.

    Returns
    -------
    ndarray, shape (H, W), complex128
        Amplitude spans :data:`AMPLITUDE_RANGE`, phase :data:`PHASE_RANGE_RAD` (radians).
    """
    amplitude01 = _crop_resized(_photograph(images.amplitude_image), shape, rng)
    phase01 = _crop_resized(_photograph(images.phase_image), shape, rng)
    amplitude = AMPLITUDE_RANGE[0] + (AMPLITUDE_RANGE[1] - AMPLITUDE_RANGE[0]) * amplitude01
    phase = PHASE_RANGE_RAD[0] + (PHASE_RANGE_RAD[1] - PHASE_RANGE_RAD[0]) * phase01
    return amplitude * np.exp(1j * phase)


def _object(spec: RealisticSpec, role: Role, shape, rng) -> np.ndarray:
    if role is Role.TEST and spec.test_object is TestObject.SIEMENS:
        star = simulate.siemens_star_object(
            shape, amplitude_range=AMPLITUDE_RANGE, phase_range_rad=PHASE_RANGE_RAD
        )
        return star.astype(np.complex128)
    return natural_object(IMAGES[role], shape, rng)


def make_realistic_scan(
    role: Role | str, spec: RealisticSpec | None = None, *, seed: int = 0
) -> WorkflowScan:
    """Simulate one benchmark scan with Ptychodus's zone plate and forward model.

    Parameters
    ----------
    role : Role or str
        'train' or 'test': the object (image pair or Siemens star), the crop, the jitter and the
        noise differ between the two.
    spec : RealisticSpec, optional
    seed : int
        With ``role``, seeds everything random: the same arguments give the same scan.

    Returns
    -------
    WorkflowScan
        ``truth`` (H, W) complex, ``positions_px`` (num_points, 2) (x, y) in object pixels, and
        Ptychodus's dose-calibrated simulation (counts, product with the scaled probe).
    """
    role = Role(role)
    spec = spec or RealisticSpec()
    rng = np.random.default_rng([seed, list(Role).index(role)])
    probe = zone_plate_probe(spec)
    step_px = scan_step_px(spec, probe)
    shape = realistic_object_shape(spec, step_px)
    truth = _object(spec, role, shape, rng)
    scan = simulate_realistic_scan(
        spec, truth, probe, step_px, rng, f'realistic-{role.value}-{spec.pattern.value}-{seed}'
    )
    logger.info(
        '%s scan: %d %s points, step %.2f px, object %s, %.3g counts per pattern',
        role.value,
        len(scan.positions_px),
        spec.pattern.value,
        step_px,
        shape,
        spec.num_photons,
    )
    return scan


def simulate_realistic_scan(
    spec: RealisticSpec,
    truth: np.ndarray,
    probe: np.ndarray,
    step_px: float,
    rng: np.random.Generator,
    name: str,
) -> WorkflowScan:
    """The scan of ``truth`` (on the grid :func:`realistic_object_shape` gives) with ``probe``:
    positions (:func:`realistic_positions`) and Ptychodus's dose-calibrated simulation, drawn
    from ``rng`` in that order; ``name`` names the product."""
    positions = realistic_positions(spec, (truth.shape[-2], truth.shape[-1]), step_px, rng)
    product = make_product(
        truth,
        probe,
        positions,
        pixel_size_m=spec.pixel_size_m,
        wavelength_m=spec.wavelength_m,
        detector_distance_m=PTYCHODUS_DETECTOR_DISTANCE_M,
        name=name,
    )
    simulated = simulate_with_ptychodus(product, num_photons=spec.num_photons, rng=rng)
    return WorkflowScan(truth=truth, simulated=simulated, positions_px=positions)
