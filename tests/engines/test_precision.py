"""``Precision = auto``: what it resolves to, in both engines, and what a training records."""

from __future__ import annotations

import numpy as np
import pytest

from ptychopinn_plugin.config import ExecutionConfig, ModelConfig, PluginConfig, Precision
from ptychopinn_plugin.core import physics, simulate
from ptychopinn_plugin.core.weights import initial_weights
from ptychopinn_plugin.engines import get_engine, precision
from ptychopinn_plugin.engines.precision import (
    AUTO_PRECISION_ENV,
    cpu_supports_bf16,
    resolve_precision,
)
from ptychopinn_plugin.errors import ConfigurationError
from ptychopinn_plugin.workflow import TrainingRun

SMALL = ModelConfig(pattern_size_px=32, n_filters_scale=1)


@pytest.fixture
def unpinned(monkeypatch) -> None:
    """Let ``auto`` follow the hardware (the suite pins it to float32 in tests/conftest.py)."""
    monkeypatch.delenv(AUTO_PRECISION_ENV, raising=False)


def test_the_default_precision_is_auto() -> None:
    assert ExecutionConfig().precision is Precision.AUTO


@pytest.mark.parametrize('explicit', [p for p in Precision if p is not Precision.AUTO])
def test_explicit_precisions_are_never_changed(explicit, monkeypatch) -> None:
    monkeypatch.setenv(AUTO_PRECISION_ENV, '16-mixed')
    for on_gpu in (False, True):
        assert resolve_precision(explicit, on_gpu=on_gpu, gpu_supports_bf16=True) is explicit


@pytest.mark.usefixtures('unpinned')
def test_auto_follows_the_gpu_and_the_cpu(monkeypatch) -> None:
    assert resolve_precision(Precision.AUTO, on_gpu=True, gpu_supports_bf16=True) is (
        Precision.BF16_MIXED
    )
    assert resolve_precision(Precision.AUTO, on_gpu=True, gpu_supports_bf16=False) is (
        Precision.FP32
    )
    for native, expected in ((True, Precision.BF16_MIXED), (False, Precision.FP32)):
        monkeypatch.setattr(precision, 'cpu_supports_bf16', lambda native=native: native)
        assert resolve_precision(Precision.AUTO, on_gpu=False, gpu_supports_bf16=True) is expected


def test_the_environment_fixes_auto_and_a_bad_value_is_refused(monkeypatch) -> None:
    monkeypatch.setenv(AUTO_PRECISION_ENV, 'bf16-mixed')
    assert resolve_precision(Precision.AUTO, on_gpu=False, gpu_supports_bf16=False) is (
        Precision.BF16_MIXED
    )
    monkeypatch.setenv(AUTO_PRECISION_ENV, 'auto')
    with pytest.raises(ConfigurationError, match=f'{AUTO_PRECISION_ENV}=.auto. is not a precision'):
        resolve_precision(Precision.AUTO, on_gpu=False, gpu_supports_bf16=False)


@pytest.mark.parametrize(
    ('flags', 'expected'),
    [('fpu sse2 avx2 avx512f', False), ('fpu avx512f avx512_bf16', True), ('fpu amx_bf16', True)],
)
def test_cpu_bfloat16_is_read_from_the_cpu_flags(flags, expected, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(precision.platform, 'machine', lambda: 'x86_64')
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text(f'processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n')
    assert cpu_supports_bf16.__wrapped__(cpuinfo) is expected
    assert cpu_supports_bf16.__wrapped__(tmp_path / 'missing') is False


@pytest.mark.usefixtures('unpinned')
def test_engines_run_and_trainings_record_the_resolved_precision(backend) -> None:
    expected = Precision.BF16_MIXED if cpu_supports_bf16() else Precision.FP32
    probe = physics.normalize_probe(simulate.disk_probe(32), SMALL.probe_scale)
    weights = initial_weights(SMALL, probe, 3.0, 0)
    execution = ExecutionConfig(backend=backend, device='cpu')
    engine = get_engine(backend)(SMALL, execution, weights)
    try:
        assert engine.precision is expected
    finally:
        engine.release()

    scan = simulate.make_scan('smooth', num_patterns=16, pattern_size_px=32)
    config = PluginConfig(
        model=SMALL,
        training={'num_epochs': 1, 'batch_size': 8, 'probe_refinement': 'off'},
        execution=execution,
    )
    run = TrainingRun([scan.data], config, preflight=False)
    try:
        report = list(run.epochs())[-1]
        assert np.isfinite(report.training_loss)
        archive = run.archive()
    finally:
        run.release()
    assert archive.training_summary['precision'] == expected.value
    assert archive.config.execution.precision is Precision.AUTO  # the setting, as chosen
