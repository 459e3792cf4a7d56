"""TensorFlow engine: the PtychoPINN network and its physics in Keras 3 on TensorFlow.

The mirror image of ``pytorch_engine``: ``network.py`` (the network of ``core/weights.py`` and the
differentiable forward model), ``training.py`` (the training loop), ``engine.py`` (the
:class:`~ptychopinn_plugin.engines.Engine` implementation, ``ENGINE_CLASS``) and ``weights.py``
(canonical weight names <-> Keras variables). Importing this package selects the TensorFlow backend
of Keras; Keras reads its backend once, at its first import, so a Keras already loaded with another
backend is refused here with an explanation.
"""

from __future__ import annotations

import os
import sys

from ...errors import BackendUnavailableError

__all__: list[str] = []

if 'keras' not in sys.modules:
    os.environ['KERAS_BACKEND'] = 'tensorflow'

import keras  # noqa: E402

if keras.config.backend() != 'tensorflow':
    raise BackendUnavailableError(
        f'Keras was already imported with the {keras.config.backend()!r} backend, but the '
        'TensorFlow engine needs Keras on TensorFlow (Keras reads its backend once, at its first '
        'import). Set the environment variable KERAS_BACKEND=tensorflow before anything imports '
        'Keras, or select the PyTorch engine ([PtychoPINN] Backend = pytorch).'
    )
