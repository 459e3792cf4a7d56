"""Framework-free core: NumPy, SciPy, scikit-image and h5py only, never TensorFlow or PyTorch.

Data contract (``contract``), grouping, stitching, the NumPy reference physics (``physics``, the
parity oracle), archives, canonical weights, metrics and simulation. Both engines use these modules
identically; logic needed by both engines belongs here. Nothing here imports Ptychodus: converting
to and from Ptychodus's objects and files is ``ptychopinn_plugin.ptychodus_io``.
"""
