"""The iterative solver: what the measured patterns settle once the network has made its object.

It works on NumPy arrays from the core and uses the core (physics, stitching geometry, metrics);
the core never imports it.

- ``overlap.py``: ``OverlapRefinement``, the full-batch gradient refinement of the object (and,
  on request, of the probe) against the measured amplitudes through the scan's overlap.
- ``phase_ramp.py``: the object's linear phase ramp, fitted from the diffraction centroids.
- ``probe.py``: probe refinement before training, for scans that come with a nominal probe.
- ``consistency.py``: how well an object and a probe explain the measured patterns (R-factor,
  misfit over Poisson noise), and the pre-training check.
- ``denoise.py``: total variation of the refined amplitude at its shot-noise level.

Inference (``ptychopinn_plugin.inference``) runs the network, stitches its patches and hands the
object to this package; the measured figures for each part are in ``docs/results.md``.
"""
