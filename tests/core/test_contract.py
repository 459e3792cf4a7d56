"""The NPZ data contract: round trips, Ptychodus's export, and one test per documented error."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from ptychopinn_plugin.core.contract import (
    ContractKey,
    DiffractionQuantity,
    ScanMetadata,
    TrainingData,
    amplitude_from_counts,
    read_training_data,
    write_training_data,
)
from ptychopinn_plugin.errors import DataContractError

N = 16


def _counts(rng: np.random.Generator, n: int = 12) -> np.ndarray:
    return rng.poisson(50.0, size=(n, N, N)).astype(np.float32)


def _data(rng: np.random.Generator, n: int = 12, **overrides) -> TrainingData:
    values = dict(
        diffraction_amplitude=np.sqrt(_counts(rng, n)),
        positions_px=rng.uniform(20, 40, size=(n, 2)),
        probe=(rng.normal(size=(N, N)) + 1j * rng.normal(size=(N, N))).astype(np.complex64),
        object_guess=np.ones((64, 64), np.complex64),
        metadata=ScanMetadata(source_quantity=DiffractionQuantity.COUNTS, num_photons=12800.0),
    )
    values.update(overrides)
    return TrainingData(**values)


def test_write_then_read_returns_identical_arrays_and_metadata(tmp_path: Path, rng) -> None:
    data = _data(rng, ground_truth_patches=np.ones((12, N, N), np.complex64))
    path = write_training_data(tmp_path / 'train_data.npz', data)
    back = read_training_data(path)
    np.testing.assert_array_equal(back.diffraction_amplitude, data.diffraction_amplitude)
    np.testing.assert_array_equal(back.positions_px, data.positions_px)
    np.testing.assert_array_equal(back.probe, data.probe)
    np.testing.assert_array_equal(back.object_guess, data.object_guess)
    np.testing.assert_array_equal(back.ground_truth_patches, data.ground_truth_patches)
    np.testing.assert_array_equal(back.scan_index, data.scan_index)
    assert back.metadata == data.metadata


def test_written_file_uses_ptychopinn_keys_with_amplitude_in_diff3d(tmp_path: Path, rng) -> None:
    data = _data(rng)
    path = write_training_data(tmp_path / 'd.npz', data)
    with np.load(path, allow_pickle=False) as npz:
        for key in (
            'xcoords',
            'ycoords',
            'xcoords_start',
            'ycoords_start',
            'diff3d',
            'probeGuess',
            'objectGuess',
            'scan_index',
            'metadata_json',
        ):
            assert key in npz.files
        np.testing.assert_array_equal(npz['diff3d'], data.diffraction_amplitude)


def test_writer_refuses_to_overwrite_unless_asked(tmp_path: Path, rng) -> None:
    path = write_training_data(tmp_path / 'd.npz', _data(rng))
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        write_training_data(path, _data(rng))
    assert path.read_bytes() == before
    write_training_data(path, _data(rng), overwrite=True)
    assert path.read_bytes() != before
    assert [p.name for p in tmp_path.iterdir()] == ['d.npz']  # no temporary left behind


def test_reader_converts_counts_of_a_ptychodus_style_export_and_takes_probe_mode_zero(
    tmp_path: Path, rng
) -> None:
    counts = _counts(rng)
    modes = (rng.normal(size=(3, N, N)) + 1j * rng.normal(size=(3, N, N))).astype(np.complex64)
    path = tmp_path / 'export.npz'
    x = rng.uniform(0, 10, 12)
    np.savez(
        path,
        xcoords=x,
        ycoords=x,
        xcoords_start=x,
        ycoords_start=x,
        diff3d=counts,
        bad_pixels=np.zeros((N, N), bool),
        probeGuess=modes,
        objectGuess=np.ones((32, 32), complex),
        scan_index=np.zeros(12, int),
    )
    data = read_training_data(path)
    np.testing.assert_allclose(data.diffraction_amplitude, np.sqrt(counts))
    np.testing.assert_array_equal(data.probe, modes[0])
    assert data.metadata.source_quantity is DiffractionQuantity.COUNTS
    assert data.metadata.probe_modes_dropped == 2
    assert data.metadata.num_photons == pytest.approx(counts.sum(axis=(1, 2)).mean())


def test_reader_infers_counts_from_integers_and_warns(tmp_path: Path, rng, caplog) -> None:
    counts = _counts(rng)
    x = np.arange(12.0)
    path = tmp_path / 'legacy.npz'
    np.savez(path, xcoords=x, ycoords=x, diff3d=counts, probeGuess=np.ones((N, N), complex))
    with caplog.at_level(logging.WARNING):
        data = read_training_data(path)
    assert 'assuming counts' in caplog.text
    np.testing.assert_allclose(data.diffraction_amplitude, np.sqrt(counts))


def test_reader_rejects_counts_declared_as_amplitude(tmp_path: Path, rng) -> None:
    x = np.arange(12.0)
    path = tmp_path / 'wrong.npz'
    np.savez(path, xcoords=x, ycoords=x, diff3d=_counts(rng), probeGuess=np.ones((N, N), complex))
    with pytest.raises(DataContractError, match='detector counts'):
        read_training_data(path, quantity=DiffractionQuantity.AMPLITUDE)


def test_reader_names_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / 'missing.npz'
    np.savez(path, xcoords=np.zeros(3), diffraction=np.ones((3, N, N)))
    with pytest.raises(DataContractError, match=r'ycoords.*diff3d.*probeGuess'):
        read_training_data(path)


def test_reader_refuses_object_arrays_without_unpickling(tmp_path: Path) -> None:
    path = tmp_path / 'pickled.npz'
    np.savez(
        path,
        xcoords=np.array([object()], dtype=object),
        ycoords=np.zeros(1),
        diff3d=np.ones((1, N, N)),
        probeGuess=np.ones((N, N)),
    )
    with pytest.raises(DataContractError, match='pickle'):
        read_training_data(path)


def test_reader_rejects_a_file_that_is_not_npz(tmp_path: Path) -> None:
    path = tmp_path / 'text.npz'
    path.write_text('not a zip')
    with pytest.raises(DataContractError, match='not an NPZ'):
        read_training_data(path)


def test_reader_rejects_metadata_from_a_newer_contract(tmp_path: Path, rng) -> None:
    path = write_training_data(tmp_path / 'd.npz', _data(rng))
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays[ContractKey.METADATA] = np.array('{"contract_version": 99}')
    np.savez(path, **arrays)
    with pytest.raises(DataContractError, match='newer'):
        read_training_data(path)


@pytest.mark.parametrize(
    ('overrides', 'message'),
    [
        ({'diffraction_amplitude': np.ones((4, N, N + 2))}, 'square'),
        ({'diffraction_amplitude': np.ones((N, N))}, r'shape \(n, N, N\)'),
        ({'diffraction_amplitude': np.ones((0, N, N))}, 'empty'),
        ({'diffraction_amplitude': np.zeros((12, N, N))}, 'zero'),
        ({'diffraction_amplitude': np.full((12, N, N), np.nan)}, 'NaN or infinite'),
        ({'diffraction_amplitude': -np.ones((12, N, N))}, 'non-negative'),
        ({'diffraction_amplitude': np.ones((12, N, N), complex)}, 'real'),
        ({'positions_px': np.zeros((11, 2))}, '12 diffraction patterns but 11 scan positions'),
        ({'positions_px': np.zeros((12, 3))}, r'shape \(n, 2\)'),
        ({'probe': np.ones((3, N, N), complex)}, 'one 2-D mode'),
        ({'probe': np.ones((N + 1, N + 1), complex)}, 'does not match'),
        ({'probe': np.zeros((N, N), complex)}, 'zero everywhere'),
        ({'ground_truth_patches': np.ones((3, N, N), complex)}, 'ground-truth'),
        ({'scan_index': np.zeros(12, float)}, 'scan_index'),
    ],
)
def test_training_data_rejects_bad_input_with_a_clear_message(rng, overrides, message) -> None:
    with pytest.raises(DataContractError, match=message):
        _data(rng, **overrides)


def test_negative_counts_are_rejected_with_the_fix() -> None:
    with pytest.raises(DataContractError, match='Clip the background'):
        amplitude_from_counts(np.array([[[1.0, -2.0]]]))


def test_subset_keeps_patterns_positions_and_truth_together(rng) -> None:
    data = _data(rng, ground_truth_patches=np.arange(12 * N * N).reshape(12, N, N) + 0j)
    part = data.subset(np.array([3, 5]))
    np.testing.assert_array_equal(part.diffraction_amplitude, data.diffraction_amplitude[[3, 5]])
    np.testing.assert_array_equal(part.positions_px, data.positions_px[[3, 5]])
    np.testing.assert_array_equal(part.ground_truth_patches, data.ground_truth_patches[[3, 5]])
    np.testing.assert_array_equal(part.scan_index, [3, 5])
