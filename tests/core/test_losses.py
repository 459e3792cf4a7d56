"""The recipe of the training loss (``core.losses``), shared by both engines; no framework."""

from __future__ import annotations

import pytest

from ptychopinn_plugin.config import Mode, ModelConfig, TrainingConfig
from ptychopinn_plugin.core.losses import LossTerm, loss_terms, weighted_sum

PINN = ModelConfig(pattern_size_px=32, n_filters_scale=1)
SUPERVISED = ModelConfig(pattern_size_px=32, n_filters_scale=1, mode=Mode.SUPERVISED)
WITH_REALSPACE = TrainingConfig(realspace_mae_weight=0.2, realspace_weight=0.7)


def test_pinn_trains_on_the_diffraction_alone_by_default() -> None:
    assert loss_terms(PINN, TrainingConfig(), uses_truth=True) == ((LossTerm.DIFFRACTION, 1.0),)


def test_real_space_terms_follow_the_diffraction_with_their_weights_when_truth_is_used() -> None:
    assert loss_terms(PINN, WITH_REALSPACE, uses_truth=True) == (
        (LossTerm.DIFFRACTION, 1.0),
        (LossTerm.REALSPACE_MAE, 0.2),
        (LossTerm.REALSPACE_MSE, 0.7),
    )


def test_without_ground_truth_the_real_space_terms_are_left_out() -> None:
    assert loss_terms(PINN, WITH_REALSPACE, uses_truth=False) == ((LossTerm.DIFFRACTION, 1.0),)


def test_supervised_trains_on_the_real_space_mae_alone() -> None:
    for training in (TrainingConfig(), WITH_REALSPACE):
        assert loss_terms(SUPERVISED, training, uses_truth=True) == ((LossTerm.REALSPACE_MAE, 1.0),)


def test_the_weighted_sum_adds_in_order_and_asks_only_for_the_listed_terms() -> None:
    asked: list[LossTerm] = []
    values = {LossTerm.DIFFRACTION: 10.0, LossTerm.REALSPACE_MAE: 3.0, LossTerm.REALSPACE_MSE: 5.0}

    def value_of(term: LossTerm) -> float:
        asked.append(term)
        return values[term]

    terms = ((LossTerm.DIFFRACTION, 1.0), (LossTerm.REALSPACE_MSE, 0.5))
    assert weighted_sum(terms, value_of) == pytest.approx(12.5)
    assert asked == [LossTerm.DIFFRACTION, LossTerm.REALSPACE_MSE]


def test_a_single_unit_term_is_returned_as_computed() -> None:
    sentinel = object()
    assert weighted_sum(((LossTerm.REALSPACE_MAE, 1.0),), lambda _term: sentinel) is sentinel


def test_an_empty_recipe_is_refused() -> None:
    with pytest.raises(ValueError, match='at least one term'):
        weighted_sum((), lambda _term: 0.0)
