"""Every script in ``examples/`` runs, at tiny sizes, and produces what its docstring promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ptychopinn_plugin.core.archive import load_archive

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / 'examples'
SHIPPED_G1 = REPO_ROOT / 'models' / 'pinn-n64-g1-pytorch.zip'
BACKEND_AGREEMENT = 1e-4
"""Largest difference between the objects two backends reconstruct from one archive: float32
rounding through about 20 layers and the stitching (measured 4e-7)."""
SCORE_KEYS = {'amplitude_ssim', 'phase_ssim', 'amplitude_psnr_db', 'phase_psnr_db'}


def test_every_example_has_a_test() -> None:
    tested = {'train_and_reconstruct', 'ptychodus_batch', 'fine_tune', 'switch_backend',
              'read_results'}  # fmt: skip
    assert {path.stem for path in EXAMPLES.glob('*.py')} == tested


def test_train_and_reconstruct_trains_saves_and_scores(example, tmp_path) -> None:
    scores = example('train_and_reconstruct')(['--quick', '--out', str(tmp_path)])
    assert SCORE_KEYS <= set(scores)
    assert all(np.isfinite(scores[k]) for k in SCORE_KEYS)
    assert load_archive(tmp_path / 'model.zip').training_summary['epochs_completed'] == 1
    assert json.loads((tmp_path / 'scores.json').read_text()) == scores
    assert np.load(tmp_path / 'object.npy').dtype == np.complex64


def test_train_and_reconstruct_with_a_shipped_model_needs_no_training(
    example, tmp_path, model_index
) -> None:
    scores = example('train_and_reconstruct')(['--model', str(SHIPPED_G1), '--out', str(tmp_path)])
    assert not (tmp_path / 'model.zip').exists()
    # the example's held-out scan is the model card's: the card's guarantee holds
    for key, threshold in model_index[SHIPPED_G1.stem]['test_thresholds'].items():
        assert scores[key] >= threshold


@pytest.mark.e2e
def test_ptychodus_batch_reconstructs_through_ptychodus_with_a_shipped_model(
    tmp_path, installed_copy
) -> None:
    out = tmp_path / 'batch'
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / 'ptychodus_batch.py'), '--quick', '--model',
         str(SHIPPED_G1), '--out', str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'ptychodus -b reconstruct' in done.stdout
    assert 'ptychodus -b train' not in done.stdout
    assert (out / 'test-output' / 'product.000064.h5').is_file()
    assert 'phase_ssim:' in done.stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_ptychodus_batch_trains_and_reconstructs(tmp_path, installed_copy) -> None:
    out = tmp_path / 'batch'
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / 'ptychodus_batch.py'), '--quick', '--out', str(out)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        load_archive(out / 'train-output' / 'model.zip').training_summary['epochs_completed'] == 1
    )
    assert (out / 'test-output' / 'product.000064.h5').is_file()


def test_fine_tune_scores_the_model_before_and_after(example, tmp_path) -> None:
    out = tmp_path / 'fine-tune'
    scores = example('fine_tune')(['--quick', '--out', str(out)])
    assert set(scores) == {'before', 'after'}
    assert scores['before'] != scores['after']
    tuned = load_archive(out / 'tuned.zip')
    assert tuned.training_summary['fine_tuned_from']['path'] == str(SHIPPED_G1)


def test_switch_backend_gives_the_same_object_on_both_backends(example) -> None:
    result = example('switch_backend')(['--quick'])
    assert result['backends'] == ['pytorch', 'tensorflow']
    assert result['max_abs_difference'] < BACKEND_AGREEMENT


def test_read_results_reads_archive_object_product_and_history(example, tmp_path) -> None:
    history = tmp_path / 'history.csv'
    history.write_text('epoch,training_loss,validation_loss,learning_rate,seconds,intensity_scale\n'
                       '1,-5.0,,0.001,2.5,100.0\n')  # fmt: skip
    results = example('read_results')(
        ['--quick', '--out', str(tmp_path / 'out'), '--history', str(history)]
    )
    assert results['model']['trained_backend'] == 'pytorch'
    assert 0 < results['reconstruction']['covered_fraction'] < 1
    assert results['reconstruction']['object_shape'][0] > 64
    assert [row['epoch'] for row in results['history']] == ['1']
