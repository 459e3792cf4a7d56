"""The evidence commands run as documented (``python -m ...``), on tiny settings.

Running the module as a program catches what importing it does not: code reached only under
``if __name__ == '__main__'`` (a helper defined below that guard once broke the benchmark).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from ptychopinn_plugin.config import InferenceConfig
from ptychopinn_plugin.evidence.report import made_by

pytestmark = pytest.mark.e2e


def test_quality_benchmark_command_writes_its_table(tmp_path) -> None:
    out = tmp_path / 'benchmark'
    done = subprocess.run(
        [
            sys.executable,
            '-m',
            'ptychopinn_plugin.evidence.benchmark',
            '--out',
            str(out),
            '--seeds',
            '0',
            '--epochs',
            '1',
            '--train-patterns',
            '24',
            '--test-patterns',
            '16',
            '--pattern-size',
            '32',
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    results = json.loads((out / 'benchmark.json').read_text())
    assert len(results['sweep']) == 8  # one entry per default setting and seed
    for entry in results['sweep']:  # the network alone, the defaults, the flat-start refinement
        for key in ('network_scores', 'scores', 'flat_scores'):
            assert math.isfinite(entry[key]['phase_ssim']), (key, entry)
    report = (out / 'benchmark.md').read_text()
    assert report.count('| pinn |') >= 5
    # every setting's three rows, each labelled with what made it
    iterations = InferenceConfig().refine_iterations
    start = InferenceConfig().refine_start
    for maker in (made_by(0, start), made_by(iterations, start), made_by(iterations, None)):
        assert report.count(f'| {maker} |') == 8, maker


def test_parity_command_writes_its_report(tmp_path) -> None:
    out = tmp_path / 'parity'
    done = subprocess.run(
        [
            sys.executable,
            '-m',
            'ptychopinn_plugin.evidence.parity',
            '--out',
            str(out),
            '--weights-cases',
            '64:1:pinn',
            '--cycle-cases',
            '',
            '--quality-cases',
            '',
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    results = json.loads((out / 'parity.json').read_text())
    assert [w['case']['pattern_size_px'] for w in results['weights']] == [64]
    assert results['cycles'] == []
    assert results['quality'] == []
    assert '**Overall: 2 of 2 rows PASS.**' in (out / 'parity.md').read_text()  # + self-check
    assert (out / 'weights_parity.png').is_file()
