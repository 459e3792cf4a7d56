"""Learning-rate schedule and early stopping, shared by both engines (framework-free).

Each engine reports one monitored loss per epoch (the validation loss, else the training loss) to
an :class:`EpochMonitor` and applies the learning rate it returns to the next epoch, so the two
engines follow exactly the same schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import TrainingConfig

__all__ = [
    'ADAM_BETAS',
    'ADAM_EPSILON',
    'PLATEAU_MIN_DELTA',
    'EpochMonitor',
    'epoch_order',
    'monitored_loss',
]

ADAM_BETAS = (0.9, 0.999)
"""Adam's moment decay rates in both engines (the frameworks' common defaults)."""

ADAM_EPSILON = 1e-7
"""Adam's epsilon in both engines: Keras's default, which the published PtychoPINN trains with
(PyTorch's own default is 1e-8). Keras adds it to the square root of the raw second moment and
PyTorch to that of the bias-corrected one, so with the same value the two differ by the factor
sqrt(1 - 0.999**step) on epsilon only: 0.03 at the first step, 0.8 after 1,000 steps."""

PLATEAU_MIN_DELTA = 1e-4
"""Smallest decrease of the monitored loss that counts as an improvement for the plateau schedule
(Keras's ``ReduceLROnPlateau`` default, absolute: the Poisson likelihood can be negative)."""


@dataclass
class EpochMonitor:
    """Reduce-on-plateau and early stopping on one monitored loss (Keras semantics).

    After each epoch: the learning rate is multiplied by ``factor`` (not below
    ``min_learning_rate``) once ``patience`` epochs in a row did not lower the best loss by more
    than :data:`PLATEAU_MIN_DELTA`; training stops once ``stop_patience`` epochs in a row did not
    lower it at all.
    """

    learning_rate: float
    factor: float
    patience: int
    min_learning_rate: float
    stop_patience: int | None
    plateau_best: float = math.inf
    plateau_wait: int = 0
    stop_best: float = math.inf
    stop_wait: int = 0

    def update(self, loss: float) -> bool:
        """Record one epoch's monitored loss; return True when training should stop."""
        if loss < self.plateau_best - PLATEAU_MIN_DELTA:
            self.plateau_best, self.plateau_wait = loss, 0
        else:
            self.plateau_wait += 1
            if self.plateau_wait >= self.patience and self.learning_rate > self.min_learning_rate:
                self.learning_rate = max(self.learning_rate * self.factor, self.min_learning_rate)
                self.plateau_wait = 0
        if loss < self.stop_best:
            self.stop_best, self.stop_wait = loss, 0
            return False
        self.stop_wait += 1
        return self.stop_patience is not None and self.stop_wait >= self.stop_patience

    @classmethod
    def from_training(cls, training: TrainingConfig) -> EpochMonitor:
        """The monitor of ``training``'s schedule, starting at its learning rate."""
        return cls(
            learning_rate=training.learning_rate,
            factor=training.plateau_factor,
            patience=training.plateau_patience,
            min_learning_rate=training.min_learning_rate,
            stop_patience=training.early_stopping_patience,
        )

    @classmethod
    def replayed(cls, training: TrainingConfig, losses: tuple[float, ...]) -> EpochMonitor:
        """The monitor after the epochs whose monitored ``losses`` are given (a resumed
        training): its learning rate is the one the next epoch runs with."""
        monitor = cls.from_training(training)
        for loss in losses:
            monitor.update(float(loss))
        return monitor


def monitored_loss(training_loss: float, validation_loss: float | None) -> float:
    """The loss the schedule watches: the validation loss when there is one, else the training
    loss."""
    return validation_loss if validation_loss is not None else training_loss


def epoch_order(num_groups: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which both engines visit the training groups in ``epoch`` (1-based).

    Shared so that the two engines, started from the same canonical weights with the same seed,
    see the same batches in the same order and their trainings differ only by float rounding.

    Returns
    -------
    ndarray (num_groups,) int64: a permutation of ``range(num_groups)``.
    """
    if epoch < 1:
        raise ValueError(f'epochs count from 1, got {epoch}')
    return np.random.default_rng([seed, epoch]).permutation(num_groups).astype(np.int64)
