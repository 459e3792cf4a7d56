"""Canonical weights: the one definition of the network's layers, their names and shapes.

Both engines build exactly the network described here and map their variables to these names, so
one archive format serves both and either engine loads weights trained by the other. Kernels are
stored as ``(3, 3, in, out)`` (height, width, input channels, output channels); an engine whose
framework stores another layout transposes at the boundary. Initial values are drawn here, in NumPy,
from the training seed, so both engines start from identical weights.

The network (N = pattern size, C = gridsize**2 channels, s = n_filters_scale, L = log2(N / 8)):

- encoder level i = 0..L-1, width ``w_i = 128 s / 2**(L-1-i)``: conv3x3 -> ReLU -> conv3x3 ->
  ReLU -> 2x2 max-pool (stride 2). Input C channels at N x N; output ``w_{L-1}`` channels at 8 x 8.
- two decoders (``amp``, ``phase``), block j = 0..L-2, width ``d_j = w_{L-2-j}``: conv3x3 -> ReLU ->
  conv3x3 -> ReLU -> 2x nearest-neighbour upsampling. Output ``d_{L-2}`` channels at N/2 x N/2.
- heads (``amp_head``, ``phase_head``): conv3x3 to C channels; amplitude activation (sigmoid, swish,
  softplus or relu), phase ``pi * tanh``. With ``pad_object`` the N/2 result is zero-padded to N x N
  (central square at indices N/4 .. 3N/4 - 1); without it, the decoder features are upsampled 2x
  (nearest) before the heads, which then cover N x N directly.
- with ``probe_big`` (and ``pad_object``): border heads (``amp_border``, ``phase_border``) apply a
  conv3x3 to C channels on the 2x nearest-upsampled decoder features (N x N), same activations,
  multiplied by (1 - central-square mask) and added to the padded central estimate.
- all convolutions are 'same' (zero padding 1), with bias.
- physics parameters: ``probe.real`` / ``probe.imag`` (N, N), the normalised probe, and
  ``log_intensity_scale`` (scalar), trainable on request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ..config import Mode, ModelConfig, TrainingConfig
from ..errors import ArchiveError

__all__ = [
    'WeightSpec',
    'check_weights',
    'count_parameters',
    'decoder_widths',
    'encoder_widths',
    'in_canonical_order',
    'initial_weights',
    'trainable_physics',
    'weight_specs',
]

DECODERS = ('amp', 'phase')
PROBE_REAL = 'probe.real'
PROBE_IMAG = 'probe.imag'
LOG_INTENSITY_SCALE = 'log_intensity_scale'
PHYSICS_WEIGHTS = (PROBE_REAL, PROBE_IMAG, LOG_INTENSITY_SCALE)
HEAD_INIT_GAIN = 0.1
"""Scale of the output heads' initial kernels relative to Glorot (see :func:`initial_weights`)."""


@dataclass(frozen=True)
class WeightSpec:
    """Name and shape of one canonical weight."""

    name: str
    shape: tuple[int, ...]

    @property
    def is_kernel(self) -> bool:
        return self.name.endswith('.kernel')


