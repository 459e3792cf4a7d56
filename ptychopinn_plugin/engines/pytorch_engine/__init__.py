"""PyTorch + Lightning engine: the mirror image of ``tensorflow_engine``.

``network.py`` builds the network of ``core/weights.py`` and the differentiable forward model of
``core/physics.py`` as ``torch.nn`` modules (channels first); ``losses.py`` holds the losses;
``weights.py`` maps parameters to canonical weights; ``training.py`` holds the LightningModule, the
data loaders and the per-epoch hand-off; ``engine.py`` implements the engine protocol of
``core/protocol.py``. Importing this package loads no framework; ``engine.py`` does.

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

__all__: list[str] = []
