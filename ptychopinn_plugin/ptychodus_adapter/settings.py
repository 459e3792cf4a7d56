"""Ptychodus settings of the PtychoPINN library and their translation into our configs.

Ptychodus keeps settings in a ``SettingsRegistry``: named groups of typed parameters, saved as one
INI section per group. We keep the built-in PtychoPINN groups and parameter names
(``PtychoPINNModel``, ``PtychoPINNTraining``, ``PtychoPINNInference``), so existing settings files
keep working, and add a group ``PtychoPINN`` for the execution (backend, device, precision). Every
other setting lives where a user looks for it: model knobs in ``[PtychoPINNModel]``, training
knobs in ``[PtychoPINNTraining]``, inference knobs in ``[PtychoPINNInference]``.

One default everywhere: every parameter's default is the plugin's pydantic default
(``ModelConfig``, ``TrainingConfig``, ``InferenceConfig``, ``ExecutionConfig``), the same the
``ptychopinn`` command uses.

Ptychodus's built-in (empty) PtychoPINN library registers the three built-in groups before our
library is built, and ``create_group`` / ``create_*_parameter`` refuse existing names. We therefore
*adopt* groups and parameters that already exist (the same ``Parameter`` objects, so any panel bound
to them and our library read and write the same values), give an adopted parameter still at its
built-in default our default (:data:`_BUILT_IN_DEFAULTS`), and create only what is missing.
Ptychodus builds every reconstructor library (ours inside ``ProcessingCore``) before ``ModelCore``
opens a settings file, and batch mode reads ``settings.ini`` later still, so a value from a file is
applied after this and wins.

Settings that earlier releases kept in ``[PtychoPINN]`` (:data:`MOVED_SETTINGS`: the learning-rate
schedule, seed, probe refinement and the inference knobs) keep a parameter there under the same
name (:class:`_MovedSetting`), so old settings files keep working: a value found only at the old
location is used; when both locations hold different values, the new location wins and a log line
says so.

:func:`build_config` is the one place where settings become a :class:`PluginConfig`; the mapping is
documented in ``specs/ptychodus_api_spec.md`` section 7.2. The reconstructor is in
``reconstructor.py``; the GUI panel in ``view.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ptychodus.api.observer import Observable, Observer
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
    ModelConfig,
    PhaseAlignment,
    PluginConfig,
    Precision,
    ProbeRefinement,
    ReconstructionProbe,
    RefineStart,
    TrainingConfig,
)
from ..errors import ConfigurationError

logger = logging.getLogger(__name__)

__all__ = [
    'INFERENCE_GROUP',
    'MODEL_GROUP',
    'MOVED_SETTINGS',
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

_BUILT_IN_DEFAULTS: dict[tuple[str, str], object] = {
    (TRAINING_GROUP, 'NumEpochs'): 50,
}
"""Defaults of Ptychodus 1.7's built-in PtychoPINN parameters that differ from ours; an adopted
parameter still holding one of these takes our default. ``tests/integration/test_settings.py``
compares every adopted parameter with our configs through ``ModelCore`` and fails when Ptychodus
changes a built-in default that is not listed here."""

MOVED_SETTINGS: dict[str, str] = {
    **dict.fromkeys(
        (
            'LearningRate',
            'MinLearningRate',
            'PlateauPatience',
            'EarlyStoppingPatience',
            'ValidationFraction',
            'Seed',
            'ProbeRefinement',
            'ProbeRefinementIterations',
        ),
        TRAINING_GROUP,
    ),
    **dict.fromkeys(
        (
            'InferenceBatchSize',
            'NumGroups',
            'StitchCropPx',
            'NumPartialResults',
            'PhaseAlignment',
            'PhaseRampCorrection',
            'RefineIterations',
            'RefineStart',
        ),
        INFERENCE_GROUP,
    ),
}
"""Settings that moved out of ``[PtychoPINN]`` (same name): name -> the group they live in now.
``[PtychoPINN] <name>`` is still read (see :class:`_MovedSetting`)."""


def _adopt_group(registry: SettingsRegistry, name: str) -> ParameterGroup:
    """The registry's group ``name``, created when no library registered it yet."""
    if name in set(registry):
        return registry[name]
    return registry.create_group(name)


