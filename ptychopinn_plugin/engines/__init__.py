"""The engine boundary: one protocol, two mirror-image implementations, chosen in one place.

An engine builds the network described in ``core/weights.py`` and implements hooks, not algorithms:
``fit`` (an iterator of per-epoch reports), ``predict`` (one batch of groups), canonical weights in
and out, and ``release``. Only NumPy arrays and frozen dataclasses cross this boundary. Grouping,
normalisation, stitching, archives and metrics are core code used identically by both engines.

``get_engine(backend)`` imports the selected framework lazily; a backend that is not installed is an
error naming the pip extra, never a silent switch to the other backend.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..config import Backend, ExecutionConfig, ModelConfig, TrainingConfig
from ..errors import BackendUnavailableError

__all__ = [
    'Engine',
    'EngineFactory',
    'EpochReport',
    'TrainingArrays',
    'backend_is_installed',
    'get_engine',
]


@dataclass(frozen=True, eq=False)
class TrainingArrays:
    """Grouped, normalised arrays an engine trains on (built by ``core.dataset``).

    Attributes
    ----------
    inputs : ndarray (G, C, N, N) float32
        Normalised diffraction amplitudes, the network input.
    count_targets : ndarray (G, C, N, N) float32
        Observed counts y of the Poisson likelihood (fft-shifted like the inputs).
    offsets_px : ndarray (G, C, 2) float32
        Offsets (x, y) of each group member from the group centroid, in object pixels.
    truth_patches : ndarray (G, C, N, N) complex64, optional
        Ground-truth object patches (Supervised mode, real-space loss terms).
    train_indices, validation_indices : ndarray (int64)
        Disjoint group indices for training and validation (validation may be empty).
    """

    inputs: np.ndarray
    count_targets: np.ndarray
    offsets_px: np.ndarray
    truth_patches: np.ndarray | None
    train_indices: np.ndarray
    validation_indices: np.ndarray

    @property
    def num_groups(self) -> int:
        return int(self.inputs.shape[0])


@dataclass(frozen=True)
class EpochReport:
    """What an engine reports after each finished epoch."""

    epoch: int
    """1-based number of the epoch just finished."""
    num_epochs: int
    training_loss: float
    validation_loss: float | None
    learning_rate: float
    seconds: float
    intensity_scale: float
    """Current intensity scale K = exp(log_intensity_scale)."""
    stopped_early: bool = False


@runtime_checkable
class Engine(Protocol):
    """What both engines implement (``tensorflow_engine.engine`` and ``pytorch_engine.engine``)."""

    backend: Backend

    def fit(self, arrays: TrainingArrays, training: TrainingConfig) -> Iterator[EpochReport]:
        """Train, yielding a report after each epoch.

        The caller may stop iterating at any yield; the engine then holds the weights of the last
        finished epoch and is ready for ``predict`` or another ``fit``.
        """
        ...

    def predict(self, inputs: np.ndarray, offsets_px: np.ndarray) -> np.ndarray:
        """Complex object patches (B, C, N, N) complex64 for inputs (B, C, N, N) float32.

        With ``object_big`` and gridsize > 1 these are the patches re-extracted from each group's
        merged canvas. Results do not depend on the batch size or the batch's other groups.
        """
        ...

    def predict_amplitude(self, inputs: np.ndarray, offsets_px: np.ndarray) -> np.ndarray:
        """Predicted count amplitudes K |F| (B, C, N, N) float32 (the full physics chain)."""
        ...

    def get_weights(self) -> dict[str, np.ndarray]:
        """Canonical weights (names and shapes of ``core.weights.weight_specs``), float32 copies."""
        ...

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load canonical weights (checked with ``core.weights.check_weights``)."""
        ...

    def release(self) -> None:
        """Free framework memory (GPU caches, graphs); the engine is unusable afterwards."""
        ...


class EngineFactory(Protocol):
    def __call__(
        self, model: ModelConfig, execution: ExecutionConfig, weights: dict[str, np.ndarray]
    ) -> Engine: ...


_MODULES = {
    Backend.PYTORCH: 'ptychopinn_plugin.engines.pytorch_engine.engine',
    Backend.TENSORFLOW: 'ptychopinn_plugin.engines.tensorflow_engine.engine',
}
_REQUIREMENTS = {
    Backend.PYTORCH: ('torch', 'lightning'),
    Backend.TENSORFLOW: ('tensorflow', 'keras'),
}
_EXTRAS = {Backend.PYTORCH: 'torch', Backend.TENSORFLOW: 'tensorflow'}


def backend_is_installed(backend: Backend | str) -> bool:
    """True when every package the backend needs can be found (nothing is imported)."""
    backend = Backend(backend)
    return all(importlib.util.find_spec(name) is not None for name in _REQUIREMENTS[backend])


def _missing_message(backend: Backend, missing: list[str]) -> str:
    return (
        f'the {backend.value} backend needs {", ".join(missing)}, which is not installed. '
        f"Install it with: pip install 'ptychopinn-plugin[{_EXTRAS[backend]}]' "
        f'(or select the other backend in the settings: [PtychoPINN] Backend = '
        f'{"tensorflow" if backend is Backend.PYTORCH else "pytorch"})'
    )


def get_engine(backend: Backend | str) -> EngineFactory:
    """The engine class of ``backend``, importing its framework now.

    Raises
    ------
    BackendUnavailableError
        When the framework is not installed (the message names the pip extra).
    """
    backend = Backend(backend)
    missing = [name for name in _REQUIREMENTS[backend] if importlib.util.find_spec(name) is None]
    if missing:
        raise BackendUnavailableError(_missing_message(backend, missing))
    try:
        module = importlib.import_module(_MODULES[backend])
    except ImportError as exc:
        raise BackendUnavailableError(
            f'{_missing_message(backend, [str(exc.name or exc)])} ({exc})'
        ) from exc
    factory: EngineFactory = module.ENGINE_CLASS
    return factory
