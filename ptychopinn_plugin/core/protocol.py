"""Types that cross the engine boundary, shared by the core, the engines and the workflow.

:class:`TrainingArrays` is what ``core.dataset`` makes, an engine trains on; :class:`EpochReport`
what an engine reports after each epoch; :class:`Engine` the protocol both engines implement
(``engines/tensorflow_engine``, ``engines/pytorch_engine``) and :class:`EngineFactory` how one is
built. They live in the core so that the core never imports the engines; choosing and importing an
engine is ``engines.get_engine``. :func:`needs_truth` and :func:`check_training_arrays` say, for
the data preparation and both engines alike, what a training run needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..config import Backend, ExecutionConfig, Mode, ModelConfig, Precision, TrainingConfig
from ..errors import DataContractError

__all__ = [
    'Engine',
    'EngineFactory',
    'EpochReport',
    'OptimizerState',
    'ResumePoint',
    'TrainingArrays',
    'check_training_arrays',
    'needs_truth',
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


def needs_truth(model: ModelConfig, training: TrainingConfig) -> bool:
    """Whether training asks for ground-truth patches: Supervised mode or a real-space loss term."""
    return (
        model.mode is Mode.SUPERVISED
        or training.realspace_mae_weight > 0
        or training.realspace_weight > 0
    )


def check_training_arrays(
    arrays: TrainingArrays, model: ModelConfig, training: TrainingConfig
) -> bool:
    """Check ``arrays`` against what training ``model`` needs; return whether truth is used.

    The ground truth is used when training asks for it (:func:`needs_truth`) and the arrays hold
    it; PINN mode without it trains without the real-space terms.

    Raises
    ------
    DataContractError
        When there are no training groups, the inputs do not fit the model, or Supervised training
        has no ground truth.
    """
    if arrays.train_indices.size == 0:
        raise DataContractError('no training groups: TrainingArrays.train_indices is empty')
    n_px, channels = model.pattern_size_px, model.num_channels
    if arrays.inputs.shape[1:] != (channels, n_px, n_px):
        raise DataContractError(
            f'training inputs of shape {arrays.inputs.shape} do not fit the model, which expects '
            f'(G, {channels}, {n_px}, {n_px}) (gridsize {model.gridsize}, N = {n_px})'
        )
    if model.mode is Mode.SUPERVISED and arrays.truth_patches is None:
        raise DataContractError(
            'Supervised training needs ground-truth object patches (TrainingArrays.truth_patches '
            'is None); train in PINN mode or provide data with a known object'
        )
    return needs_truth(model, training) and arrays.truth_patches is not None


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


@dataclass(frozen=True, eq=False)
class OptimizerState:
    """Adam's state after a number of steps, in canonical names and layout (``core/weights.py``).

    Both engines define the moments alike (``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    bias-corrected by the step count), so the state moves between them as the weights do.

    Attributes
    ----------
    step : optimiser steps taken.
    first_moments, second_moments : ndarray float32 per trainable canonical weight, of its shape.
    """

    step: int
    first_moments: dict[str, np.ndarray]
    second_moments: dict[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class ResumePoint:
    """Where a resumed training continues (``Engine.fit(..., resume=)``).

    The engine restores the optimiser and replays ``monitored_losses`` through the schedule
    (``core.schedule.EpochMonitor.replayed``), so epoch ``epochs_completed + 1`` runs with the
    learning rate, plateau counters and group order an uninterrupted training would have had.
    """

    epochs_completed: int
    monitored_losses: tuple[float, ...]
    optimizer: OptimizerState


@runtime_checkable
class Engine(Protocol):
    """What both engines implement (``tensorflow_engine.engine`` and ``pytorch_engine.engine``)."""

    backend: Backend
    precision: Precision
    """The precision the engine runs (``Precision.AUTO`` resolved, ``engines/precision.py``)."""
    solver_device: str | None
    """Where the built-in refinement and the data checks run beside this engine
    (``solver/arrays.py``): the PyTorch engine's own device (``'cpu'``, ``'cuda:0'``). The solver
    has no TensorFlow path: beside the TensorFlow engine it runs with NumPy on the CPU (None), or
    on the engine's GPU through PyTorch when a CUDA build of PyTorch is installed."""

    def fit(
        self,
        arrays: TrainingArrays,
        training: TrainingConfig,
        resume: ResumePoint | None = None,
    ) -> Iterator[EpochReport]:
        """Train, yielding a report after each epoch.

        The caller may stop iterating at any yield; the engine then holds the weights of the last
        finished epoch and is ready for ``predict`` or another ``fit``. With ``resume`` (and the
        weights of that epoch set), training continues at epoch ``resume.epochs_completed + 1``.
        """
        ...

    def optimizer_state(self) -> OptimizerState:
        """While ``fit`` is paused at a yield: the optimiser's state after the reported epoch."""
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
