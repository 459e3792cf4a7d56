"""Ptychodus settings of the PtychoPINN library and their translation into our configs.

Ptychodus keeps settings in a ``SettingsRegistry``: named groups of typed parameters, saved as one
INI section per group. We keep the built-in PtychoPINN groups and parameter names
(``PtychoPINNModel``, ``PtychoPINNTraining``, ``PtychoPINNInference``) with their defaults, so
existing settings files keep working, and add a group ``PtychoPINN`` for what is new (backend,
device, optimiser and inference knobs).

Ptychodus's built-in (empty) PtychoPINN library registers those three groups before our library is
built, and ``create_group`` / ``create_*_parameter`` refuse existing names. We therefore *adopt*
groups and parameters that already exist (the same ``Parameter`` objects, so the built-in GUI panel
and our library read and write the same values) and create only what is missing.

:func:`build_config` is the one place where settings become a :class:`PluginConfig`; the mapping is
documented in ``specs/ptychodus_api_spec.md`` section 7. The reconstructor is in
``reconstructor.py``; the GUI panel will live in ``view.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ptychodus.api.parameters import (
    BooleanParameter,
    IntegerParameter,
    Parameter,
    ParameterGroup,
    PathParameter,
    RealParameter,
    StringParameter,
)
from ptychodus.api.settings import SettingsRegistry
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..config import (
    SUPPORTED_PATTERN_SIZES_PX,
    AmpActivation,
    Backend,
    Device,
    ExecutionConfig,
    InferenceConfig,
    Mode,
    PhaseAlignment,
    PluginConfig,
    Precision,
    ProbeRefinement,
    RefineStart,
    TrainingConfig,
)
from ..errors import ConfigurationError

logger = logging.getLogger(__name__)

__all__ = [
    'INFERENCE_GROUP',
    'MODEL_GROUP',
    'PLUGIN_GROUP',
    'TRAINING_GROUP',
    'PtychoPINNSettings',
    'build_config',
]

MODEL_GROUP = 'PtychoPINNModel'
TRAINING_GROUP = 'PtychoPINNTraining'
INFERENCE_GROUP = 'PtychoPINNInference'
PLUGIN_GROUP = 'PtychoPINN'

DEFAULT_MODEL_PATH = Path('/path/to/model.zip')
"""The built-in library's placeholder for ``[PtychoPINNInference] ModelPath``."""


def _adopt_group(registry: SettingsRegistry, name: str) -> ParameterGroup:
    """The registry's group ``name``, created when no library registered it yet."""
    if name in set(registry):
        return registry[name]
    return registry.create_group(name)


