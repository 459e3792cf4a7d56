"""Corrections of a stitched object that the network leaves open and the measured data settle.

The far field determines each predicted patch only up to a global phase, which stitching
reconciles (``stitching.synchronize_phases``). Once the patches agree with each other, one more
degree of freedom survives that overlaps cannot see: a linear phase ramp across the whole object.
A network with a small systematic phase tilt in every patch (a few milliradians per pixel is
typical after short trainings) stitches, consistently, into an object with a ramp of a radian or
more across the field of view, which ruins phase comparisons.

The data measure that ramp directly. The centre of mass of a diffraction pattern is the
``|psi|^2``-weighted mean phase gradient of the exit wave ``psi`` (times ``N / 2 pi`` pixels), so
the difference between the measured centres of mass and those of patches cut from the stitched
object gives the ramp to remove (:func:`fit_phase_ramp`). Inference applies it after stitching
(``InferenceConfig.phase_ramp_correction``); the stitching itself is in ``stitching.py``.
"""

from __future__ import annotations

import logging

import numpy as np

from ..core import physics
from ..core.stitching import extract_patches

logger = logging.getLogger(__name__)

__all__ = ['apply_phase_ramp', 'diffraction_centroids_px', 'fit_phase_ramp']

MAX_RAMP_PATTERNS = 4096
"""Patterns used to fit the ramp (evenly spread over the scan); two parameters need no more."""
MIN_RAMP_PATTERNS = 4
"""Fewer interior patterns than this and the ramp is left alone (too little evidence)."""
RAMP_CHUNK_PATTERNS = 256
"""Patterns per vectorised step of the fit (about 16 MiB of complex128 far fields at N = 64)."""
MAX_RAMP_SHIFT_PX = 0.25
"""Largest centre-of-mass difference (detector pixels, per axis) taken for a network's tilt.

A trained network's tilt is well below this. A larger, common offset between the measured patterns
and the model's far fields is the detector centre or the probe's centring; removing it as an
object ramp would wind the phase by several turns, so the fit warns and leaves the object alone.
The measurements behind the value: ``docs/results.md``, "Solver constants"."""


def diffraction_centroids_px(intensity: np.ndarray) -> np.ndarray:
    """Centre of mass of each pattern relative to the zero frequency at index ``N // 2``.

    Parameters
    ----------
    intensity : ndarray, shape (n, N, N), real, non-negative
        Diffraction intensities (any scale), zero frequency at ``N // 2``.

    Returns
    -------
    ndarray, shape (n, 2), float64
        ``(kx, ky)`` in detector pixels (columns, rows); NaN for an all-zero pattern.
    """
    intensity = np.asarray(intensity, dtype=np.float64)
    n_px = intensity.shape[-1]
    frequencies = np.arange(n_px) - n_px // 2
    total = intensity.sum(axis=(1, 2))
    with np.errstate(invalid='ignore', divide='ignore'):
        kx = intensity.sum(axis=1) @ frequencies / total
        ky = intensity.sum(axis=2) @ frequencies / total
    return np.stack([kx, ky], axis=1)


