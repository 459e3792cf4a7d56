"""The ``ptychopinn`` subcommands end to end on tiny scans: what each writes and reports."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import time

import numpy as np
import pytest
from cli_helpers import NUM_PATTERNS, SCRIPT
from suite_helpers import BACKEND_NAMES

from ptychopinn_plugin.cli import ExitCode
from ptychopinn_plugin.config import InferenceConfig
from ptychopinn_plugin.core.archive import load_archive
from ptychopinn_plugin.core.checkpoint import checkpoint_path
from ptychopinn_plugin.core.contract import read_training_data
from ptychopinn_plugin.core.stitching import scanned_region_mask
from ptychopinn_plugin.core.weights import PHYSICS_WEIGHTS

EPOCH_LINE = 'epoch   1/1  loss '
FEW_ITERATIONS = ('--refine-iterations', '2')
"""For reconstructions that test the command's plumbing, not the refinement (tests/solver):
the default (100 iterations) is asserted once, in the reconstruct test of each backend."""


def test_simulate_writes_a_contract_file_and_a_matching_workflow_directory(
    run_cli, cli_data
) -> None:
    summary = json.loads(run_cli('inspect', cli_data['test'], '--json').stdout)
    assert summary['num_patterns'] == NUM_PATTERNS
    assert summary['pattern_size_px'] == 64
    assert summary['has_ground_truth_patches'] is True
    directory = json.loads(run_cli('inspect', cli_data['test_dir'], '--json').stdout)
    assert directory['kind'] == 'workflow directory'
    assert directory['num_patterns'] == NUM_PATTERNS
    assert directory['positions_px'] == pytest.approx(summary['positions_px'], abs=1e-9)
    assert directory['mean_total_counts'] == pytest.approx(summary['mean_total_counts'])
    settings = (cli_data['test_dir'] / 'settings.ini').read_text()
    assert 'ptychopinn_pinn' in settings
    assert 'pytorch' in settings


def test_inspect_prints_the_archive_manifest(run_cli, cli_data) -> None:
    text = run_cli('inspect', cli_data['model']).stdout
    assert 'mode pinn, N = 64, gridsize 1, n_filters_scale 1' in text
    manifest = json.loads(run_cli('inspect', cli_data['model'], '--json').stdout)
    assert manifest['training_summary']['epochs_completed'] == 1
    assert manifest['file_bytes'] == cli_data['model'].stat().st_size


@pytest.mark.parametrize('backend', BACKEND_NAMES)
def test_train_prints_one_progress_line_per_epoch_and_writes_model_and_history(
    run_cli, cli_data, tmp_path, backend: str
) -> None:
    model, history = tmp_path / 'model.zip', tmp_path / 'history.csv'
    result = run_cli(
        'train',
        cli_data['train'],
        '-o',
        model,
        '--history',
        history,
        '--backend',
        backend,
        '--epochs',
        '1',
        '--n-filters-scale',
        '1',
        '--device',
        'cpu',
        '--batch-size',
        '32',
    )
    assert result.code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith('epoch ')]
    assert len(lines) == 1
    assert lines[0].startswith(EPOCH_LINE)
    assert 's/epoch' in lines[0]
    archive = load_archive(model)
    assert archive.trained_backend == backend
    assert archive.config.training.batch_size == 32
    rows = list(csv.DictReader(history.open()))
    assert [row['epoch'] for row in rows] == ['1']
    assert float(rows[0]['training_loss']) == pytest.approx(
        archive.training_summary['training_loss'][0]
    )


def test_train_accepts_a_ptychodus_workflow_directory(run_cli, cli_data, tmp_path) -> None:
    result = run_cli(
        '-q',
        'train',
        cli_data['test_dir'],
        '-o',
        tmp_path / 'model.zip',
        '--epochs',
        '1',
        '--n-filters-scale',
        '1',
        '--device',
        'cpu',
    )
    assert result.code == 0, result.stderr
    assert load_archive(tmp_path / 'model.zip').training_summary['num_patterns'] == NUM_PATTERNS


@pytest.mark.parametrize('backend', BACKEND_NAMES)
def test_reconstruct_writes_product_object_and_figures_on_the_scan_grid(
    run_cli, cli_data, tmp_path, backend: str
) -> None:
    from ptychodus.api.io import load_product

    out = tmp_path / 'out'
    result = run_cli(
        'reconstruct',
        cli_data['model'],
        cli_data['test'],
        '-o',
        out,
        '--backend',
        backend,
        '--device',
        'cpu',
    )
    assert result.code == 0, result.stderr
    truth = read_training_data(cli_data['test']).object_guess
    with np.load(out / 'object.npz') as npz:
        object_ = npz['object']
        coverage = npz['coverage']
        positions, size = npz['positions_px'], int(npz['pattern_size_px'])
        info = json.loads(str(npz['info_json']))
    assert object_.shape == truth.shape
    assert np.all(np.isfinite(object_))
    assert info['backend'] == backend
    assert info['num_groups'] == NUM_PATTERNS
    assert info['inference']['refine_iterations'] == InferenceConfig().refine_iterations
    lit = scanned_region_mask(positions, object_.shape, size, size)  # every probe window
    assert np.all(object_[~lit] == 1)  # pixels no window reaches keep the flat fill
    assert np.any(object_[coverage > 0] != 1)
    product = load_product(out / 'product.h5')
    np.testing.assert_array_equal(product.object_.get_layer(0), object_)
    for name in ('amplitude.png', 'phase.png', 'consistency.png'):
        assert (out / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    # the data consistency: one figure per scan point, its medians in the provenance and the log
    with np.load(out / 'consistency.npz') as npz:
        np.testing.assert_array_equal(npz['positions_px'], positions)
        ratio = npz['noise_ratio']
    assert ratio.shape == (positions.shape[0],)
    assert np.all(np.isfinite(ratio))
    assert info['consistency']['median_noise_ratio'] == pytest.approx(np.median(ratio), rel=1e-3)
    assert 'data consistency: median amplitude R-factor' in result.stderr


def test_reconstructing_a_workflow_directory_keeps_its_product(run_cli, cli_data, tmp_path):
    from ptychodus.api.io import load_product

    out = tmp_path / 'out'
    result = run_cli(
        '-q',
        'reconstruct',
        cli_data['model'],
        cli_data['test_dir'],
        '-o',
        out,
        '--no-figures',
        '--refine-iterations',
        '3',
    )
    assert result.code == 0, result.stderr
    with np.load(out / 'object.npz') as npz:
        assert json.loads(str(npz['info_json']))['inference']['refine_iterations'] == 3
    source = load_product(cli_data['test_dir'] / 'product.h5')
    written = load_product(out / 'product.h5')
    assert written.metadata.name == source.metadata.name
    np.testing.assert_array_equal(
        written.probe_positions.get_coordinates_x_m(), source.probe_positions.get_coordinates_x_m()
    )
    assert written.object_.get_layer(0).shape == source.object_.get_layer(0).shape
    assert not (out / 'amplitude.png').exists()


def test_evaluate_scores_the_truth_perfectly_and_a_reconstruction_below_it(
    run_cli, cli_data, tmp_path
) -> None:
    perfect = json.loads(run_cli('evaluate', cli_data['test'], cli_data['test'], '--json').stdout)
    assert perfect['scores']['phase_ssim'] == pytest.approx(1.0)
    assert perfect['scores']['frc_resolution_px'] == pytest.approx(2.0)
    out = tmp_path / 'out'
    # the plumbing of evaluate: a few refinement iterations are enough for an object to score
    done = run_cli(
        '-q', 'reconstruct', cli_data['model'], cli_data['test'], '-o', out, *FEW_ITERATIONS
    )
    assert done.code == 0, done.stderr
    scored = run_cli('evaluate', out / 'object.npz', cli_data['test'], '--json')
    scores = json.loads(scored.stdout)['scores']
    assert scored.code == 0
    assert -1 <= scores['phase_ssim'] < 0.99
    assert np.isfinite(scores['amplitude_psnr_db'])
    from_product = json.loads(
        run_cli('evaluate', out / 'product.h5', cli_data['test'], '--json').stdout
    )['scores']
    assert from_product['phase_ssim'] == pytest.approx(scores['phase_ssim'], abs=1e-6)
    demanding = run_cli(
        'evaluate', out / 'object.npz', cli_data['test'], '--min', 'phase_ssim=0.999'
    )
    assert demanding.code == ExitCode.BELOW_THRESHOLD
    assert 'phase_ssim' in demanding.stderr
    assert 'below the required 0.999' in demanding.stderr


def test_convert_round_trips_npz_through_a_workflow_directory(run_cli, cli_data, tmp_path):
    directory, back = tmp_path / 'workflow', tmp_path / 'back.npz'
    assert run_cli('-q', 'convert', cli_data['train'], directory).code == 0
    assert run_cli('-q', 'convert', directory, back).code == 0
    original, converted = read_training_data(cli_data['train']), read_training_data(back)
    np.testing.assert_array_equal(converted.diffraction_amplitude, original.diffraction_amplitude)
    np.testing.assert_allclose(converted.positions_px, original.positions_px, atol=1e-9)
    np.testing.assert_array_equal(converted.probe, original.probe)
    np.testing.assert_array_equal(converted.object_guess, original.object_guess)
    assert converted.metadata.num_photons == pytest.approx(original.metadata.num_photons)


def test_fine_tuning_starts_from_the_archive_and_keeps_its_architecture(
    run_cli, cli_data, tmp_path
) -> None:
    tuned = tmp_path / 'tuned.zip'
    result = run_cli(
        '-q',
        'train',
        cli_data['test'],
        '-o',
        tuned,
        '--init-model',
        cli_data['model'],
        '--epochs',
        '1',
        '--learning-rate',
        '1e-9',
        '--min-learning-rate',
        '0',
        '--device',
        'cpu',
    )
    assert result.code == 0, result.stderr
    base, archive = load_archive(cli_data['model']), load_archive(tuned)
    assert archive.training_summary['fine_tuned_from']['path'] == str(cli_data['model'])
    assert archive.config.model == base.config.model
    network = [name for name in base.weights if name not in PHYSICS_WEIGHTS]
    # at a learning rate of 1e-9 one epoch leaves the network weights where they started
    for name in network:
        np.testing.assert_allclose(archive.weights[name], base.weights[name], atol=1e-6)
    conflicting = run_cli(
        'train',
        cli_data['test'],
        '-o',
        tmp_path / 'other.zip',
        '--init-model',
        cli_data['model'],
        '--gridsize',
        '2',
    )
    assert conflicting.code == ExitCode.USAGE
    assert 'gridsize' in conflicting.stderr


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.e2e
def test_ctrl_c_during_training_exits_130_and_keeps_only_the_checkpoint(
    cli_data, tmp_path, installed_copy
) -> None:
    model = tmp_path / 'model.zip'
    process = subprocess.Popen(
        [
            str(SCRIPT),
            'train',
            str(cli_data['train']),
            '-o',
            str(model),
            '--epochs',
            '50',
            '--n-filters-scale',
            '1',
            '--device',
            'cpu',
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # a runner started in the background (`cmd &` without job control) ignores SIGINT and its
        # children inherit that; give the command the disposition a terminal user's has
        preexec_fn=_default_sigint,
    )
    try:
        for line in process.stderr:
            if line.startswith('epoch '):
                break
        process.send_signal(signal.SIGINT)
        _, remaining = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == ExitCode.INTERRUPTED, remaining
    assert 'interrupted' in remaining
    time.sleep(0.1)
    # no model and no temporary file; only the checkpoint of finished epochs, kept for --resume
    checkpoint = checkpoint_path(model)
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint.name]
    # the epoch line is printed after its checkpoint is written: at least that epoch is in it
    kept = load_archive(checkpoint)
    assert kept.training_state is not None
    assert 1 <= len(kept.training_state.history) < 50


def test_train_and_reconstruct_draw_progress_bars(run_cli, cli_data, tmp_path, monkeypatch):
    # captured stderr is no terminal, where tqdm draws nothing; PTYCHOPINN_PROGRESS=1 forces it
    monkeypatch.setenv('PTYCHOPINN_PROGRESS', '1')
    model = tmp_path / 'model.zip'
    trained = run_cli(
        'train',
        cli_data['train'],
        '-o',
        model,
        '--epochs',
        '2',
        '--n-filters-scale',
        '1',
        '--device',
        'cpu',
    )
    assert trained.code == 0, trained.stderr
    assert re.search(r'training: 100%\|[^\n\r]*\| 2/2', trained.stderr), trained.stderr
    assert len([line for line in trained.stderr.splitlines() if line.startswith('epoch ')]) == 2
    out = tmp_path / 'rec'
    done = run_cli('reconstruct', model, cli_data['test'], '-o', out, '--refine-iterations', '3')
    assert done.code == 0, done.stderr
    goal = NUM_PATTERNS + 3  # one step per scan point (gridsize 1) and per refinement iteration
    assert re.search(rf'refining: 100%\|[^\n\r]*\| {goal}/{goal}', done.stderr), done.stderr
    monkeypatch.setenv('PTYCHOPINN_PROGRESS', '0')
    quiet = run_cli('reconstruct', model, cli_data['test'], '-o', tmp_path / 'r2', *FEW_ITERATIONS)
    assert '%|' not in quiet.stderr


def test_reconstruct_fine_tunes_on_the_scan_and_saves_the_tuned_model_only_when_asked(
    run_cli, cli_data, tmp_path
) -> None:
    tuned = tmp_path / 'tuned.zip'
    before = cli_data['model'].read_bytes()
    result = run_cli(
        'reconstruct',
        cli_data['model'],
        cli_data['test'],
        '-o',
        tmp_path / 'rec',
        '--fine-tune-epochs',
        '1',
        '--refine-iterations',
        '2',
        '--save-tuned',
        tuned,
        '--no-figures',
    )
    assert result.code == 0, result.stderr
    assert str(tuned) in result.stdout
    archive = load_archive(tuned)
    assert archive.training_summary['epochs_completed'] == 1
    assert cli_data['model'].read_bytes() == before  # the model file is not changed
    plain = run_cli(
        'reconstruct',
        cli_data['model'],
        cli_data['test'],
        '-o',
        tmp_path / 'r2',
        '--no-figures',
        *FEW_ITERATIONS,
    )
    assert plain.code == 0
    assert not (tmp_path / 'r2' / 'tuned.zip').exists()
    refused = run_cli(
        'reconstruct',
        cli_data['model'],
        cli_data['test'],
        '-o',
        tmp_path / 'r3',
        '--save-tuned',
        tuned,
    )
    assert refused.code == 2
    assert '--fine-tune-epochs' in refused.stderr
