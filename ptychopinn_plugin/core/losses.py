"""Which loss terms a training step adds up, and with what weights: the one recipe of both engines.

The terms themselves are defined in ``physics.py`` (the NumPy reference) and written once per
framework in each engine's ``losses.py``; this module only says which of them enter the training
loss for a model, a training configuration and the data at hand, in a fixed order, and adds them
up. Each engine evaluates a term when :func:`weighted_sum` asks for it, so terms that are not used
are never computed.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from ..config import Mode, ModelConfig, TrainingConfig

__all__ = ['LossTerm', 'loss_terms', 'weighted_sum']


class LossTerm(StrEnum):
    """A term of the training loss (definitions in ``physics.py``)."""

    DIFFRACTION = 'diffraction'
    """``physics.pinn_loss``: ``nll_weight`` x Poisson NLL of the counts + ``mae_weight`` x
    amplitude MAE, through the forward model (PINN mode)."""
    REALSPACE_MAE = 'realspace_mae'
    """``physics.realspace_mae`` of the network's own patches against ground truth."""
    REALSPACE_MSE = 'realspace_mse'
    """``physics.realspace_mse`` of the network's own patches against ground truth."""


def loss_terms(
    model: ModelConfig, training: TrainingConfig, *, uses_truth: bool
) -> tuple[tuple[LossTerm, float], ...]:
    """The weighted terms of the training loss, in the order they are added.

    Supervised: the real-space amplitude / phase MAE alone, no physics. PINN: the diffraction term,
    plus the real-space terms whose weights are positive when ground truth is used (``uses_truth``,
    from ``protocol.check_training_arrays``).
    """
    if model.mode is Mode.SUPERVISED:
        return ((LossTerm.REALSPACE_MAE, 1.0),)
    terms = [(LossTerm.DIFFRACTION, 1.0)]
    if uses_truth and training.realspace_mae_weight > 0:
        terms.append((LossTerm.REALSPACE_MAE, float(training.realspace_mae_weight)))
    if uses_truth and training.realspace_weight > 0:
        terms.append((LossTerm.REALSPACE_MSE, float(training.realspace_weight)))
    return tuple(terms)


def weighted_sum(
    terms: tuple[tuple[LossTerm, float], ...], value_of: Callable[[LossTerm], Any]
) -> Any:
    """``sum(weight * value_of(term))`` in the order of ``terms`` (a framework tensor or a float).

    A weight of 1 is not multiplied, so a single term is returned as the engine computed it.
    """
    if not terms:
        raise ValueError('the training loss needs at least one term')
    total = None
    for term, weight in terms:
        value = value_of(term)
        if weight != 1.0:
            value = weight * value
        total = value if total is None else total + value
    return total
