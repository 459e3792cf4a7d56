"""Fixtures of the ``ptychopinn`` command tests: run it in-process or as the installed script.

In-process runs (``run_cli``) call ``ptychopinn_plugin.cli.main`` and capture stdout/stderr, so
frameworks are imported once per test session. ``run_script`` runs the installed console script
in a subprocess, for what only a real process shows (exit status, signals, import isolation,
distributed launch).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import NUM_PATTERNS, Result

from ptychopinn_plugin.cli import main


@pytest.fixture
def run_cli(capsys):
    """Run ``ptychopinn ARGS...`` in-process; returns exit status, stdout and stderr."""

    def run(*args: object) -> Result:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse: --help, usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture(scope='session')
def cli_data(tmp_path_factory) -> dict[str, Path]:
    """A training scan, a held-out scan (NPZ and workflow directory) and a 1-epoch model."""
    root = tmp_path_factory.mktemp('cli')
    paths = {
        'train': root / 'train.npz',
        'test': root / 'test.npz',
        'test_dir': root / 'test-workflow',
        'model': root / 'model.zip',
    }
    for code in (
        main(['-q', 'simulate', str(paths['train']), '--num-patterns', str(NUM_PATTERNS)]),
        main(
            [
                '-q',
                'simulate',
                str(paths['test']),
                '--num-patterns',
                str(NUM_PATTERNS),
                '--seed',
                '1',
                '--object',
                'smooth',
                '--workflow-dir',
                str(paths['test_dir']),
            ]
        ),
        main(
            [
                '-q',
                'train',
                str(paths['train']),
                '-o',
                str(paths['model']),
                '--epochs',
                '1',
                '--n-filters-scale',
                '1',
                '--device',
                'cpu',
            ]
        ),
    ):
        assert code == 0
    return paths
