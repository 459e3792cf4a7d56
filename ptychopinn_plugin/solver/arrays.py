"""Where the solver's arrays live: NumPy on the CPU, or PyTorch on the engine's device.

The refinement (``overlap.py``) is written once against the array API standard (through
``array-api-compat``), so the same code runs on NumPy arrays and on PyTorch tensors, on the CPU or
on a CUDA GPU. The few operations the standard leaves out, or that each library does much faster
its own way, are here, one method per operation, with a NumPy and a PyTorch implementation:
multi-threaded FFTs, gathering the probe windows out of the object, adding them back, and
sub-pixel shifts. NumPy is the oracle the PyTorch path is tested against
(``tests/solver/test_arrays.py``).

:func:`solver_arrays` picks one from a device name: ``None`` (or ``'numpy'``) for NumPy,
``'cpu'``, ``'cuda'`` or ``'cuda:K'`` for PyTorch on that device. Inference asks the engine in
use for the name (``Engine.solver_device``): the PyTorch engine answers with its own device, so
the refinement runs where the network ran; the TensorFlow engine with None (NumPy) on the CPU,
and on a GPU with that GPU when a CUDA build of PyTorch is installed beside it.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
import scipy.fft

from ..core.stitching import flat_indices, fourier_shift, gather_windows, shifted_from_spectrum
from ..errors import BackendUnavailableError, DeviceUnavailableError

__all__ = ['NumpyArrays', 'TorchArrays', 'solver_arrays']


class NumpyArrays:
    """The solver's operations on NumPy arrays (the CPU; the oracle of the other paths)."""

    name = 'numpy'
    device = 'cpu'

    def __init__(self) -> None:
        self.xp: Any = array_api_compat.array_namespace(np.empty(0))

    def __repr__(self) -> str:
        return 'NumPy on the CPU'

    def asarray(self, values: Any, dtype: Any = None) -> Any:
        """``values`` (a NumPy array or scalar) as an array of this library, on its device."""
        return np.asarray(values, dtype=dtype)

    def to_numpy(self, values: Any) -> np.ndarray:
        return np.asarray(values)

    def fft2(self, values: Any, norm: str = 'backward') -> Any:
        return scipy.fft.fft2(values, norm=norm, workers=-1)

    def ifft2(self, values: Any, norm: str = 'backward') -> Any:
        return scipy.fft.ifft2(values, norm=norm, workers=-1)

    def rfft2(self, values: Any) -> Any:
        return scipy.fft.rfft2(values, workers=-1)

    def irfft2(self, values: Any, shape: tuple[int, int]) -> Any:
        return scipy.fft.irfft2(values, s=shape, workers=-1)

    def shifted_copies(self, spectrum: Any, shifts: np.ndarray) -> Any:
        """(B, N, N) complex64 copies of the patch whose ``fft2`` is ``spectrum``, each shifted by
        ``shifts`` (B, 2) (row, col) pixels (``stitching.fourier_shift``'s convention)."""
        return shifted_from_spectrum(spectrum, shifts)

    def shifted(self, block: Any, shifts: np.ndarray) -> Any:
        """``block`` (B, N, N) complex64, each patch shifted by ``shifts`` (B, 2) (row, col)."""
        return fourier_shift(block, shifts, None)

    def windows(self, padded: Any, origins: np.ndarray, size: int) -> Any:
        """(B, size, size) windows of ``padded`` with top-left corners ``origins`` (B, 2)."""
        out = np.empty((origins.shape[0], size, size), dtype=padded.dtype)
        gather_windows(padded, origins, out)
        return out

    def add_windows(self, target: Any, origins: np.ndarray, values: Any) -> None:
        """Add ``values`` (B, N, N) into ``target`` at the windows with corners ``origins``.

        The sums run over the windows' bounding box, not the whole target, so their cost and
        memory follow the batch (consecutive scan points lie close together)."""
        size = values.shape[-1]
        low = origins.min(axis=0)
        high = origins.max(axis=0) + size
        box = (int(high[0] - low[0]), int(high[1] - low[1]))
        flat = flat_indices(origins - low, size, box[1]).ravel()
        count = box[0] * box[1]
        region = target[low[0] : high[0], low[1] : high[1]]
        if np.iscomplexobj(values):
            region.real += np.bincount(flat, values.real.ravel(), count).reshape(box)
            region.imag += np.bincount(flat, values.imag.ravel(), count).reshape(box)
        else:
            region += np.bincount(flat, values.ravel(), count).reshape(box)


