"""The README's demo command runs end to end (small sizes) and reproduces the truth it stitches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ptychopinn_plugin.demo import main

STITCHED_TRUTH_PSNR_DB = 40.0
"""Stitching exact ground-truth patches: limited only by float32 rounding."""


def test_demo_writes_its_table_and_reproduces_the_object(tmp_path: Path, capsys) -> None:
    argv = ['--core-only', '--out', str(tmp_path), '--num-patterns', '100', '--pattern-size', '32']
    assert main(argv) == 0
    figures = json.loads((tmp_path / 'summary.json').read_text())
    assert figures['complex_psnr_db'] > STITCHED_TRUTH_PSNR_DB
    assert (tmp_path / 'simulated_scan.npz').is_file()
    assert (tmp_path / 'stitched_truth.png').is_file()
    assert '| complex_psnr_db |' in capsys.readouterr().out


@pytest.mark.e2e
def test_ptychodus_demo_trains_and_reconstructs_through_batch_mode(
    tmp_path: Path, capsys, monkeypatch, installed_copy
) -> None:
    monkeypatch.chdir(tmp_path.parent)  # a relative --out, as the README's `make demo` passes
    assert main(['--out', tmp_path.name, '--epochs', '1', '--backends', 'pytorch']) == 0
    rows = json.loads((tmp_path / 'summary.json').read_text())
    assert [row['backend'] for row in rows] == ['initial guess', 'pytorch']
    assert (tmp_path / 'pytorch' / 'train-output' / 'model.zip').is_file()
    assert (tmp_path / 'pytorch' / 'truth_vs_reconstruction.png').is_file()
    assert sorted((tmp_path / 'pytorch' / 'reconstruct-output').glob('product.*.h5'))
    assert '| pytorch |' in capsys.readouterr().out
