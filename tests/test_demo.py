"""The README's demo command runs end to end (small sizes) and reproduces the truth it stitches;
its quality table names the maker of every row (network, refinement, or both)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ptychopinn_plugin.config import InferenceConfig
from ptychopinn_plugin.demo import main
from ptychopinn_plugin.evidence.report import MADE_BY_GUESS, made_by

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
    iterations = InferenceConfig().refine_iterations
    start = InferenceConfig().refine_start
    # every row names its maker: no reconstruction, the refinement alone (no network), then the
    # network alone and the network with the refinement (the defaults)
    assert [(row['made by'], row['backend']) for row in rows] == [
        (MADE_BY_GUESS, ''),
        (made_by(iterations, None), 'none (NumPy solver)'),
        (made_by(0, start), 'pytorch'),
        (made_by(iterations, start), 'pytorch'),
    ]
    assert rows[1]['train_s'] is None  # the flat-start refinement needs no training
    assert rows[1]['reconstruct_s'] > 0
    assert rows[2]['train_s'] == rows[3]['train_s'] > 0
    for row in rows:
        assert math.isfinite(row['phase_ssim']), row
    assert (tmp_path / 'pytorch' / 'train-output' / 'model.zip').is_file()
    assert (tmp_path / 'pytorch' / 'truth_vs_reconstruction.png').is_file()
    assert (tmp_path / 'pytorch' / 'network_alone.png').is_file()
    assert (tmp_path / 'refinement_alone_flat_start.png').is_file()
    assert len(sorted((tmp_path / 'pytorch' / 'reconstruct-output').glob('product.*.h5'))) > 1
    out = capsys.readouterr().out
    quality = (tmp_path / 'quality.md').read_text()
    for maker in (made_by(iterations, None), made_by(0, start), made_by(iterations, start)):
        assert maker in out
        assert maker in quality
    assert '| pytorch |' in out
    assert 'no network and no training' in quality