class TorchArrays(NumpyArrays):
    """The solver's operations on PyTorch tensors on one device (``'cpu'``, ``'cuda:K'``)."""

    name = 'torch'

    def __init__(self, device: str) -> None:
        import torch

        self._torch = torch
        self._device = torch.device(device)
        if self._device.type == 'cuda':
            if not torch.cuda.is_available():
                raise DeviceUnavailableError(
                    f'the refinement was asked to run on {device}, but PyTorch sees no CUDA GPU '
                    f'(torch {torch.__version__}, CUDA build {torch.version.cuda or "none"}); run '
                    'it on the CPU or install a CUDA build of PyTorch'
                )
            if self._device.index is None:
                self._device = torch.device('cuda', torch.cuda.current_device())
        self.device = str(self._device)
        self.xp = array_api_compat.array_namespace(torch.empty(0))

    def __repr__(self) -> str:
        return f'PyTorch on {self.device}'

    def asarray(self, values: Any, dtype: Any = None) -> Any:
        array = np.asarray(values, dtype=dtype)
        return self._torch.from_numpy(np.ascontiguousarray(array)).to(self._device)

    def to_numpy(self, values: Any) -> np.ndarray:
        return values.detach().cpu().numpy()

    def fft2(self, values: Any, norm: str = 'backward') -> Any:
        return self._torch.fft.fft2(values, norm=norm)

    def ifft2(self, values: Any, norm: str = 'backward') -> Any:
        return self._torch.fft.ifft2(values, norm=norm)

    def rfft2(self, values: Any) -> Any:
        return self._torch.fft.rfft2(values)

    def irfft2(self, values: Any, shape: tuple[int, int]) -> Any:
        return self._torch.fft.irfft2(values, s=shape)

    def _ramps(self, shifts: np.ndarray, size: int) -> tuple[Any, Any]:
        """(B, N, 1) row and (B, 1, N) column phase ramps of ``shifts``, on the device."""
        ramps = self.asarray(
            np.exp(2j * np.pi * shifts[:, :, None] * scipy.fft.fftfreq(size)), np.complex64
        )
        return ramps[:, 0, :, None], ramps[:, 1, None, :]

    def shifted_copies(self, spectrum: Any, shifts: np.ndarray) -> Any:
        rows, columns = self._ramps(shifts, spectrum.shape[-1])
        block = spectrum[None] * rows
        block *= columns
        return self._torch.fft.ifft2(block)

    def shifted(self, block: Any, shifts: np.ndarray) -> Any:
        rows, columns = self._ramps(shifts, block.shape[-1])
        spectrum = self._torch.fft.fft2(block)
        spectrum *= rows
        spectrum *= columns
        return self._torch.fft.ifft2(spectrum)

    def _flat(self, origins: np.ndarray, size: int, width: int) -> Any:
        corners = self.asarray(origins, np.int64)
        steps = self._torch.arange(size, device=self._device)
        rows = (corners[:, 0, None] + steps) * width
        columns = corners[:, 1, None] + steps
        return (rows[:, :, None] + columns[:, None, :]).reshape(-1)

    def windows(self, padded: Any, origins: np.ndarray, size: int) -> Any:
        flat = self._flat(origins, size, padded.shape[-1])
        return padded.reshape(-1)[flat].reshape(origins.shape[0], size, size)

    def add_windows(self, target: Any, origins: np.ndarray, values: Any) -> None:
        flat = self._flat(origins, values.shape[-1], target.shape[-1])
        values = values.to(target.dtype)
        if target.is_complex():  # real and imaginary parts as pairs of reals: any device adds them
            self._torch.view_as_real(target).view(-1, 2).index_add_(
                0, flat, self._torch.view_as_real(values).reshape(-1, 2)
            )
        else:
            target.view(-1).index_add_(0, flat, values.reshape(-1))


def solver_arrays(device: str | None = None) -> NumpyArrays:
    """The solver's arrays for ``device``: None or ``'numpy'`` for NumPy on the CPU; ``'cpu'``,
    ``'cuda'`` or ``'cuda:K'`` for PyTorch on that device (PyTorch must be installed)."""
    if device is None or device == 'numpy':
        return NumpyArrays()
    if not (device == 'cpu' or device == 'cuda' or device.startswith('cuda:')):
        raise ValueError(
            f"unknown refinement device {device!r}: use None or 'numpy' (NumPy on the CPU), "
            "'cpu', 'cuda' or 'cuda:K' (PyTorch on that device)"
        )
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(
            f'the refinement on device {device!r} runs on PyTorch, which is not installed; '
            "install it with: pip install 'ptychopinn-plugin[torch]', or refine with NumPy "
            '(device None)'
        ) from exc
    return TorchArrays(device)
