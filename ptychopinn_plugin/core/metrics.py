"""Image-quality metrics for reconstructed complex objects: PSNR, SSIM and Fourier ring correlation.

Ptychography determines an object only up to a global complex scale (amplitude factor and phase
offset), so every comparison first aligns the estimate to the truth with the least-squares complex
scalar (:func:`align_complex`). Phase comparisons are wrap-safe: the truth's phase is referred to
its circular mean on the mask, and the estimate's phase is taken as that plus the wrapped phase
difference ``angle(estimate * conj(truth))`` (its circular mean removed), so values on either side
of +-pi compare as close, not 2 pi apart. NumPy, SciPy and scikit-image only.
Registration (sub-pixel shifts) is not done here; crop or register first. A linear phase ramp is
removed only on request (:func:`remove_relative_phase_ramp`), for comparisons between
reconstructions made with different probes, which the data leave free to differ by one.
"""

from __future__ import annotations

import logging
from enum import StrEnum

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity

from ..errors import ConfigurationError, DataContractError

logger = logging.getLogger(__name__)

__all__ = [
    'ComparedPart',
    'FRCThreshold',
    'MetricName',
    'align_complex',
    'compare_objects',
    'frc',
    'frc_resolution',
    'mean_phase_step',
    'psnr',
    'remove_relative_phase_ramp',
    'ssim',
]

SSIM_WINDOW_PX = 7
"""Side of the scikit-image SSIM window (its default)."""
SSIM_MIN_SIDE_PX = SSIM_WINDOW_PX
"""scikit-image's default SSIM window is 7 x 7; smaller regions cannot be scored."""
ONE_SEVENTH = 1.0 / 7.0
"""Fixed FRC threshold of Rosenthal and Henderson (2003)."""
HALF_BIT_SIGNAL = 0.2071
HALF_BIT_NOISE = 1.9102
HALF_BIT_BASE = 1.2071
HALF_BIT_NOISE_DENOMINATOR = 0.9102
"""Half-bit threshold coefficients of van Heel and Schatz (2005)."""
FLAT_PHASE_DATA_RANGE_RAD = 2.0 * np.pi
"""Peak used for phase when the truth's phase is constant on the mask (the full phase circle)."""
FLAT_DATA_RANGE = 1.0
"""Peak used when the truth is zero on the mask (nothing better is known)."""


class ComparedPart(StrEnum):
    """Which real image of a complex object a score is computed on."""

    AMPLITUDE = 'amplitude'
    PHASE = 'phase'
    COMPLEX = 'complex'


class FRCThreshold(StrEnum):
    """Criterion at which the FRC curve defines the resolution."""

    HALF_BIT = 'half-bit'
    ONE_SEVENTH = '1/7'


class MetricName(StrEnum):
    """Keys of the dictionary returned by :func:`compare_objects`."""

    AMPLITUDE_PSNR_DB = 'amplitude_psnr_db'
    PHASE_PSNR_DB = 'phase_psnr_db'
    COMPLEX_PSNR_DB = 'complex_psnr_db'
    AMPLITUDE_SSIM = 'amplitude_ssim'
    PHASE_SSIM = 'phase_ssim'


