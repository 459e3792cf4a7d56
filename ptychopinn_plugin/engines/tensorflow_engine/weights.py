"""Canonical weights <-> the Keras variables of :class:`~.network.PtychoPINNNetwork`.

Keras stores convolution kernels as (3, 3, in, out), the canonical layout, so kernels and biases
map one to one; the physics parameters map to the three variables of ``network.physics``. Names
and shapes come from ``core/weights.py`` and are checked there.
"""

from __future__ import annotations

import keras
import numpy as np

from ...core.weights import (
    LOG_INTENSITY_SCALE,
    PROBE_IMAG,
    PROBE_REAL,
    check_weights,
    in_canonical_order,
)
from .network import PtychoPINNNetwork

__all__ = ['canonical_parameters', 'get_canonical_weights', 'set_canonical_weights']


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
