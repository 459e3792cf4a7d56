"""Bad input through the real ``ptychodus -b``: a non-zero exit, our message, nothing damaged.

A representative subset of the catalogue in ``test_bad_input.py``, each case a workflow directory
written with Ptychodus's own writers and run through the installed ``ptychodus`` console script.
Every failing training leaves the previous ``model.zip`` of its output directory byte-identical
and writes nothing else; every failing reconstruction writes no product. The runs are independent
and start concurrently (Ptychodus takes several seconds to start and stop).
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from robustness_helpers import save_untrained, with_counts

from ptychopinn_plugin.config import ModelConfig
from ptychopinn_plugin.ptychodus_io.batch import PTYCHODUS, BatchRun, run_ptychodus
from ptychopinn_plugin.ptychodus_io.simulation import WorkflowScan, write_workflow_scan

pytestmark = pytest.mark.e2e

PARALLEL_RUNS = 3


def _settings(algorithm: str = 'ptychopinn_pinn', **plugin: object) -> dict:
    return {
        'Processing': {'Algorithm': algorithm},
        'PtychoPINNModel': {'NumFiltersScale': 1},
        'PtychoPINNTraining': {'NumEpochs': 1, 'BatchSize': 8},
        'PtychoPINN': {'Backend': 'pytorch', 'Device': 'cpu', **plugin},
    }


@dataclass(frozen=True)
class Case:
    action: str
    message: str
    settings: dict
    counts: str = 'good'
    model: str | None = None
    object_is_truth: bool = False


CASES = {
    'NaN counts (train)': Case('train', 'contain 1 NaN or infinite values', _settings(), 'nan'),
    'Supervised without ground truth (train)': Case(
        'train', 'needs ground truth', _settings('ptychopinn_supervised')
    ),
    'negative counts (reconstruct)': Case(
        'reconstruct', 'must be non-negative', _settings(), 'negative', model='n32'
    ),
    'model for another pattern size (reconstruct)': Case(
        'reconstruct', 'trained on 64 x 64 px patterns', _settings(), model='n64'
    ),
    'archive from a newer format (reconstruct)': Case(
        'reconstruct', 'newer than this plugin reads (1); upgrade', _settings(), model='newer'
    ),
    'Device = cuda without a GPU (reconstruct)': Case(
        'reconstruct', 'device cuda was requested but', _settings(Device='cuda'), model='n32'
    ),
}


def _counts(scan: WorkflowScan, kind: str) -> np.ndarray:
    counts = np.array(scan.simulated.counts, dtype=np.float64)
    if kind == 'nan':
        counts[2, 3, 4] = np.nan
    elif kind == 'negative':
        counts[2, 3, 4] = -7.0
    return counts


def _model(path: Path, kind: str) -> Path:
    if kind == 'n64':
        return save_untrained(path, ModelConfig(pattern_size_px=64, n_filters_scale=1))
    save_untrained(path)
    if kind == 'newer':
        with zipfile.ZipFile(path) as zf:
            members = {name: zf.read(name) for name in zf.namelist()}
        manifest = json.loads(members['manifest.json'])
        manifest['format_version'] = 2
        members['manifest.json'] = json.dumps(manifest).encode()
        with zipfile.ZipFile(path, 'w') as zf:
            for name, payload in members.items():
                zf.writestr(name, payload)
    return path


@dataclass(frozen=True)
class Outcome:
    run: BatchRun
    output: Path
    old_model: bytes


def _run_case(root: Path, scan: WorkflowScan, name: str, case: Case) -> Outcome:
    slug = ''.join(c if c.isalnum() else '-' for c in name.lower())
    directory = write_workflow_scan(
        root / slug, with_counts(scan, _counts(scan, case.counts)), case.settings
    )
    if case.model is not None:
        _model(directory / 'model.zip', case.model)
    output = root / f'{slug}-out'
    old_model = save_untrained(output / 'model.zip').read_bytes()
    return Outcome(run_ptychodus(case.action, directory, output), output, old_model)


FAST = [
    'NaN counts (train)',
    'model for another pattern size (reconstruct)',
    'archive from a newer format (reconstruct)',
]
"""One training, one reconstruction and one archive case in the default run (three Ptychodus
processes at once); the others are marked slow."""
SLOW = [name for name in CASES if name not in FAST]


def _run_cases(root: Path, scan: WorkflowScan, names: list[str]) -> dict[str, Outcome]:
    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        futures = {name: pool.submit(_run_case, root, scan, name, CASES[name]) for name in names}
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope='module')
def fast_outcomes(tmp_path_factory, small_scan, installed_copy) -> dict[str, Outcome]:
    return _run_cases(tmp_path_factory.mktemp('batch-bad-input'), small_scan, FAST)


@pytest.fixture(scope='module')
def slow_outcomes(tmp_path_factory, small_scan, installed_copy) -> dict[str, Outcome]:
    return _run_cases(tmp_path_factory.mktemp('batch-bad-input-slow'), small_scan, SLOW)


def _check(name: str, outcome: Outcome) -> None:
    log = outcome.run.log
    assert outcome.run.returncode != 0, log[-3000:]
    assert CASES[name].message in log, log[-3000:]
    assert (outcome.output / 'model.zip').read_bytes() == outcome.old_model
    assert sorted(p.name for p in outcome.output.iterdir()) == ['model.zip']


@pytest.mark.parametrize('name', FAST)
def test_ptychodus_batch_fails_with_our_message_and_damages_nothing(fast_outcomes, name) -> None:
    _check(name, fast_outcomes[name])


@pytest.mark.slow
@pytest.mark.parametrize('name', SLOW)
def test_more_bad_input_through_ptychodus_batch(slow_outcomes, name) -> None:
    _check(name, slow_outcomes[name])


@pytest.mark.slow
def test_ptychodus_batch_train_into_an_unwritable_directory_fails_and_keeps_the_file(
    tmp_path, small_scan, installed_copy
) -> None:
    directory = write_workflow_scan(tmp_path / 'in', small_scan, _settings())
    blocker = tmp_path / 'not-a-directory'
    blocker.write_text('keep me')
    # run_ptychodus keeps its log beside the output directory, which cannot exist here
    run = subprocess.run(
        [str(PTYCHODUS), '-b', 'train', '-i', str(directory), '-o', str(blocker / 'out')],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = run.stdout + run.stderr
    assert run.returncode != 0, log[-3000:]
    assert str(blocker) in log, log[-3000:]
    assert blocker.read_text() == 'keep me'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in', 'not-a-directory']


def test_a_stray_position_reconstructs_through_ptychodus_batch_with_a_warning_naming_it(
    tmp_path, small_scan, installed_copy
) -> None:
    """One corrupt motor reading (a position a metre off, the rest intact) with the default
    settings: every stage (stitching, refinement, data consistency) skips that point, the log
    names it, and the product is written; no raw error from any stage."""
    from ptychopinn_plugin.ptychodus_io.products import make_product
    from ptychopinn_plugin.ptychodus_io.workflow_dir import write_workflow_directory

    product = small_scan.simulated.product
    pixel_size_m = product.object_.get_pixel_geometry().width_m
    positions = small_scan.positions_px.copy()
    positions[3, 0] += 1.0 / pixel_size_m  # one metre off in x
    stray = make_product(
        small_scan.initial_guess,
        np.asarray(product.probes.get_probe_no_opr().get_incoherent_mode(0)),
        positions,
        pixel_size_m=pixel_size_m,
        wavelength_m=product.metadata.photon_wavelength_m,
    )
    directory = tmp_path / 'in'
    write_workflow_directory(directory, stray, small_scan.simulated.assembled, _settings())
    save_untrained(directory / 'model.zip')
    run = run_ptychodus('reconstruct', directory, tmp_path / 'out')
    log = run.log
    assert run.returncode == 0, log[-3000:]
    assert '1 of 36 scan positions put their patch wholly outside' in log, log[-3000:]
    assert 'scan point 3 at' in log, log[-3000:]
    assert 'skipped when stitching, refining and measuring the data consistency' in log
    assert 'over 35 patterns' in log, log[-3000:]  # the consistency line
    assert 'Traceback' not in log, log[-3000:]
    assert any((tmp_path / 'out').iterdir())
