"""Canonical weights (``core/weights.py``) without a framework: specs, checks, initial values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptychopinn_plugin.config import Mode, ModelConfig, TrainingConfig
from ptychopinn_plugin.core import physics, simulate
from ptychopinn_plugin.core.weights import (
    HEAD_INIT_GAIN,
    LOG_INTENSITY_SCALE,
    PHYSICS_WEIGHTS,
    PROBE_IMAG,
    PROBE_REAL,
    check_weights,
    count_parameters,
    decoder_widths,
    encoder_widths,
    in_canonical_order,
    initial_weights,
    trainable_physics,
    weight_specs,
)
from ptychopinn_plugin.errors import ArchiveError

SMALL = ModelConfig(pattern_size_px=32, n_filters_scale=1)


def _probe(model: ModelConfig) -> np.ndarray:
    n_px = model.pattern_size_px
    return physics.normalize_probe(simulate.disk_probe(n_px), model.probe_scale)


def _weights(model: ModelConfig = SMALL, seed: int = 0) -> dict[str, np.ndarray]:
    return initial_weights(model, _probe(model), 2.5, seed)


# -- specs ----------------------------------------------------------------------------------------


def test_widths_double_per_level_up_to_128_times_the_scale() -> None:
    model = ModelConfig(pattern_size_px=64, n_filters_scale=2)
    assert encoder_widths(model) == [64, 128, 256]
    assert decoder_widths(model) == [128, 64]
    assert encoder_widths(ModelConfig(pattern_size_px=128, n_filters_scale=1)) == [16, 32, 64, 128]


def test_specs_chain_the_channels_from_input_to_heads() -> None:
    model = ModelConfig(pattern_size_px=32, n_filters_scale=1, gridsize=2)
    specs = {spec.name: spec.shape for spec in weight_specs(model)}
    assert specs['encoder.0.conv1.kernel'] == (3, 3, 4, 64)  # C = gridsize**2 input channels
    assert specs['encoder.1.conv2.kernel'] == (3, 3, 128, 128)
    assert specs['amp_decoder.0.conv1.kernel'] == (3, 3, 128, 64)
    assert specs['phase_head.kernel'] == (3, 3, 64, 4)
    assert specs['phase_head.bias'] == (4,)
    assert specs[PROBE_REAL] == specs[PROBE_IMAG] == (32, 32)
    assert specs[LOG_INTENSITY_SCALE] == ()


def test_border_heads_exist_only_with_probe_big_and_pad_object() -> None:
    def names(**values) -> set[str]:
        return {spec.name for spec in weight_specs(SMALL.model_copy(update=values))}

    assert {'amp_border.kernel', 'phase_border.bias'} <= names(pad_object=True, probe_big=True)
    assert not any('border' in name for name in names(pad_object=True, probe_big=False))
    assert not any('border' in name for name in names(pad_object=False, probe_big=True))


def test_specs_have_unique_names_in_a_fixed_order() -> None:
    names = [spec.name for spec in weight_specs(SMALL)]
    assert len(names) == len(set(names))
    assert names == [spec.name for spec in weight_specs(SMALL)]
    assert names[-3:] == list(PHYSICS_WEIGHTS)
    kernels = [spec for spec in weight_specs(SMALL) if spec.is_kernel]
    assert all(spec.name.endswith('.kernel') and len(spec.shape) == 4 for spec in kernels)


def test_engine_parameters_are_put_in_canonical_order() -> None:
    names = [spec.name for spec in weight_specs(SMALL)]
    shuffled = {name: index for index, name in reversed(list(enumerate(names)))}
    ordered = in_canonical_order(SMALL, shuffled, 'Test')
    assert list(ordered) == names
    assert list(ordered.values()) == list(range(len(names)))


def test_engine_parameters_of_another_network_are_refused_naming_the_framework() -> None:
    parameters = {spec.name: 0 for spec in weight_specs(SMALL)}
    del parameters[PROBE_REAL]
    parameters['extra.kernel'] = 0
    with pytest.raises(ArchiveError, match=r"Test network .*'extra.kernel', 'probe.real'"):
        in_canonical_order(SMALL, parameters, 'Test')


def test_parameter_count_excludes_the_physics() -> None:
    total = sum(int(np.prod(spec.shape)) for spec in weight_specs(SMALL))
    physics_size = 2 * SMALL.pattern_size_px**2 + 1
    assert count_parameters(SMALL) == total - physics_size


# -- check_weights --------------------------------------------------------------------------------


def test_initial_weights_pass_the_check() -> None:
    check_weights(SMALL, _weights())


def test_a_missing_weight_is_named() -> None:
    weights = _weights()
    del weights['amp_head.bias']
    with pytest.raises(ArchiveError, match=r"missing \['amp_head.bias'\]"):
        check_weights(SMALL, weights)


def test_an_unexpected_weight_is_named() -> None:
    weights = {**_weights(), 'extra.kernel': np.zeros((3, 3, 1, 1), np.float32)}
    with pytest.raises(ArchiveError, match=r"unexpected \['extra.kernel'\]"):
        check_weights(SMALL, weights)


def test_weights_of_another_architecture_are_refused() -> None:
    without_border = SMALL.model_copy(update={'probe_big': False})
    with pytest.raises(ArchiveError, match=r"N=32, gridsize=1, .* unexpected \['amp_border"):
        check_weights(without_border, _weights())
    with pytest.raises(ArchiveError, match=r'expected \(3, 3, 4, 64\)'):
        check_weights(SMALL.model_copy(update={'gridsize': 2}), _weights())


def test_a_wrong_shape_is_named_with_the_expected_one() -> None:
    weights = _weights()
    weights['encoder.0.conv1.bias'] = np.zeros(3, np.float32)
    with pytest.raises(ArchiveError, match=r"'encoder.0.conv1.bias' has shape \(3,\), expected"):
        check_weights(SMALL, weights)


@pytest.mark.parametrize(
    'bad', [np.full((32, 32), np.nan, np.float32), np.zeros((32, 32), np.int32)], ids=['nan', 'int']
)
def test_non_finite_or_non_float_weights_are_refused(bad) -> None:
    weights = {**_weights(), PROBE_REAL: bad}
    with pytest.raises(ArchiveError, match='finite floating point'):
        check_weights(SMALL, weights)


# -- initial_weights ------------------------------------------------------------------------------


def test_initial_weights_are_determined_by_the_seed() -> None:
    first, again, other = _weights(seed=4), _weights(seed=4), _weights(seed=5)
    assert sorted(first) == sorted(spec.name for spec in weight_specs(SMALL))
    for name in first:
        assert first[name].dtype == np.float32
        np.testing.assert_array_equal(first[name], again[name])
    assert not np.array_equal(first['encoder.0.conv1.kernel'], other['encoder.0.conv1.kernel'])


def test_kernels_are_glorot_uniform_heads_scaled_biases_zero() -> None:
    weights = _weights()
    for spec in weight_specs(SMALL):
        value = weights[spec.name]
        if spec.name.endswith('.bias'):
            assert not value.any()
        elif spec.is_kernel:
            fan_in = 9 * spec.shape[2]
            fan_out = 9 * spec.shape[3]
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            if spec.name.split('.')[0].endswith(('_head', '_border')):
                limit *= HEAD_INIT_GAIN
            assert np.max(np.abs(value)) <= limit
            assert np.max(np.abs(value)) > 0.5 * limit  # drawn over the whole range


def test_physics_weights_hold_the_probe_and_the_log_scale() -> None:
    probe = _probe(SMALL)
    weights = initial_weights(SMALL, probe, -1.25, 0)
    np.testing.assert_array_equal(weights[PROBE_REAL], np.real(probe).astype(np.float32))
    np.testing.assert_array_equal(weights[PROBE_IMAG], np.imag(probe).astype(np.float32))
    assert weights[LOG_INTENSITY_SCALE].shape == ()
    assert float(weights[LOG_INTENSITY_SCALE]) == -1.25


# -- trainable physics ----------------------------------------------------------------------------


@pytest.mark.parametrize('probe', [True, False])
@pytest.mark.parametrize('scale', [True, False])
def test_pinn_training_trains_the_physics_it_is_asked_to(probe, scale) -> None:
    training = TrainingConfig(probe_trainable=probe, intensity_scale_trainable=scale)
    assert trainable_physics(SMALL, training) == {
        PROBE_REAL: probe,
        PROBE_IMAG: probe,
        LOG_INTENSITY_SCALE: scale,
    }


def test_supervised_training_trains_no_physics() -> None:
    model = SMALL.model_copy(update={'mode': Mode.SUPERVISED})
    training = TrainingConfig(probe_trainable=True, intensity_scale_trainable=True)
    flags = trainable_physics(model, training)
    assert set(flags) == set(PHYSICS_WEIGHTS)
    assert not any(flags.values())
