"""Ptychodus settings -> PluginConfig: names, one default everywhere, old locations, errors.

Every parameter of the four PtychoPINN groups must show the plugin's own default (the pydantic
configs, which the ``ptychopinn`` command uses too), also after Ptychodus's built-in PtychoPINN
library registered the built-in parameters with its defaults. ``EXPECTED_DEFAULTS`` derives each
expected value from ``PluginConfig()`` here, independently of ``settings.py``.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
from ptychodus.api.settings import SettingsRegistry
from ptychodus.model.ptychopinn.core import PtychoPINNReconstructorLibrary

from ptychopinn_plugin.config import (
    Backend,
    Device,
    ExecutionConfig,
    InferenceConfig,
    Mode,
    PhaseAlignment,
    PluginConfig,
    Precision,
    ProbeRefinement,
)
from ptychopinn_plugin.errors import ConfigurationError
from ptychopinn_plugin.ptychodus_adapter.discovery import bridge_path
from ptychopinn_plugin.ptychodus_adapter.settings import (
    INFERENCE_GROUP,
    MODEL_GROUP,
    MOVED_SETTINGS,
    PLUGIN_GROUP,
    TRAINING_GROUP,
    PtychoPINNSettings,
    build_config,
)

SETTINGS_LOGGER = 'ptychopinn_plugin.ptychodus_adapter.settings'


def _expected_defaults() -> dict[tuple[str, str], object]:
    """Every parameter of the four groups -> its default, from the plugin's configs."""
    config = PluginConfig()
    model, training, inference = config.model, config.training, config.inference
    execution = config.execution
    new_locations: dict[tuple[str, str], object] = {
        (MODEL_GROUP, 'GridSize'): model.gridsize,
        (MODEL_GROUP, 'NumFiltersScale'): model.n_filters_scale,
        (MODEL_GROUP, 'AmpActivation'): model.amp_activation.value,
        (MODEL_GROUP, 'ObjectBig'): model.object_big,
        (MODEL_GROUP, 'ProbeBig'): model.probe_big,
        (MODEL_GROUP, 'ProbeMask'): model.probe_mask,
        (MODEL_GROUP, 'PadObject'): model.pad_object,
        (MODEL_GROUP, 'ProbeScale'): model.probe_scale,
        (MODEL_GROUP, 'GaussianSmoothingSigma'): model.gaussian_smoothing_sigma_px,
        # no config default: the dose is measured from counts; this is for data of unknown dose
        (TRAINING_GROUP, 'NumPhotons'): 1e6,
        (TRAINING_GROUP, 'BatchSize'): training.batch_size,
        (TRAINING_GROUP, 'NumEpochs'): training.num_epochs,
        (TRAINING_GROUP, 'MAEWeight'): training.mae_weight,
        (TRAINING_GROUP, 'NLLWeight'): training.nll_weight,
        (TRAINING_GROUP, 'RealspaceMAEWeight'): training.realspace_mae_weight,
        (TRAINING_GROUP, 'RealspaceWeight'): training.realspace_weight,
        (TRAINING_GROUP, 'PositionsProvided'): True,  # no config field: the product's positions
        (TRAINING_GROUP, 'ProbeTrainable'): training.probe_trainable,
        (TRAINING_GROUP, 'IntensityScaleTrainable'): training.intensity_scale_trainable,
        (TRAINING_GROUP, 'LearningRate'): training.learning_rate,
        (TRAINING_GROUP, 'MinLearningRate'): training.min_learning_rate,
        (TRAINING_GROUP, 'PlateauPatience'): training.plateau_patience,
        (TRAINING_GROUP, 'EarlyStoppingPatience'): training.early_stopping_patience or 0,
        (TRAINING_GROUP, 'ValidationFraction'): training.validation_fraction,
        (TRAINING_GROUP, 'Seed'): training.seed,
        (TRAINING_GROUP, 'ProbeRefinement'): training.probe_refinement.value,
        (TRAINING_GROUP, 'ProbeRefinementIterations'): training.probe_refinement_iterations,
        (INFERENCE_GROUP, 'ModelPath'): Path('/path/to/model.zip'),  # placeholder: no model
        (INFERENCE_GROUP, 'NumNearestNeighbors'): model.num_neighbors,
        (INFERENCE_GROUP, 'NumSamples'): 1,  # no config field: not used
        (INFERENCE_GROUP, 'InferenceBatchSize'): inference.batch_size,
        (INFERENCE_GROUP, 'NumGroups'): inference.num_groups or 0,
        (INFERENCE_GROUP, 'StitchCropPx'): inference.stitch_crop_px or 0,
        (INFERENCE_GROUP, 'NumPartialResults'): inference.num_partial_results,
        (INFERENCE_GROUP, 'PhaseAlignment'): inference.phase_alignment.value,
        (INFERENCE_GROUP, 'PhaseRampCorrection'): inference.phase_ramp_correction,
        (INFERENCE_GROUP, 'RefineIterations'): inference.refine_iterations,
        (INFERENCE_GROUP, 'RefineStart'): inference.refine_start.value,
        (INFERENCE_GROUP, 'AmplitudeDenoising'): inference.amplitude_denoising,
        (INFERENCE_GROUP, 'ReconstructionProbe'): inference.reconstruction_probe.value,
        (INFERENCE_GROUP, 'FineTuneEpochs'): inference.fine_tune_epochs,
        (PLUGIN_GROUP, 'Backend'): execution.backend.value,
        (PLUGIN_GROUP, 'Device'): execution.device.value,
        (PLUGIN_GROUP, 'Precision'): execution.precision.value,
    }
    old_locations = {
        (PLUGIN_GROUP, name): new_locations[group, name] for name, group in MOVED_SETTINGS.items()
    }
    return {**new_locations, **old_locations}


