"""The benchmark matrix command (``evidence/matrix.py``, issue 26): cells, summary, report."""

from __future__ import annotations

import json

import pytest

from ptychopinn_plugin.config import InferenceConfig
from ptychopinn_plugin.evidence.matrix import CELLS, Cell, main, summarise
from ptychopinn_plugin.evidence.realistic import FLAT_START_METHOD

DEFAULT = InferenceConfig().refine_iterations


def _run(method: str, iterations, phase: float, seconds: float, training=None) -> dict:
    return {
        'method': method,
        'status': 'PASS',
        'iterations': iterations,
        'training_s': training,
        'reconstruction_s': seconds,
        'scores': {'amplitude_ssim': 0.5, 'phase_ssim': phase},
    }


def test_the_issues_five_cells_are_the_default() -> None:
    assert {(c.overlap, c.photons) for c in CELLS} == {
        (0.7, 1e6),
        (0.5, 1e6),
        (0.35, 1e6),
        (0.7, 1e4),
        (0.5, 1e4),
    }
    assert Cell.parse('0.35:1e3') == Cell(0.35, 1e3)
    assert Cell(0.35, 1e3).name == 'overlap35-photons1e3'
    with pytest.raises(Exception, match='OVERLAP:PHOTONS'):
        Cell.parse('0.35')


def test_the_summary_takes_time_to_quality_margin_and_best_ptychi() -> None:
    pinn = 'PtychoPINN pytorch (in process)'
    result = {
        'runs': [
            _run(pinn, 0, 0.30, 10.0, training=600.0),
            _run(pinn, 10, 0.80, 12.0, training=600.0),
            _run(pinn, 20, 0.95, 14.0, training=600.0),  # first to reach the flat start's 0.93
            _run(pinn, DEFAULT, 0.97, 25.0, training=600.0),
            _run(FLAT_START_METHOD, DEFAULT, 0.93, 16.0),
            _run('pty-chi LSQML', 100, 0.85, 60.0),
            _run('pty-chi LSQML', 200, 0.88, 110.0),
            _run('pty-chi LSQML (probe-fixed)', 200, 0.90, 100.0),
            {**_run('pty-chi LSQML', 50, 0.99, 1.0), 'status': 'FAIL'},  # a failed run counts not
        ]
    }
    row = summarise(Cell(0.7, 1e6), result)
    assert row.network_alone == (0.5, 0.30)
    assert row.default == (0.5, 0.97)
    assert row.flat_start == (0.5, 0.93)
    assert row.ptychi == {
        'pty-chi LSQML': (0.5, 0.88, 110.0),
        'pty-chi LSQML (probe-fixed)': (0.5, 0.90, 100.0),
    }
    assert row.default_margin == pytest.approx(0.97 - 0.93)
    assert (row.time_to_quality_iterations, row.time_to_quality_s) == (20, 14.0)
    assert row.training_s == 600.0


def test_a_tiny_matrix_runs_every_cell_and_writes_the_table(tmp_path) -> None:
    cells = ['0.7:1e6', '0.5:1e4']
    argv = ['--out', str(tmp_path), '--cells', *cells, '--refine-ladder', '0', '5', str(DEFAULT)]
    assert main([*argv, '--quick', '--num-points', '16', '--ptychi-iterations']) == 0
    rows = json.loads((tmp_path / 'matrix.json').read_text())
    assert [(r['overlap'], r['photons']) for r in rows] == [(0.7, 1e6), (0.5, 1e4)]
    for row, text in zip(rows, cells, strict=True):
        cell = Cell.parse(text)
        assert row['network_alone'] is not None
        assert row['default'] is not None
        assert row['flat_start'] is not None
        assert row['flat_start_s'] > 0
        assert row['ptychi'] == {}  # none asked for
        report = json.loads((tmp_path / cell.name / 'realistic.json').read_text())
        spec = report['scans']['spec']
        assert (spec['overlap_fraction'], spec['num_photons']) == (cell.overlap, cell.photons)
    table = (tmp_path / 'matrix.md').read_text()
    assert '| 70%, 1e+06 |' in table
    assert '| 50%, 1e+04 |' in table