def _check_pair(
    estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    estimate = np.asarray(estimate)
    truth = np.asarray(truth)
    if estimate.ndim != 2 or estimate.shape != truth.shape:
        raise DataContractError(
            f'estimate and truth must be 2-D images of one shape, got {estimate.shape} and '
            f'{truth.shape}; crop or stitch them onto one grid first'
        )
    for name, array in (('estimate', estimate), ('truth', truth)):
        if not np.all(np.isfinite(array)):
            raise DataContractError(f'{name} holds NaN or infinite values')
    if mask is None:
        mask = np.ones(truth.shape, dtype=bool)
    else:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != truth.shape:
            raise DataContractError(f'mask has shape {mask.shape} but the images are {truth.shape}')
        if not np.any(mask):
            raise DataContractError('mask selects no pixels; nothing to compare')
    return estimate, truth, mask


def align_complex(
    estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Remove the global complex scale between ``estimate`` and ``truth``.

    Finds ``c = argmin_c sum_mask |c * estimate - truth|^2`` (a complex scalar: amplitude factor
    and phase offset) and returns ``c * estimate``.

    Parameters
    ----------
    estimate, truth : ndarray, shape (H, W), complex or real
    mask : ndarray, shape (H, W), bool, optional
        Pixels used for the fit (all by default).

    Returns
    -------
    ndarray, shape (H, W), complex128
        The aligned estimate. Identical inputs come back bit-identical (``c`` is exactly 1).
    """
    estimate, truth, mask = _check_pair(estimate, truth, mask)
    e = estimate[mask].astype(np.complex128)
    t = truth[mask].astype(np.complex128)
    # Explicit real arithmetic so that identical inputs give exactly c = 1 + 0j.
    numerator_re = np.sum(e.real * t.real + e.imag * t.imag)
    numerator_im = np.sum(e.real * t.imag - e.imag * t.real)
    denominator = np.sum(e.real * e.real + e.imag * e.imag)
    if denominator == 0:
        raise DataContractError('estimate is zero on the mask; there is no scale to fit')
    scale = complex(numerator_re / denominator, numerator_im / denominator)
    return estimate.astype(np.complex128) * scale


def mean_phase_step(values: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Amplitude-weighted mean phase step (x, y) in radians per pixel between horizontally and
    vertically adjacent pixels of ``values`` on ``mask``: the slope of its net linear phase ramp
    (wrap-safe, no unwrapping)."""
    masked = np.where(mask, np.asarray(values, dtype=np.complex128), 0)
    step_x = float(np.angle(np.sum(masked[:, 1:] * np.conj(masked[:, :-1]))))
    step_y = float(np.angle(np.sum(masked[1:, :] * np.conj(masked[:-1, :]))))
    return step_x, step_y


def remove_relative_phase_ramp(
    estimate: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """``estimate`` with the linear phase ramp relative to ``reference`` removed.

    An object reconstructed with one probe and the same object reconstructed with another probe
    differ by a linear phase ramp whenever the probes' far fields are shifted against each other
    (the product ``P(r - r_k) O(r)`` is unchanged up to a per-pattern constant phase when ``O``
    gains ``exp(i a.r)`` and ``P`` loses it), so comparing reconstructions across probes removes
    it. The ramp is the amplitude-weighted mean phase step between horizontally and vertically
    adjacent pixels of ``estimate * conj(reference)`` on the mask (wrap-safe, no unwrapping).

    Returns
    -------
    ndarray, shape (H, W), complex128
    """
    estimate, reference, mask = _check_pair(estimate, reference, mask)
    product = estimate.astype(np.complex128) * np.conj(reference.astype(np.complex128))
    step_x, step_y = mean_phase_step(product, mask)
    rows, cols = np.indices(estimate.shape)
    return estimate.astype(np.complex128) * np.exp(-1j * (step_x * cols + step_y * rows))


def _phase_difference(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``angle(estimate * conj(truth))`` in (-pi, pi], exactly 0 where the two are equal."""
    e = estimate.astype(np.complex128)
    t = truth.astype(np.complex128)
    # Separate real products (no fused multiply-add) so equal inputs give exactly zero.
    return np.arctan2(e.imag * t.real - e.real * t.imag, e.real * t.real + e.imag * t.imag)


def _parts(
    estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray, part: ComparedPart, align: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The real (or complex) images to compare for ``part``, after alignment."""
    if align:
        estimate = align_complex(estimate, truth, mask)
    if part is ComparedPart.AMPLITUDE:
        return np.abs(estimate).astype(np.float64), np.abs(truth).astype(np.float64)
    if part is ComparedPart.PHASE:
        # Refer the truth's phase to its circular mean on the mask, so an object whose phase
        # sits near +-pi is not split into two populations 2 pi apart.
        reference = np.exp(-1j * np.angle(np.mean(np.exp(1j * np.angle(truth[mask])))))
        truth_phase = np.angle(truth * reference).astype(np.float64)
        difference = _phase_difference(estimate, truth)
        # Remove the (unweighted, circular) mean phase difference over the mask; the
        # amplitude-weighted offset was already removed by the complex alignment.
        offset = np.angle(np.mean(np.exp(1j * difference[mask]))) if align else 0.0
        wrapped = np.angle(np.exp(1j * (difference - offset)))
        return truth_phase + wrapped, truth_phase
    return estimate.astype(np.complex128), truth.astype(np.complex128)


def _data_range(
    truth_part: np.ndarray, mask: np.ndarray, part: ComparedPart, data_range: float | None
) -> float:
    if data_range is not None:
        if not np.isfinite(data_range) or data_range <= 0:
            raise DataContractError(f'data_range must be positive, got {data_range!r}')
        return float(data_range)
    values = truth_part[mask]
    if part is ComparedPart.COMPLEX:
        value_range = float(np.max(np.abs(values)))
    else:
        value_range = float(np.max(values) - np.min(values))
    if value_range > 0:
        return value_range
    # A flat truth (e.g. the phase of a pure amplitude object) has no range of its own.
    fallback = FLAT_PHASE_DATA_RANGE_RAD if part is ComparedPart.PHASE else FLAT_DATA_RANGE
    if part is ComparedPart.AMPLITUDE and float(np.max(np.abs(values))) > 0:
        fallback = float(np.max(np.abs(values)))
    logger.info('truth %s is flat on the mask; using data_range %.4g', part, fallback)
    return fallback


def psnr(
    estimate: np.ndarray,
    truth: np.ndarray,
    mask: np.ndarray | None = None,
    part: ComparedPart | str = ComparedPart.PHASE,
    *,
    data_range: float | None = None,
    align: bool = True,
) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)`` over the mask.

    Parameters
    ----------
    estimate, truth : ndarray, shape (H, W), complex
    mask : ndarray, shape (H, W), bool, optional
    part : 'phase' (rad, wrap-safe, offset removed), 'amplitude' or 'complex' (``|e - t|^2``)
    data_range : float, optional
        Peak value; by default the truth's range on the mask (``max - min`` of its amplitude or
        phase; ``max |truth|`` for 'complex'). A flat truth falls back to ``2 pi`` for phase and
        ``max |truth|`` for amplitude.
    align : bool
        Remove the global complex scale first (:func:`align_complex`).

    Returns
    -------
    float
        PSNR in dB; ``inf`` when the images agree exactly.
    """
    part = _part(part)
    estimate, truth, mask = _check_pair(estimate, truth, mask)
    estimate_part, truth_part = _parts(estimate, truth, mask, part, align)
    peak = _data_range(truth_part, mask, part, data_range)
    mse = float(np.mean(np.abs(estimate_part[mask] - truth_part[mask]) ** 2))
    if mse == 0:
        return float('inf')
    return float(10.0 * np.log10(peak**2 / mse))


def ssim(
    estimate: np.ndarray,
    truth: np.ndarray,
    mask: np.ndarray | None = None,
    part: ComparedPart | str = ComparedPart.PHASE,
    *,
    data_range: float | None = None,
    align: bool = True,
) -> float:
    """Structural similarity (scikit-image, 7 x 7 window) of the amplitude or phase images.

    With a mask, SSIM is computed on the mask's bounding box and its map is averaged over the
    masked pixels whose whole 7 x 7 window lies inside the mask. ``data_range`` defaults to the
    truth's range (``max - min``) on the mask, the same peak as :func:`psnr`; pass a fixed value
    (e.g. ``2 * pi`` for phase) to compare reconstructions of different objects on one scale.

    Returns
    -------
    float
        Mean SSIM in [-1, 1]; exactly 1.0 for identical images.
    """
    part = _part(part)
    if part is ComparedPart.COMPLEX:
        raise ConfigurationError(
            "SSIM is defined for real images; use part='amplitude' or part='phase'"
        )
    estimate, truth, mask = _check_pair(estimate, truth, mask)
    estimate_part, truth_part = _parts(estimate, truth, mask, part, align)
    peak = _data_range(truth_part, mask, part, data_range)
    rows = np.flatnonzero(np.any(mask, axis=1))
    columns = np.flatnonzero(np.any(mask, axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
    if min(rows[-1] - rows[0], columns[-1] - columns[0]) + 1 < SSIM_MIN_SIDE_PX:
        raise DataContractError(
            f'the masked region spans {rows[-1] - rows[0] + 1} x {columns[-1] - columns[0] + 1} '
            f'pixels; SSIM needs at least {SSIM_MIN_SIDE_PX} x {SSIM_MIN_SIDE_PX}'
        )
    mean_ssim, ssim_map = structural_similarity(
        estimate_part[box], truth_part[box], data_range=peak, full=True
    )
    if np.all(mask):
        return float(mean_ssim)
    # only windows that lie wholly inside the mask: pixels outside it (unscanned, filled) must
    # not count against the reconstruction
    square = np.ones((SSIM_WINDOW_PX, SSIM_WINDOW_PX), dtype=bool)
    inner = ndimage.binary_erosion(mask[box], structure=square)
    if not np.any(inner):
        inner = mask[box]
    return float(np.mean(ssim_map[inner]))


def _part(part: ComparedPart | str) -> ComparedPart:
    try:
        return ComparedPart(part)
    except ValueError as exc:
        choices = ', '.join(repr(str(p)) for p in ComparedPart)
        raise ConfigurationError(f'unknown part {part!r}; choose one of {choices}') from exc


def _frc_rings(
    estimate: np.ndarray, truth: np.ndarray, apodize: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequencies (cycles/px), FRC curve and pixels per ring, rings 0 .. min(H, W) // 2."""
    estimate, truth, _ = _check_pair(estimate, truth, None)
    if np.iscomplexobj(estimate) or np.iscomplexobj(truth):
        estimate = align_complex(estimate, truth)
    height_px, width_px = truth.shape
    if apodize:
        window = np.outer(np.hanning(height_px), np.hanning(width_px))
        estimate = estimate * window
        truth = truth * window
    spectrum_e = np.fft.fftshift(np.fft.fft2(estimate))
    spectrum_t = np.fft.fftshift(np.fft.fft2(truth))
    fy = np.fft.fftshift(np.fft.fftfreq(height_px))[:, np.newaxis]
    fx = np.fft.fftshift(np.fft.fftfreq(width_px))[np.newaxis, :]
    side_px = min(height_px, width_px)
    ring = np.rint(np.hypot(fy, fx) * side_px).astype(np.int64)
    num_rings = side_px // 2 + 1
    inside = ring < num_rings
    ring = ring[inside]
    cross = np.bincount(
        ring, weights=np.real(spectrum_e * np.conj(spectrum_t))[inside], minlength=num_rings
    )
    power_e = np.bincount(ring, weights=np.abs(spectrum_e[inside]) ** 2, minlength=num_rings)
    power_t = np.bincount(ring, weights=np.abs(spectrum_t[inside]) ** 2, minlength=num_rings)
    counts = np.bincount(ring, minlength=num_rings)
    denominator = np.sqrt(power_e * power_t)
    curve = np.divide(cross, denominator, out=np.zeros(num_rings), where=denominator > 0)
    return np.arange(num_rings) / side_px, curve, counts


def frc(
    estimate: np.ndarray, truth: np.ndarray, *, apodize: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Fourier ring correlation between two images.

    Parameters
    ----------
    estimate, truth : ndarray, shape (H, W), real or complex
        Complex images are aligned first (global complex scale removed) and correlated as complex
        fields; pass ``np.angle`` or ``np.abs`` images to correlate phase or amplitude.
    apodize : bool
        Multiply both by a 2-D Hann window to suppress the edge discontinuity (default).

    Returns
    -------
    frequencies : ndarray, shape (min(H, W) // 2 + 1,), float64
        Ring centres in cycles per pixel (0 .. 0.5).
    curve : ndarray, same shape, float64
        ``Re sum F_e conj(F_t) / sqrt(sum |F_e|^2 sum |F_t|^2)`` per ring (0 where a ring has no
        power); 1 for identical images.
    """
    frequencies, curve, _ = _frc_rings(estimate, truth, apodize)
    return frequencies, curve


def frc_resolution(
    estimate: np.ndarray,
    truth: np.ndarray,
    *,
    threshold: FRCThreshold | str = FRCThreshold.HALF_BIT,
    apodize: bool = True,
) -> float:
    """Resolution in pixels where the FRC first falls below ``threshold``.

    The crossing is interpolated linearly between rings (the DC ring is skipped). The half-bit
    threshold is ``(0.2071 + 1.9102 / sqrt(n)) / (1.2071 + 0.9102 / sqrt(n))`` for a ring of ``n``
    pixels; the fixed one is 1/7. Multiply by the pixel size for metres.

    Returns
    -------
    float
        ``1 / f_cross`` in pixels; 2.0 (Nyquist) when the curve never crosses.
    """
    try:
        criterion = FRCThreshold(threshold)
    except ValueError as exc:
        choices = ', '.join(repr(str(t)) for t in FRCThreshold)
        raise ConfigurationError(f'unknown FRC threshold {threshold!r}; choose {choices}') from exc
    frequencies, curve, counts = _frc_rings(estimate, truth, apodize)
    if criterion is FRCThreshold.HALF_BIT:
        root_n = np.sqrt(np.maximum(counts, 1))
        limit = (HALF_BIT_SIGNAL + HALF_BIT_NOISE / root_n) / (
            HALF_BIT_BASE + HALF_BIT_NOISE_DENOMINATOR / root_n
        )
    else:
        limit = np.full_like(curve, ONE_SEVENTH)
    margin = curve - limit
    below = np.flatnonzero(margin[1:] < 0) + 1
    if below.size == 0:
        return 2.0
    k = int(below[0])
    if k == 1:
        crossing = frequencies[1]
    else:
        fraction = margin[k - 1] / (margin[k - 1] - margin[k])
        crossing = frequencies[k - 1] + fraction * (frequencies[k] - frequencies[k - 1])
    return float(1.0 / crossing)


def compare_objects(
    estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, float]:
    """Amplitude and phase PSNR and SSIM (and complex PSNR) after global complex alignment.

    Parameters
    ----------
    estimate, truth : ndarray, shape (H, W), complex
        Reconstruction and ground truth on one grid.
    mask : ndarray, shape (H, W), bool, optional
        Region to score, typically the scanned area (all pixels by default).

    Returns
    -------
    dict
        Keys from :class:`MetricName` (plain strings): PSNR in dB with the truth's range as peak,
        SSIM in [-1, 1]. Phase is compared in radians, wrap-safe, with the offset removed.
    """
    estimate, truth, mask = _check_pair(estimate, truth, mask)
    results = {
        MetricName.AMPLITUDE_PSNR_DB: psnr(estimate, truth, mask, ComparedPart.AMPLITUDE),
        MetricName.PHASE_PSNR_DB: psnr(estimate, truth, mask, ComparedPart.PHASE),
        MetricName.COMPLEX_PSNR_DB: psnr(estimate, truth, mask, ComparedPart.COMPLEX),
        MetricName.AMPLITUDE_SSIM: ssim(estimate, truth, mask, ComparedPart.AMPLITUDE),
        MetricName.PHASE_SSIM: ssim(estimate, truth, mask, ComparedPart.PHASE),
    }
    return {str(name): float(value) for name, value in results.items()}
