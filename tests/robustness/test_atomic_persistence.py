"""Saving over an existing file completes or leaves the old file intact, whatever interrupts it.

Model archives, contract NPZ files and the loss history are written to a temporary file in the
target directory and renamed into place. Here each write is interrupted half-way (an exception
from inside the writer, and a process killed with SIGKILL), and a training is watched between
epochs and after a failure: the previous ``model.zip`` stays byte-identical until the new one is
complete.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from robustness_helpers import library, reconstruct_input, save_untrained, untrained_archive

from ptychopinn_plugin.config import ModelConfig
from ptychopinn_plugin.core.archive import load_archive, save_archive
from ptychopinn_plugin.core.contract import read_training_data, write_training_data
from ptychopinn_plugin.core.protocol import EpochReport
from ptychopinn_plugin.ptychodus_adapter import training_io
from ptychopinn_plugin.ptychodus_io.inputs import training_data_from_reconstruct_input

NUM_KILLS = 3


@pytest.fixture(scope='module')
def scan_data(small_scan):
    return training_data_from_reconstruct_input(reconstruct_input(small_scan))


def _visible(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_an_archive_save_that_fails_mid_write_leaves_the_old_archive(tmp_path, monkeypatch) -> None:
    path = save_untrained(tmp_path / 'model.zip')
    before = path.read_bytes()
    original = zipfile.ZipFile.writestr

    def fail_on_weights(self, name, data, *args, **kwargs):
        if str(getattr(name, 'filename', name)) == 'weights.npz':
            original(self, name, data[: len(data) // 2], *args, **kwargs)
            raise OSError(28, 'No space left on device')
        return original(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, 'writestr', fail_on_weights)
    with pytest.raises(OSError, match='No space left'):
        save_archive(path, untrained_archive(seed=1), overwrite=True)
    assert path.read_bytes() == before
    assert _visible(tmp_path) == ['model.zip']  # the temporary file was removed


@pytest.mark.e2e
def test_an_archive_save_killed_at_any_moment_leaves_a_loadable_archive(tmp_path) -> None:
    path = save_untrained(tmp_path / 'model.zip', ModelConfig(pattern_size_px=64))
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        from robustness_helpers import untrained_archive
        from ptychopinn_plugin.config import ModelConfig
        from ptychopinn_plugin.core.archive import save_archive
        archive = untrained_archive(ModelConfig(pattern_size_px=64), seed=1)
        print('ready', flush=True)
        while True:
            save_archive({str(path)!r}, archive, overwrite=True)
        """
    )
    rng = np.random.default_rng(0)
    for _ in range(NUM_KILLS):
        process = subprocess.Popen(
            [sys.executable, '-c', script], stdout=subprocess.PIPE, text=True
        )
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == 'ready'
            time.sleep(float(rng.uniform(0.05, 0.6)))  # somewhere inside a save
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        archive = load_archive(path)  # the old or the new model, complete either way
        assert archive.config.model.pattern_size_px == 64
    leftovers = [name for name in _visible(tmp_path) if name != 'model.zip']
    assert all(name.startswith('.model-') for name in leftovers), leftovers


def test_a_contract_file_write_that_fails_mid_write_leaves_the_old_file(
    scan_data, tmp_path, monkeypatch
) -> None:
    path = write_training_data(tmp_path / 'train_data.npz', scan_data)
    before = path.read_bytes()

    def half_then_fail(stream, **arrays):
        stream.write(b'PK\x03\x04 half an npz')
        raise KeyboardInterrupt

    monkeypatch.setattr('ptychopinn_plugin.core.contract.np.savez', half_then_fail)
    changed = dataclasses.replace(scan_data, positions_px=scan_data.positions_px + 1.0)
    with pytest.raises(KeyboardInterrupt):
        write_training_data(path, changed, overwrite=True)
    assert path.read_bytes() == before
    assert _visible(tmp_path) == ['train_data.npz']
    read_training_data(path)


def test_a_loss_history_write_that_fails_leaves_the_old_history(tmp_path, monkeypatch) -> None:
    report = EpochReport(1, 2, 0.5, None, 1e-3, 1.0, 10.0)
    path = training_io.write_loss_csv(tmp_path / 'loss_history.csv', [report])
    before = path.read_bytes()
    monkeypatch.setattr(
        'ptychopinn_plugin.core.files.os.replace',
        lambda *args: (_ for _ in ()).throw(OSError('disk full')),
    )
    with pytest.raises(OSError, match='disk full'):
        training_io.write_loss_csv(path, [report, dataclasses.replace(report, epoch=2)])
    assert path.read_bytes() == before
    assert _visible(tmp_path) == ['loss_history.csv']


def test_training_replaces_model_zip_only_when_the_new_model_is_complete(
    scan_data, tmp_path
) -> None:
    write_training_data(tmp_path / 'in' / 'train_data.npz', scan_data)
    out = tmp_path / 'out'
    old = save_untrained(out / 'model.zip').read_bytes()
    plugin = library()
    plugin.settings.training_settings.nepochs.set_value(2)
    reconstructor = plugin.get_reconstructor('PINN')

    training = reconstructor.train(tmp_path / 'in', out)
    next(training)  # epoch 1 done, epoch 2 to come: the old model is still there, untouched
    assert (out / 'model.zip').read_bytes() == old
    with pytest.raises(KeyboardInterrupt):  # the user interrupts: nothing is written
        training.throw(KeyboardInterrupt)
    assert (out / 'model.zip').read_bytes() == old

    outputs = list(reconstructor.train(tmp_path / 'in', out))  # a complete training replaces it
    assert [output.progress for output in outputs] == [1, 2]
    assert (out / 'model.zip').read_bytes() != old
    assert load_archive(out / 'model.zip').training_summary['epochs_completed'] == 2
    assert not [name for name in _visible(out) if name.startswith('.')]
