"""TensorFlow vs PyTorch parity: same weights, the Ptychodus batch cycle, quality and speed.

``python -m ptychopinn_plugin.evidence.parity --out DIR`` (``command.py``) runs the four parts and
writes ``DIR/parity.md``, ``DIR/parity.json`` and PNG figures. One module per job:

- ``cases.py``: the architectures compared (:class:`Case`) and the relative error of two results.
- ``weights.py``: part 1, the same canonical weights in both engines, with its tolerances.
- ``cycle.py``: part 2, train -> save -> load -> infer through ``ptychodus -b``, and cross-loading.
- ``quality.py``: parts 3 and 4, quality over seeds and speed side by side, with their margins.
- ``report.py``: the table rows, ``parity.md`` / ``parity.json`` and the figures.
- ``command.py``: the command line (``main``).

The names below are the ones the tests and ``docs/results.md`` use.
"""

from __future__ import annotations

from .cases import ALL_CASES, Case, relative_error
from .command import main
from .cycle import OBJECT_RTOL, CycleResult, CycleRun, batch_cycle, cycle_settings
from .quality import (
    PSNR_MARGIN_DB,
    QUALITY_KEYS,
    QUALITY_SEEDS,
    SPEED_RATIO_LIMIT,
    SSIM_MARGIN,
    BackendRun,
    QualityParity,
    quality_parity,
)
from .report import write_report
from .weights import (
    AMPLITUDE_RTOL,
    FORWARD_RTOL,
    GROUPS_PER_CASE,
    PATCH_RTOL,
    SELF_CHECK,
    WeightsParity,
    same_weights_parity,
)

__all__ = [
    'ALL_CASES',
    'AMPLITUDE_RTOL',
    'FORWARD_RTOL',
    'GROUPS_PER_CASE',
    'OBJECT_RTOL',
    'PATCH_RTOL',
    'PSNR_MARGIN_DB',
    'QUALITY_KEYS',
    'QUALITY_SEEDS',
    'SELF_CHECK',
    'SPEED_RATIO_LIMIT',
    'SSIM_MARGIN',
    'BackendRun',
    'Case',
    'CycleResult',
    'CycleRun',
    'QualityParity',
    'WeightsParity',
    'batch_cycle',
    'cycle_settings',
    'main',
    'quality_parity',
    'relative_error',
    'same_weights_parity',
    'write_report',
]
