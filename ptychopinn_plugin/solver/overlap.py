"""Refinement of a stitched object against the measured patterns, through their overlap.

Why it exists (``docs/results.md``, "Where the quality is lost on realistic scans: oracles"): on
realistic scans one diffraction pattern does not determine its object patch, so a network that
predicts each patch from its own pattern is limited however well it is trained. What determines
the object is the overlap between neighbouring patterns. This module brings the overlap in at
reconstruction: starting from the network's stitched object (or a flat one), it lowers the
misfit between the measured diffraction amplitudes and those of the object, with the scan's probe
and positions held fixed.

One iteration is a full-batch, preconditioned gradient step of the amplitude misfit
``sum_k || |F(P_k O_k)| - sqrt(y_k) ||^2`` (the Gaussian amplitude likelihood, robust at low and
high dose): every pattern's exit wave ``P_k O_k`` gets the measured modulus in the far field, the
changes are brought back to the object through the conjugate probe and summed over patterns, and
the sum is divided by the probe power that reaches each object pixel (plus a small fraction of
its maximum, so weakly lit pixels move little). Nesterov-style momentum (:data:`MOMENTUM`)
accelerates the slow, low-frequency phase modes (``docs/results.md``, the momentum table), and a
preconditioner lifts the phase step of modes slower than the probe (:data:`LOW_FREQUENCY_GAIN`):
a phase mode whose period is longer than the probe is seen by each pattern only as a tilt, so a
plain step moves it in proportion to its frequency squared and 100 iterations leave the largest
structures of a sparse scan unsettled (``docs/results.md``, "The refinement's slow phase modes").
The intensity scale between the probe and the counts is fitted once, in closed form, at the start,
so the object keeps the scale it came with.

Geometry: patch ``k`` is the object window at the integer part of its position times the probe
shifted by the opposite of the residual sub-pixel shift (a Fourier shift): the far-field modulus
of a shifted exit wave is that of the unshifted one, so this is ``stitching.extract_patches``
times the probe, up to the band limit of their product. The object is padded by N on every side,
so positions near the edge of the object grid need no special case.

Inference runs this after stitching and the phase-ramp correction
(``InferenceConfig.refine_iterations``, ``inference.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import array_api_compat
import numpy as np
import scipy.fft

from ..core.metrics import mean_phase_step
from ..core.physics import power_diameter_px
from ..core.stitching import window_origins
from ..errors import DataContractError
from .arrays import NumpyArrays, solver_arrays
from .phase_ramp import diffraction_centroids_px

logger = logging.getLogger(__name__)

__all__ = ['LOW_FREQUENCY_GAIN', 'LOW_FREQUENCY_PERIOD', 'MOMENTUM', 'OverlapRefinement']

MOMENTUM = 0.9
"""Momentum of the object update, chosen by the momentum table of ``docs/results.md``."""
LOW_FREQUENCY_GAIN = 10.0
"""Largest factor by which the preconditioner lifts the object's phase step (at zero frequency).

A phase mode of spatial frequency ``f`` below ``f0 = 1 / (LOW_FREQUENCY_PERIOD x D)`` (``D`` the
probe's 90 %-power diameter) has its step multiplied by ``min(LOW_FREQUENCY_GAIN, (f0 / f)^2)``,
which undoes the ``f^2`` of its sensitivity down to the cap. Measured on the realistic scans
(``docs/results.md``, "The refinement's slow phase modes"): phase SSIM after 100 iterations from a
flat object 0.836 -> 0.958 at 35 % overlap and 0.976 -> 0.992 at 70 %, unchanged at 1e4 photons;
caps of 15 and more oscillate with the momentum. 1 turns the preconditioner off."""
LOW_FREQUENCY_PERIOD = 1.5
"""Period, in probe diameters, above which a phase mode's step is lifted (see
:data:`LOW_FREQUENCY_GAIN`)."""
BOOST_LIT_FRACTION = 1e-2
"""Summed probe power, as a fraction of the largest, below which a pixel's phase step is not
lifted (the border, where the phase is poorly determined, would feed noise into the large
modes)."""
MIN_OBJECT_POWER = 1e-3
"""Floor of ``|object|^2`` when the step is turned into a phase change (a dark pixel would make
its phase change unbounded)."""
POWER_FLOOR = 1e-3
"""Fraction of the largest summed probe power added to the preconditioner's denominator."""
LIT_FRACTION = 3e-3
"""Summed probe power, as a fraction of the largest, below which a refined pixel is not kept.

Barely lit pixels at the border of the scan are poorly determined and grow without bound, which
makes an auto-scaled display black; inference keeps its start there (``inference.py``). They move
freely during the iterations (holding them costs the interior) and are only reset at the end.
The measurements behind the value: ``docs/results.md``, "Solver constants"."""
CHUNK_PATTERNS = 512
"""Patterns per vectorised step (about 16 MiB per complex64 array at N = 64)."""
MAX_CACHED_PROBE_BYTES = 512 * 2**20
"""Shifted probes (and the measured amplitudes in the FFT's layout, half their size) are kept
between iterations up to this size, else recomputed per chunk."""


