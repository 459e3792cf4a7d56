"""TensorFlow engine: the PtychoPINN network and its physics in Keras 3 on TensorFlow.

The mirror image of ``pytorch_engine``: ``network.py`` (the network of ``core/weights.py`` and the
differentiable forward model), ``losses.py`` (the losses), ``training.py`` (the training loop),
``engine.py`` (the :class:`~ptychopinn_plugin.core.protocol.Engine` implementation,
``ENGINE_CLASS``) and ``weights.py`` (canonical weight names <-> Keras variables). Importing this
package selects the TensorFlow backend of Keras; Keras reads its backend once, at its first import,
so a Keras already loaded with another backend is refused here with an explanation.

Both engine packages use the same module and public names for the same roles
(``tests/engines/test_engine_symmetry.py`` checks names and signatures):

- ``network.Generator``: encoder and amplitude / phase decoders of ``core/weights.py``; inputs ->
  raw amplitude and phase. ``conv_layers()`` keys its convolutions by canonical prefix.
- ``network.PhysicsParameters``: the trainable physics, ``probe_real``, ``probe_imag`` and
  ``log_intensity_scale``; ``intensity_scale()`` is ``K``.
- ``network.ForwardModel``: the float32 physics of ``core/physics.py`` (constants only):
  ``canvas_size_px``, ``object_patches`` (overlap canvas), ``farfield_intensity``.
- ``network.PtychoPINNNetwork``: ``generator`` + ``physics`` + ``forward_model``, whose variables
  are the canonical weights; ``generate`` (generator only) and the framework's call (generator,
  then object patches).
- ``losses``: ``poisson_nll``, ``pinn_loss``, ``realspace_mae``, ``realspace_mse`` (the losses of
  ``core/physics.py``) and ``SQRT_FLOOR``.
- ``training.fit_network``: checks the arrays, sets the trainable physics, returns the epochs as
  an iterator of ``EpochReport``; the rest of ``training`` is framework plumbing.
- ``weights``: ``canonical_parameters``, ``get_canonical_weights``, ``set_canonical_weights``.
- ``engine``: ``ENGINE_CLASS`` (the engine class; its name says the framework) and
  ``PREDICT_CHUNK_PATTERNS``.
"""

from __future__ import annotations

import os
import sys

from ...errors import BackendUnavailableError

__all__: list[str] = []

if 'keras' not in sys.modules:
    os.environ['KERAS_BACKEND'] = 'tensorflow'

import keras

if keras.config.backend() != 'tensorflow':
    raise BackendUnavailableError(
        f'Keras was already imported with the {keras.config.backend()!r} backend, but the '
        'TensorFlow engine needs Keras on TensorFlow (Keras reads its backend once, at its first '
        'import). Set the environment variable KERAS_BACKEND=tensorflow before anything imports '
        'Keras, or select the PyTorch engine ([PtychoPINN] Backend = pytorch).'
    )
