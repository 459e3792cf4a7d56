"""Canonical weights <-> the parameters of :class:`~.network.PtychoPINNNetwork`.

Canonical kernels are ``(3, 3, in, out)``; ``torch.nn.Conv2d`` stores ``(out, in, 3, 3)``, so
kernels are transposed here and nowhere else. ``name.kernel`` and ``name.bias`` map to the weight
and bias of the generator's convolution ``name``; ``probe.real``, ``probe.imag`` and
``log_intensity_scale`` to the parameters of ``network.physics``. Names and shapes come from
``core/weights.py`` and are checked there.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...core.weights import (
    LOG_INTENSITY_SCALE,
    PROBE_IMAG,
    PROBE_REAL,
    check_weights,
    in_canonical_order,
)
from .network import PtychoPINNNetwork

__all__ = ['canonical_parameters', 'get_canonical_weights', 'set_canonical_weights']

_KERNEL_TO_TORCH = (3, 2, 0, 1)  # (3, 3, in, out) -> (out, in, 3, 3)
_KERNEL_TO_CANONICAL = (2, 3, 1, 0)  # (out, in, 3, 3) -> (3, 3, in, out)


def canonical_parameters(network: PtychoPINNNetwork) -> dict[str, nn.Parameter]:
    """The network's parameters keyed by canonical name, in ``weight_specs`` order."""
    parameters: dict[str, nn.Parameter] = {}
    for prefix, layer in network.generator.conv_layers().items():
        parameters[f'{prefix}.kernel'] = layer.weight
        parameters[f'{prefix}.bias'] = layer.bias
    parameters[PROBE_REAL] = network.physics.probe_real
    parameters[PROBE_IMAG] = network.physics.probe_imag
    parameters[LOG_INTENSITY_SCALE] = network.physics.log_intensity_scale
    return in_canonical_order(network.config, parameters, 'PyTorch')


def get_canonical_weights(network: PtychoPINNNetwork) -> dict[str, np.ndarray]:
    """Float32 NumPy copies of every parameter, keyed by canonical name, canonical layout."""
    weights = {}
    for name, parameter in canonical_parameters(network).items():
        value = parameter.detach().to('cpu', torch.float32)
        if name.endswith('.kernel'):
            value = value.permute(*_KERNEL_TO_CANONICAL)
        weights[name] = np.array(value.numpy(), dtype=np.float32, order='C')
    return weights


def set_canonical_weights(network: PtychoPINNNetwork, weights: dict[str, np.ndarray]) -> None:
    """Load canonical weights into the network (checked with ``core.weights.check_weights``)."""
    check_weights(network.config, weights)
    with torch.no_grad():
        for name, parameter in canonical_parameters(network).items():
            tensor = torch.from_numpy(np.asarray(weights[name], dtype=np.float32).copy())
            if name.endswith('.kernel'):
                tensor = tensor.permute(*_KERNEL_TO_TORCH)
            parameter.copy_(tensor.reshape(parameter.shape))
