"""Resumable training with ``ptychopinn train``: a real SIGKILL after an epoch, then ``--resume``.

The training killed after epoch k (k >= 2: the kill follows the line of epoch 2, which is printed
after that epoch's checkpoint is written) and resumed must end where an uninterrupted training of
the same data and settings ends: the same losses from epoch k + 1 on and the same final weights,
to float32 rounding (:data:`RESUME_RTOL`). Without the restored optimiser state, learning-rate
schedule or epoch order the resumed epochs differ far beyond it.
"""

from __future__ import annotations

import os
import signal
import subprocess

import numpy as np
import pytest
from cli_helpers import SCRIPT, run_script
from suite_helpers import BACKEND_NAMES

from ptychopinn_plugin.core.archive import load_archive
from ptychopinn_plugin.core.checkpoint import checkpoint_path

pytestmark = pytest.mark.e2e

NUM_EPOCHS = 6
KILL_AFTER = 2
RESUME_RTOL = 1e-6
"""Resumed against uninterrupted, same backend and process type: float32 rounding only (the two
were identical when this was written). One epoch of these trainings changes the loss by about
1e-4 of its value and the weights by far more than 1e-6."""


def _train_args(data, output, backend: str) -> list[object]:
    return [
        'train',
        data,
        '-o',
        output,
        '--epochs',
        NUM_EPOCHS,
        '--n-filters-scale',
        1,
        '--device',
        'cpu',
        '--backend',
        backend,
        # a short plateau patience so that the learning rate changes within these epochs
        '--set',
        'training.plateau_patience=1',
    ]


def _kill_after_epoch(args: list[object], epoch: int) -> int:
    """Start ``ptychopinn ARGS``, SIGKILL it once it reports ``epoch``; its exit status."""
    environment = {k: v for k, v in os.environ.items() if k not in ('RANK', 'LOCAL_RANK')}
    process = subprocess.Popen(
        [str(SCRIPT), *map(str, args)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    marker = f'epoch {epoch:>3}/{NUM_EPOCHS}'
    try:
        for line in process.stderr:
            if line.startswith(marker):
                process.send_signal(signal.SIGKILL)
                break
    finally:
        code = process.wait(timeout=300)
        process.stderr.close()
    return code


@pytest.mark.parametrize('backend', BACKEND_NAMES)
def test_a_killed_training_resumes_from_its_last_epoch(cli_data, tmp_path, backend) -> None:
    reference = tmp_path / 'uninterrupted.zip'
    result = run_script(*_train_args(cli_data['train'], reference, backend))
    assert result.code == 0, result.stderr

    output = tmp_path / 'model.zip'
    checkpoint = checkpoint_path(output)
    code = _kill_after_epoch(_train_args(cli_data['train'], output, backend), KILL_AFTER)
    assert code == -signal.SIGKILL
    assert not output.exists()
    killed = load_archive(checkpoint)
    assert killed.training_state is not None
    done = len(killed.training_state.history)
    assert KILL_AFTER <= done < NUM_EPOCHS

    again = run_script(*_train_args(cli_data['train'], output, backend))
    assert again.code == 5, again.stderr  # the checkpoint is not replaced without being asked
    assert '--resume' in again.stderr
    assert str(checkpoint) in again.stderr

    other = run_script(
        *_train_args(cli_data['train'], output, backend), '--resume', '--learning-rate', 0.002
    )
    assert other.code != 0
    assert 'training.learning_rate = 0.001 in the checkpoint, 0.002 now' in other.stderr

    resumed_run = run_script(*_train_args(cli_data['train'], output, backend), '--resume')
    assert resumed_run.code == 0, resumed_run.stderr
    assert f'resuming from {checkpoint} after epoch {done}' in resumed_run.stderr
    assert not checkpoint.exists()  # removed once the model is written

    resumed, uninterrupted = load_archive(output), load_archive(reference)
    summary = resumed.training_summary
    assert summary['epochs_completed'] == NUM_EPOCHS
    assert summary['resumed_from']['epochs_completed'] == done
    expected = uninterrupted.training_summary
    np.testing.assert_allclose(
        summary['training_loss'][done:], expected['training_loss'][done:], rtol=RESUME_RTOL
    )
    np.testing.assert_allclose(
        summary['validation_loss'][done:], expected['validation_loss'][done:], rtol=RESUME_RTOL
    )
    assert summary['final_learning_rate'] == expected['final_learning_rate']
    for name, value in uninterrupted.weights.items():
        scale = max(float(np.abs(value).max()), 1e-12)
        error = float(np.abs(resumed.weights[name] - value).max()) / scale
        assert error < RESUME_RTOL * 10, f'{name}: {error:.2e}'


def test_resume_needs_a_checkpoint_and_excludes_init_model(cli_data, run_cli, tmp_path) -> None:
    output = tmp_path / 'model.zip'
    result = run_cli('train', cli_data['train'], '-o', output, '--resume', '--epochs', 1)
    assert result.code != 0
    assert f'there is no checkpoint {checkpoint_path(output)} to continue' in result.stderr
    result = run_cli(
        'train', cli_data['train'], '-o', output, '--resume', '--init-model', cli_data['model']
    )
    assert result.code != 0
    assert '--resume continues a training from its checkpoint' in result.stderr
