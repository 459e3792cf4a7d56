"""Same canonical weights in both engines -> the same patches and amplitudes.

One test per architecture (N = 64 and 128, gridsize 1 and 2, PINN and Supervised) at the published
network size (``n_filters_scale`` 2), on groups of a simulated scan prepared by the core like a
training. The comparison itself is ``evidence.parity.same_weights_parity``, the code behind the
parity report, so the report and the tests cannot drift apart. Tolerances (with their reasons)
are the report's named constants.
"""

from __future__ import annotations

import pytest

from ptychopinn_plugin.config import Mode
from ptychopinn_plugin.evidence.parity import (
    ALL_CASES,
    AMPLITUDE_RTOL,
    FORWARD_RTOL,
    PATCH_RTOL,
    SELF_CHECK,
    Case,
    same_weights_parity,
)
from ptychopinn_plugin.evidence.report import Status


@pytest.mark.parametrize(
    'case', ALL_CASES, ids=[f'n{c.pattern_size_px}-g{c.gridsize}-{c.mode.value}' for c in ALL_CASES]
)
def test_both_engines_predict_the_same_patches_from_the_same_weights(case: Case) -> None:
    result = same_weights_parity(case)
    summary = (
        f'patches {result.patch_max_rel:.2e}, amplitudes {result.amplitude_max_rel:.2e}, '
        f'forward vs oracle {result.forward_rel}'
    )
    assert result.patch_max_rel < PATCH_RTOL, summary
    assert result.amplitude_max_rel < AMPLITUDE_RTOL, summary
    assert set(result.forward_rel) == {'pytorch', 'tensorflow'}
    assert max(result.forward_rel.values()) < FORWARD_RTOL, summary
    assert result.status is Status.PASS


def test_the_comparison_detects_one_layer_changed_by_one_percent() -> None:
    name, step = SELF_CHECK
    result = same_weights_parity(
        Case(64, 1, Mode.PINN), num_groups=2, tensorflow_perturbation=(name, step)
    )
    assert result.patch_max_rel > PATCH_RTOL
    assert result.amplitude_max_rel > AMPLITUDE_RTOL
    assert result.status is Status.FAIL