EXPECTED_DEFAULTS = _expected_defaults()
GROUPS = (MODEL_GROUP, TRAINING_GROUP, INFERENCE_GROUP, PLUGIN_GROUP)

NON_DEFAULT_VALUES: dict[str, tuple[str, object]] = {
    'LearningRate': ('0.002', 0.002),
    'MinLearningRate': ('0.00002', 2e-5),
    'PlateauPatience': ('5', 5),
    'EarlyStoppingPatience': ('4', 4),
    'ValidationFraction': ('0.2', 0.2),
    'Seed': ('7', 7),
    'ProbeRefinement': ('off', 'off'),
    'ProbeRefinementIterations': ('50', 50),
    'InferenceBatchSize': ('64', 64),
    'NumGroups': ('12', 12),
    'StitchCropPx': ('16', 16),
    'NumPartialResults': ('2', 2),
    'PhaseAlignment': ('greedy', 'greedy'),
    'PhaseRampCorrection': ('False', False),
    'RefineIterations': ('0', 0),
    'RefineStart': ('object', 'object'),
}
"""Each moved setting: a value as written in a settings file, and the value the parameter takes."""


def _differences(registry: SettingsRegistry) -> list[str]:
    """``[Group] Name: shown X, plugin default Y`` for every parameter that disagrees."""
    found = []
    for group in GROUPS:
        for name, parameter in registry[group].parameters().items():
            expected = EXPECTED_DEFAULTS.get((group, name), 'missing from EXPECTED_DEFAULTS')
            if parameter.get_value() != expected:
                found.append(
                    f'[{group}] {name}: shown {parameter.get_value()!r}, plugin {expected!r}'
                )
    missing = [key for key in EXPECTED_DEFAULTS if key[1] not in registry[key[0]].parameters()]
    return found + [f'[{group}] {name}: not registered' for group, name in missing]


def _registry_as_ptychodus_builds_it() -> tuple[SettingsRegistry, PtychoPINNSettings]:
    """A registry where the built-in PtychoPINN library registered its groups first."""
    registry = SettingsRegistry()
    PtychoPINNReconstructorLibrary(registry, is_developer_mode_enabled=False)
    return registry, PtychoPINNSettings(registry)


@pytest.fixture
def bridge() -> Path:
    """The installed bridge module, without which ``ModelCore`` would not build our library.

    In process, ``ModelCore`` runs this source tree's adapter (the repository root comes first on
    ``sys.path``); only the bridge module must be installed where Ptychodus looks.
    """
    found = bridge_path()
    if found is None:
        pytest.fail('the bridge module is not in ptychodus/plugins; run make install')
    return found


def _model_core(settings_file: Path | None = None):
    from ptychodus.model import ModelCore

    return ModelCore(settings_file, log_level=logging.WARNING)


def _our_library(model):
    return next(
        lib for lib in model.processing_core.algorithm_libraries if lib.name == 'PtychoPINN'
    )


