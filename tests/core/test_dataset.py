"""From contract data to training arrays (``core/dataset.py``, ``core/protocol.py``), no framework.

Splits, the photon count of the targets, the grouped and normalised arrays, what training needs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ptychopinn_plugin.config import Mode, ModelConfig, TrainingConfig
from ptychopinn_plugin.core import physics, simulate
from ptychopinn_plugin.core.contract import DiffractionQuantity, ScanMetadata
from ptychopinn_plugin.core.dataset import prepare_training, resolve_photons, split_groups
from ptychopinn_plugin.core.grouping import group_scan_points
from ptychopinn_plugin.core.protocol import check_training_arrays, needs_truth
from ptychopinn_plugin.errors import ConfigurationError, DataContractError

N = 32
MODEL = ModelConfig(pattern_size_px=N, n_filters_scale=1)
GRID2 = MODEL.model_copy(update={'gridsize': 2, 'num_neighbors': 4})


@pytest.fixture(scope='module')
def scan():
    return simulate.make_scan('smooth', num_patterns=30, pattern_size_px=N, seed=1)


@pytest.fixture(scope='module')
def other_scan():
    return simulate.make_scan('smooth', num_patterns=20, pattern_size_px=N, seed=2)


def _as_amplitudes(data):
    """The same data declared as amplitudes of unknown dose."""
    return replace(data, metadata=ScanMetadata(source_quantity=DiffractionQuantity.AMPLITUDE))


# -- split_groups ---------------------------------------------------------------------------------


def test_split_is_disjoint_sorted_and_covers_every_group() -> None:
    train, validation = split_groups(50, 0.2, seed=3)
    assert train.size == 40
    assert validation.size == 10
    assert not set(train) & set(validation)
    assert sorted(set(train) | set(validation)) == list(range(50))
    assert np.all(np.diff(train) > 0)
    assert np.all(np.diff(validation) > 0)


def test_split_is_seeded() -> None:
    np.testing.assert_array_equal(split_groups(50, 0.2, 3)[1], split_groups(50, 0.2, 3)[1])
    assert not np.array_equal(split_groups(50, 0.2, 3)[1], split_groups(50, 0.2, 4)[1])


def test_the_validation_count_is_rounded_down_and_leaves_a_training_group() -> None:
    assert split_groups(9, 0.25, 0)[1].size == 2
    assert split_groups(10, 0.0, 0)[1].size == 0
    train, validation = split_groups(1, 0.9, 0)
    assert (train.tolist(), validation.size) == ([0], 0)
    assert split_groups(3, 0.99, 0)[0].size == 1
    assert split_groups(4, 1.0, 0)[0].size == 1  # even when asked for all of them


# -- resolve_photons ------------------------------------------------------------------------------


def test_a_configured_photon_count_wins(scan) -> None:
    training = TrainingConfig(num_photons=1234.0)
    assert resolve_photons([scan.data, _as_amplitudes(scan.data)], training) == (1234.0, False)


def test_measured_photon_counts_are_averaged_over_the_files(scan, other_scan) -> None:
    photons, measured = resolve_photons([scan.data, other_scan.data], TrainingConfig())
    expected = np.mean([scan.data.metadata.num_photons, other_scan.data.metadata.num_photons])
    assert measured
    assert photons == pytest.approx(expected)


def test_counts_without_a_declared_number_are_measured_from_the_patterns(scan) -> None:
    data = replace(scan.data, metadata=replace(scan.data.metadata, num_photons=None))
    photons, measured = resolve_photons([data], TrainingConfig())
    assert measured
    assert photons == pytest.approx(scan.data.mean_total_counts())


def test_amplitudes_of_unknown_dose_need_a_configured_photon_count(scan) -> None:
    with pytest.raises(DataContractError, match='NumPhotons'):
        resolve_photons([scan.data, _as_amplitudes(scan.data)], TrainingConfig())


# -- prepare_training -----------------------------------------------------------------------------


@pytest.mark.parametrize('model', [MODEL, GRID2], ids=['gridsize1', 'gridsize2'])
def test_arrays_have_the_shapes_and_types_the_engines_expect(scan, model) -> None:
    prepared = prepare_training([scan.data], model, TrainingConfig(validation_fraction=0.2))
    arrays, c = prepared.arrays, model.num_channels
    g = arrays.num_groups
    assert arrays.inputs.shape == arrays.count_targets.shape == (g, c, N, N)
    assert arrays.inputs.dtype == arrays.count_targets.dtype == np.float32
    assert arrays.offsets_px.shape == (g, c, 2)
    assert arrays.offsets_px.dtype == np.float32
    assert arrays.truth_patches is not None
    assert arrays.truth_patches.shape == (g, c, N, N)
    assert arrays.train_indices.size + arrays.validation_indices.size == g
    assert len(prepared.groups) == 1
    assert prepared.groups[0].num_groups == g
    np.testing.assert_allclose(arrays.offsets_px.mean(axis=1), 0.0, atol=1e-4)


def test_inputs_are_the_amplitudes_times_the_dataset_normalisation(scan) -> None:
    prepared = prepare_training([scan.data], GRID2, TrainingConfig())
    members = prepared.groups[0].member_indices
    scale = physics.dataset_normalization(scan.data.diffraction_amplitude)
    assert prepared.normalization.input_scales == (scale,)
    expected = (scan.data.diffraction_amplitude[members] * np.float32(scale)).astype(np.float32)
    np.testing.assert_array_equal(prepared.arrays.inputs, expected)


def test_count_targets_are_the_oracles_in_float32(scan) -> None:
    """The targets are ``physics.count_targets`` of the grouped patterns (the dataset's power)."""
    prepared = prepare_training([scan.data], GRID2, TrainingConfig(num_photons=5e4))
    amplitude = scan.data.diffraction_amplitude[prepared.groups[0].member_indices]
    factor = np.float32(5e4 / scan.data.mean_total_counts())
    expected = (np.square(amplitude) * factor).astype(np.float32)
    np.testing.assert_array_equal(prepared.arrays.count_targets, expected)
    reference = physics.count_targets(amplitude, 5e4, mean_power=scan.data.mean_total_counts())
    np.testing.assert_allclose(prepared.arrays.count_targets, reference, rtol=1e-6)


def test_count_targets_carry_the_photon_count_per_pattern(scan) -> None:
    prepared = prepare_training([scan.data], MODEL, TrainingConfig(num_photons=5e4))
    # gridsize 1: every pattern is one group, so the targets' mean total is the photon count
    totals = prepared.arrays.count_targets.astype(np.float64).sum(axis=(2, 3))
    assert totals.mean() == pytest.approx(5e4, rel=1e-5)


def test_the_reference_count_targets_keep_float64_and_check_their_inputs() -> None:
    amplitude = np.sqrt(np.arange(1.0, 9.0)).reshape(2, 2, 2)
    targets = physics.count_targets(amplitude, 18.0)
    assert targets.dtype == np.float64
    np.testing.assert_allclose(targets, amplitude**2)  # the mean total is 18 already
    with pytest.raises(ConfigurationError, match='num_photons'):
        physics.count_targets(amplitude, 0.0)
    with pytest.raises(DataContractError, match='not all zero'):
        physics.count_targets(amplitude, 1.0, mean_power=0.0)


def test_normalization_records_the_photons_and_the_initial_scale(scan) -> None:
    prepared = prepare_training([scan.data], MODEL, TrainingConfig())
    normalization = prepared.normalization
    assert normalization.num_photons_measured
    assert normalization.num_photons == pytest.approx(scan.data.metadata.num_photons)
    probe = physics.normalize_probe(scan.data.probe, MODEL.probe_scale)
    expected = physics.initial_intensity_scale(normalization.num_photons, probe, MODEL.probe_mask)
    assert normalization.initial_intensity_scale == pytest.approx(expected)
    np.testing.assert_allclose(prepared.normalized_probe, probe.astype(np.complex64))


def test_several_files_are_grouped_and_normalised_each_on_its_own(scan, other_scan) -> None:
    training = TrainingConfig(validation_fraction=0.0)
    both = prepare_training([scan.data, other_scan.data], GRID2, training)
    alone = [prepare_training([data], GRID2, training) for data in (scan.data, other_scan.data)]
    assert both.arrays.num_groups == sum(p.arrays.num_groups for p in alone)
    scales = tuple(p.normalization.input_scales[0] for p in alone)
    assert both.normalization.input_scales == pytest.approx(scales)
    first = alone[0].arrays.num_groups
    np.testing.assert_array_equal(both.arrays.inputs[:first], alone[0].arrays.inputs)
    # the second file is grouped with the next seed, so compare its normalisation, not its groups
    second_groups = group_scan_points(
        other_scan.data.positions_px, 2, num_neighbors=4, seed=training.seed + 1
    )
    expected = other_scan.data.diffraction_amplitude[second_groups.member_indices] * np.float32(
        scales[1]
    )
    np.testing.assert_array_equal(both.arrays.inputs[first:], expected.astype(np.float32))


def test_truth_is_dropped_when_only_some_files_carry_it(scan, other_scan, caplog) -> None:
    without = replace(other_scan.data, ground_truth_patches=None)
    prepared = prepare_training([scan.data, without], MODEL, TrainingConfig())
    assert prepared.arrays.truth_patches is None
    assert 'only some training files carry ground truth' in caplog.text


def test_no_data_is_an_error() -> None:
    with pytest.raises(DataContractError, match='at least one dataset'):
        prepare_training([], MODEL, TrainingConfig())


def test_a_pattern_size_that_does_not_fit_the_model_is_an_error(scan) -> None:
    with pytest.raises(DataContractError, match=r'32 px patterns but the model .* 64 px'):
        prepare_training(
            [scan.data], MODEL.model_copy(update={'pattern_size_px': 64}), TrainingConfig()
        )


def test_too_few_patterns_for_the_gridsize_is_an_error(scan) -> None:
    few = scan.data.subset(np.arange(3))
    with pytest.raises(DataContractError, match='3 scan positions are too few for gridsize 2'):
        prepare_training([few], GRID2, TrainingConfig())


@pytest.mark.parametrize(
    ('model', 'training'),
    [
        (MODEL.model_copy(update={'mode': Mode.SUPERVISED}), TrainingConfig()),
        (MODEL, TrainingConfig(realspace_weight=0.5)),
        (MODEL, TrainingConfig(realspace_mae_weight=0.5)),
    ],
    ids=['supervised', 'realspace', 'realspace-mae'],
)
def test_training_that_needs_truth_refuses_data_without_it(scan, model, training) -> None:
    without = replace(scan.data, ground_truth_patches=None)
    with pytest.raises(DataContractError, match='need ground-truth object patches'):
        prepare_training([without], model, training)


# -- what training needs (core.protocol) ----------------------------------------------------------


def test_needs_truth_in_supervised_mode_or_with_a_real_space_term() -> None:
    supervised = MODEL.model_copy(update={'mode': Mode.SUPERVISED})
    assert needs_truth(supervised, TrainingConfig())
    assert needs_truth(MODEL, TrainingConfig(realspace_weight=0.1))
    assert needs_truth(MODEL, TrainingConfig(realspace_mae_weight=0.1))
    assert not needs_truth(MODEL, TrainingConfig())


def test_checked_arrays_say_whether_truth_is_used(scan) -> None:
    arrays = prepare_training([scan.data], MODEL, TrainingConfig()).arrays
    assert not check_training_arrays(arrays, MODEL, TrainingConfig())
    assert check_training_arrays(arrays, MODEL, TrainingConfig(realspace_weight=0.5))
    no_truth = replace(arrays, truth_patches=None)
    assert not check_training_arrays(no_truth, MODEL, TrainingConfig(realspace_weight=0.5))


def test_checked_arrays_refuse_what_training_cannot_use(scan) -> None:
    arrays = prepare_training([scan.data], MODEL, TrainingConfig()).arrays
    with pytest.raises(DataContractError, match='no training groups'):
        check_training_arrays(
            replace(arrays, train_indices=np.zeros(0, np.int64)), MODEL, TrainingConfig()
        )
    with pytest.raises(DataContractError, match=r'expects \(G, 4, 32, 32\) \(gridsize 2'):
        check_training_arrays(arrays, GRID2, TrainingConfig())
    supervised = MODEL.model_copy(update={'mode': Mode.SUPERVISED})
    with pytest.raises(DataContractError, match='Supervised training needs ground-truth'):
        check_training_arrays(replace(arrays, truth_patches=None), supervised, TrainingConfig())