class OverlapRefinement:
    """Iterative refinement of ``object_`` against the scan's measured diffraction amplitudes.

    Parameters
    ----------
    object_ : ndarray, shape (H, W), complex
        Starting object on the grid the positions refer to (the stitched network output, with
        uncovered pixels filled); not modified.
    positions_px : ndarray, shape (n, 2), real
        Scan positions (x, y) in object pixels (``TrainingData.positions_px``).
    diffraction_amplitude : ndarray, shape (n, N, N), real, non-negative
        Measured amplitudes ``sqrt(counts)``, zero frequency at index ``N // 2``. Read chunk by
        chunk, never copied whole: a memory-mapped array stays on disk.
    probe : ndarray, shape (N, N), complex
        The scan's probe on the object pixel grid (any scale).
    rows : ndarray, shape (m,), int, optional
        Use only these scan points (for example those whose patch touches the object grid);
        all by default.
    low_frequency_gain : float
        Cap of the low-frequency phase preconditioner (:data:`LOW_FREQUENCY_GAIN`; 1: off).
    device : str, optional
        Where the arrays live and the iterations run (``solver/arrays.py``): None for NumPy on
        the CPU; ``'cpu'``, ``'cuda'`` or ``'cuda:K'`` for PyTorch on that device. Inputs and
        results are NumPy arrays either way.

    Call :meth:`step` once per iteration; :attr:`object_` is the current estimate and
    :attr:`amplitude_error` the mean squared amplitude misfit (counts) before the last step.

    Memory: besides a few object-sized arrays, only per-chunk temporaries
    (:data:`CHUNK_PATTERNS` patterns): no copy of the patterns, no per-pixel index table.
    Small scans keep the shifted probes and measured amplitudes between iterations on the
    device (:data:`MAX_CACHED_PROBE_BYTES`).
    """

    def __init__(
        self,
        object_: np.ndarray,
        positions_px: np.ndarray,
        diffraction_amplitude: np.ndarray,
        probe: np.ndarray,
        *,
        rows: np.ndarray | None = None,
        low_frequency_gain: float = LOW_FREQUENCY_GAIN,
        device: str | None = None,
    ) -> None:
        arrays = self._arrays = solver_arrays(device)
        xp = self._xp = arrays.xp
        if not low_frequency_gain >= 1.0:
            raise ValueError(f'low_frequency_gain must be at least 1, got {low_frequency_gain!r}')
        probe = np.asarray(probe, dtype=np.complex64)
        positions = np.asarray(positions_px, dtype=np.float64)
        n_px = probe.shape[-1]
        shape = tuple(diffraction_amplitude.shape)
        if len(shape) != 3 or shape[1:] != probe.shape:
            raise DataContractError(
                f'refinement needs patterns (n, {n_px}, {n_px}) matching the probe '
                f'{probe.shape}; received {shape}'
            )
        if positions.shape != (shape[0], 2):
            raise DataContractError(
                f'refinement needs one (x, y) position per pattern: {shape[0]} '
                f'patterns, positions of shape {positions.shape}'
            )
        self._rows = None if rows is None else np.sort(np.asarray(rows, dtype=np.int64))
        if self._rows is not None:
            positions = positions[self._rows]
        self.positions_px = positions
        """(m, 2) positions (x, y) of the scan points the refinement uses."""
        self._amplitude = diffraction_amplitude
        self.num_patterns = positions.shape[0]
        """Scan points the refinement uses."""
        if self.num_patterns == 0:
            raise DataContractError('refinement needs at least one scan point; received none')
        self.n_px = n_px
        self._padded = arrays.asarray(np.pad(np.asarray(object_, dtype=np.complex64), n_px))
        origins, self._shifts = window_origins(positions, n_px)
        self._origins = origins + n_px  # into the padded object
        _check_windows_inside(self._origins, n_px, tuple(self._padded.shape), self._rows)
        summed = np.zeros((n_px, n_px))
        measured = 0.0
        for begin in self._chunks():
            block = self._chunk_amplitude(begin).astype(np.float64) ** 2
            summed += np.sum(block, axis=0)
            measured += float(np.sum(block))
        self._target_centroid = diffraction_centroids_px(summed[None])[0]
        """(kx, ky) detector pixels: the measured patterns' summed centre of mass."""
        self._probe = arrays.asarray(probe)
        self._probe_power = float(np.sum(np.abs(probe.astype(np.complex128)) ** 2))
        self._cache = self.num_patterns * n_px * n_px * 8 <= MAX_CACHED_PROBE_BYTES
        self._probes: dict[int, Any] = {}
        self._probe_spectrum: Any = None
        """The current probe's FFT, shared by every pattern's sub-pixel shift."""
        self._measured: dict[int, Any] = {}
        self._velocity = xp.zeros_like(self._padded)
        gain = _low_frequency_gain(
            tuple(self._padded.shape), power_diameter_px(probe), low_frequency_gain
        )
        self._phase_gain = None if gain is None else arrays.asarray(gain)
        self._set_preconditioner()
        modelled = sum(
            float(xp.sum(xp.abs(self._far_field(b)[2]) ** 2, dtype=xp.float64))
            for b in self._chunks()
        )
        if modelled <= 0.0:
            raise DataContractError(
                'refinement needs an object and probe with a non-zero far field; the starting '
                'object or the probe is zero everywhere the scan illuminates'
            )
        self.scale = float(np.sqrt(measured / modelled))
        """Amplitude scale from the model's far fields to the counts (fitted once)."""
        self.amplitude_error: float | None = None

    @property
    def arrays(self) -> NumpyArrays:
        """Where the iterations run (``solver/arrays.py``)."""
        return self._arrays

    def _set_preconditioner(self) -> None:
        """The object update's denominator and :attr:`illuminated`, from the current probe."""
        n_px = self.n_px
        xp = self._xp
        power = self._zeros(tuple(self._padded.shape), xp.float64)
        for begin in self._chunks():
            self._scatter_add(power, begin, xp.abs(self._chunk_probes(begin)) ** 2)
        largest = xp.max(power)
        self.illuminated = self._arrays.to_numpy(
            power[n_px:-n_px, n_px:-n_px] > LIT_FRACTION * largest
        ).copy()
        """(H, W) bool: pixels lit by more than :data:`LIT_FRACTION` of the largest summed probe
        power, whose refined values are worth keeping (a step changes every pixel some probe
        window reaches; the barely lit ones are poorly determined)."""
        self._power_floor = POWER_FLOOR * float(largest)
        self._denominator = xp.astype(power + self._power_floor, xp.float32)
        self._boosted = power > BOOST_LIT_FRACTION * largest

    def amplitude_noise(self) -> float:
        """Shot-noise standard deviation of the object's amplitude on a typical lit pixel.

        A pixel of the object lets through ``scale^2 x power x |O|^2`` photons summed over the
        patterns that light it (``power`` the summed probe power there, ``scale`` the fitted
        probe-to-counts scale), and the square root of a Poisson count has a standard deviation
        of about 1/2 whatever its mean: so ``|O|`` is known from the counts to no better than
        ``1 / (2 x scale x sqrt(power))``, the Cramer-Rao bound of the amplitude (the median lit
        pixel's; object amplitude units). It falls as the square root of the dose and of the
        overlap: about 0.04 of a transparent object's amplitude at 1e4 photons and 70 % overlap
        with Ptychodus's zone-plate probe, 0.004 at 1e6 (``docs/results.md``, "Denoising the
        refined amplitude").
        """
        n_px = self.n_px
        # the summed probe power, from the preconditioner's denominator, on every other row and
        # column (the median of a quarter of the lit pixels, without an object-sized copy)
        step = 2 if np.any(self.illuminated[::2, ::2]) else 1
        sample = self._arrays.to_numpy(self._denominator[n_px:-n_px:step, n_px:-n_px:step])
        power = float(np.median(sample[self.illuminated[::step, ::step]])) - self._power_floor
        return 0.5 / (self.scale * float(np.sqrt(max(power, np.finfo(np.float64).tiny))))

    def _zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """Zeros of ``shape`` on the refinement's device."""
        return self._xp.zeros(shape, dtype=dtype, device=array_api_compat.device(self._padded))

    def probe_centre_offset(self) -> tuple[float, float]:
        """(kx, ky) detector pixels from the current probe's far-field centre of mass to the
        measured patterns' (a diffraction centre offset when the probe is a model)."""
        far_field = np.abs(np.fft.fftshift(scipy.fft.fft2(self.probe.astype(np.complex128))))
        offset = self._target_centroid - diffraction_centroids_px(far_field[None] ** 2)[0]
        return float(offset[0]), float(offset[1])

    def remove_object_ramp(self) -> tuple[float, float]:
        """Move the object's net linear phase ramp into the probe: the patterns are explained
        exactly as before. Returns the probe's added tilt (kx, ky) in detector pixels.

        A linear phase ramp in the object and the opposite tilt of the probe explain the patterns
        equally well (``P(r - r_k) exp(i a.(r - r_k)) O(r) exp(-i a.r)`` differs from
        ``P(r - r_k) O(r)`` by a constant phase per pattern), so a refined probe ends at some tilt
        and its object carries the matching ramp. The convention fixed here is an object without
        net ramp: its amplitude-weighted mean phase step between neighbouring lit pixels is zero
        (``docs/results.md`` compares it with centring the probe's far field instead). Applied
        once, after the iterations.
        """
        n_px = self.n_px
        arrays = self._arrays
        steps = mean_phase_step(arrays.to_numpy(self._padded), np.pad(self.illuminated, n_px))
        tilt = np.array(steps) * n_px / (2 * np.pi)  # detector pixels
        ramp = np.conj(_linear_phase(tilt, tuple(self._padded.shape), n_px)).astype(np.complex64)
        self._padded *= arrays.asarray(ramp)
        self._probe = arrays.asarray(
            (self.probe * _linear_phase(tilt, (n_px, n_px))).astype(np.complex64)
        )
        self._velocity[...] = 0
        self._probes.clear()
        self._probe_spectrum = None
        self._set_preconditioner()
        return float(tilt[0]), float(tilt[1])

    @property
    def probe(self) -> np.ndarray:
        """(N, N) complex64 current probe (the starting one unless steps refined it)."""
        return np.array(self._arrays.to_numpy(self._probe))

    @property
    def object_(self) -> np.ndarray:
        """(H, W) complex64 current estimate."""
        n_px = self.n_px
        return np.array(self._arrays.to_numpy(self._padded[n_px:-n_px, n_px:-n_px]))

    def set_object(self, object_: np.ndarray) -> None:
        """Replace the estimate by ``object_`` (H, W), zero beyond the grid as at construction,
        and restart the momentum: for measuring another object with the same scan and probe
        without building a second refinement."""
        n_px = self.n_px
        interior = (int(self._padded.shape[-2]) - 2 * n_px, int(self._padded.shape[-1]) - 2 * n_px)
        if np.shape(object_) != interior:
            raise DataContractError(
                f'the object must keep the grid of the refinement, {interior}; received '
                f'{np.shape(object_)}'
            )
        self._padded[...] = 0
        self._padded[n_px:-n_px, n_px:-n_px] = self._arrays.asarray(object_, np.complex64)
        self._velocity[...] = 0

    def step(self, *, refine_probe: bool = False) -> float:
        """One iteration; returns the mean squared amplitude misfit (counts) before it.

        ``refine_probe``: update the probe too, from the same far-field corrections (see
        :meth:`_update_probe`).
        """
        xp = self._xp
        arrays = self._arrays
        numerator = self._zeros(tuple(self._padded.shape), xp.complex128)
        probe_numerator = self._zeros((self.n_px, self.n_px), xp.complex128)
        probe_denominator = self._zeros((self.n_px, self.n_px), xp.float64)
        tiny = float(xp.finfo(xp.float32).smallest_normal)
        misfit = 0.0
        for begin in self._chunks():
            probes, windows, spectrum = self._far_field(begin)
            exit_wave = probes * windows
            modulus = xp.abs(spectrum)
            measured = self._chunk_measured(begin) / np.float32(self.scale)
            misfit += float(xp.sum(xp.square(modulus - measured), dtype=xp.float64))
            spectrum *= measured / xp.maximum(modulus, tiny)
            change = arrays.ifft2(spectrum, norm='ortho') - exit_wave
            if refine_probe:
                shifts = self._shifts[begin : begin + probes.shape[0]]
                # adjoint of the per-pattern sub-pixel shift of the probe: shift back by +shift
                probe_numerator += xp.sum(
                    arrays.shifted(xp.astype(change * xp.conj(windows), xp.complex64), shifts),
                    axis=0,
                )
                probe_denominator += xp.sum(xp.abs(windows) ** 2, axis=0)
            change *= xp.conj(probes)
            self._scatter_add(numerator, begin, change)
        update = xp.astype(numerator / self._denominator, xp.complex64)
        del numerator  # before the preconditioner's object-sized temporaries
        if self._phase_gain is not None:
            self._lift_low_frequency_phase(update)
        self._velocity = MOMENTUM * self._velocity + update
        self._padded += update + MOMENTUM * self._velocity
        self.amplitude_error = misfit * self.scale**2 / (self.num_patterns * self.n_px**2)
        if refine_probe:
            self._update_probe(probe_numerator, probe_denominator)
        return self.amplitude_error

    def _lift_low_frequency_phase(self, update: Any) -> None:
        """Add to ``update`` (padded, complex64, in place) its phase part on the well-lit pixels
        with the modes below ``f0`` lifted (the preconditioner). Object-sized float32 and
        complex64 temporaries only, freed as it goes."""
        xp = self._xp
        object_ = self._padded
        phase_step = xp.imag(update * xp.conj(object_))
        power = xp.abs(object_)
        power *= power
        phase_step /= xp.maximum(power, MIN_OBJECT_POWER)
        del power
        phase_step[~self._boosted] = 0
        spectrum = self._arrays.rfft2(phase_step)
        shape = (int(phase_step.shape[0]), int(phase_step.shape[1]))
        del phase_step
        spectrum *= self._phase_gain
        extra = self._arrays.irfft2(spectrum, shape)
        del spectrum
        extra[~self._boosted] = 0
        change = object_ * extra
        del extra
        change *= 1j  # the lifted phase change is 1j * object * extra
        update += change

    def _update_probe(self, numerator: Any, denominator: Any) -> None:
        """Preconditioned probe step with the constraints of an iterative solver.

        The step is the object update's mirror image: the exit-wave corrections brought back
        through the conjugate object windows, summed over patterns, divided by the object power
        each probe pixel sees (plus :data:`POWER_FLOOR` of its maximum). Power: the probe keeps
        its starting total power, so the intensity scale fitted at the start stays valid and the
        object keeps its scale (the product of probe and object is what the patterns fix).
        """
        xp = self._xp
        step = numerator / (denominator + POWER_FLOOR * xp.max(denominator))
        probe = xp.astype(self._probe, xp.complex128) + step
        power = float(xp.sum(xp.abs(probe) ** 2))
        if power > 0.0:
            probe *= float(np.sqrt(self._probe_power / power))
        self._probe = xp.astype(probe, xp.complex64)
        self._probes.clear()
        self._probe_spectrum = None
        self._set_preconditioner()

    def far_field_moduli(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Per chunk of patterns: the current object's far-field moduli (the model's own scale,
        before :attr:`scale`) and the measured amplitudes, both with zero frequency at index 0."""
        to_numpy = self._arrays.to_numpy
        for begin in self._chunks():
            _, _, spectrum = self._far_field(begin)
            yield to_numpy(self._xp.abs(spectrum)), to_numpy(self._chunk_measured(begin))

    # -- pieces ------------------------------------------------------------------------------

    def _chunks(self) -> range:
        return range(0, self.num_patterns, CHUNK_PATTERNS)

    def _chunk_amplitude(self, begin: int) -> np.ndarray:
        """(m, N, N) float32 measured amplitudes of the chunk at ``begin``, as given (centred)."""
        if self._rows is None:
            block = self._amplitude[begin : begin + CHUNK_PATTERNS]
        else:
            block = self._amplitude[self._rows[begin : begin + CHUNK_PATTERNS]]
        return np.asarray(block, dtype=np.float32)

    def _chunk_measured(self, begin: int) -> Any:
        """The chunk's measured amplitudes with zero frequency at index 0 (the FFT's layout), on
        the device; kept between iterations when the shifted probes are (small scans), else
        re-read."""
        if begin in self._measured:
            return self._measured[begin]
        measured = self._arrays.asarray(
            np.fft.ifftshift(self._chunk_amplitude(begin), axes=(-2, -1))
        )
        if self._cache:
            self._measured[begin] = measured
        return measured

    def _chunk_probes(self, begin: int) -> Any:
        """Probes of patterns ``begin:`` shifted by minus their residual sub-pixel shift."""
        if begin in self._probes:
            return self._probes[begin]
        shifts = self._shifts[begin : begin + CHUNK_PATTERNS]
        if self._probe_spectrum is None:
            self._probe_spectrum = self._xp.astype(
                self._arrays.fft2(self._probe), self._xp.complex64
            )
        probes = self._arrays.shifted_copies(self._probe_spectrum, -shifts)
        if self._cache:
            self._probes[begin] = probes
        return probes

    def _far_field(self, begin: int) -> tuple[Any, Any, Any]:
        """The chunk's shifted probes, object windows and exit-wave far fields (zero frequency
        at index 0, unitary transform)."""
        probes = self._chunk_probes(begin)
        origins = self._origins[begin : begin + probes.shape[0]]
        windows = self._arrays.windows(self._padded, origins, self.n_px)
        return probes, windows, self._arrays.fft2(probes * windows, norm='ortho')

    def _scatter_add(self, target: Any, begin: int, values: Any) -> None:
        """Add the chunk's windows ``values`` (m, N, N) into ``target`` (padded object shape)."""
        self._arrays.add_windows(target, self._origins[begin : begin + values.shape[0]], values)


