"""Ptychodus's products, workflow directories and simulator <-> the data contract.

The one place where both the reconstructor (``ptychodus_adapter``) and the ``ptychopinn`` command
(``cli``) read and write Ptychodus's files and objects; the core never imports Ptychodus.

- ``inputs.py``: a ``ReconstructInput`` -> :class:`~ptychopinn_plugin.core.contract.TrainingData`
  (counts to amplitude, bad pixels repaired, probe mode 0, positions in object pixels, checks)
- ``products.py``: arrays and contract data -> Ptychodus ``Product`` / ``Object``; product files
- ``workflow_dir.py``: the one reader and the one writer of a standard workflow directory
  (``product.h5``, ``diffraction.h5``, ``settings.ini``)
- ``layout.py``: the file names of that directory (imports nothing from Ptychodus)
- ``simulation.py``: scans simulated with Ptychodus's forward model, simulated workflow scans
- ``realistic.py``: the quality benchmark's scans (natural images or a Siemens star, Ptychodus's
  zone-plate presets defocused, raster or spiral, calibrated dose)
- ``batch.py``: ``ptychodus -b`` runs (demo, evidence, tests)

Importing this package itself imports nothing; every module but ``layout.py`` and ``batch.py``
imports Ptychodus.
"""
