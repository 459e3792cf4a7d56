"""The shared schedule (``core/schedule.py``) without a framework: order, plateau, stopping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptychopinn_plugin.config import TrainingConfig
from ptychopinn_plugin.core.schedule import (
    ADAM_BETAS,
    ADAM_EPSILON,
    PLATEAU_MIN_DELTA,
    EpochMonitor,
    epoch_order,
)


def _monitor(**values) -> EpochMonitor:
    settings = dict(
        learning_rate=1e-3, factor=0.5, patience=2, min_learning_rate=1e-5, stop_patience=None
    )
    return EpochMonitor(**{**settings, **values})


def _run(monitor: EpochMonitor, losses: list[float]) -> tuple[list[float], list[bool]]:
    """Learning rate for the next epoch and the stop decision after each loss."""
    rates, stops = [], []
    for loss in losses:
        stops.append(monitor.update(loss))
        rates.append(monitor.learning_rate)
    return rates, stops


# -- epoch order ----------------------------------------------------------------------------------


def test_epoch_order_is_a_seeded_permutation_of_the_groups() -> None:
    order = epoch_order(40, seed=3, epoch=1)
    assert order.dtype == np.int64
    assert sorted(order.tolist()) == list(range(40))
    np.testing.assert_array_equal(order, epoch_order(40, seed=3, epoch=1))


def test_epoch_order_changes_with_the_epoch_and_the_seed() -> None:
    first = epoch_order(40, seed=3, epoch=1)
    assert not np.array_equal(first, epoch_order(40, seed=3, epoch=2))
    assert not np.array_equal(first, epoch_order(40, seed=4, epoch=1))


def test_epoch_order_does_not_depend_on_earlier_epochs_being_drawn() -> None:
    """Each epoch's order is a function of (seed, epoch) alone: an engine may restart anywhere."""
    fresh = epoch_order(25, seed=7, epoch=5)
    for epoch in range(1, 5):
        epoch_order(25, seed=7, epoch=epoch)
    np.testing.assert_array_equal(epoch_order(25, seed=7, epoch=5), fresh)


def test_epochs_count_from_one() -> None:
    with pytest.raises(ValueError, match='from 1'):
        epoch_order(40, seed=3, epoch=0)


def test_epoch_order_of_no_groups_is_empty() -> None:
    assert epoch_order(0, seed=1, epoch=1).size == 0


# -- reduce on plateau ----------------------------------------------------------------------------


def test_the_rate_is_reduced_after_patience_epochs_without_improvement() -> None:
    rates, _ = _run(_monitor(patience=2), [5.0, 4.0, 4.0, 4.0, 4.0, 4.0])
    # epochs 3 and 4 do not improve on 4.0: halve; the wait restarts, epochs 5 and 6: halve again
    assert rates == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4])


def test_an_improvement_resets_the_plateau_wait() -> None:
    rates, _ = _run(_monitor(patience=2), [5.0, 5.0, 4.0, 4.0, 3.0, 3.0, 3.0])
    assert rates == pytest.approx([1e-3] * 6 + [5e-4])


def test_an_improvement_below_the_minimum_delta_counts_as_a_plateau() -> None:
    small = PLATEAU_MIN_DELTA / 2
    rates, _ = _run(_monitor(patience=1), [1.0, 1.0 - small, 1.0 - 2 * small])
    assert rates == pytest.approx([1e-3, 5e-4, 2.5e-4])
    rates, _ = _run(_monitor(patience=1), [1.0, 1.0 - 2 * PLATEAU_MIN_DELTA])
    assert rates == pytest.approx([1e-3, 1e-3])


def test_the_minimum_delta_is_absolute_so_negative_losses_work() -> None:
    """The Poisson likelihood is often negative: a relative threshold would flip sign there."""
    rates, _ = _run(_monitor(patience=1), [-100.0, -101.0, -101.00001])
    assert rates == pytest.approx([1e-3, 1e-3, 5e-4])


def test_the_rate_never_goes_below_its_floor() -> None:
    rates, _ = _run(_monitor(patience=0, min_learning_rate=3e-4), [1.0] * 6)
    assert rates == pytest.approx([1e-3, 5e-4, 3e-4, 3e-4, 3e-4, 3e-4])
    assert min(rates) == pytest.approx(3e-4)


def test_patience_zero_reduces_after_every_epoch_without_improvement() -> None:
    """As the PyTorch engine test saw it: the rate an epoch trains with, for a constant loss."""
    monitor = _monitor(patience=0, min_learning_rate=2e-4)
    used = []
    for _ in range(5):
        used.append(monitor.learning_rate)
        monitor.update(1.0)
    assert used == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4, 2e-4])


def test_plateau_and_early_stopping_together() -> None:
    """Moved from the TensorFlow engine tests: the monitor needs no framework."""
    monitor = _monitor(patience=2, min_learning_rate=3e-4, stop_patience=3)
    rates, stops = _run(monitor, [5.0, 4.0, 4.0, 4.00001, 3.0, 3.0, 3.0, 3.0])
    # two epochs without a decrease beyond 1e-4 halve the rate; the floor holds it at 3e-4
    assert rates == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 3e-4, 3e-4])
    assert stops == [False] * 7 + [True]


# -- early stopping -------------------------------------------------------------------------------


def test_early_stopping_counts_epochs_without_improvement() -> None:
    """Moved from the PyTorch engine tests, which reached the monitor through a callback."""
    _, stops = _run(_monitor(stop_patience=2), [3.0, 2.0, 2.5, 2.0, 1.0, 1.5, 1.2])
    assert stops == [False, False, False, True, False, False, True]


def test_any_decrease_counts_for_early_stopping() -> None:
    """Unlike the plateau schedule, early stopping has no minimum delta."""
    tiny = PLATEAU_MIN_DELTA / 10
    _, stops = _run(_monitor(stop_patience=1), [1.0, 1.0 - tiny, 1.0 - 2 * tiny, 1.0 - 2 * tiny])
    assert stops == [False, False, False, True]


def test_without_stop_patience_training_never_stops() -> None:
    _, stops = _run(_monitor(stop_patience=None), [1.0] * 50)
    assert not any(stops)


def test_a_nan_loss_is_never_an_improvement() -> None:
    monitor = _monitor(patience=1, stop_patience=2)
    rates, stops = _run(monitor, [1.0, math.nan, math.nan])
    assert rates == pytest.approx([1e-3, 5e-4, 2.5e-4])
    assert stops == [False, False, True]
    assert monitor.stop_best == 1.0


# -- settings -------------------------------------------------------------------------------------


def test_the_monitor_follows_the_training_configuration() -> None:
    training = TrainingConfig(
        learning_rate=2e-3,
        plateau_factor=0.25,
        plateau_patience=4,
        min_learning_rate=1e-6,
        early_stopping_patience=7,
    )
    monitor = EpochMonitor.from_training(training)
    assert (monitor.learning_rate, monitor.factor, monitor.patience) == (2e-3, 0.25, 4)
    assert (monitor.min_learning_rate, monitor.stop_patience) == (1e-6, 7)
    assert (monitor.plateau_best, monitor.stop_best) == (math.inf, math.inf)
    assert (monitor.plateau_wait, monitor.stop_wait) == (0, 0)


def test_adam_settings_are_keras_defaults() -> None:
    """Both engines use Keras's epsilon (the published model's), not PyTorch's 1e-8."""
    assert ADAM_BETAS == (0.9, 0.999)
    assert ADAM_EPSILON == 1e-7