def _low_frequency_gain(
    shape: tuple[int, int], probe_diameter_px: float, cap: float
) -> np.ndarray | None:
    """The preconditioner's extra gain ``min(cap, (f0 / f)^2) - 1`` (at least 0) on the rfft2 grid
    of ``shape``, ``f0 = 1 / (LOW_FREQUENCY_PERIOD x probe_diameter_px)``; None when ``cap`` is
    1."""
    if cap <= 1.0:
        return None
    f0 = 1.0 / (LOW_FREQUENCY_PERIOD * max(probe_diameter_px, 1.0))
    fy = scipy.fft.fftfreq(shape[0])[:, None]
    fx = scipy.fft.rfftfreq(shape[1])[None, :]
    squared = fx**2 + fy**2
    with np.errstate(divide='ignore'):
        gain = np.minimum(cap, np.where(squared > 0, f0**2 / squared, np.inf))
    return (np.maximum(gain, 1.0) - 1.0).astype(np.float32)


def _check_windows_inside(
    origins: np.ndarray, n_px: int, shape: tuple[int, ...], rows: np.ndarray | None
) -> None:
    """Refuse scan points whose window misses the padded object (a patch wholly off the grid)."""
    outside = (origins < 0).any(axis=1) | (origins + n_px > np.array(shape)).any(axis=1)
    if not outside.any():
        return
    index = np.flatnonzero(outside)
    if rows is not None:
        index = rows[index]
    listed = ', '.join(str(i) for i in index[:5]) + (', ...' if index.size > 5 else '')
    raise DataContractError(
        f'{index.size} scan points (index {listed}) put their {n_px} px patch wholly outside '
        f'the {shape[1] - 2 * n_px} x {shape[0] - 2 * n_px} px object grid, so the refinement '
        'cannot use them; leave them out (pass rows=) or enlarge the object grid to cover them'
    )


def _linear_phase(
    tilt: np.ndarray, shape: tuple[int, ...], period_px: int | None = None
) -> np.ndarray:
    """``exp(2 pi i (kx x + ky y) / P)`` on a (rows, columns) grid; ``P`` the pattern size (the
    grid's width by default), ``tilt`` (kx, ky) in detector pixels."""
    period = shape[-1] if period_px is None else period_px
    rows = np.exp(2j * np.pi * tilt[1] * np.arange(shape[0]) / period)
    cols = np.exp(2j * np.pi * tilt[0] * np.arange(shape[1]) / period)
    return rows[:, None] * cols[None, :]
