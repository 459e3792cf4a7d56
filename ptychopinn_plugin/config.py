"""Strict, validated configuration of the model, training, inference and execution.

Every knob of the PtychoPINN model lives here once, with its range and meaning. The models reject
unknown keys, are immutable, and round-trip through JSON unchanged (they are stored in model
archives). Ptychodus settings are translated into these models in exactly one function, in
``ptychodus_adapter/settings.py``; the command line builds them the same way.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigurationError

__all__ = [
    'AmpActivation',
    'Backend',
    'Device',
    'ExecutionConfig',
    'InferenceConfig',
    'Mode',
    'ModelConfig',
    'PhaseAlignment',
    'PluginConfig',
    'Precision',
    'ProbeRefinement',
    'ReconstructionProbe',
    'RefineStart',
    'TrainingConfig',
    'default_stitch_crop_px',
]

SUPPORTED_PATTERN_SIZES_PX = (32, 64, 128, 256, 512)
"""Pattern sizes N the network supports: powers of two whose encoder reaches an 8 x 8 bottleneck."""


class Mode(StrEnum):
    """How the network is trained."""

    PINN = 'pinn'
    """Physics-informed: Poisson likelihood of the measured diffraction, no ground truth needed."""
    SUPERVISED = 'supervised'
    """PtychoNN-style baseline: MAE against ground-truth amplitude and phase patches."""


class Backend(StrEnum):
    """Which framework runs the network."""

    TENSORFLOW = 'tensorflow'
    PYTORCH = 'pytorch'


class Device(StrEnum):
    """Where the network runs; ``auto`` takes a GPU when the selected framework sees one."""

    AUTO = 'auto'
    CPU = 'cpu'
    CUDA = 'cuda'


class Precision(StrEnum):
    """Numeric precision of the network (Lightning's names, and ``auto``).

    ``auto``: bfloat16 mixed where the hardware computes bfloat16 natively, else float32
    (``engines/precision.py``).
    """

    AUTO = 'auto'
    FP32 = '32-true'
    BF16_MIXED = 'bf16-mixed'
    FP16_MIXED = '16-mixed'


class PhaseAlignment(StrEnum):
    """How stitching reconciles the free global phases of predicted patches."""

    NONE = 'none'
    GREEDY = 'greedy'
    GLOBAL = 'global'


class RefineStart(StrEnum):
    """What the overlap refinement starts from (``InferenceConfig.refine_start``; the default,
    ``FLAT``, chosen by the benchmark matrix: ``docs/results.md``, "The refinement's start,
    chosen by the matrix")."""

    AMPLITUDE = 'amplitude'
    """The network's stitched amplitude with a flat phase."""
    OBJECT = 'object'
    """The network's stitched object, amplitude and phase."""
    FLAT = 'flat'
    """A flat object (ones), as an iterative solver starts: the network's object is the partial
    result before the refinement and is not used after it (the refinement alone, with the probe
    the reconstruction chose)."""


class ReconstructionProbe(StrEnum):
    """Which probe a reconstruction refines and measures with
    (``InferenceConfig.reconstruction_probe``)."""

    AUTO = 'auto'
    """The one of the model's and the scan's probes that explains the scan's patterns better
    (the pre-training check on its central points, equal iterations); refined on the scan when
    neither explains them."""
    MODEL = 'model'
    """The probe the model was trained with (the training product's, or the plugin's refinement
    of it)."""
    SCAN = 'scan'
    """The probe of the scan being reconstructed (its product's)."""


class ProbeRefinement(StrEnum):
    """Whether training refines the scan's probe first (``solver/probe.py``)."""

    AUTO = 'auto'
    """When the scan's own probe fails the pre-training check (median misfit above
    ``consistency.WARN_NOISE_RATIO`` x the noise), and only if the refined probe does better."""
    ON = 'on'
    """Always, and train with the refined probe."""
    OFF = 'off'
    """Never: train with the probe as given (PtychoPINN as published)."""


class AmpActivation(StrEnum):
    """Activation of the amplitude head."""

    SIGMOID = 'sigmoid'
    SWISH = 'swish'
    SOFTPLUS = 'softplus'
    RELU = 'relu'


class _Strict(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True, validate_default=True)


Weight = Annotated[float, Field(ge=0.0, le=1.0)]


class ModelConfig(_Strict):
    """Architecture and forward model; fixed once a network is trained (stored in the archive)."""

    mode: Mode = Field(Mode.PINN, description='Training mode the network is built for.')
    pattern_size_px: int = Field(
        64, description='Side N of the square diffraction patterns and object patches, in pixels.'
    )
    gridsize: int = Field(
        1, ge=1, le=3, description='Groups are gridsize x gridsize neighbouring scan points.'
    )
    num_neighbors: int = Field(
        7,
        ge=1,
        le=64,
        description='Nearest neighbours a group is drawn from when gridsize > 1 (KD-tree K).',
    )
    n_filters_scale: int = Field(
        2, ge=1, le=4, description='Multiplier of the convolution filter counts.'
    )
    amp_activation: AmpActivation = Field(
        AmpActivation.SIGMOID, description='Activation of the amplitude head.'
    )
    object_big: bool = Field(
        True,
        description='Merge the patches of a group on a shared co-masked canvas (gridsize > 1).',
    )
    probe_big: bool = Field(
        True, description='Let the decoders also fill the border outside the central object square.'
    )
    probe_mask: bool = Field(False, description='Multiply the exit wave by a disk of radius N/4.')
    pad_object: bool = Field(
        True,
        description='Object estimate is the central N/2 x N/2 square, zero-padded to N x N.',
    )
    probe_scale: float = Field(
        4.0,
        gt=0.0,
        description='Probe normalised to probe / (probe_scale * mean |probe| inside the N/4 disk).',
    )
    gaussian_smoothing_sigma_px: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description='Gaussian smoothing of the object patch, in pixels (0: off).',
    )

    @model_validator(mode='after')
    def _check_pattern_size(self) -> Self:
        if self.pattern_size_px not in SUPPORTED_PATTERN_SIZES_PX:
            raise ValueError(
                f'pattern_size_px must be one of {SUPPORTED_PATTERN_SIZES_PX}, '
                f'got {self.pattern_size_px}; crop or bin the patterns to a power of two'
            )
        if self.gridsize > 1 and self.num_neighbors < self.gridsize**2 - 1:
            raise ValueError(
                f'num_neighbors ({self.num_neighbors}) must be at least gridsize^2 - 1 '
                f'({self.gridsize**2 - 1}) so that a group can be formed'
            )
        return self

    @property
    def num_channels(self) -> int:
        """Patterns per group, ``gridsize ** 2``."""
        return self.gridsize**2


class TrainingConfig(_Strict):
    """How a network is trained."""

    num_epochs: int = Field(30, ge=1, le=100_000, description='Passes over the training groups.')
    batch_size: int = Field(16, ge=1, le=65_536, description='Groups per optimiser step.')
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0, description='Initial Adam learning rate.')
    min_learning_rate: float = Field(
        1e-4, ge=0.0, le=1.0, description='Floor of the reduce-on-plateau schedule.'
    )
    plateau_factor: float = Field(
        0.5, gt=0.0, lt=1.0, description='Learning-rate factor applied on a plateau.'
    )
    plateau_patience: int = Field(
        2, ge=0, le=1000, description='Epochs without validation improvement before reducing.'
    )
    early_stopping_patience: int | None = Field(
        None, ge=1, description='Stop after this many epochs without improvement (None: off).'
    )
    validation_fraction: float = Field(
        0.05, ge=0.0, lt=1.0, description='Fraction of groups held out for validation.'
    )
    seed: int = Field(0, ge=0, description='Seed of weight initialisation, splits and shuffling.')
    nll_weight: Weight = Field(1.0, description='Weight of the Poisson negative log-likelihood.')
    mae_weight: Weight = Field(0.0, description='Weight of the diffraction-amplitude MAE.')
    realspace_mae_weight: Weight = Field(
        0.0, description='Weight of the real-space amplitude/phase MAE (needs ground truth).'
    )
    realspace_weight: Weight = Field(
        0.0, description='Weight of the real-space complex-patch MSE (needs ground truth).'
    )
    num_photons: float | None = Field(
        None,
        gt=0.0,
        description=(
            'Mean photons per pattern; None measures it from detector counts '
            '(required when the data hold amplitudes of unknown dose).'
        ),
    )
    intensity_scale_trainable: bool = Field(
        True, description='Let the optimiser refine the intensity scale.'
    )
    probe_trainable: bool = Field(False, description='Let the optimiser refine the probe.')
    probe_refinement: ProbeRefinement = Field(
        ProbeRefinement.AUTO,
        description=(
            "Refine the scan's probe with a flat object before training and train with it: auto "
            '(when the given probe cannot explain the patterns), on, or off.'
        ),
    )
    probe_refinement_iterations: int = Field(
        200,
        ge=20,
        le=100_000,
        description='Iterations of the probe refinement (the first 10 refine the object alone).',
    )

    @model_validator(mode='after')
    def _check_schedule(self) -> Self:
        if self.min_learning_rate > self.learning_rate:
            raise ValueError(
                f'min_learning_rate ({self.min_learning_rate}) exceeds learning_rate '
                f'({self.learning_rate}); lower the floor or raise the learning rate'
            )
        return self


