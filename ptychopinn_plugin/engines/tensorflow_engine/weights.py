"""Canonical weights <-> the Keras variables of :class:`~.network.PtychoPINNNetwork`.

Keras stores convolution kernels as (3, 3, in, out), the canonical layout, so kernels and biases
map one to one; the physics parameters map to the three variables of ``network.physics``. Names
and shapes come from ``core/weights.py`` and are checked there.
"""

from __future__ import annotations

import keras
import numpy as np

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


def canonical_parameters(network: PtychoPINNNetwork) -> dict[str, keras.Variable]:
    """The network's variables keyed by canonical name, in ``weight_specs`` order."""
    variables: dict[str, keras.Variable] = {}
    for prefix, layer in network.generator.conv_layers().items():
        variables[f'{prefix}.kernel'] = layer.kernel
        variables[f'{prefix}.bias'] = layer.bias
    variables[PROBE_REAL] = network.physics.probe_real
    variables[PROBE_IMAG] = network.physics.probe_imag
    variables[LOG_INTENSITY_SCALE] = network.physics.log_intensity_scale
    return in_canonical_order(network.config, variables, 'TensorFlow')


def get_canonical_weights(network: PtychoPINNNetwork) -> dict[str, np.ndarray]:
    """Float32 copies of every canonical weight, in ``weight_specs`` order.

    Parameters
    ----------
    network : PtychoPINNNetwork

    Returns
    -------
    dict of str -> ndarray, float32, shapes of ``core.weights.weight_specs``.
    """
    return {
        name: np.array(variable.value.numpy(), dtype=np.float32, copy=True)
        for name, variable in canonical_parameters(network).items()
    }


def set_canonical_weights(network: PtychoPINNNetwork, weights: dict[str, np.ndarray]) -> None:
    """Load canonical weights into the network (checked with ``core.weights.check_weights``).

    Parameters
    ----------
    network : PtychoPINNNetwork
    weights : dict of str -> ndarray
        Every canonical name with its shape; values are cast to float32.
    """
    check_weights(network.config, weights)
    for name, variable in canonical_parameters(network).items():
        variable.assign(np.asarray(weights[name], dtype=np.float32))


def _adam_slots(optimizer: keras.optimizers.Optimizer, network: PtychoPINNNetwork) -> dict:
    """(momentum, velocity) variables of Adam per trainable canonical weight."""
    adam = getattr(optimizer, 'inner_optimizer', optimizer)  # under a LossScaleOptimizer
    slots = {}
    for name, variable in canonical_parameters(network).items():
        if variable.trainable:
            index = adam._get_variable_index(variable)  # Keras 3 keeps no public accessor
            slots[name] = (adam._momentums[index], adam._velocities[index])
    return slots


def get_optimizer_state(
    optimizer: keras.optimizers.Optimizer, network: PtychoPINNNetwork
) -> OptimizerState:
    """Adam's step count and moments, keyed by canonical name (Keras's layout is canonical)."""
    adam = getattr(optimizer, 'inner_optimizer', optimizer)
    first, second = {}, {}
    for name, (momentum, velocity) in _adam_slots(optimizer, network).items():
        first[name] = np.array(momentum.value.numpy(), dtype=np.float32, copy=True)
        second[name] = np.array(velocity.value.numpy(), dtype=np.float32, copy=True)
    return OptimizerState(int(adam.iterations.numpy()), first, second)


def set_optimizer_state(
    optimizer: keras.optimizers.Optimizer, network: PtychoPINNNetwork, state: OptimizerState
) -> None:
    """Load ``state`` into a built Adam (built for the trainable weights ``state`` holds)."""
    slots = _adam_slots(optimizer, network)
    if set(slots) != set(state.first_moments) or set(slots) != set(state.second_moments):
        raise ValueError(
            f'the optimiser state holds moments of {sorted(state.first_moments)}, but this '
            f'training trains {sorted(slots)}'
        )
    adam = getattr(optimizer, 'inner_optimizer', optimizer)
    adam.iterations.assign(state.step)
    for name, (momentum, velocity) in slots.items():
        momentum.assign(np.asarray(state.first_moments[name], np.float32))
        velocity.assign(np.asarray(state.second_moments[name], np.float32))
