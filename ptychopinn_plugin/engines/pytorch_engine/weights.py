"""Canonical weights <-> parameters of :class:`~.network.PtychoPINNNetwork`.

Canonical kernels are ``(3, 3, in, out)``; ``torch.nn.Conv2d`` stores ``(out, in, 3, 3)``, so
kernels are transposed here and nowhere else. ``name.kernel`` maps to the generator's
``name.weight``, ``name.bias`` to ``name.bias``; ``probe.real``, ``probe.imag`` and
``log_intensity_scale`` to the forward model's parameters. Names and shapes come from
``core/weights.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...core.weights import LOG_INTENSITY_SCALE, PROBE_IMAG, PROBE_REAL

__all__ = ['canonical_parameters', 'get_canonical_weights', 'set_canonical_weights']

_PHYSICS = {
    PROBE_REAL: 'physics.probe_real',
    PROBE_IMAG: 'physics.probe_imag',
    LOG_INTENSITY_SCALE: 'physics.log_intensity_scale',
}
_KERNEL_TO_TORCH = (3, 2, 0, 1)  # (3, 3, in, out) -> (out, in, 3, 3)
_KERNEL_TO_CANONICAL = (2, 3, 1, 0)  # (out, in, 3, 3) -> (3, 3, in, out)


def _parameter_name(canonical: str) -> str:
    if canonical in _PHYSICS:
        return _PHYSICS[canonical]
    layer, _, kind = canonical.rpartition('.')
    return f'generator.{layer}.{"weight" if kind == "kernel" else kind}'


def canonical_parameters(network: nn.Module) -> dict[str, nn.Parameter]:
    """The network's parameters keyed by canonical name."""
    parameters = dict(network.named_parameters())
    out = {}
    for name in parameters:
        if name in _PHYSICS.values():
            canonical = next(key for key, value in _PHYSICS.items() if value == name)
        else:
            layer, _, kind = name.removeprefix('generator.').rpartition('.')
            canonical = f'{layer}.{"kernel" if kind == "weight" else kind}'
        out[canonical] = parameters[name]
    return out


def get_canonical_weights(network: nn.Module) -> dict[str, np.ndarray]:
    """Float32 NumPy copies of every parameter, keyed by canonical name, canonical layout."""
    weights = {}
    for name, parameter in canonical_parameters(network).items():
        value = parameter.detach().to('cpu', torch.float32)
        if name.endswith('.kernel'):
            value = value.permute(*_KERNEL_TO_CANONICAL)
        weights[name] = np.array(value.numpy(), dtype=np.float32, order='C')
    return weights


def set_canonical_weights(network: nn.Module, weights: dict[str, np.ndarray]) -> None:
    """Copy canonical weights (already checked against ``core.weights``) into the network."""
    parameters = dict(network.named_parameters())
    with torch.no_grad():
        for name, value in weights.items():
            parameter = parameters[_parameter_name(name)]
            tensor = torch.from_numpy(np.asarray(value, dtype=np.float32).copy())
            if name.endswith('.kernel'):
                tensor = tensor.permute(*_KERNEL_TO_TORCH)
            parameter.copy_(tensor.reshape(parameter.shape))