def fit_phase_ramp(
    object_: np.ndarray,
    weight: np.ndarray,
    positions_px: np.ndarray,
    diffraction_amplitude: np.ndarray,
    probe: np.ndarray,
) -> tuple[float, float]:
    """Linear phase ramp that makes the stitched object's far fields centre like the data's.

    Only scan points whose central ``N/2 x N/2`` window is fully covered by the stitched object
    take part (at most :data:`MAX_RAMP_PATTERNS` of them, evenly spread); the median of their
    centre-of-mass differences gives the ramp, so a few damaged patterns do not move it.

    Parameters
    ----------
    object_ : ndarray, shape (H, W), complex
        Stitched object.
    weight : ndarray, shape (H, W)
        Stitching weights; zero where no patch contributed.
    positions_px : ndarray, shape (n, 2)
        Scan positions (x, y) in object pixels.
    diffraction_amplitude : ndarray, shape (n, N, N)
        Measured amplitudes (any scale), zero frequency at ``N // 2``.
    probe : ndarray, shape (N, N), complex
        Probe on the object grid (any scale).

    Returns
    -------
    (float, float)
        ``(ax, ay)`` in radians per pixel: multiply the object by ``exp(i (ax x + ay y))``
        (:func:`apply_phase_ramp`). ``(0, 0)`` when too few patterns qualify, or (with a
        warning) when the data are centred more than :data:`MAX_RAMP_SHIFT_PX` away from the
        model's far fields.
    """
    n_px = probe.shape[-1]
    rows = _interior_points(weight > 0, positions_px, n_px // 4)
    if rows.size > MAX_RAMP_PATTERNS:
        rows = rows[np.linspace(0, rows.size - 1, MAX_RAMP_PATTERNS).astype(np.int64)]
    if rows.size < MIN_RAMP_PATTERNS:
        logger.info('phase ramp left alone: %d fully covered scan points', rows.size)
        return 0.0, 0.0
    shift = np.concatenate(
        [
            _centroid_shifts(object_, positions_px, diffraction_amplitude, probe, part)
            for part in np.array_split(rows, -(-rows.size // RAMP_CHUNK_PATTERNS))
        ]
    )
    shift = shift[np.all(np.isfinite(shift), axis=1)]
    if shift.shape[0] < MIN_RAMP_PATTERNS:
        return 0.0, 0.0
    median = np.median(shift, axis=0)
    if np.max(np.abs(median)) > MAX_RAMP_SHIFT_PX:
        logger.warning(
            'phase ramp correction skipped: the measured diffraction patterns are centred '
            '(%.2f, %.2f) detector pixels (x, y) away from what the model predicts with this '
            'probe, more than a network tilt (%.2f px). Check the diffraction pattern centre '
            '(the crop centre in Ptychodus) and that the probe belongs to these data',
            median[0],
            median[1],
            MAX_RAMP_SHIFT_PX,
        )
        return 0.0, 0.0
    ax, ay = 2 * np.pi * median / n_px
    logger.info('phase ramp from the data: %.2e, %.2e rad/px (x, y)', ax, ay)
    return float(ax), float(ay)


def _centroid_shifts(
    object_: np.ndarray,
    positions_px: np.ndarray,
    diffraction_amplitude: np.ndarray,
    probe: np.ndarray,
    rows: np.ndarray,
) -> np.ndarray:
    """Measured minus predicted diffraction centres of mass (n, 2) of the scan points ``rows``."""
    measured = np.asarray(diffraction_amplitude[rows], dtype=np.float64) ** 2
    patches = extract_patches(object_, positions_px[rows], probe.shape[-1])
    predicted = physics.farfield_amplitude(np.asarray(probe) * patches) ** 2
    return diffraction_centroids_px(measured) - diffraction_centroids_px(predicted)


def apply_phase_ramp(
    object_: np.ndarray, ramp_rad_per_px: tuple[float, float], covered: np.ndarray
) -> np.ndarray:
    """``object_ * exp(i (ax x + ay y))`` on the covered pixels (x, y about the object centre).

    Parameters
    ----------
    object_ : ndarray, shape (H, W), complex
    ramp_rad_per_px : (float, float)
        ``(ax, ay)`` from :func:`fit_phase_ramp`.
    covered : ndarray, shape (H, W), bool
        Pixels the ramp applies to (the rest, for example a fill value, stays as it is).

    Returns
    -------
    ndarray, shape (H, W), complex64
    """
    ax, ay = ramp_rad_per_px
    height, width = object_.shape
    x = (np.arange(width) - (width - 1) / 2) * ax
    y = (np.arange(height) - (height - 1) / 2) * ay
    ramp = np.exp(1j * y)[:, None] * np.exp(1j * x)[None, :]
    return np.where(covered, object_ * ramp, object_).astype(np.complex64)


def _interior_points(covered: np.ndarray, positions_px: np.ndarray, half_px: int) -> np.ndarray:
    """Indices of positions whose ``(2 half + 1)``-square window lies in ``covered`` entirely."""
    height, width = covered.shape
    holes = np.zeros((height + 1, width + 1), np.int64)
    holes[1:, 1:] = np.cumsum(np.cumsum(~covered, axis=0), axis=1)
    centres = np.rint(np.asarray(positions_px)[:, ::-1]).astype(np.int64)  # (row, col)
    low = centres - half_px
    high = centres + half_px + 1
    inside = np.all(low >= 0, axis=1) & (high[:, 0] <= height) & (high[:, 1] <= width)
    low, high = low[inside], high[inside]
    count = (
        holes[high[:, 0], high[:, 1]]
        - holes[low[:, 0], high[:, 1]]
        - holes[high[:, 0], low[:, 1]]
        + holes[low[:, 0], low[:, 1]]
    )
    return np.flatnonzero(inside)[count == 0]