class _Group:
    """Typed get-or-create access to one settings group; ``value`` is our default."""

    def __init__(self, registry: SettingsRegistry, name: str) -> None:
        self.name = name
        self.group = _adopt_group(registry, name)
        self.defaults: dict[str, object] = {}
        """Our default of each parameter asked for, by name."""

    def _existing(self, name: str, kind: type[Parameter[Any]], value: object) -> Any:
        self.defaults[name] = value
        parameter = self.group.parameters().get(name)
        if parameter is None:
            return None
        if not isinstance(parameter, kind):
            raise ConfigurationError(
                f'settings parameter [{self.name}] {name} was registered by another library as '
                f'{type(parameter).__name__}, but PtychoPINN needs a {kind.__name__}'
            )
        built_in = _BUILT_IN_DEFAULTS.get((self.name, name))
        if built_in is not None and parameter.get_value() == built_in != value:
            logger.debug('[%s] %s: default %r (Ptychodus: %r)', self.name, name, value, built_in)
            parameter.set_value(value)
        return parameter

    def integer(
        self, name: str, value: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> IntegerParameter:
        found = self._existing(name, IntegerParameter, value)
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
        found = self._existing(name, RealParameter, value)
        if found is not None:
            return found
        return self.group.create_real_parameter(name, value, minimum=minimum, maximum=maximum)

    def boolean(self, name: str, value: bool) -> BooleanParameter:
        found = self._existing(name, BooleanParameter, value)
        return found if found is not None else self.group.create_boolean_parameter(name, value)

    def string(self, name: str, value: str) -> StringParameter:
        found = self._existing(name, StringParameter, value)
        return found if found is not None else self.group.create_string_parameter(name, value)

    def path(self, name: str, value: Path) -> PathParameter:
        found = self._existing(name, PathParameter, value)
        return found if found is not None else self.group.create_path_parameter(name, value)

    def like(self, name: str, model: Parameter[Any], value: Any) -> Parameter[Any]:
        """A parameter ``name`` of the same type and range as ``model``, default ``value``."""
        if isinstance(model, IntegerParameter):
            return self.integer(
                name, value, minimum=model.get_minimum(), maximum=model.get_maximum()
            )
        if isinstance(model, RealParameter):
            return self.real(name, value, minimum=model.get_minimum(), maximum=model.get_maximum())
        if isinstance(model, BooleanParameter):
            return self.boolean(name, value)
        if isinstance(model, StringParameter):
            return self.string(name, value)
        raise TypeError(f'no old-location parameter for a {type(model).__name__}')


class _MovedSetting(Observer):
    """A setting living in ``group``, still read from its old location ``[PtychoPINN]``.

    The two parameters are kept equal. A change at the new location (a settings file, a GUI
    control, code) is copied to the old one, so Ptychodus saves the same value at both. A value
    arriving at the old location (a settings file of plugin 0.x) is used when the new location
    holds the default; otherwise the new location wins, and either case is logged.
    """

    def __init__(
        self,
        name: str,
        group: str,
        current: Parameter[Any],
        legacy: Parameter[Any],
        default: object,
    ) -> None:
        super().__init__()
        self.name, self.group = name, group
        self.current, self.legacy = current, legacy
        self.default = default
        legacy.set_value(current.get_value())
        current.add_observer(self)
        legacy.add_observer(self)

    def _update(self, observable: Observable) -> None:
        value, old_value = self.current.get_value(), self.legacy.get_value()
        if value == old_value:
            return
        if observable is self.current:
            self.legacy.set_value(value)
        elif value == self.default:
            logger.info(
                '[%s] %s = %s read from its old location; it now lives in [%s]',
                PLUGIN_GROUP,
                self.name,
                self.legacy.get_value_as_string(),
                self.group,
            )
            self.current.set_value(old_value)
        else:
            logger.warning(
                '[%s] %s = %s wins over [%s] %s = %s (its old location); remove the old line',
                self.group,
                self.name,
                self.current.get_value_as_string(),
                PLUGIN_GROUP,
                self.name,
                self.legacy.get_value_as_string(),
            )
            self.legacy.set_value(value)


class PtychoPINNModelSettings:
    """``[PtychoPINNModel]``: the built-in names (attribute names as built-in), our defaults."""

    def __init__(self, registry: SettingsRegistry) -> None:
        group = _Group(registry, MODEL_GROUP)
        self.group = group.group
        self.defaults = group.defaults
        model = ModelConfig()
        self.gridsize = group.integer('GridSize', model.gridsize, minimum=1, maximum=5)
        self.n_filters_scale = group.integer(
            'NumFiltersScale', model.n_filters_scale, minimum=1, maximum=4
        )
        self.amp_activation = group.string('AmpActivation', model.amp_activation.value)
        self.object_big = group.boolean('ObjectBig', model.object_big)
        self.probe_big = group.boolean('ProbeBig', model.probe_big)
        self.probe_mask = group.boolean('ProbeMask', model.probe_mask)
        self.pad_object = group.boolean('PadObject', model.pad_object)
        self.probe_scale = group.real('ProbeScale', model.probe_scale, minimum=0.0)
        self.gaussian_smoothing_sigma = group.real(
            'GaussianSmoothingSigma', model.gaussian_smoothing_sigma_px, minimum=0.0
        )


NUM_PHOTONS_DEFAULT = 1e6
"""``[PtychoPINNTraining] NumPhotons`` (Ptychodus's default): used only for amplitude data of
unknown dose, where ``TrainingConfig.num_photons`` has no default (data with counts measure it)."""


class PtychoPINNTrainingSettings:
    """``[PtychoPINNTraining]``: the built-in names plus the optimiser and probe refinement."""

    def __init__(self, registry: SettingsRegistry) -> None:
        group = _Group(registry, TRAINING_GROUP)
        self.group = group.group
        self.defaults = group.defaults
        training = TrainingConfig()
        self.nphotons = group.real('NumPhotons', NUM_PHOTONS_DEFAULT, minimum=0.0)
        self.batch_size = group.integer(
            'BatchSize', training.batch_size, minimum=1, maximum=1 << 30
        )
        self.nepochs = group.integer('NumEpochs', training.num_epochs, minimum=1)
        self.mae_weight = group.real('MAEWeight', training.mae_weight, minimum=0.0, maximum=1.0)
        self.nll_weight = group.real('NLLWeight', training.nll_weight, minimum=0.0, maximum=1.0)
        self.realspace_mae_weight = group.real(
            'RealspaceMAEWeight', training.realspace_mae_weight, minimum=0.0, maximum=1.0
        )
        self.realspace_weight = group.real(
            'RealspaceWeight', training.realspace_weight, minimum=0.0, maximum=1.0
        )
        self.positions_provided = group.boolean('PositionsProvided', True)
        self.probe_trainable = group.boolean('ProbeTrainable', training.probe_trainable)
        self.intensity_scale_trainable = group.boolean(
            'IntensityScaleTrainable', training.intensity_scale_trainable
        )
        self.learning_rate = group.real(
            'LearningRate', training.learning_rate, minimum=0.0, maximum=1.0
        )
        self.min_learning_rate = group.real(
            'MinLearningRate', training.min_learning_rate, minimum=0.0, maximum=1.0
        )
        self.plateau_patience = group.integer(
            'PlateauPatience', training.plateau_patience, minimum=0, maximum=1000
        )
        self.early_stopping_patience = group.integer(
            'EarlyStoppingPatience', training.early_stopping_patience or 0, minimum=0
        )
        self.validation_fraction = group.real(
            'ValidationFraction', training.validation_fraction, minimum=0.0, maximum=0.9
        )
        self.seed = group.integer('Seed', training.seed, minimum=0)
        self.probe_refinement = group.string('ProbeRefinement', training.probe_refinement.value)
        self.probe_refinement_iterations = group.integer(
            'ProbeRefinementIterations',
            training.probe_refinement_iterations,
            minimum=20,
            maximum=100_000,
        )


class PtychoPINNInferenceSettings:
    """``[PtychoPINNInference]``: the built-in names plus every inference knob."""

    def __init__(self, registry: SettingsRegistry) -> None:
        group = _Group(registry, INFERENCE_GROUP)
        self.group = group.group
        self.defaults = group.defaults
        inference, model = InferenceConfig(), ModelConfig()
        self.model_path = group.path('ModelPath', DEFAULT_MODEL_PATH)
        self.n_nearest_neighbors = group.integer(
            'NumNearestNeighbors', model.num_neighbors, minimum=0
        )
        self.n_samples = group.integer('NumSamples', 1, minimum=1)
        self.inference_batch_size = group.integer(
            'InferenceBatchSize', inference.batch_size, minimum=1
        )
        self.num_groups = group.integer('NumGroups', inference.num_groups or 0, minimum=0)
        self.stitch_crop_px = group.integer(
            'StitchCropPx', inference.stitch_crop_px or 0, minimum=0
        )
        self.phase_alignment = group.string('PhaseAlignment', inference.phase_alignment.value)
        self.phase_ramp_correction = group.boolean(
            'PhaseRampCorrection', inference.phase_ramp_correction
        )
        self.refine_iterations = group.integer(
            'RefineIterations', inference.refine_iterations, minimum=0, maximum=100_000
        )
        self.refine_start = group.string('RefineStart', inference.refine_start.value)
        self.amplitude_denoising = group.real(
            'AmplitudeDenoising', inference.amplitude_denoising, minimum=0.0, maximum=100.0
        )
        self.reconstruction_probe = group.string(
            'ReconstructionProbe', inference.reconstruction_probe.value
        )
        self.fine_tune_epochs = group.integer(
            'FineTuneEpochs', inference.fine_tune_epochs, minimum=0, maximum=1000
        )
        self.num_partial_results = group.integer(
            'NumPartialResults', inference.num_partial_results, minimum=1, maximum=100
        )


class PtychoPINNPluginSettings:
    """``[PtychoPINN]``: the execution (backend, device, precision) and the old locations.

    The attributes of the settings that moved out (``learning_rate``, ``refine_iterations``, ...)
    are the parameters at their new location, so code written for earlier releases still edits the
    settings in use; ``moved`` holds the old-location links by name.
    """

    def __init__(
        self,
        registry: SettingsRegistry,
        training: PtychoPINNTrainingSettings,
        inference: PtychoPINNInferenceSettings,
    ) -> None:
        group = _Group(registry, PLUGIN_GROUP)
        self.group = group.group
        self.defaults = group.defaults
        execution = ExecutionConfig()
        self.backend = group.string('Backend', execution.backend.value)
        self.device = group.string('Device', execution.device.value)
        self.precision = group.string('Precision', execution.precision.value)
        self.moved: dict[str, _MovedSetting] = {}
        for name, home in MOVED_SETTINGS.items():
            settings = training if home == TRAINING_GROUP else inference
            current, default = settings.group.parameters()[name], settings.defaults[name]
            self.moved[name] = _MovedSetting(
                name, home, current, group.like(name, current, default), default
            )
        self.learning_rate = training.learning_rate
        self.min_learning_rate = training.min_learning_rate
        self.plateau_patience = training.plateau_patience
        self.early_stopping_patience = training.early_stopping_patience
        self.validation_fraction = training.validation_fraction
        self.seed = training.seed
        self.probe_refinement = training.probe_refinement
        self.probe_refinement_iterations = training.probe_refinement_iterations
        self.inference_batch_size = inference.inference_batch_size
        self.num_groups = inference.num_groups
        self.stitch_crop_px = inference.stitch_crop_px
        self.num_partial_results = inference.num_partial_results
        self.phase_alignment = inference.phase_alignment
        self.phase_ramp_correction = inference.phase_ramp_correction
        self.refine_iterations = inference.refine_iterations
        self.refine_start = inference.refine_start


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

    def get_reconstruction_probes(self) -> Iterator[str]:
        return (member.value for member in ReconstructionProbe)


class PtychoPINNSettings:
    """All four groups, registered (or adopted) in one Ptychodus ``SettingsRegistry``."""

    def __init__(self, registry: SettingsRegistry) -> None:
        self.model_settings = PtychoPINNModelSettings(registry)
        self.training_settings = PtychoPINNTrainingSettings(registry)
        self.inference_settings = PtychoPINNInferenceSettings(registry)
        self.plugin_settings = PtychoPINNPluginSettings(
            registry, self.training_settings, self.inference_settings
        )
        self.enumerators = PtychoPINNEnumerators()

    def model_path(self) -> Path | None:
        """``[PtychoPINNInference] ModelPath`` when it names an existing file, else None."""
        path = self.inference_settings.model_path.get_value()
        if path == DEFAULT_MODEL_PATH or not path.is_file():
            return None
        return path


# --- settings -> configuration ------------------------------------------------------------------

_FIELD_SETTINGS = {
    ('model', 'gridsize'): (MODEL_GROUP, 'GridSize'),
    ('model', 'num_neighbors'): (INFERENCE_GROUP, 'NumNearestNeighbors'),
    ('model', 'n_filters_scale'): (MODEL_GROUP, 'NumFiltersScale'),
    ('model', 'probe_scale'): (MODEL_GROUP, 'ProbeScale'),
    ('model', 'gaussian_smoothing_sigma_px'): (MODEL_GROUP, 'GaussianSmoothingSigma'),
    ('training', 'num_epochs'): (TRAINING_GROUP, 'NumEpochs'),
    ('training', 'batch_size'): (TRAINING_GROUP, 'BatchSize'),
    ('training', 'num_photons'): (TRAINING_GROUP, 'NumPhotons'),
    ('training', 'nll_weight'): (TRAINING_GROUP, 'NLLWeight'),
    ('training', 'mae_weight'): (TRAINING_GROUP, 'MAEWeight'),
    ('training', 'realspace_mae_weight'): (TRAINING_GROUP, 'RealspaceMAEWeight'),
    ('training', 'realspace_weight'): (TRAINING_GROUP, 'RealspaceWeight'),
    ('training', 'learning_rate'): (TRAINING_GROUP, 'LearningRate'),
    ('training', 'min_learning_rate'): (TRAINING_GROUP, 'MinLearningRate'),
    ('training', 'plateau_patience'): (TRAINING_GROUP, 'PlateauPatience'),
    ('training', 'early_stopping_patience'): (TRAINING_GROUP, 'EarlyStoppingPatience'),
    ('training', 'validation_fraction'): (TRAINING_GROUP, 'ValidationFraction'),
    ('training', 'seed'): (TRAINING_GROUP, 'Seed'),
    ('training', 'probe_refinement'): (TRAINING_GROUP, 'ProbeRefinement'),
    ('training', 'probe_refinement_iterations'): (TRAINING_GROUP, 'ProbeRefinementIterations'),
    ('inference', 'batch_size'): (INFERENCE_GROUP, 'InferenceBatchSize'),
    ('inference', 'num_groups'): (INFERENCE_GROUP, 'NumGroups'),
    ('inference', 'stitch_crop_px'): (INFERENCE_GROUP, 'StitchCropPx'),
    ('inference', 'num_partial_results'): (INFERENCE_GROUP, 'NumPartialResults'),
    ('inference', 'phase_alignment'): (INFERENCE_GROUP, 'PhaseAlignment'),
    ('inference', 'phase_ramp_correction'): (INFERENCE_GROUP, 'PhaseRampCorrection'),
    ('inference', 'refine_iterations'): (INFERENCE_GROUP, 'RefineIterations'),
    ('inference', 'refine_start'): (INFERENCE_GROUP, 'RefineStart'),
    ('inference', 'amplitude_denoising'): (INFERENCE_GROUP, 'AmplitudeDenoising'),
    ('inference', 'reconstruction_probe'): (INFERENCE_GROUP, 'ReconstructionProbe'),
    ('inference', 'fine_tune_epochs'): (INFERENCE_GROUP, 'FineTuneEpochs'),
}
"""Config field -> the setting (group, name) it comes from, for error messages."""

_SECTION_SETTINGS = {
    ('model',): f'[{MODEL_GROUP}] GridSize / [{INFERENCE_GROUP}] NumNearestNeighbors',
    ('model', 'pattern_size_px'): 'the diffraction pattern size (crop in the Diffraction settings)',
    ('training',): f'[{TRAINING_GROUP}] LearningRate / MinLearningRate',
}


def _setting(group: str, name: str) -> str:
    """``[Group] Name`` of a setting, with its old location when it moved."""
    text = f'[{group}] {name}'
    if MOVED_SETTINGS.get(name) == group:
        text += f' (formerly [{PLUGIN_GROUP}] {name})'
    return text


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
            return _setting(*_FIELD_SETTINGS[key])
        if key in _SECTION_SETTINGS:
            return _SECTION_SETTINGS[key]
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
        The library's settings (the three built-in groups plus ``[PtychoPINN]``).
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
    reconstruction_probe: ReconstructionProbe
    probe_refinement: ProbeRefinement

    @classmethod
    def read(cls, settings: PtychoPINNSettings) -> _Choices:
        model, plugin = settings.model_settings, settings.plugin_settings
        training, inference = settings.training_settings, settings.inference_settings
        return cls(
            amp_activation=_choice(
                model.amp_activation, AmpActivation, _setting(MODEL_GROUP, 'AmpActivation')
            ),
            backend=_choice(plugin.backend, Backend, _setting(PLUGIN_GROUP, 'Backend')),
            device=_choice(plugin.device, Device, _setting(PLUGIN_GROUP, 'Device')),
            precision=_choice(plugin.precision, Precision, _setting(PLUGIN_GROUP, 'Precision')),
            phase_alignment=_choice(
                inference.phase_alignment,
                PhaseAlignment,
                _setting(INFERENCE_GROUP, 'PhaseAlignment'),
            ),
            refine_start=_choice(
                inference.refine_start, RefineStart, _setting(INFERENCE_GROUP, 'RefineStart')
            ),
            reconstruction_probe=_choice(
                inference.reconstruction_probe,
                ReconstructionProbe,
                _setting(INFERENCE_GROUP, 'ReconstructionProbe'),
            ),
            probe_refinement=_choice(
                training.probe_refinement,
                ProbeRefinement,
                _setting(TRAINING_GROUP, 'ProbeRefinement'),
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
            INFERENCE_GROUP,
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
    training = settings.training_settings
    return {
        'num_epochs': training.nepochs.get_value(),
        'batch_size': training.batch_size.get_value(),
        'learning_rate': training.learning_rate.get_value(),
        'min_learning_rate': training.min_learning_rate.get_value(),
        'plateau_patience': training.plateau_patience.get_value(),
        'early_stopping_patience': _positive_or_none(training.early_stopping_patience.get_value()),
        'validation_fraction': training.validation_fraction.get_value(),
        'seed': training.seed.get_value(),
        'nll_weight': training.nll_weight.get_value(),
        'mae_weight': training.mae_weight.get_value(),
        'realspace_mae_weight': training.realspace_mae_weight.get_value(),
        'realspace_weight': training.realspace_weight.get_value(),
        'num_photons': num_photons,
        'intensity_scale_trainable': training.intensity_scale_trainable.get_value(),
        'probe_trainable': training.probe_trainable.get_value(),
        'probe_refinement': choices.probe_refinement,
        'probe_refinement_iterations': training.probe_refinement_iterations.get_value(),
    }


def _inference_values(settings: PtychoPINNSettings, choices: _Choices) -> dict[str, Any]:
    inference = settings.inference_settings
    return {
        'batch_size': inference.inference_batch_size.get_value(),
        'num_groups': _positive_or_none(inference.num_groups.get_value()),
        'stitch_crop_px': _positive_or_none(inference.stitch_crop_px.get_value()),
        'num_partial_results': inference.num_partial_results.get_value(),
        'phase_alignment': choices.phase_alignment,
        'phase_ramp_correction': inference.phase_ramp_correction.get_value(),
        'refine_iterations': inference.refine_iterations.get_value(),
        'refine_start': choices.refine_start,
        'amplitude_denoising': inference.amplitude_denoising.get_value(),
        'reconstruction_probe': choices.reconstruction_probe,
        'fine_tune_epochs': inference.fine_tune_epochs.get_value(),
    }
