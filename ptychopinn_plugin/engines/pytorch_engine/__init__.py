"""PyTorch + Lightning engine: the mirror image of ``tensorflow_engine``.

``network.py`` builds the network of ``core/weights.py`` and the differentiable forward model of
``core/physics.py`` as ``torch.nn`` modules; ``weights.py`` maps them to canonical weights;
``training.py`` holds the LightningModule, the data loaders and the per-epoch hand-off;
``engine.py`` implements the engine protocol of ``engines/__init__.py``. Importing this package
loads no framework; ``engine.py`` does.
"""
