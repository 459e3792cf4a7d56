"""Distributed training through the ``ptychopinn train`` command (slow: starts two processes)."""

from __future__ import annotations

import pytest
from cli_helpers import run_script

from ptychopinn_plugin.core.archive import load_archive

pytestmark = pytest.mark.e2e


@pytest.mark.slow
def test_train_runs_pytorch_ddp_on_two_cpu_processes(cli_data, tmp_path, installed_copy) -> None:
    """Lightning's DDP strategy (gloo on the CPU) with devices=2: Lightning re-launches the command
    for rank 1; both ranks train, only rank 0 prints epoch lines and writes the archive."""
    model = tmp_path / 'ddp.zip'
    result = run_script(
        'train',
        cli_data['train'],
        '-o',
        model,
        '--backend',
        'pytorch',
        '--device',
        'cpu',
        '--strategy',
        'ddp',
        '--devices',
        '2',
        '--epochs',
        '2',
        '--n-filters-scale',
        '1',
        '--batch-size',
        '8',
        '-v',
        cwd=tmp_path,
        timeout=600,
    )
    assert result.code == 0, result.stderr[-3000:]
    assert 'GLOBAL_RANK: 0, MEMBER: 1/2' in result.stderr
    assert 'GLOBAL_RANK: 1, MEMBER: 2/2' in result.stderr  # the second process joined
    epoch_lines = [line for line in result.stderr.splitlines() if line.startswith('epoch ')]
    assert [line.split()[1] for line in epoch_lines] == ['1/2', '2/2']
    archive = load_archive(model)
    assert archive.config.execution.strategy == 'ddp'
    assert archive.config.execution.devices == 2
    assert archive.training_summary['epochs_completed'] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ddp.zip']