def encoder_widths(model: ModelConfig) -> list[int]:
    """Encoder filter counts, e.g. ``[64, 128, 256]`` at N = 64, scale 2."""
    levels = int(math.log2(model.pattern_size_px // 8))
    top = 128 * model.n_filters_scale
    return [top // 2 ** (levels - 1 - i) for i in range(levels)]


def decoder_widths(model: ModelConfig) -> list[int]:
    """Decoder filter counts, mirroring the encoder, e.g. ``[128, 64]`` at N = 64, scale 2."""
    return encoder_widths(model)[-2::-1]


def _conv(name: str, cin: int, cout: int) -> list[WeightSpec]:
    return [WeightSpec(f'{name}.kernel', (3, 3, cin, cout)), WeightSpec(f'{name}.bias', (cout,))]


def weight_specs(model: ModelConfig) -> list[WeightSpec]:
    """Every canonical weight of the network for ``model``, in a fixed order."""
    channels = model.num_channels
    specs: list[WeightSpec] = []
    cin = channels
    for level, width in enumerate(encoder_widths(model)):
        specs += _conv(f'encoder.{level}.conv1', cin, width)
        specs += _conv(f'encoder.{level}.conv2', width, width)
        cin = width
    bottleneck = cin
    for decoder in DECODERS:
        cin = bottleneck
        for block, width in enumerate(decoder_widths(model)):
            specs += _conv(f'{decoder}_decoder.{block}.conv1', cin, width)
            specs += _conv(f'{decoder}_decoder.{block}.conv2', width, width)
            cin = width
        specs += _conv(f'{decoder}_head', cin, channels)
        if model.pad_object and model.probe_big:
            specs += _conv(f'{decoder}_border', cin, channels)
    n = model.pattern_size_px
    specs += [
        WeightSpec(PROBE_REAL, (n, n)),
        WeightSpec(PROBE_IMAG, (n, n)),
        WeightSpec(LOG_INTENSITY_SCALE, ()),
    ]
    return specs


def initial_weights(
    model: ModelConfig, probe: np.ndarray, log_intensity_scale: float, seed: int
) -> dict[str, np.ndarray]:
    """Seeded initial weights (Glorot-uniform kernels, zero biases) plus the physics parameters.

    Kernels are Glorot (Xavier) uniform, Keras's default and the reference's; the output heads are
    further scaled by :data:`HEAD_INIT_GAIN` so that the untrained network predicts a nearly flat
    patch (phase near 0, amplitude near the activation's midpoint). With full-size heads the phase
    head ``pi * tanh`` starts saturated at +-pi on a sizeable fraction of pixels, where its
    gradient vanishes and the optimiser cannot pull the phase back.

    Parameters
    ----------
    model : the architecture.
    probe : ndarray (N, N) complex, the normalised probe.
    log_intensity_scale : natural log of the initial intensity scale K.
    seed : seed of the kernel draws.

    Returns
    -------
    dict of float32 arrays keyed by canonical name, shapes from :func:`weight_specs`.
    """
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}
    for spec in weight_specs(model):
        if spec.is_kernel:
            fan_in = spec.shape[0] * spec.shape[1] * spec.shape[2]
            fan_out = spec.shape[0] * spec.shape[1] * spec.shape[3]
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            if _is_head(spec.name):
                limit *= HEAD_INIT_GAIN
            weights[spec.name] = rng.uniform(-limit, limit, spec.shape).astype(np.float32)
        elif spec.name.endswith('.bias'):
            weights[spec.name] = np.zeros(spec.shape, np.float32)
    weights[PROBE_REAL] = np.ascontiguousarray(np.real(probe), dtype=np.float32)
    weights[PROBE_IMAG] = np.ascontiguousarray(np.imag(probe), dtype=np.float32)
    weights[LOG_INTENSITY_SCALE] = np.array(log_intensity_scale, dtype=np.float32)
    check_weights(model, weights)
    return weights


def _is_head(name: str) -> bool:
    return name.split('.')[0].endswith(('_head', '_border'))


def check_weights(model: ModelConfig, weights: dict[str, np.ndarray]) -> None:
    """Raise :class:`ArchiveError` unless ``weights`` has exactly the canonical names and shapes."""
    expected = {spec.name: spec.shape for spec in weight_specs(model)}
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise ArchiveError(
            f'weights do not match the network for N={model.pattern_size_px}, '
            f'gridsize={model.gridsize}, n_filters_scale={model.n_filters_scale}: '
            f'missing {missing[:5]}{"..." if len(missing) > 5 else ""}, '
            f'unexpected {extra[:5]}{"..." if len(extra) > 5 else ""}'
        )
    for name, shape in expected.items():
        array = np.asarray(weights[name])
        if array.shape != shape:
            raise ArchiveError(f'weight {name!r} has shape {array.shape}, expected {shape}')
        if not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array)):
            raise ArchiveError(f'weight {name!r} must be finite floating point, got {array.dtype}')


_Parameter = TypeVar('_Parameter')


def in_canonical_order(
    model: ModelConfig, parameters: dict[str, _Parameter], framework: str
) -> dict[str, _Parameter]:
    """An engine's parameters keyed by canonical name, reordered as ``weight_specs`` lists them.

    Parameters
    ----------
    model : the configuration the network was built from.
    parameters : the framework's parameter objects (tensors, variables) by canonical name.
    framework : named in the error (``'PyTorch'``, ``'TensorFlow'``).

    Raises
    ------
    ArchiveError
        When the names differ from the canonical list (the network was built for another model).
    """
    expected = [spec.name for spec in weight_specs(model)]
    if sorted(parameters) != sorted(expected):
        raise ArchiveError(
            f'the {framework} network does not match the canonical weight list: '
            f'{sorted(set(parameters) ^ set(expected))[:5]}'
        )
    return {name: parameters[name] for name in expected}


def trainable_physics(model: ModelConfig, training: TrainingConfig) -> dict[str, bool]:
    """Which physics parameters train, keyed by canonical name (the network's layers always do).

    The probe and the intensity scale train when ``training`` asks for it, in PINN mode only:
    Supervised training has no physics.
    """
    physical = model.mode is Mode.PINN
    probe = physical and training.probe_trainable
    return {
        PROBE_REAL: probe,
        PROBE_IMAG: probe,
        LOG_INTENSITY_SCALE: physical and training.intensity_scale_trainable,
    }


def count_parameters(model: ModelConfig) -> int:
    """Number of network parameters (physics parameters excluded)."""
    return sum(
        int(np.prod(spec.shape)) for spec in weight_specs(model) if spec.name not in PHYSICS_WEIGHTS
    )
