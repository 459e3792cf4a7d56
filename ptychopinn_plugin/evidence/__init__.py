"""Evidence anyone can re-run: engine parity, reconstruction quality, speed against pty-chi.

- ``parity/``: TensorFlow vs PyTorch, same weights in, same patches out (``weights.py``); the
  train -> save -> load -> infer cycle through ``ptychodus -b`` for each backend and across
  backends (``cycle.py``); quality and speed side by side (``quality.py``); the report
  (``report.py``) and the command (``python -m ptychopinn_plugin.evidence.parity --out DIR``).
- ``benchmark.py``: PINN vs Supervised quality sweep on simulated and measured scans
  (``python -m ptychopinn_plugin.evidence.benchmark --out DIR``).
- ``baseline.py``: pty-chi reconstructions of the same workflow directories through
  ``ptychodus -b reconstruct``, timed by Ptychodus's own log line.
- ``realistic.py``: the realistic benchmark of issue 14 (Ptychodus's zone plate, natural-image
  objects, a held-out scan, pty-chi LSQML at 50 / 100 / 200 iterations)
  (``python -m ptychopinn_plugin.evidence.realistic --out DIR``).
- ``oracles.py``: where quality is lost on a realistic scan, with the engine's physics and no
  network: the true patches, one free patch per pattern (the gridsize-1 ceiling), the gridsize-2
  canvas (truth through it, free member patches on it) and one free object for all patterns
  (``python -m ptychopinn_plugin.evidence.oracles --out DIR``).
- ``report.py``: Markdown tables, machine description and figures shared by the others.

Nothing here is imported by the plugin; frameworks load only when an engine is built.
"""