def test_every_parameter_has_the_plugin_default_on_a_bare_registry() -> None:
    registry = SettingsRegistry()
    settings = PtychoPINNSettings(registry)
    assert _differences(registry) == []
    assert build_config(settings, Mode.PINN) == PluginConfig()


def test_every_adopted_built_in_parameter_takes_the_plugin_default() -> None:
    registry, settings = _registry_as_ptychodus_builds_it()
    assert _differences(registry) == []
    assert build_config(settings, Mode.PINN) == PluginConfig()


def test_through_model_core_every_parameter_default_is_the_plugin_config(
    bridge: Path,
) -> None:
    """What the GUI shows and ``ptychodus -b`` uses without a settings value (issue 28, item 6)."""
    model = _model_core()
    assert _differences(model.settings_registry) == []
    settings = _our_library(model).settings
    assert build_config(settings, Mode.PINN) == PluginConfig()
    assert build_config(settings, Mode.PINN).training.num_epochs == 30  # Ptychodus's own: 50


def test_a_settings_file_value_wins_over_the_plugin_default(tmp_path: Path, bridge: Path) -> None:
    settings_file = tmp_path / 'settings.ini'
    settings_file.write_text('[PtychoPINNTraining]\nNumEpochs = 50\n')  # Ptychodus's default
    model = _model_core(settings_file)
    assert build_config(_our_library(model).settings, Mode.PINN).training.num_epochs == 50
    model.settings_registry.open_settings(tmp_path / 'missing.ini')  # as batch mode may
    assert build_config(_our_library(model).settings, Mode.PINN).training.num_epochs == 50


