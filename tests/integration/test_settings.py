"""Ptychodus settings -> PluginConfig: names, defaults, adoption of the built-in groups, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from ptychodus.api.settings import SettingsRegistry
from ptychodus.model.ptychopinn.core import PtychoPINNReconstructorLibrary

from ptychopinn_plugin.config import (
    Backend,
    Device,
    Mode,
    PhaseAlignment,
    Precision,
    ProbeRefinement,
)
from ptychopinn_plugin.errors import ConfigurationError
from ptychopinn_plugin.ptychodus_adapter.settings import (
    INFERENCE_GROUP,
    MODEL_GROUP,
    PLUGIN_GROUP,
    TRAINING_GROUP,
    PtychoPINNSettings,
    build_config,
)

BUILT_IN_NAMES = {
    MODEL_GROUP: {
        'GridSize': 1,
        'NumFiltersScale': 2,
        'AmpActivation': 'sigmoid',
        'ObjectBig': True,
        'ProbeBig': True,
        'ProbeMask': False,
        'PadObject': True,
        'ProbeScale': 4.0,
        'GaussianSmoothingSigma': 0.0,
    },
    TRAINING_GROUP: {
        'NumPhotons': 1e6,
        'BatchSize': 16,
        'NumEpochs': 30,
        'MAEWeight': 0.0,
        'NLLWeight': 1.0,
        'RealspaceMAEWeight': 0.0,
        'RealspaceWeight': 0.0,
        'PositionsProvided': True,
        'ProbeTrainable': False,
        'IntensityScaleTrainable': True,
    },
    INFERENCE_GROUP: {
        'ModelPath': Path('/path/to/model.zip'),
        'NumNearestNeighbors': 7,
        'NumSamples': 1,
    },
}


def test_settings_keep_the_built_in_group_and_parameter_names_and_defaults() -> None:
    registry = SettingsRegistry()
    PtychoPINNSettings(registry)
    for group, values in BUILT_IN_NAMES.items():
        parameters = registry[group].parameters()
        for name, default in values.items():
            assert name in parameters, f'{group}.{name} missing'
            assert parameters[name].get_value() == default, f'{group}.{name}'
    assert registry[PLUGIN_GROUP].parameters()['Backend'].get_value() == 'pytorch'
    assert registry[PLUGIN_GROUP].parameters()['Device'].get_value() == 'auto'


def test_settings_adopt_the_groups_the_built_in_library_registered_first() -> None:
    registry = SettingsRegistry()
    built_in = PtychoPINNReconstructorLibrary(registry, is_developer_mode_enabled=False)
    ours = PtychoPINNSettings(registry)  # would raise 'Group already exists' without adoption
    assert ours.model_settings.gridsize is built_in.model_settings.gridsize
    assert ours.training_settings.nepochs is built_in.training_settings.nepochs
    assert ours.inference_settings.model_path is built_in.inference_settings.model_path
    built_in.training_settings.nepochs.set_value(3)  # the built-in GUI panel edits our values
    assert build_config(ours, Mode.PINN).training.num_epochs == 3


def test_default_settings_reconstruct_every_scan_point_and_measure_the_dose() -> None:
    config = build_config(PtychoPINNSettings(SettingsRegistry()), Mode.PINN)
    assert config.inference.num_groups is None  # NumSamples = 1 does not mean one group
    assert config.inference.stitch_crop_px is None
    assert config.training.num_photons is None  # NumPhotons 1e6 is for data of unknown dose
    assert config.execution.backend is Backend.PYTORCH
    assert config.execution.device is Device.AUTO
    assert config.execution.precision is Precision.AUTO
    assert config.model.n_filters_scale == 2
    assert config.model.gridsize == 1
    assert config.inference.phase_alignment is PhaseAlignment.GLOBAL
    assert config.inference.phase_ramp_correction is True
    assert config.inference.refine_iterations == 100
    assert config.inference.refine_start == 'amplitude'
    assert config.training.probe_refinement is ProbeRefinement.AUTO
    assert config.training.probe_refinement_iterations == 200
    assert config.inference.fine_tune_epochs == 0


def test_settings_map_onto_the_config_fields() -> None:
    settings = PtychoPINNSettings(SettingsRegistry())
    settings.model_settings.gridsize.set_value(2)
    settings.inference_settings.n_nearest_neighbors.set_value(5)
    settings.training_settings.nepochs.set_value(9)
    settings.training_settings.nphotons.set_value(2e4)
    settings.plugin_settings.backend.set_value(' TensorFlow ')
    settings.plugin_settings.device.set_value('CPU')
    settings.plugin_settings.num_groups.set_value(40)
    settings.plugin_settings.stitch_crop_px.set_value(12)
    settings.plugin_settings.early_stopping_patience.set_value(3)
    settings.plugin_settings.phase_alignment.set_value('Greedy')
    settings.plugin_settings.phase_ramp_correction.set_value(False)
    settings.plugin_settings.refine_iterations.set_value(7)
    settings.plugin_settings.refine_start.set_value('Object')
    settings.plugin_settings.probe_refinement.set_value('Off')
    settings.inference_settings.fine_tune_epochs.set_value(4)
    settings.plugin_settings.probe_refinement_iterations.set_value(50)
    config = build_config(settings, 'supervised', pattern_size_px=32, dose_known=False)
    assert config.model.mode is Mode.SUPERVISED
    assert (config.model.pattern_size_px, config.model.gridsize) == (32, 2)
    assert config.model.num_neighbors == 5
    assert config.training.num_epochs == 9
    assert config.training.num_photons == 2e4
    assert config.training.early_stopping_patience == 3
    assert config.execution.backend is Backend.TENSORFLOW
    assert config.execution.device is Device.CPU
    assert (config.inference.num_groups, config.inference.stitch_crop_px) == (40, 12)
    assert config.inference.phase_alignment is PhaseAlignment.GREEDY
    assert config.inference.phase_ramp_correction is False
    assert config.inference.refine_iterations == 7
    assert config.inference.refine_start == 'object'
    assert config.training.probe_refinement is ProbeRefinement.OFF
    assert config.inference.fine_tune_epochs == 4
    assert config.training.probe_refinement_iterations == 50


def test_an_unknown_refine_start_names_the_setting_and_the_valid_values() -> None:
    settings = PtychoPINNSettings(SettingsRegistry())
    settings.plugin_settings.refine_start.set_value('network')
    with pytest.raises(ConfigurationError, match=r'\[PtychoPINN\] RefineStart') as error:
        build_config(settings, Mode.PINN)
    assert 'amplitude' in str(error.value)
    assert 'object' in str(error.value)


def test_an_unknown_backend_names_the_setting_and_the_valid_values() -> None:
    settings = PtychoPINNSettings(SettingsRegistry())
    settings.plugin_settings.backend.set_value('jax')
    with pytest.raises(ConfigurationError) as error:
        build_config(settings, Mode.PINN)
    message = str(error.value)
    assert '[PtychoPINN] Backend' in message
    assert "'jax'" in message
    assert 'tensorflow' in message
    assert 'pytorch' in message


@pytest.mark.parametrize(
    ('group', 'name', 'value', 'expected'),
    [
        (MODEL_GROUP, 'GridSize', 5, '[PtychoPINNModel] GridSize'),
        (MODEL_GROUP, 'AmpActivation', 'tanh', 'sigmoid, swish, softplus, relu'),
        (PLUGIN_GROUP, 'Device', 'tpu', 'auto, cpu, cuda'),
        (PLUGIN_GROUP, 'Precision', 'fp8', 'auto, 32-true, bf16-mixed, 16-mixed'),
        (PLUGIN_GROUP, 'PhaseAlignment', 'local', 'none, greedy, global'),
        (PLUGIN_GROUP, 'ProbeRefinement', 'always', '[PtychoPINN] ProbeRefinement'),
        (PLUGIN_GROUP, 'ProbeRefinement', 'always', 'auto, on, off'),
        (PLUGIN_GROUP, 'LearningRate', 0.0, '[PtychoPINN] LearningRate'),
        (PLUGIN_GROUP, 'InferenceBatchSize', 10**9, '[PtychoPINN] InferenceBatchSize'),
    ],
)
def test_invalid_settings_raise_a_configuration_error_naming_the_setting(
    group: str, name: str, value: object, expected: str
) -> None:
    registry = SettingsRegistry()
    settings = PtychoPINNSettings(registry)
    registry[group].parameters()[name].set_value(value)
    with pytest.raises(ConfigurationError, match=None) as error:
        build_config(settings, Mode.PINN)
    assert expected in str(error.value)


def test_unknown_dose_needs_a_positive_num_photons() -> None:
    settings = PtychoPINNSettings(SettingsRegistry())
    settings.training_settings.nphotons.set_value(0.0)
    with pytest.raises(ConfigurationError, match=r'\[PtychoPINNTraining\] NumPhotons'):
        build_config(settings, Mode.PINN, dose_known=False)


def test_a_pattern_size_the_network_cannot_take_is_a_configuration_error() -> None:
    settings = PtychoPINNSettings(SettingsRegistry())
    with pytest.raises(ConfigurationError, match=r'48 x 48 px.*32, 64, 128, 256, 512'):
        build_config(settings, Mode.PINN, pattern_size_px=48)
