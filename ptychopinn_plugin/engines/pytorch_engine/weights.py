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

from ...core.protocol import OptimizerState
from ...core.weights import (
    LOG_INTENSITY_SCALE,
    PROBE_IMAG,
    PROBE_REAL,
    check_weights,
    in_canonical_order,
)
from .network import PtychoPINNNetwork

__all__ = [
    'canonical_parameters',
    'get_canonical_weights',
    'get_optimizer_state',
    'set_canonical_weights',
    'set_optimizer_state',
]

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


def _to_canonical(name: str, tensor: torch.Tensor) -> np.ndarray:
    """A float32 NumPy copy of a parameter-shaped tensor in the canonical layout."""
    value = tensor.detach().to('cpu', torch.float32)
    if name.endswith('.kernel'):
        value = value.permute(*_KERNEL_TO_CANONICAL)
    return np.array(value.numpy(), dtype=np.float32, order='C')


def _from_canonical(name: str, array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A canonical array as a tensor of ``like``'s shape, layout and device."""
    tensor = torch.from_numpy(np.asarray(array, dtype=np.float32).copy())
    if name.endswith('.kernel'):
        tensor = tensor.permute(*_KERNEL_TO_TORCH)
    return tensor.reshape(like.shape).to(like.device, like.dtype).contiguous()


def get_canonical_weights(network: PtychoPINNNetwork) -> dict[str, np.ndarray]:
    """Float32 NumPy copies of every parameter, keyed by canonical name, canonical layout."""
    return {
        name: _to_canonical(name, parameter)
        for name, parameter in canonical_parameters(network).items()
    }


def set_canonical_weights(network: PtychoPINNNetwork, weights: dict[str, np.ndarray]) -> None:
    """Load canonical weights into the network (checked with ``core.weights.check_weights``)."""
    check_weights(network.config, weights)
    with torch.no_grad():
        for name, parameter in canonical_parameters(network).items():
            parameter.copy_(_from_canonical(name, weights[name], parameter))


def get_optimizer_state(
    optimizer: torch.optim.Optimizer, network: PtychoPINNNetwork
) -> OptimizerState:
    """Adam's step count and moments, keyed by canonical name, canonical layout."""
    first, second, step = {}, {}, 0
    for name, parameter in canonical_parameters(network).items():
        state = optimizer.state.get(parameter)
        if not parameter.requires_grad:
            continue
        if not state:  # built but no step taken yet: Adam's moments start at zero
            first[name] = np.zeros_like(_to_canonical(name, parameter))
            second[name] = np.zeros_like(first[name])
            continue
        first[name] = _to_canonical(name, state['exp_avg'])
        second[name] = _to_canonical(name, state['exp_avg_sq'])
        step = int(state['step'])
    return OptimizerState(step, first, second)


def set_optimizer_state(
    optimizer: torch.optim.Optimizer, network: PtychoPINNNetwork, state: OptimizerState
) -> None:
    """Load ``state`` into Adam for the network's trainable parameters."""
    trainable = {n: p for n, p in canonical_parameters(network).items() if p.requires_grad}
    if set(trainable) != set(state.first_moments) or set(trainable) != set(state.second_moments):
        raise ValueError(
            f'the optimiser state holds moments of {sorted(state.first_moments)}, but this '
            f'training trains {sorted(trainable)}'
        )
    for name, parameter in trainable.items():
        optimizer.state[parameter] = {
            'step': torch.tensor(float(state.step), dtype=torch.float32),
            'exp_avg': _from_canonical(name, state.first_moments[name], parameter),
            'exp_avg_sq': _from_canonical(name, state.second_moments[name], parameter),
        }