def test_refine_iterations_under_ptychopinn_inference_is_honoured(
    tmp_path: Path, bridge: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings_file = tmp_path / 'settings.ini'
    settings_file.write_text(
        textwrap.dedent(
            """\
            [PtychoPINNInference]
            RefineIterations = 0
            RefineStart = object
            AmplitudeDenoising = 0.5
            InferenceBatchSize = 64
            [PtychoPINNTraining]
            LearningRate = 0.002
            """
        )
    )
    with caplog.at_level(logging.INFO):
        model = _model_core(settings_file)
    assert 'unrecognized setting' not in caplog.text
    library = _our_library(model)
    config = build_config(library.settings, Mode.PINN)
    assert config.inference.refine_iterations == 0
    assert config.inference.refine_start == 'object'
    assert config.inference.amplitude_denoising == 0.5
    assert config.inference.batch_size == 64
    assert config.training.learning_rate == 0.002
    assert library.inference_settings.refine_iterations.get_value() == 0  # what the GUI shows
    assert library.inference_settings.amplitude_denoising.get_value() == 0.5


def test_an_out_of_range_amplitude_denoising_is_held_to_its_range_like_refine_iterations(
    tmp_path: Path,
) -> None:
    """Ptychodus's parameters hold a value from a file to their range (0 to 100 here, as
    ``InferenceConfig.amplitude_denoising``), as they do for ``RefineIterations`` (minimum 0)."""
    registry, settings = _registry_as_ptychodus_builds_it()
    settings_file = tmp_path / 'settings.ini'
    settings_file.write_text(
        '[PtychoPINNInference]\nRefineIterations = -5\nAmplitudeDenoising = -0.5\n'
    )
    registry.open_settings(settings_file)
    config = build_config(settings, Mode.PINN)
    assert config.inference.refine_iterations == 0
    assert config.inference.amplitude_denoising == 0.0  # off
    settings_file.write_text('[PtychoPINNInference]\nAmplitudeDenoising = 500\n')
    registry.open_settings(settings_file)
    assert build_config(settings, Mode.PINN).inference.amplitude_denoising == 100.0


def test_refine_iterations_at_its_old_location_is_still_honoured(
    tmp_path: Path, bridge: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings_file = tmp_path / 'settings.ini'
    settings_file.write_text('[PtychoPINN]\nRefineIterations = 0\n')
    with caplog.at_level(logging.INFO, logger=SETTINGS_LOGGER):
        model = _model_core(settings_file)
    library = _our_library(model)
    assert build_config(library.settings, Mode.PINN).inference.refine_iterations == 0
    assert library.inference_settings.refine_iterations.get_value() == 0  # the GUI shows it
    assert '[PtychoPINN] RefineIterations = 0 read from its old location' in caplog.text
    assert '[PtychoPINNInference]' in caplog.text


@pytest.mark.parametrize('name', sorted(MOVED_SETTINGS))
def test_every_moved_setting_is_read_at_its_old_and_its_new_location(
    name: str, tmp_path: Path
) -> None:
    text, value = NON_DEFAULT_VALUES[name]
    home = MOVED_SETTINGS[name]
    for section in (PLUGIN_GROUP, home):
        registry, _ = _registry_as_ptychodus_builds_it()
        settings_file = tmp_path / f'{section}.ini'
        settings_file.write_text(f'[{section}]\n{name} = {text}\n')
        registry.open_settings(settings_file)
        assert registry[home].parameters()[name].get_value() == value, section
        assert registry[PLUGIN_GROUP].parameters()[name].get_value() == value, 'saved alike'


def test_when_both_locations_are_given_the_new_one_wins_and_the_log_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry, settings = _registry_as_ptychodus_builds_it()
    settings_file = tmp_path / 'settings.ini'
    settings_file.write_text(
        '[PtychoPINNInference]\nRefineIterations = 5\n[PtychoPINN]\nRefineIterations = 0\n'
    )
    with caplog.at_level(logging.WARNING, logger=SETTINGS_LOGGER):
        registry.open_settings(settings_file)
    assert build_config(settings, Mode.PINN).inference.refine_iterations == 5
    assert (
        '[PtychoPINNInference] RefineIterations = 5 wins over [PtychoPINN] RefineIterations = 0'
        in caplog.text
    )
    saved = tmp_path / 'saved.ini'  # Ptychodus saves both locations, with the same value
    registry.save_settings(saved)
    caplog.clear()
    reloaded, again = _registry_as_ptychodus_builds_it()
    with caplog.at_level(logging.INFO, logger=SETTINGS_LOGGER):
        reloaded.open_settings(saved)
    assert build_config(again, Mode.PINN).inference.refine_iterations == 5
    assert caplog.text == ''


def test_code_written_for_the_old_location_edits_the_setting_in_use() -> None:
    settings = PtychoPINNSettings(SettingsRegistry())
    assert settings.plugin_settings.num_groups is settings.inference_settings.num_groups
    settings.plugin_settings.num_groups.set_value(20)
    settings.plugin_settings.num_groups.set_value(0)  # and back, as a test's teardown does
    assert build_config(settings, Mode.PINN).inference.num_groups is None


def test_the_ptychopinn_command_has_the_same_defaults() -> None:
    from ptychopinn_plugin.cli import build_parser
    from ptychopinn_plugin.cli.train import build_training_config

    parser = build_parser()
    train = parser.parse_args(['train', 'data.npz', '-o', 'model.zip'])
    assert build_training_config(train, 64) == PluginConfig()
    reconstruct = parser.parse_args(['reconstruct', 'model.zip', 'data.npz', '-o', 'out'])
    inference, execution = InferenceConfig(), ExecutionConfig()
    assert reconstruct.batch_size == inference.batch_size
    assert (reconstruct.backend, reconstruct.device, reconstruct.precision) == (
        execution.backend.value,
        execution.device.value,
        execution.precision.value,
    )


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
    assert config.inference.refine_start == 'flat'
    assert config.inference.amplitude_denoising == 1.0
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
    settings.inference_settings.amplitude_denoising.set_value(0.25)
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
    assert config.inference.amplitude_denoising == 0.25
    assert config.training.probe_refinement is ProbeRefinement.OFF
    assert config.inference.fine_tune_epochs == 4
    assert config.training.probe_refinement_iterations == 50


def test_an_unknown_refine_start_names_the_setting_and_the_valid_values() -> None:
    settings = PtychoPINNSettings(SettingsRegistry())
    settings.plugin_settings.refine_start.set_value('network')
    with pytest.raises(ConfigurationError, match=r'\[PtychoPINNInference\] RefineStart') as error:
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
        (INFERENCE_GROUP, 'PhaseAlignment', 'local', 'none, greedy, global'),
        (TRAINING_GROUP, 'ProbeRefinement', 'always', '[PtychoPINNTraining] ProbeRefinement'),
        (TRAINING_GROUP, 'ProbeRefinement', 'always', 'auto, on, off'),
        (TRAINING_GROUP, 'LearningRate', 0.0, '[PtychoPINNTraining] LearningRate'),
        (PLUGIN_GROUP, 'LearningRate', 0.0, 'formerly [PtychoPINN] LearningRate'),
        (INFERENCE_GROUP, 'InferenceBatchSize', 10**9, '[PtychoPINNInference] InferenceBatchSize'),
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