class InferenceConfig(_Strict):
    """How a trained network reconstructs a scan."""

    batch_size: int = Field(256, ge=1, le=1_048_576, description='Groups per inference batch.')
    num_groups: int | None = Field(
        None, ge=1, description='Reconstruct only this many groups (None: every scan point).'
    )
    stitch_crop_px: int | None = Field(
        None,
        ge=2,
        description='Side M of the central patch square kept when stitching (None: about 0.31 N).',
    )
    phase_alignment: PhaseAlignment = Field(
        PhaseAlignment.GLOBAL,
        description=(
            'How the free global phase of each predicted patch is made to agree with its '
            'neighbours before stitching: none, greedy (onto what is already stitched) or '
            'global (phase synchronisation of all patches).'
        ),
    )
    phase_ramp_correction: bool = Field(
        True,
        description=(
            'Remove the linear phase ramp that consistent per-patch phase tilts leave across the '
            'stitched object, fitted to the centres of mass of the measured diffraction.'
        ),
    )
    refine_iterations: int = Field(
        100,
        ge=0,
        le=100_000,
        description=(
            'Iterations refining the stitched object against the measured patterns through '
            'their overlap, probe and positions fixed (0: the network output as stitched).'
        ),
    )
    refine_start: RefineStart = Field(
        RefineStart.FLAT,
        description=(
            'Start of the refinement: a flat object (default: the refinement alone; the '
            "network's object is the partial result before it; on the benchmark matrix the "
            "network's starts never did better after 100 iterations, and at 35 % overlap "
            "worse), the network's amplitude with a flat phase, or its whole object."
        ),
    )
    amplitude_denoising: float = Field(
        1.0,
        ge=0.0,
        le=100.0,
        description=(
            'Strength of the total-variation denoising of the refined amplitude, in units of '
            "its shot-noise level (which the patterns' counts and the probe's illumination "
            'give): 1 sets the weight to that level, 0 turns it off. The phase is kept; applied '
            'after the refinement only. At high dose the level is a few thousandths of the '
            'amplitude and the step changes almost nothing; at low dose it removes the noise the '
            'refinement fitted.'
        ),
    )
    reconstruction_probe: ReconstructionProbe = Field(
        ReconstructionProbe.AUTO,
        description=(
            "Probe of the refinement and the data consistency: the model's (the one it was "
            "trained with), the scan's own, or (auto) the one that explains the scan's patterns "
            'better, refined on the scan when neither does.'
        ),
    )
    num_partial_results: int = Field(
        4, ge=1, le=100, description='Partial objects yielded to Ptychodus during reconstruction.'
    )
    fine_tune_epochs: int = Field(
        0,
        ge=0,
        le=1000,
        description=(
            'Epochs of PINN training on the scan being reconstructed before it is reconstructed '
            '(the loss needs no ground truth); the loaded model itself is left unchanged.'
        ),
    )