class _Group:
    """Typed get-or-create access to one settings group."""

    def __init__(self, registry: SettingsRegistry, name: str) -> None:
        self.name = name
        self.group = _adopt_group(registry, name)

    def _existing(self, name: str, kind: type[Parameter[Any]]) -> Any:
        parameter = self.group.parameters().get(name)
        if parameter is not None and not isinstance(parameter, kind):
            raise ConfigurationError(
                f'settings parameter [{self.name}] {name} was registered by another library as '
                f'{type(parameter).__name__}, but PtychoPINN needs a {kind.__name__}'
            )
        return parameter

    def integer(
        self, name: str, value: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> IntegerParameter:
        found = self._existing(name, IntegerParameter)
        if found is not None:
            return found
        return self.group.create_integer_parameter(name, value, minimum=minimum, maximum=maximum)

    def real(
        self,
        name: str,
        value: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> RealParameter:
        found = self._existing(name, RealParameter)
        if found is not None:
            return found
        return self.group.create_real_parameter(name, value, minimum=minimum, maximum=maximum)

    def boolean(self, name: str, value: bool) -> BooleanParameter:
        found = self._existing(name, BooleanParameter)
        return found if found is not None else self.group.create_boolean_parameter(name, value)

    def string(self, name: str, value: str) -> StringParameter:
        found = self._existing(name, StringParameter)
        return found if found is not None else self.group.create_string_parameter(name, value)

    def path(self, name: str, value: Path) -> PathParameter:
        found = self._existing(name, PathParameter)
        return found if found is not None else self.group.create_path_parameter(name, value)


class PtychoPINNModelSettings:
    """``[PtychoPINNModel]``: the built-in names and defaults (attribute names as built-in)."""

    def __init__(self, registry: SettingsRegistry) -> None:
        group = _Group(registry, MODEL_GROUP)
        self.group = group.group
        self.gridsize = group.integer('GridSize', 1, minimum=1, maximum=5)
        self.n_filters_scale = group.integer('NumFiltersScale', 2, minimum=1, maximum=4)
        self.amp_activation = group.string('AmpActivation', 'sigmoid')
        self.object_big = group.boolean('ObjectBig', True)
        self.probe_big = group.boolean('ProbeBig', True)
        self.probe_mask = group.boolean('ProbeMask', False)
        self.pad_object = group.boolean('PadObject', True)
        self.probe_scale = group.real('ProbeScale', 4.0, minimum=0.0)
        self.gaussian_smoothing_sigma = group.real('GaussianSmoothingSigma', 0.0, minimum=0.0)


class PtychoPINNTrainingSettings:
    """``[PtychoPINNTraining]``: the built-in names and defaults."""

    def __init__(self, registry: SettingsRegistry) -> None:
        group = _Group(registry, TRAINING_GROUP)
        self.group = group.group
        self.nphotons = group.real('NumPhotons', 1e6, minimum=0.0)
        self.batch_size = group.integer('BatchSize', 16, minimum=1, maximum=1 << 30)
        self.nepochs = group.integer('NumEpochs', 30, minimum=1)
        self.mae_weight = group.real('MAEWeight', 0.0, minimum=0.0, maximum=1.0)
        self.nll_weight = group.real('NLLWeight', 1.0, minimum=0.0, maximum=1.0)
        self.realspace_mae_weight = group.real('RealspaceMAEWeight', 0.0, minimum=0.0, maximum=1.0)
        self.realspace_weight = group.real('RealspaceWeight', 0.0, minimum=0.0, maximum=1.0)
        self.positions_provided = group.boolean('PositionsProvided', True)
        self.probe_trainable = group.boolean('ProbeTrainable', False)
        self.intensity_scale_trainable = group.boolean('IntensityScaleTrainable', True)


class PtychoPINNInferenceSettings:
    """``[PtychoPINNInference]``: the built-in names and defaults."""

    def __init__(self, registry: SettingsRegistry) -> None:
        group = _Group(registry, INFERENCE_GROUP)
        self.group = group.group
        self.model_path = group.path('ModelPath', DEFAULT_MODEL_PATH)
        self.n_nearest_neighbors = group.integer('NumNearestNeighbors', 7, minimum=0)
        self.n_samples = group.integer('NumSamples', 1, minimum=1)
        self.fine_tune_epochs = group.integer(
            'FineTuneEpochs', InferenceConfig().fine_tune_epochs, minimum=0, maximum=1000
        )


class PtychoPINNPluginSettings:
    """``[PtychoPINN]``: settings this plugin adds (backend, device, optimiser, inference)."""

    def __init__(self, registry: SettingsRegistry) -> None:
        group = _Group(registry, PLUGIN_GROUP)
        self.group = group.group
        self.backend = group.string('Backend', Backend.PYTORCH.value)
        self.device = group.string('Device', Device.AUTO.value)
        self.precision = group.string('Precision', ExecutionConfig().precision.value)
        self.learning_rate = group.real('LearningRate', 1e-3, minimum=0.0, maximum=1.0)
        self.min_learning_rate = group.real('MinLearningRate', 1e-4, minimum=0.0, maximum=1.0)
        self.plateau_patience = group.integer('PlateauPatience', 2, minimum=0, maximum=1000)
        self.early_stopping_patience = group.integer('EarlyStoppingPatience', 0, minimum=0)
        self.validation_fraction = group.real('ValidationFraction', 0.05, minimum=0.0, maximum=0.9)
        self.seed = group.integer('Seed', 0, minimum=0)
        self.inference_batch_size = group.integer('InferenceBatchSize', 256, minimum=1)
        self.num_groups = group.integer('NumGroups', 0, minimum=0)
        self.stitch_crop_px = group.integer('StitchCropPx', 0, minimum=0)
        self.phase_alignment = group.string('PhaseAlignment', PhaseAlignment.GLOBAL.value)
        self.phase_ramp_correction = group.boolean('PhaseRampCorrection', True)
        self.refine_iterations = group.integer(
            'RefineIterations', InferenceConfig().refine_iterations, minimum=0, maximum=100_000
        )
        self.refine_start = group.string('RefineStart', InferenceConfig().refine_start.value)
        self.num_partial_results = group.integer('NumPartialResults', 4, minimum=1, maximum=100)
        self.probe_refinement = group.string(
            'ProbeRefinement', TrainingConfig().probe_refinement.value
        )
        self.probe_refinement_iterations = group.integer(
            'ProbeRefinementIterations',
            TrainingConfig().probe_refinement_iterations,
            minimum=20,
            maximum=100_000,
        )


class PtychoPINNEnumerators:
    """Choices of the string settings (for GUI combo boxes)."""

    def get_amp_activations(self) -> Iterator[str]:
        return (member.value for member in AmpActivation)

    def get_backends(self) -> Iterator[str]:
        return (member.value for member in Backend)

    def get_devices(self) -> Iterator[str]:
        return (member.value for member in Device)

    def get_precisions(self) -> Iterator[str]:
        return (member.value for member in Precision)

    def get_probe_refinements(self) -> Iterator[str]:
        return (member.value for member in ProbeRefinement)

    def get_phase_alignments(self) -> Iterator[str]:
        return (member.value for member in PhaseAlignment)

    def get_refine_starts(self) -> Iterator[str]:
        return (member.value for member in RefineStart)


class PtychoPINNSettings:
    """All four groups, registered (or adopted) in one Ptychodus ``SettingsRegistry``."""

    def __init__(self, registry: SettingsRegistry) -> None:
        self.model_settings = PtychoPINNModelSettings(registry)
        self.training_settings = PtychoPINNTrainingSettings(registry)
        self.inference_settings = PtychoPINNInferenceSettings(registry)
        self.plugin_settings = PtychoPINNPluginSettings(registry)
        self.enumerators = PtychoPINNEnumerators()

    def model_path(self) -> Path | None:
        """``[PtychoPINNInference] ModelPath`` when it names an existing file, else None."""
        path = self.inference_settings.model_path.get_value()
        if path == DEFAULT_MODEL_PATH or not path.is_file():
            return None
        return path


# --- settings -> configuration ------------------------------------------------------------------

_FIELD_SETTINGS = {
    ('model', 'gridsize'): f'[{MODEL_GROUP}] GridSize',
    ('model', 'num_neighbors'): f'[{INFERENCE_GROUP}] NumNearestNeighbors',
    ('model', 'n_filters_scale'): f'[{MODEL_GROUP}] NumFiltersScale',
    ('model', 'probe_scale'): f'[{MODEL_GROUP}] ProbeScale',
    ('model', 'gaussian_smoothing_sigma_px'): f'[{MODEL_GROUP}] GaussianSmoothingSigma',
    ('model', 'pattern_size_px'): 'the diffraction pattern size (crop in the Diffraction settings)',
    ('training', 'num_epochs'): f'[{TRAINING_GROUP}] NumEpochs',
    ('training', 'batch_size'): f'[{TRAINING_GROUP}] BatchSize',
    ('training', 'num_photons'): f'[{TRAINING_GROUP}] NumPhotons',
    ('training', 'nll_weight'): f'[{TRAINING_GROUP}] NLLWeight',
    ('training', 'mae_weight'): f'[{TRAINING_GROUP}] MAEWeight',
    ('training', 'realspace_mae_weight'): f'[{TRAINING_GROUP}] RealspaceMAEWeight',
    ('training', 'realspace_weight'): f'[{TRAINING_GROUP}] RealspaceWeight',
    ('training', 'learning_rate'): f'[{PLUGIN_GROUP}] LearningRate',
    ('training', 'min_learning_rate'): f'[{PLUGIN_GROUP}] MinLearningRate',
    ('training', 'plateau_patience'): f'[{PLUGIN_GROUP}] PlateauPatience',
    ('training', 'early_stopping_patience'): f'[{PLUGIN_GROUP}] EarlyStoppingPatience',
    ('training', 'validation_fraction'): f'[{PLUGIN_GROUP}] ValidationFraction',
    ('training', 'seed'): f'[{PLUGIN_GROUP}] Seed',
    ('inference', 'batch_size'): f'[{PLUGIN_GROUP}] InferenceBatchSize',
    ('inference', 'num_groups'): f'[{PLUGIN_GROUP}] NumGroups',
    ('inference', 'stitch_crop_px'): f'[{PLUGIN_GROUP}] StitchCropPx',
    ('inference', 'num_partial_results'): f'[{PLUGIN_GROUP}] NumPartialResults',
    ('inference', 'phase_alignment'): f'[{PLUGIN_GROUP}] PhaseAlignment',
    ('inference', 'phase_ramp_correction'): f'[{PLUGIN_GROUP}] PhaseRampCorrection',
    ('inference', 'refine_iterations'): f'[{PLUGIN_GROUP}] RefineIterations',
    ('inference', 'refine_start'): f'[{PLUGIN_GROUP}] RefineStart',
    ('inference', 'fine_tune_epochs'): f'[{INFERENCE_GROUP}] FineTuneEpochs',
    ('training', 'probe_refinement'): f'[{PLUGIN_GROUP}] ProbeRefinement',
    ('training', 'probe_refinement_iterations'): f'[{PLUGIN_GROUP}] ProbeRefinementIterations',
    ('model',): f'[{MODEL_GROUP}] GridSize / [{INFERENCE_GROUP}] NumNearestNeighbors',
    ('training',): f'[{PLUGIN_GROUP}] LearningRate / MinLearningRate',
}


def _choice(parameter: StringParameter, enum: type[StrEnum], setting: str) -> Any:
    """The enum member named by a string setting (case and surrounding blanks ignored)."""
    text = parameter.get_value().strip().lower()
    for member in enum:
        if text == member.value.lower():
            return member
    choices = ', '.join(member.value for member in enum)
    raise ConfigurationError(
        f'invalid setting {setting} = {parameter.get_value()!r}; valid values are {choices}'
    )


def _setting_name(error: ErrorDetails) -> str:
    location = tuple(str(part) for part in error.get('loc', ()))
    for key in (location[:2], location[:1]):
        if key in _FIELD_SETTINGS:
            return _FIELD_SETTINGS[key]
    return '.'.join(location) or 'the settings'


def _describe(exc: ValidationError) -> str:
    return '; '.join(
        f'{_setting_name(error)}: {error.get("msg", "invalid value")}'
        + (f' (got {error["input"]!r})' if not isinstance(error.get('input'), dict) else '')
        for error in exc.errors()
    )


def build_config(
    settings: PtychoPINNSettings,
    mode: Mode | str,
    *,
    pattern_size_px: int = 64,
    dose_known: bool = True,
) -> PluginConfig:
    """Translate Ptychodus settings into a validated :class:`PluginConfig`.

    Parameters
    ----------
    settings : PtychoPINNSettings
        The library's settings (built-in groups plus ``[PtychoPINN]``).
    mode : Mode or str
        ``pinn`` or ``supervised`` (the reconstructor's name).
    pattern_size_px : int
        Side N of the diffraction patterns; it comes from the data, never from a setting (the
        default is a placeholder for reconstruction, where the model archive fixes N).
    dose_known : bool
        True when every training dataset carries detector counts (anything from Ptychodus, or a
        contract file recording counts): the photon count is then measured from the data and
        ``NumPhotons`` is not used. False for amplitude data of unknown dose: ``NumPhotons`` is the
        mean photons per pattern and must be positive.

    Raises
    ------
    ConfigurationError
        Naming the setting, the value received and the valid values or range.
    """
    mode = Mode(mode)
    choices = _Choices.read(settings)
    num_photons = _declared_num_photons(settings.training_settings, dose_known)
    _log_ignored_settings(settings)
    _check_pattern_size(pattern_size_px)
    values = {
        'model': _model_values(settings, mode, pattern_size_px, choices),
        'training': _training_values(settings, num_photons, choices),
        'inference': _inference_values(settings, choices),
        'execution': {
            'backend': choices.backend,
            'device': choices.device,
            'precision': choices.precision,
        },
    }
    try:
        return PluginConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigurationError(f'invalid PtychoPINN settings: {_describe(exc)}') from exc


@dataclass(frozen=True)
class _Choices:
    """The string settings that name an enum member, read and checked in one place."""

    amp_activation: AmpActivation
    backend: Backend
    device: Device
    precision: Precision
    phase_alignment: PhaseAlignment
    refine_start: RefineStart
    probe_refinement: ProbeRefinement

    @classmethod
    def read(cls, settings: PtychoPINNSettings) -> _Choices:
        model, plugin = settings.model_settings, settings.plugin_settings
        return cls(
            amp_activation=_choice(
                model.amp_activation, AmpActivation, f'[{MODEL_GROUP}] AmpActivation'
            ),
            backend=_choice(plugin.backend, Backend, f'[{PLUGIN_GROUP}] Backend'),
            device=_choice(plugin.device, Device, f'[{PLUGIN_GROUP}] Device'),
            precision=_choice(plugin.precision, Precision, f'[{PLUGIN_GROUP}] Precision'),
            phase_alignment=_choice(
                plugin.phase_alignment, PhaseAlignment, f'[{PLUGIN_GROUP}] PhaseAlignment'
            ),
            refine_start=_choice(plugin.refine_start, RefineStart, f'[{PLUGIN_GROUP}] RefineStart'),
            probe_refinement=_choice(
                plugin.probe_refinement, ProbeRefinement, f'[{PLUGIN_GROUP}] ProbeRefinement'
            ),
        )


def _declared_num_photons(training: PtychoPINNTrainingSettings, dose_known: bool) -> float | None:
    """``NumPhotons`` for amplitude data of unknown dose (must be positive), else None."""
    if dose_known:
        return None
    num_photons = training.nphotons.get_value()
    if num_photons <= 0:
        raise ConfigurationError(
            f'the training data hold amplitudes of unknown dose, so [{TRAINING_GROUP}] '
            f'NumPhotons (mean photons per pattern) must be positive, got {num_photons!r}'
        )
    return num_photons


def _log_ignored_settings(settings: PtychoPINNSettings) -> None:
    """Say which built-in settings PtychoPINN does not use (their values are ignored)."""
    if not settings.training_settings.positions_provided.get_value():
        logger.warning(
            '[%s] PositionsProvided = False is not supported: PtychoPINN always uses the scan '
            'positions of the product; the setting is ignored',
            TRAINING_GROUP,
        )
    num_samples = settings.inference_settings.n_samples.get_value()
    if num_samples != 1:
        logger.info(
            '[%s] NumSamples = %d is ignored: every scan point is reconstructed (limit the '
            'number of groups with [%s] NumGroups)',
            INFERENCE_GROUP,
            num_samples,
            PLUGIN_GROUP,
        )


def _check_pattern_size(pattern_size_px: int) -> None:
    if pattern_size_px not in SUPPORTED_PATTERN_SIZES_PX:
        sizes = ', '.join(str(size) for size in SUPPORTED_PATTERN_SIZES_PX)
        raise ConfigurationError(
            f'the diffraction patterns are {pattern_size_px} x {pattern_size_px} px, but the '
            f'PtychoPINN network takes a pattern size of {sizes} px; set the diffraction crop in '
            "Ptychodus's Diffraction settings (or bin the patterns) to one of these sizes"
        )


def _positive_or_none(value: int) -> int | None:
    return value if value > 0 else None


def _model_values(
    settings: PtychoPINNSettings, mode: Mode, pattern_size_px: int, choices: _Choices
) -> dict[str, Any]:
    model = settings.model_settings
    gridsize = model.gridsize.get_value()
    num_neighbors = settings.inference_settings.n_nearest_neighbors.get_value()
    if gridsize == 1:
        num_neighbors = max(num_neighbors, 1)  # unused for gridsize 1; 0 is the built-in minimum
    return {
        'mode': mode,
        'pattern_size_px': pattern_size_px,
        'gridsize': gridsize,
        'num_neighbors': num_neighbors,
        'n_filters_scale': model.n_filters_scale.get_value(),
        'amp_activation': choices.amp_activation,
        'object_big': model.object_big.get_value(),
        'probe_big': model.probe_big.get_value(),
        'probe_mask': model.probe_mask.get_value(),
        'pad_object': model.pad_object.get_value(),
        'probe_scale': model.probe_scale.get_value(),
        'gaussian_smoothing_sigma_px': model.gaussian_smoothing_sigma.get_value(),
    }


def _training_values(
    settings: PtychoPINNSettings, num_photons: float | None, choices: _Choices
) -> dict[str, Any]:
    training, plugin = settings.training_settings, settings.plugin_settings
    return {
        'num_epochs': training.nepochs.get_value(),
        'batch_size': training.batch_size.get_value(),
        'learning_rate': plugin.learning_rate.get_value(),
        'min_learning_rate': plugin.min_learning_rate.get_value(),
        'plateau_patience': plugin.plateau_patience.get_value(),
        'early_stopping_patience': _positive_or_none(plugin.early_stopping_patience.get_value()),
        'validation_fraction': plugin.validation_fraction.get_value(),
        'seed': plugin.seed.get_value(),
        'nll_weight': training.nll_weight.get_value(),
        'mae_weight': training.mae_weight.get_value(),
        'realspace_mae_weight': training.realspace_mae_weight.get_value(),
        'realspace_weight': training.realspace_weight.get_value(),
        'num_photons': num_photons,
        'intensity_scale_trainable': training.intensity_scale_trainable.get_value(),
        'probe_trainable': training.probe_trainable.get_value(),
        'probe_refinement': choices.probe_refinement,
        'probe_refinement_iterations': plugin.probe_refinement_iterations.get_value(),
    }


def _inference_values(settings: PtychoPINNSettings, choices: _Choices) -> dict[str, Any]:
    plugin = settings.plugin_settings
    return {
        'batch_size': plugin.inference_batch_size.get_value(),
        'num_groups': _positive_or_none(plugin.num_groups.get_value()),
        'stitch_crop_px': _positive_or_none(plugin.stitch_crop_px.get_value()),
        'num_partial_results': plugin.num_partial_results.get_value(),
        'phase_alignment': choices.phase_alignment,
        'phase_ramp_correction': plugin.phase_ramp_correction.get_value(),
        'refine_iterations': plugin.refine_iterations.get_value(),
        'refine_start': choices.refine_start,
        'fine_tune_epochs': settings.inference_settings.fine_tune_epochs.get_value(),
    }
