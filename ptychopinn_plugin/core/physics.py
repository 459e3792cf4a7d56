"""NumPy reference forward model of PtychoPINN: masks, probe scaling, far field, canvas, losses.

This module is the oracle that the PyTorch and TensorFlow engines are tested against, so every step
is defined simply enough to be reproduced in float32 to about 1e-5 relative. It computes in
float64 / complex128. The network itself lives in the engines; grouping (offsets) in
``grouping.py``; patch cutting and stitching in ``stitching.py``; synthetic data in ``simulate.py``.

Conventions (shared with ``contract.py``):

- a patch of side N is centred on its scan point at patch index ``(N-1)/2``; the probe and the disk
  mask are centred there too;
- offsets are ``(dx, dy)`` in object pixels, column 0 = x (column), column 1 = y (row), the
  position of a group member minus the group centre;
- far fields have their zero frequency at index ``N // 2``;
- predicted detector counts are ``K**2 * |F(probe_n * O)|**2`` with ``K`` the intensity scale.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ..config import ModelConfig
from ..errors import ConfigurationError, DataContractError

logger = logging.getLogger(__name__)

__all__ = [
    'CANVAS_EPSILON',
    'CANVAS_MARGIN_ROUNDING_PX',
    'POISSON_EPSILON',
    'TYPICAL_OBJECT_AMPLITUDE',
    'canvas_size_px',
    'count_targets',
    'dataset_normalization',
    'disk_mask',
    'exit_wave',
    'extract_from_canvas',
    'farfield_amplitude',
    'forward_amplitude',
    'gaussian_kernel_1d',
    'initial_intensity_scale',
    'mean_absolute_error',
    'merge_on_canvas',
    'normalize_probe',
    'object_support_mask',
    'padded_canvas_size_px',
    'pinn_loss',
    'poisson_nll',
    'power_diameter_px',
    'realspace_mae',
    'realspace_mse',
    'smooth_patches',
    'smoothing_matrix',
    'translate_bilinear',
    'wrapped_phase_difference',
]

DISK_RADIUS_FRACTION = 0.25
"""Radius of the disk mask as a fraction of the pattern size N (radius N/4)."""
GAUSSIAN_RADIUS_SIGMAS = 3.0
"""Gaussian kernels extend ``ceil(3 sigma)`` pixels each side of their centre."""
TYPICAL_OBJECT_AMPLITUDE = 0.5
"""Object amplitude the initial intensity scale is calibrated for (the sigmoid's midpoint)."""
POISSON_EPSILON = 1e-6
"""Added to predicted counts before the logarithm of the Poisson likelihood (keeps it finite)."""
CANVAS_EPSILON = 1e-3
"""Canvas pixels whose summed support weight is at most this are set to zero, not divided."""


def disk_mask(n_px: int) -> np.ndarray:
    """Disk of radius N/4 centred at ``((N-1)/2, (N-1)/2)``.

    A pixel ``(i, j)`` is inside when ``(i - c)**2 + (j - c)**2 <= (N/4)**2`` with ``c = (N-1)/2``.

    Parameters
    ----------
    n_px : int
        Side N of the square array, in pixels.

    Returns
    -------
    ndarray, shape (N, N), float64
        1 inside the disk, 0 outside.
    """
    _check_size(n_px)
    center = (n_px - 1) / 2
    index = np.arange(n_px, dtype=np.float64) - center
    radius_sq = (DISK_RADIUS_FRACTION * n_px) ** 2
    return (index[:, None] ** 2 + index[None, :] ** 2 <= radius_sq).astype(np.float64)


def object_support_mask(n_px: int, pad_object: bool, probe_big: bool) -> np.ndarray:
    """Where a network patch holds object (the weight it carries on the overlap canvas).

    Parameters
    ----------
    n_px : int
        Side N of the patch, in pixels (a multiple of 4).
    pad_object, probe_big : bool
        The model's flags (see :class:`~ptychopinn_plugin.config.ModelConfig`).

    Returns
    -------
    ndarray, shape (N, N), float64
        With ``pad_object`` and not ``probe_big``: ones on patch indices ``N/4 .. 3N/4 - 1`` in both
        axes (the central N/2 x N/2 square), zeros elsewhere. Otherwise all ones.
    """
    _check_size(n_px)
    if pad_object and not probe_big:
        mask = np.zeros((n_px, n_px), dtype=np.float64)
        mask[n_px // 4 : 3 * n_px // 4, n_px // 4 : 3 * n_px // 4] = 1.0
        return mask
    return np.ones((n_px, n_px), dtype=np.float64)


def normalize_probe(probe: np.ndarray, probe_scale: float) -> np.ndarray:
    """Scale a probe so that its mean amplitude inside the N/4 disk is ``1 / probe_scale``.

    Parameters
    ----------
    probe : ndarray, shape (N, N), complex
        Probe on the object pixel grid, centred at ``(N-1)/2``; any units.
    probe_scale : float
        Positive divisor (Ptychodus's default is 4).

    Returns
    -------
    ndarray, shape (N, N), complex128
        ``probe / (probe_scale * mean(|probe| over disk_mask(N) == 1))``.
    """
    probe = np.asarray(probe, dtype=np.complex128)
    if probe.ndim != 2 or probe.shape[0] != probe.shape[1]:
        raise DataContractError(f'probe must be a square 2-D array, got shape {probe.shape}')
    if not probe_scale > 0:
        raise ConfigurationError(f'probe_scale must be positive, got {probe_scale!r}')
    inside = disk_mask(probe.shape[0]) > 0
    mean_amplitude = float(np.mean(np.abs(probe[inside])))
    if mean_amplitude == 0.0:
        raise DataContractError(
            'the probe is zero everywhere inside the central disk of radius N/4; '
            'centre the probe at (N-1)/2 on the object grid'
        )
    return probe / (probe_scale * mean_amplitude)


def gaussian_kernel_1d(sigma_px: float) -> np.ndarray:
    """Normalised 1-D Gaussian kernel.

    Parameters
    ----------
    sigma_px : float
        Standard deviation in pixels, non-negative.

    Returns
    -------
    ndarray, shape (2 r + 1,), float64
        ``w[k] = exp(-(k - r)**2 / (2 sigma**2))``, divided by its sum, with radius
        ``r = ceil(3 sigma)``; ``array([1.0])`` when sigma is 0.
    """
    if not sigma_px >= 0 or not math.isfinite(sigma_px):
        raise ConfigurationError(
            f'the smoothing sigma must be a finite number of pixels >= 0, got {sigma_px!r}'
        )
    if sigma_px == 0:
        return np.ones(1, dtype=np.float64)
    radius = math.ceil(GAUSSIAN_RADIUS_SIGMAS * sigma_px)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(offsets**2) / (2.0 * sigma_px**2))
    return kernel / kernel.sum()


def smooth_patches(patches: np.ndarray, sigma_px: float) -> np.ndarray:
    """Separable Gaussian smoothing of complex patches, zero padded, same size.

    Along the last axis, then along the second-to-last axis:
    ``out[..., j] = sum_k w[k] * in[..., j + k - r]`` with ``in`` zero outside ``0 .. N-1``, ``w``
    and ``r`` from :func:`gaussian_kernel_1d`. The kernel is symmetric, so this is both a
    convolution and a correlation ("same" padding of a 2-D convolution with kernel ``w w^T``).
    Real and imaginary parts are smoothed alike (the operator is real and linear).

    Parameters
    ----------
    patches : ndarray, shape (..., N, N), complex or real
        Object patches.
    sigma_px : float
        Standard deviation in pixels; 0 returns the input unchanged (as complex128).

    Returns
    -------
    ndarray, shape (..., N, N), complex128
    """
    patches = np.asarray(patches, dtype=np.complex128)
    kernel = gaussian_kernel_1d(sigma_px)
    if kernel.size == 1:
        return patches.copy()
    return _correlate_same(_correlate_same(patches, kernel, axis=-1), kernel, axis=-2)


def smoothing_matrix(n_px: int, sigma_px: float) -> np.ndarray | None:
    """:func:`smooth_patches` along one axis as a matrix, or None when ``sigma_px`` is 0.

    ``S[j, k] = w[k - j + r]`` (0 outside the kernel), so ``S @ patch @ S.T`` is
    ``smooth_patches(patch, sigma_px)``: the form in which the engines apply the smoothing.

    Returns
    -------
    ndarray, shape (N, N), float64, or None (no smoothing).
    """
    kernel = gaussian_kernel_1d(sigma_px)
    if kernel.size == 1:
        return None
    radius = kernel.size // 2
    index = np.arange(n_px)
    lag = index[None, :] - index[:, None] + radius
    inside = (lag >= 0) & (lag < kernel.size)
    return np.where(inside, kernel[np.clip(lag, 0, kernel.size - 1)], 0.0)


def _correlate_same(values: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    radius = kernel.size // 2
    values = np.moveaxis(values, axis, -1)
    length = values.shape[-1]
    padded = np.zeros((*values.shape[:-1], length + 2 * radius), dtype=values.dtype)
    padded[..., radius : radius + length] = values
    out = np.zeros_like(values)
    for k, weight in enumerate(kernel):
        out += weight * padded[..., k : k + length]
    return np.moveaxis(out, -1, axis)


def exit_wave(
    patches: np.ndarray,
    probe_normalized: np.ndarray,
    *,
    probe_mask: bool,
    smoothing_sigma_px: float,
) -> np.ndarray:
    """Exit wave behind the object: probe times (smoothed) object patch, optionally disk-masked.

    Parameters
    ----------
    patches : ndarray, shape (..., N, N), complex
        Object transmission patches.
    probe_normalized : ndarray, shape (N, N), complex
        Probe from :func:`normalize_probe`.
    probe_mask : bool
        Multiply by :func:`disk_mask` (radius N/4).
    smoothing_sigma_px : float
        Gaussian smoothing of the patches (:func:`smooth_patches`); 0 is off.

    Returns
    -------
    ndarray, shape (..., N, N), complex128
        ``probe_normalized * smooth_patches(patches) [* disk_mask(N)]``.
    """
    patches = np.asarray(patches, dtype=np.complex128)
    probe = np.asarray(probe_normalized, dtype=np.complex128)
    if patches.shape[-2:] != probe.shape:
        raise DataContractError(
            f'patches of shape {patches.shape[-2:]} do not match the probe shape {probe.shape}; '
            'the probe must be on the object grid with the pattern size'
        )
    wave = probe * smooth_patches(patches, smoothing_sigma_px)
    if probe_mask:
        wave = wave * disk_mask(probe.shape[0])
    return wave


def farfield_amplitude(exit_wave: np.ndarray) -> np.ndarray:
    """Far-field amplitude, zero frequency at index ``N // 2``, Parseval-preserving.

    ``sqrt(fftshift(|fft2(psi)|**2 / N**2))`` over the last two axes, with no shift of the input
    (``fft2`` is NumPy's unnormalised forward transform; ``fftshift`` rolls by ``N // 2``). The sum
    of the squared result equals ``sum |psi|**2``.

    Parameters
    ----------
    exit_wave : ndarray, shape (..., N, N), complex
        Exit wave ``psi``.

    Returns
    -------
    ndarray, shape (..., N, N), float64
    """
    wave = np.asarray(exit_wave, dtype=np.complex128)
    n_px = wave.shape[-1]
    if wave.ndim < 2 or wave.shape[-2] != n_px:
        raise DataContractError(f'exit waves must be square in the last two axes, got {wave.shape}')
    spectrum = np.fft.fft2(wave, axes=(-2, -1))
    intensity = (spectrum.real**2 + spectrum.imag**2) / float(n_px * n_px)
    return np.sqrt(np.fft.fftshift(intensity, axes=(-2, -1)))


POWER_CHUNK_PATTERNS = 4096
"""Patterns squared at a time by :func:`_mean_power`: float64 copies of a whole 100,000-pattern
scan would take gigabytes; chunks keep the extra memory to about 130 MB at N = 64."""


def _mean_power(amplitude: np.ndarray) -> float:
    amplitude = np.asarray(amplitude)
    if amplitude.ndim != 3:
        raise DataContractError(
            f'diffraction amplitudes must have shape (n, N, N), got {amplitude.shape}'
        )
    total = 0.0
    for start in range(0, amplitude.shape[0], POWER_CHUNK_PATTERNS):
        chunk = np.asarray(amplitude[start : start + POWER_CHUNK_PATTERNS], dtype=np.float64)
        total += float(np.sum(chunk**2))
    power = total / amplitude.shape[0] if amplitude.shape[0] else float('nan')
    if not power > 0 or not math.isfinite(power):
        raise DataContractError(
            f'the mean pattern power sum(X**2) is {power!r}; the diffraction amplitudes must be '
            'finite and not all zero'
        )
    return power


def dataset_normalization(amplitude: np.ndarray) -> float:
    """Scalar ``a`` that gives the network input ``a * X`` a mean pattern power of ``(N/2)**2``.

    Parameters
    ----------
    amplitude : ndarray, shape (n, N, N), real
        Diffraction amplitudes ``X`` (square root of counts).

    Returns
    -------
    float
        ``a = (N/2) / sqrt(mean_i sum_xy X_i**2)``, so that ``mean_i sum_xy (a X_i)**2 = (N/2)**2``.
    """
    power = _mean_power(amplitude)
    n_px = np.shape(amplitude)[-1]
    return float((n_px / 2) / math.sqrt(power))


def initial_intensity_scale(
    num_photons: float, probe_normalized: np.ndarray, probe_mask: bool
) -> float:
    """Initial intensity scale ``K`` that maps the far field of ``probe_n * O`` to counts.

    The predicted counts are ``K**2 |F(probe_n * O)|**2`` (``F`` as in :func:`farfield_amplitude`,
    which preserves the total power). For an object of uniform amplitude 0.5, the midpoint of the
    sigmoid amplitude head, the predicted total counts are
    ``K**2 * 0.25 * sum |probe_n * mask|**2``; this choice of ``K`` makes them equal the measured
    mean photon count, which leaves the amplitude head headroom both ways (a trainable ``log K``
    refines it).

    This deliberately differs from the reference's ``sqrt(nphotons) / (N/2)``: with the probe
    normalised by ``probe_scale`` that value generally cannot reproduce the measured counts with a
    sigmoid amplitude (at most 1), so the fit would have to be carried by the scale alone.

    Parameters
    ----------
    num_photons : float
        Mean total counts per pattern, positive.
    probe_normalized : ndarray, shape (N, N), complex
        Probe from :func:`normalize_probe`.
    probe_mask : bool
        Whether the exit wave is multiplied by :func:`disk_mask`.

    Returns
    -------
    float
        ``K = sqrt(num_photons / (0.5**2 * sum |probe_n * mask|**2))``, mask = disk mask or ones.
    """
    if not num_photons > 0 or not math.isfinite(num_photons):
        raise ConfigurationError(
            f'num_photons must be a positive finite mean count per pattern, got {num_photons!r}; '
            'measure it from the detector counts or set it in the training configuration'
        )
    probe = np.asarray(probe_normalized, dtype=np.complex128)
    mask = disk_mask(probe.shape[0]) if probe_mask else np.ones(probe.shape)
    probe_power = float(np.sum(np.abs(probe * mask) ** 2))
    if probe_power == 0.0:
        raise DataContractError('the (masked) probe carries no power; check the probe array')
    return math.sqrt(num_photons / (TYPICAL_OBJECT_AMPLITUDE**2 * probe_power))


def count_targets(
    amplitude: np.ndarray,
    num_photons: float,
    *,
    mean_power: float | None = None,
    dtype: type[np.floating] = np.float64,
) -> np.ndarray:
    """Poisson targets in photon counts from diffraction amplitudes.

    Parameters
    ----------
    amplitude : ndarray, shape (..., N, N), real
        Diffraction amplitudes ``X``.
    num_photons : float
        Mean total counts per pattern, positive.
    mean_power : float, optional
        ``mean_i sum_xy X_i**2`` of the whole dataset when ``amplitude`` is a selection of its
        patterns (for example grouped); by default that of ``amplitude``, shape (n, N, N).
    dtype : the floating type of the computation and the result.

    Returns
    -------
    ndarray, shape of ``amplitude``, ``dtype``
        ``X**2 * (num_photons / mean_power)`` (the factor rounded to ``dtype`` first); equal to the
        detector counts when ``X`` is ``sqrt(counts)`` and ``num_photons`` was measured from
        those counts.
    """
    if not num_photons > 0 or not math.isfinite(num_photons):
        raise ConfigurationError(f'num_photons must be positive and finite, got {num_photons!r}')
    amplitude = np.asarray(amplitude, dtype=dtype)
    if mean_power is None:
        mean_power = _mean_power(amplitude)
    elif not mean_power > 0 or not math.isfinite(mean_power):
        raise DataContractError(
            f'the mean pattern power sum(X**2) is {mean_power!r}; the diffraction amplitudes must '
            'be finite and not all zero'
        )
    return np.square(amplitude) * dtype(num_photons / mean_power)


def poisson_nll(predicted_counts: np.ndarray, observed_counts: np.ndarray) -> float:
    """Poisson negative log-likelihood per element, without the ``log(y!)`` constant.

    Parameters
    ----------
    predicted_counts : ndarray, real, non-negative
        Predicted intensity (counts).
    observed_counts : ndarray, same shape, real, non-negative
        Measured counts ``y``.

    Returns
    -------
    float
        ``mean(lam - y * log(lam))`` with ``lam = predicted_counts + POISSON_EPSILON``.
    """
    lam = np.asarray(predicted_counts, dtype=np.float64) + POISSON_EPSILON
    observed = np.asarray(observed_counts, dtype=np.float64)
    if lam.shape != observed.shape:
        raise DataContractError(
            f'predicted counts {lam.shape} and observed counts {observed.shape} differ in shape'
        )
    return float(np.mean(lam - observed * np.log(lam)))


def wrapped_phase_difference(a_rad: np.ndarray, b_rad: np.ndarray) -> np.ndarray:
    """``a - b`` wrapped to ``(-pi, pi]`` as ``atan2(sin(a - b), cos(a - b))``."""
    difference = np.asarray(a_rad, dtype=np.float64) - np.asarray(b_rad, dtype=np.float64)
    return np.arctan2(np.sin(difference), np.cos(difference))


def realspace_mae(patches: np.ndarray, truth: np.ndarray, support: np.ndarray) -> float:
    """Supervised loss: MAE of amplitude plus MAE of wrapped phase, over the support pixels.

    ``mean_s |(|p| - |t|)| + mean_s |wrap(angle p - angle t)|`` where ``mean_s`` averages over
    every batch, channel and pixel with ``support == 1`` (the object estimate's footprint).

    Parameters
    ----------
    patches, truth : ndarray (B, C, N, N) complex
    support : ndarray (N, N) of 0 / 1 (:func:`object_support_mask`)
    """
    patches = np.asarray(patches, dtype=np.complex128)
    truth = np.asarray(truth, dtype=np.complex128)
    weight = np.broadcast_to(np.asarray(support, dtype=np.float64), patches.shape)
    total = weight.sum()
    amplitude = np.abs(np.abs(patches) - np.abs(truth))
    phase = np.abs(wrapped_phase_difference(np.angle(patches), np.angle(truth)))
    return float(((amplitude + phase) * weight).sum() / total)


def realspace_mse(patches: np.ndarray, truth: np.ndarray, support: np.ndarray) -> float:
    """Mean of ``|p - t|^2`` over the support pixels (the ``realspace_weight`` term)."""
    patches = np.asarray(patches, dtype=np.complex128)
    truth = np.asarray(truth, dtype=np.complex128)
    weight = np.broadcast_to(np.asarray(support, dtype=np.float64), patches.shape)
    return float((np.abs(patches - truth) ** 2 * weight).sum() / weight.sum())


def pinn_loss(
    predicted_amplitude: np.ndarray,
    count_targets: np.ndarray,
    *,
    nll_weight: float,
    mae_weight: float,
) -> float:
    """Diffraction part of the PINN loss.

    ``nll_weight * poisson_nll(A^2, y) + mae_weight * mean|A - sqrt(y)|`` with ``A`` the predicted
    count amplitude ``K |F|``. The real-space terms (``realspace_mae_weight * realspace_mae`` and
    ``realspace_weight * realspace_mse``, both needing ground truth) are added to this.
    """
    amplitude = np.asarray(predicted_amplitude, dtype=np.float64)
    loss = nll_weight * poisson_nll(amplitude**2, count_targets)
    if mae_weight:
        loss += mae_weight * float(np.mean(np.abs(amplitude - np.sqrt(count_targets))))
    return loss


def mean_absolute_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of ``|a - b|`` over all elements (complex inputs use the complex modulus)."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise DataContractError(f'cannot compare arrays of shapes {a.shape} and {b.shape}')
    return float(np.mean(np.abs(a.astype(np.complex128) - b.astype(np.complex128))))


def translate_bilinear(
    images: np.ndarray, shift_x_px: np.ndarray | float, shift_y_px: np.ndarray | float
) -> np.ndarray:
    """Translate images by sub-pixel shifts with bilinear interpolation and zero fill.

    ``out[y, x] = in(y - dy, x - dx)``: content moves by ``+dx`` columns and ``+dy`` rows. ``in`` at
    a non-integer point is the bilinear blend of its four integer neighbours, each neighbour outside
    the image counting as zero. With ``ix = floor(-dx)``, ``fx = -dx - ix`` (and likewise for y)::

        out[y, x] = (1-fy)(1-fx) in[y+iy, x+ix]   + (1-fy) fx in[y+iy, x+ix+1]
                  + fy (1-fx)   in[y+iy+1, x+ix] + fy fx     in[y+iy+1, x+ix+1]

    This equals PyTorch's ``grid_sample(..., mode='bilinear', padding_mode='zeros',
    align_corners=True)``. Integer shifts are exact shifts with zero fill.

    Parameters
    ----------
    images : ndarray, shape (..., H, W), real or complex
    shift_x_px, shift_y_px : ndarray or float, broadcastable to ``images.shape[:-2]``
        Shift of each image in pixels along x (columns) and y (rows).

    Returns
    -------
    ndarray, shape (..., H, W), float64 or complex128 (following the input)
    """
    images = np.asarray(images)
    dtype = np.complex128 if np.iscomplexobj(images) else np.float64
    images = images.astype(dtype, copy=False)
    lead = images.shape[:-2]
    height, width = images.shape[-2:]
    shift_x = np.broadcast_to(np.asarray(shift_x_px, dtype=np.float64), lead)
    shift_y = np.broadcast_to(np.asarray(shift_y_px, dtype=np.float64), lead)
    if not (np.all(np.isfinite(shift_x)) and np.all(np.isfinite(shift_y))):
        raise DataContractError('translation shifts must be finite')
    start_x = np.floor(-shift_x)
    start_y = np.floor(-shift_y)
    frac_x = (-shift_x - start_x)[..., None, None]
    frac_y = (-shift_y - start_y)[..., None, None]
    rows = np.arange(height)[:, None] + start_y.astype(np.int64)[..., None, None]
    cols = np.arange(width)[None, :] + start_x.astype(np.int64)[..., None, None]
    out = np.zeros(images.shape, dtype=dtype)
    for step_y, weight_y in ((0, 1.0 - frac_y), (1, frac_y)):
        for step_x, weight_x in ((0, 1.0 - frac_x), (1, frac_x)):
            out += weight_y * weight_x * _gather_zero(images, rows + step_y, cols + step_x)
    return out


def _gather_zero(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``images[..., rows, cols]`` per leading index, zero where the index is outside the image."""
    height, width = images.shape[-2:]
    rows_ok = (rows >= 0) & (rows < height)
    cols_ok = (cols >= 0) & (cols < width)
    rows_c = np.clip(rows, 0, height - 1)
    cols_c = np.clip(cols, 0, width - 1)
    picked = np.take_along_axis(images, np.broadcast_to(rows_c, (*rows_c.shape[:-1], width)), -2)
    picked = np.take_along_axis(picked, np.broadcast_to(cols_c, picked.shape), -1)
    return np.where(rows_ok & cols_ok, picked, 0)


def canvas_size_px(n_px: int, max_offset_px: float) -> int:
    """Side of the overlap canvas: ``N + 2 * ceil(max_offset_px)``.

    Parameters
    ----------
    n_px : int
        Patch side N.
    max_offset_px : float
        Largest absolute offset component ``max |dx|, |dy|`` over the groups, in pixels.
    """
    _check_size(n_px)
    if not max_offset_px >= 0 or not math.isfinite(max_offset_px):
        raise DataContractError(f'max_offset_px must be finite and >= 0, got {max_offset_px!r}')
    return n_px + 2 * math.ceil(max_offset_px)


CANVAS_MARGIN_ROUNDING_PX = 8
"""The engines round the canvas margin up to a multiple of this (fewer distinct shapes to compile);
results do not depend on the canvas side beyond float rounding."""


def padded_canvas_size_px(n_px: int, offsets_px: np.ndarray) -> int:
    """Canvas side the engines use for ``offsets_px`` (..., 2): at least :func:`canvas_size_px`.

    The margin on each side is rounded up to a multiple of :data:`CANVAS_MARGIN_ROUNDING_PX`, so the
    side differs from N by an even number. N when there are no offsets.
    """
    offsets_px = np.asarray(offsets_px)
    largest = float(np.max(np.abs(offsets_px))) if offsets_px.size else 0.0
    margin = (canvas_size_px(n_px, largest) - n_px) // 2
    rounding = CANVAS_MARGIN_ROUNDING_PX
    return n_px + 2 * (rounding * math.ceil(margin / rounding))


def _canvas_pad(n_px: int, canvas_px: int) -> int:
    """Margin on each side of a patch centred on the canvas (patch index i -> canvas i + pad)."""
    if canvas_px < n_px or (canvas_px - n_px) % 2:
        raise ConfigurationError(
            f'the canvas side ({canvas_px}) must be at least the patch side ({n_px}) and differ '
            'from it by an even number of pixels, so that both centres coincide; '
            'use canvas_size_px()'
        )
    return (canvas_px - n_px) // 2


def _check_offsets(offsets_px: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
    offsets = np.asarray(offsets_px, dtype=np.float64)
    if offsets.shape != (*lead, 2):
        raise DataContractError(
            f'offsets must have shape {(*lead, 2)} (one (dx, dy) per patch), got {offsets.shape}'
        )
    return offsets


def merge_on_canvas(
    patches: np.ndarray, offsets_px: np.ndarray, support_mask: np.ndarray, canvas_px: int
) -> np.ndarray:
    """Merge the patches of each group on one canvas, co-masked (the overlap constraint).

    Each patch, times ``support_mask``, is zero-padded by ``pad = (canvas_px - N) / 2`` on every
    side (patch index ``i`` -> canvas index ``i + pad``, so the patch centre ``(N-1)/2`` lands on
    the canvas centre ``(canvas_px-1)/2``; ``canvas_px - N`` must be even), then translated by its
    offset ``(dx, dy)`` with :func:`translate_bilinear`, and the results are summed over the C
    patches. The
    padded support masks are translated and summed the same way; the canvas is the first sum divided
    by the second where the second exceeds ``CANVAS_EPSILON``, and zero elsewhere.

    Parameters
    ----------
    patches : ndarray, shape (B, C, N, N), complex
        Network patches of B groups of C members.
    offsets_px : ndarray, shape (B, C, 2), float
        ``(dx, dy)`` of each member relative to its group centre, in object pixels.
    support_mask : ndarray, shape (N, N), real
        Where a patch holds object (:func:`object_support_mask`).
    canvas_px : int
        Canvas side, from :func:`canvas_size_px`.

    Returns
    -------
    ndarray, shape (B, canvas_px, canvas_px), complex128
        Canvas centred on the group centre: canvas pixel ``(Y, X)`` is object pixel
        ``(cy - (canvas_px-1)/2 + Y, cx - (canvas_px-1)/2 + X)``.
    """
    patches = np.asarray(patches, dtype=np.complex128)
    if patches.ndim != 4 or patches.shape[-1] != patches.shape[-2]:
        raise DataContractError(f'patches must have shape (B, C, N, N), got {patches.shape}')
    n_px = patches.shape[-1]
    offsets = _check_offsets(offsets_px, patches.shape[:2])
    support = np.asarray(support_mask, dtype=np.float64)
    if support.shape != (n_px, n_px):
        raise DataContractError(f'support mask must be {n_px} x {n_px}, got {support.shape}')
    pad = _canvas_pad(n_px, canvas_px)
    window = (slice(pad, pad + n_px), slice(pad, pad + n_px))
    padded = np.zeros((*patches.shape[:2], canvas_px, canvas_px), dtype=np.complex128)
    padded[(..., *window)] = patches * support
    weights = np.zeros((1, 1, canvas_px, canvas_px), dtype=np.float64)
    weights[(..., *window)] = support
    weights = np.broadcast_to(weights, padded.shape)
    shift_x, shift_y = offsets[..., 0], offsets[..., 1]
    numerator = translate_bilinear(padded, shift_x, shift_y).sum(axis=1)
    denominator = translate_bilinear(weights, shift_x, shift_y).sum(axis=1)
    covered = denominator > CANVAS_EPSILON
    return np.where(covered, numerator / np.where(covered, denominator, 1.0), 0.0)


def extract_from_canvas(canvas: np.ndarray, offsets_px: np.ndarray, n_px: int) -> np.ndarray:
    """Cut each group member's patch back out of its group's canvas.

    Each canvas is translated by ``(-dx, -dy)`` (:func:`translate_bilinear`) and its central
    ``N x N`` square, canvas indices ``pad .. pad + N - 1`` with ``pad = (canvas_px - N) / 2``,
    kept.

    Parameters
    ----------
    canvas : ndarray, shape (B, M, M), complex
        Canvases from :func:`merge_on_canvas`.
    offsets_px : ndarray, shape (B, C, 2), float
        ``(dx, dy)`` of each member relative to its group centre, in object pixels.
    n_px : int
        Patch side N.

    Returns
    -------
    ndarray, shape (B, C, N, N), complex128
    """
    canvas = np.asarray(canvas, dtype=np.complex128)
    if canvas.ndim != 3 or canvas.shape[-1] != canvas.shape[-2]:
        raise DataContractError(f'canvas must have shape (B, M, M), got {canvas.shape}')
    offsets = np.asarray(offsets_px, dtype=np.float64)
    if offsets.ndim != 3 or offsets.shape[0] != canvas.shape[0]:
        raise DataContractError(
            f'offsets must have shape ({canvas.shape[0]}, C, 2), got {offsets.shape}'
        )
    offsets = _check_offsets(offsets, offsets.shape[:2])
    pad = _canvas_pad(n_px, canvas.shape[-1])
    stacked = np.broadcast_to(canvas[:, None], offsets.shape[:2] + canvas.shape[-2:])
    moved = translate_bilinear(stacked, -offsets[..., 0], -offsets[..., 1])
    return moved[..., pad : pad + n_px, pad : pad + n_px]


def forward_amplitude(
    patches: np.ndarray,
    offsets_px: np.ndarray,
    probe_normalized: np.ndarray,
    config: ModelConfig,
    intensity_scale: float,
    *,
    canvas_px: int | None = None,
) -> np.ndarray:
    """The whole physics chain: network patches to predicted count amplitudes ``K * |F|``.

    With ``config.object_big`` and more than one channel, the patches are merged on the canvas
    (:func:`merge_on_canvas` with :func:`object_support_mask`) and re-extracted
    (:func:`extract_from_canvas`) first; then :func:`exit_wave` and :func:`farfield_amplitude`.
    The result does not depend on ``canvas_px`` once it is at least the default.

    Parameters
    ----------
    patches : ndarray, shape (B, C, N, N), complex
        Object patches predicted by the network.
    offsets_px : ndarray, shape (B, C, 2), float
        ``(dx, dy)`` of each member relative to its group centre (unused when C is 1).
    probe_normalized : ndarray, shape (N, N), complex
        Probe from :func:`normalize_probe`.
    config : ModelConfig
        Supplies ``object_big``, ``pad_object``, ``probe_big``, ``probe_mask`` and
        ``gaussian_smoothing_sigma_px``.
    intensity_scale : float
        ``K`` (:func:`initial_intensity_scale`, or its trained value).
    canvas_px : int, optional
        Canvas side; default :func:`canvas_size_px` of the largest offset component.

    Returns
    -------
    ndarray, shape (B, C, N, N), float64
        Predicted amplitudes; their squares are predicted counts, zero frequency at ``N // 2``.
    """
    patches = np.asarray(patches, dtype=np.complex128)
    if patches.ndim != 4 or patches.shape[-1] != patches.shape[-2]:
        raise DataContractError(f'patches must have shape (B, C, N, N), got {patches.shape}')
    n_px = patches.shape[-1]
    if config.object_big and patches.shape[1] > 1:
        offsets = _check_offsets(offsets_px, patches.shape[:2])
        if canvas_px is None:
            canvas_px = canvas_size_px(n_px, float(np.max(np.abs(offsets))))
        support = object_support_mask(n_px, config.pad_object, config.probe_big)
        canvas = merge_on_canvas(patches, offsets, support, canvas_px)
        patches = extract_from_canvas(canvas, offsets, n_px)
    wave = exit_wave(
        patches,
        probe_normalized,
        probe_mask=config.probe_mask,
        smoothing_sigma_px=config.gaussian_smoothing_sigma_px,
    )
    return intensity_scale * farfield_amplitude(wave)


def _check_size(n_px: int) -> None:
    if not isinstance(n_px, int | np.integer) or n_px < 4 or n_px % 4:
        raise ConfigurationError(
            f'the pattern size must be a positive multiple of 4 pixels, got {n_px!r}'
        )


def power_diameter_px(probe: np.ndarray, fraction: float = 0.9) -> float:
    """Diameter of the disc about the intensity centroid holding ``fraction`` of the power.

    Parameters
    ----------
    probe : ndarray, shape (N, N), complex
    fraction : float in (0, 1]

    Returns
    -------
    float
        Diameter in pixels.
    """
    intensity = np.abs(probe) ** 2
    intensity = intensity / np.sum(intensity)
    rows, cols = np.indices(intensity.shape)
    centre = (np.sum(intensity * rows), np.sum(intensity * cols))
    radius = np.hypot(rows - centre[0], cols - centre[1]).ravel()
    order = np.argsort(radius)
    enclosed = np.cumsum(intensity.ravel()[order])
    # against the summed total, so that float rounding cannot push fraction 1 past the last pixel
    index = min(int(np.searchsorted(enclosed, fraction * enclosed[-1])), radius.size - 1)
    return 2.0 * float(radius[order][index])