class ExecutionConfig(_Strict):
    """Which framework and hardware run the network."""

    backend: Backend = Field(Backend.PYTORCH, description='Framework that runs the network.')
    device: Device = Field(Device.AUTO, description='Compute device.')
    precision: Precision = Field(
        Precision.AUTO,
        description=(
            'Numeric precision of the network (auto: bf16-mixed where the hardware computes '
            'bfloat16 natively, else 32-true).'
        ),
    )
    devices: int = Field(1, ge=1, le=1024, description='Devices per node for training.')
    num_nodes: int = Field(1, ge=1, le=4096, description='Nodes for distributed training.')
    strategy: str = Field(
        'auto', min_length=1, description="Distribution strategy (Lightning name, or 'auto')."
    )


class PluginConfig(_Strict):
    """Everything one training or reconstruction run needs."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)

    def to_json(self) -> str:
        """Serialise to JSON (enums as their string values)."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> PluginConfig:
        """Parse JSON written by :meth:`to_json`, raising :class:`ConfigurationError`."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ConfigurationError(f'invalid configuration: {exc}') from exc


def default_stitch_crop_px(pattern_size_px: int) -> int:
    """Default side M of the stitched central square: about 0.31 N, even (20 at N = 64)."""
    return max(2, 2 * round(0.15625 * pattern_size_px))


def build_config(model_class: type[_Strict], **values: object) -> _Strict:
    """Build a config, turning pydantic's ``ValidationError`` into :class:`ConfigurationError`."""
    try:
        return model_class(**values)
    except ValidationError as exc:
        raise ConfigurationError(f'invalid {model_class.__name__}: {exc}') from exc
