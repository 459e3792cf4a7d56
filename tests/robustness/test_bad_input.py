"""Bad input, case by case: each is refused (or warned about) with a message naming the fix.

The catalogue and the decisions behind it are in ``docs/robustness.md``. Cases are checked where
the data enter: the contract value (``TrainingData``), the NPZ reader, the Ptychodus reconstructor
(in-process, as Ptychodus drives it) and the training run. ``test_bad_input_batch.py`` checks a
representative subset through the real ``ptychodus -b``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
from robustness_helpers import (
    PATTERN_SIZE_PX,
    TINY_MODEL,
    library,
    reconstruct_input,
    save_untrained,
)

from ptychopinn_plugin.config import ModelConfig, PluginConfig, TrainingConfig
from ptychopinn_plugin.core.archive import load_archive
from ptychopinn_plugin.core.contract import (
    DiffractionQuantity,
    TrainingData,
    amplitude_from_counts,
    read_training_data,
    write_training_data,
)
from ptychopinn_plugin.core.dataset import prepare_training
from ptychopinn_plugin.errors import (
    ArchiveError,
    ConfigurationError,
    DataContractError,
    ReconstructionError,
)
from ptychopinn_plugin.inference import check_positions_on_object
from ptychopinn_plugin.ptychodus_io.inputs import training_data_from_reconstruct_input
from ptychopinn_plugin.ptychodus_io.products import make_product
from ptychopinn_plugin.workflow import TrainingRun

N = PATTERN_SIZE_PX


@pytest.fixture(scope='module')
def scan_data(small_scan) -> TrainingData:
    """The small scan as contract data (counts converted to amplitude, flat object guess)."""
    return training_data_from_reconstruct_input(reconstruct_input(small_scan))


def _changed(data: TrainingData, **fields) -> TrainingData:
    return dataclasses.replace(data, **fields)


# --- the contract value ------------------------------------------------------------------------


def _nan(a):
    a = a.copy()
    a[3, 5, 7] = np.nan
    return a


def _nan_position(positions):
    positions = positions.copy()
    positions[3, 1] = np.nan
    return positions


def _inf(a):
    a = a.copy()
    a[0, 0, 0] = np.inf
    return a


def _negative(a):
    a = a.copy()
    a[1, 2, 3] = -1.0
    return a


CONTRACT_CASES = {
    'non-square patterns': (
        lambda d: _changed(d, diffraction_amplitude=d.diffraction_amplitude[:, :, :-2]),
        'must be square, got 32 x 30; crop them to a square',
    ),
    'patterns and positions of different counts': (
        lambda d: _changed(d, positions_px=d.positions_px[:-1]),
        '36 diffraction patterns but 35 scan positions; each pattern needs exactly one',
    ),
    'NaN values': (
        lambda d: _changed(d, diffraction_amplitude=_nan(d.diffraction_amplitude)),
        'contain 1 NaN or infinite values; remove or repair those patterns',
    ),
    'infinite values': (
        lambda d: _changed(d, diffraction_amplitude=_inf(d.diffraction_amplitude)),
        'contain 1 NaN or infinite values; remove or repair',
    ),
    'NaN positions': (
        lambda d: _changed(d, positions_px=_nan_position(d.positions_px)),
        'scan positions contain',
    ),
    'negative amplitudes': (
        lambda d: _changed(d, diffraction_amplitude=_negative(d.diffraction_amplitude)),
        'must be non-negative, smallest is -1',
    ),
    'all-zero patterns': (
        lambda d: _changed(d, diffraction_amplitude=np.zeros_like(d.diffraction_amplitude)),
        'all 36 diffraction patterns are zero: there is nothing to fit or reconstruct; check',
    ),
    'probe of the wrong size': (
        lambda d: _changed(d, probe=d.probe[:16, :16]),
        r'probe shape \(16, 16\) does not match the 32 x 32 diffraction patterns',
    ),
    'probe mode stack': (
        lambda d: _changed(d, probe=np.stack([d.probe, d.probe])),
        'pass mode 0 of a mode stack',
    ),
    'every position the same': (
        lambda d: _changed(d, positions_px=np.zeros_like(d.positions_px)),
        'all 36 scan positions are the same point .* were probably not loaded',
    ),
    'empty dataset': (
        lambda d: _changed(
            d, diffraction_amplitude=d.diffraction_amplitude[:0], positions_px=d.positions_px[:0]
        ),
        'the dataset is empty',
    ),
}


@pytest.mark.parametrize('case', CONTRACT_CASES, ids=list(CONTRACT_CASES))
def test_contract_refuses_bad_data_naming_problem_and_fix(scan_data, case) -> None:
    build, message = CONTRACT_CASES[case]
    with pytest.raises(DataContractError, match=message):
        build(scan_data)


def test_negative_counts_are_refused_with_the_fix() -> None:
    counts = np.ones((2, 4, 4))
    counts[1, 1, 1] = -3
    with pytest.raises(DataContractError, match=r'smallest value is -3. Clip the background'):
        amplitude_from_counts(counts)


def test_some_zero_patterns_are_kept_with_a_warning(scan_data, caplog) -> None:
    amplitude = scan_data.diffraction_amplitude.copy()
    amplitude[[4, 9]] = 0
    with caplog.at_level(logging.WARNING):
        data = _changed(scan_data, diffraction_amplitude=amplitude)
    assert data.num_patterns == 36
    assert '2 of 36 diffraction patterns are zero everywhere (first at index [4, 9])' in caplog.text


def test_some_duplicate_positions_are_kept_with_a_warning(scan_data, caplog) -> None:
    positions = scan_data.positions_px.copy()
    positions[5] = positions[4]
    positions[7] = positions[4] + 1e-5
    with caplog.at_level(logging.WARNING):
        data = _changed(scan_data, positions_px=positions)
    assert data.num_patterns == 36
    assert '2 of 36 scan positions repeat an earlier position' in caplog.text


# --- NPZ files --------------------------------------------------------------------------------


@pytest.fixture
def npz_arrays(scan_data, tmp_path: Path) -> dict[str, np.ndarray]:
    path = write_training_data(tmp_path / 'good.npz', scan_data)
    with np.load(path) as npz:
        return {name: npz[name] for name in npz.files}


def _write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def _renamed(arrays, old, new):
    arrays = dict(arrays)
    arrays[new] = arrays.pop(old)
    return arrays


def _without(arrays, key):
    return {name: value for name, value in arrays.items() if name != key}


def _with(arrays, **values):
    return {**arrays, **values}


NPZ_CASES = {
    'missing probe': (
        lambda a: _without(a, 'probeGuess'),
        r"lacks required arrays \['probeGuess'\] \(present: .*\); a contract file needs",
    ),
    'misspelled diff3d': (
        lambda a: _renamed(a, 'diff3d', 'diff3D'),
        r"lacks required arrays \['diff3d'\] \(present: diff3D, ",
    ),
    'positions as text': (
        lambda a: _with(a, xcoords=a['xcoords'].astype(str)),
        'xcoords must be a numeric array, got dtype <U',
    ),
    'complex diffraction': (
        lambda a: _with(a, diff3d=a['diff3d'].astype(np.complex64)),
        'diff3d must be real, got complex dtype complex64',
    ),
    'boolean diffraction': (
        lambda a: _with(a, diff3d=a['diff3d'] > 0),
        'diff3d must be a numeric array, got dtype bool',
    ),
    'probe as text': (
        lambda a: _with(a, probeGuess=np.full((N, N), 'x')),
        'probe must be a numeric array',
    ),
    'object guess as text': (
        lambda a: _with(a, objectGuess=np.full((66, 66), 'x')),
        'object guess must be a numeric array',
    ),
    'float scan index': (
        lambda a: _with(a, scan_index=a['scan_index'].astype(float)),
        'scan_index must be 36 integers, got float64',
    ),
    '2-D diffraction': (
        lambda a: _with(a, diff3d=a['diff3d'][0]),
        r'diff3d must be a non-empty stack of patterns of shape \(n, N, N\), got \(32, 32\)',
    ),
    'empty dataset': (
        lambda a: _with(
            a, diff3d=a['diff3d'][:0], xcoords=a['xcoords'][:0], ycoords=a['ycoords'][:0]
        ),
        r'non-empty stack .* got \(0, 32, 32\)',
    ),
    'metadata of the wrong type': (
        lambda a: _with(a, metadata_json=np.array(json.dumps({'num_photons': 'many'}))),
        "invalid metadata_json: field num_photons = 'many'",
    ),
    'metadata from a newer contract': (
        lambda a: _with(a, metadata_json=np.array(json.dumps({'contract_version': 9}))),
        'newer than this plugin supports .*upgrade ptychopinn-plugin',
    ),
}


@pytest.mark.parametrize('case', NPZ_CASES, ids=list(NPZ_CASES))
def test_npz_reader_refuses_bad_files_naming_problem_and_fix(npz_arrays, tmp_path, case) -> None:
    change, message = NPZ_CASES[case]
    path = _write(tmp_path / 'bad.npz', change(npz_arrays))
    with pytest.raises(DataContractError, match=message):
        read_training_data(path)


def test_npz_with_object_arrays_is_refused_without_unpickling(npz_arrays, tmp_path) -> None:
    arrays = _with(npz_arrays, probeGuess=np.array([object(), 1], dtype=object))
    path = tmp_path / 'pickled.npz'
    np.savez(path, **arrays)  # savez pickles object arrays; the reader must never load them
    with pytest.raises(DataContractError, match=r'needs pickle to load .*store plain numeric'):
        read_training_data(path)


def test_truncated_npz_is_refused(npz_arrays, tmp_path) -> None:
    path = _write(tmp_path / 'whole.npz', npz_arrays)
    truncated = tmp_path / 'truncated.npz'
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataContractError, match=r'is not an NPZ .*or is truncated'):
        read_training_data(truncated)


def test_counts_declared_as_amplitude_are_refused(npz_arrays, small_scan, tmp_path) -> None:
    counts = np.asarray(small_scan.simulated.counts, np.float32)
    path = _write(
        tmp_path / 'counts.npz', _with(_without(npz_arrays, 'metadata_json'), diff3d=counts)
    )
    with pytest.raises(
        DataContractError, match=r"look like. Declare quantity='counts'|what detector"
    ):
        read_training_data(path, quantity=DiffractionQuantity.AMPLITUDE)


def test_amplitude_declared_as_counts_is_warned_about(npz_arrays, tmp_path, caplog) -> None:
    path = _write(tmp_path / 'amplitude.npz', _without(npz_arrays, 'metadata_json'))
    with caplog.at_level(logging.WARNING):
        read_training_data(path, quantity=DiffractionQuantity.COUNTS)
    assert 'most values are not integers; if it holds amplitudes' in caplog.text
    assert "quantity='amplitude'" in caplog.text


def test_an_npz_zip_bomb_is_refused_before_decompression(tmp_path) -> None:
    bomb = tmp_path / 'bomb.npz'
    with zipfile.ZipFile(bomb, 'w', compression=zipfile.ZIP_BZIP2) as zf:
        with zf.open('diff3d.npy', 'w', force_zip64=True) as member:
            chunk = bytes(16 * 1024**2)
            for _ in range(4):  # 64 MiB of zeros in about a hundred bytes
                member.write(chunk)
    with pytest.raises(DataContractError, match='refusing to decompress it'):
        read_training_data(bomb)


def test_an_empty_training_directory_says_what_to_put_there(tmp_path) -> None:
    reconstructor = library().get_reconstructor('PINN')
    (tmp_path / 'in').mkdir()
    with pytest.raises(DataContractError, match=r'no training data in .*expected contract NPZ'):
        next(iter(reconstructor.train(tmp_path / 'in', tmp_path / 'out')))


# --- the reconstructor, as Ptychodus drives it --------------------------------------------------


def test_non_square_patterns_from_ptychodus_name_the_crop_setting(small_scan) -> None:
    counts = small_scan.simulated.counts[:, :, :-2]
    with pytest.raises(DataContractError, match='set a square crop'):
        training_data_from_reconstruct_input(reconstruct_input(small_scan, counts=counts))


def test_negative_counts_from_ptychodus_are_refused(small_scan, tmp_path) -> None:
    counts = small_scan.simulated.counts.copy()
    counts[0, 0, 0] = -5
    reconstructor = library().get_reconstructor('PINN')
    reconstructor.load_model_from_file(save_untrained(tmp_path / 'model.zip'))
    with pytest.raises(DataContractError, match=r'must be non-negative.*Clip the background'):
        next(iter(reconstructor.reconstruct(reconstruct_input(small_scan, counts=counts))))


def test_a_model_for_another_pattern_size_names_both_sizes(small_scan, tmp_path) -> None:
    reconstructor = library().get_reconstructor('PINN')
    model_64 = ModelConfig(pattern_size_px=64, n_filters_scale=1)
    reconstructor.load_model_from_file(save_untrained(tmp_path / 'model.zip', model_64))
    with pytest.raises(
        ReconstructionError,
        match=r'patterns are 32 x 32 px but the loaded model .* trained on 64 x 64 px patterns; '
        'set',
    ):
        next(iter(reconstructor.reconstruct(reconstruct_input(small_scan))))


def test_too_few_positions_for_the_gridsize_are_refused(scan_data, small_scan, tmp_path) -> None:
    three = scan_data.subset(np.arange(3))
    with pytest.raises(DataContractError, match='3 scan positions are too few for gridsize 2'):
        prepare_training([three], ModelConfig(**_tiny(gridsize=2, num_neighbors=4)), _training())
    reconstructor = library().get_reconstructor('PINN')
    grid2 = ModelConfig(**_tiny(gridsize=2, num_neighbors=4))
    reconstructor.load_model_from_file(save_untrained(tmp_path / 'model.zip', grid2))
    given = reconstruct_input(small_scan)
    product = dataclasses.replace(
        given.product, probe_positions=_first(given.product.probe_positions, 3)
    )
    few = reconstruct_input(small_scan, counts=given.diffraction_patterns[:3], product=product)
    with pytest.raises(ReconstructionError, match=r'gridsize 2 .* but the scan has only 3 points'):
        next(iter(reconstructor.reconstruct(few)))


def _first(positions, count):
    from ptychodus.api.probe_positions import ProbePositionSequence

    return ProbePositionSequence([positions[i] for i in range(count)])


def _tiny(**values):
    return {**TINY_MODEL.model_dump(), **values}


def _training(**values) -> TrainingConfig:
    return TrainingConfig(num_epochs=1, batch_size=8, num_photons=1e5, **values)


def test_positions_far_outside_the_object_grid(small_scan, tmp_path, caplog) -> None:
    positions = small_scan.positions_px
    object_shape = small_scan.truth.shape
    with pytest.raises(DataContractError, match='check the position units'):
        check_positions_on_object(positions + 1e4, object_shape, N)
    stray = positions.copy()
    stray[0] = (-500.0, 3.0)
    with caplog.at_level(logging.WARNING):
        check_positions_on_object(stray, object_shape, N)
    assert '1 of 36 scan positions' in caplog.text
    assert 'wholly outside' in caplog.text

    # through the reconstructor: a product whose positions are all 1e4 px away
    product = small_scan.simulated.product
    moved = make_product(
        small_scan.initial_guess,
        np.asarray(product.probes.get_probe_no_opr().get_incoherent_mode(0)),
        positions + 1e4,
        pixel_size_m=product.object_.get_pixel_geometry().width_m,
        wavelength_m=product.metadata.photon_wavelength_m,
    )
    reconstructor = library().get_reconstructor('PINN')
    reconstructor.load_model_from_file(save_untrained(tmp_path / 'model.zip'))
    with pytest.raises(DataContractError, match=r'all 36 scan positions .* wholly outside'):
        next(iter(reconstructor.reconstruct(reconstruct_input(small_scan, product=moved))))


def test_a_stray_position_in_gridsize_2_training_is_refused_before_any_memory_is_spent(
    scan_data,
) -> None:
    positions = scan_data.positions_px.copy()
    positions[0] = (1e6, 1e6)  # one corrupt motor reading: its group would need a 2e6 px canvas
    data = _changed(scan_data, positions_px=positions)
    config = PluginConfig(
        model=ModelConfig(**_tiny(gridsize=2, num_neighbors=4)), training=_training()
    )
    with pytest.raises(DataContractError, match=r'more than the 32 px .* Remove those positions'):
        TrainingRun([data], config)


def test_supervised_training_without_ground_truth_says_how_to_provide_it(
    scan_data, tmp_path
) -> None:
    write_training_data(tmp_path / 'in' / 'train_data.npz', _changed(scan_data, object_guess=None))
    reconstructor = library().get_reconstructor('Supervised')
    with pytest.raises(DataContractError, match=r'needs ground truth.*train in PINN mode'):
        next(iter(reconstructor.train(tmp_path / 'in', tmp_path / 'out')))


@pytest.mark.parametrize(
    ('setting', 'value', 'message'),
    [
        ('backend', 'jax', "Backend = 'jax'; valid values are tensorflow, pytorch"),
        ('device', 'gpu', "Device = 'gpu'; valid values are auto, cpu, cuda"),
        ('precision', 'fp8', "Precision = 'fp8'; valid values are auto, 32-true"),
    ],
)
def test_an_unknown_settings_value_names_the_valid_values(
    scan_data, tmp_path, setting, value, message
) -> None:
    write_training_data(tmp_path / 'in' / 'train_data.npz', scan_data)
    reconstructor = library(**{setting: value}).get_reconstructor('PINN')
    with pytest.raises(ConfigurationError, match=message):
        next(iter(reconstructor.train(tmp_path / 'in', tmp_path / 'out')))


def test_a_model_archive_from_a_newer_format_says_to_upgrade(tmp_path) -> None:
    path = save_untrained(tmp_path / 'model.zip')
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    manifest = json.loads(members['manifest.json'])
    manifest['format_version'] = 2
    newer = tmp_path / 'newer.zip'
    with zipfile.ZipFile(newer, 'w') as zf:
        zf.writestr('manifest.json', json.dumps(manifest))
        zf.writestr('weights.npz', members['weights.npz'])
    with pytest.raises(ArchiveError, match=r'format version 2, newer than .*upgrade ptychopinn'):
        load_archive(newer)
    reconstructor = library().get_reconstructor('PINN')
    with pytest.raises(ArchiveError, match='upgrade ptychopinn-plugin'):
        reconstructor.load_model_from_file(newer)
    assert not reconstructor.is_model_loaded()


def test_an_output_directory_that_cannot_be_written_fails_before_training(
    scan_data, tmp_path
) -> None:
    write_training_data(tmp_path / 'in' / 'train_data.npz', scan_data)
    blocker = tmp_path / 'a-file'
    blocker.write_text('not a directory')
    reconstructor = library().get_reconstructor('PINN')
    with pytest.raises(ReconstructionError, match=r'cannot write the training outputs to .*choose'):
        next(iter(reconstructor.train(tmp_path / 'in', blocker / 'out')))
    assert blocker.read_text() == 'not a directory'
    assert not reconstructor.is_model_loaded()


# --- a stray position through every stage of the solver -----------------------------------------


def _with_stray_point(data: TrainingData, index: int = 0) -> TrainingData:
    """One corrupt motor reading: point ``index`` a metre's worth of pixels off the grid."""
    positions = data.positions_px.copy()
    positions[index] = (1e6, positions[index, 1])
    return _changed(data, positions_px=positions)


def test_the_refinement_refuses_a_stray_point_by_name_and_skips_it_when_told(
    scan_data, small_scan
) -> None:
    from ptychopinn_plugin.solver.overlap import OverlapRefinement

    stray = _with_stray_point(scan_data, index=4)
    flat = np.ones(small_scan.truth.shape, np.complex64)
    with pytest.raises(DataContractError, match=r'1 scan points \(index 4\) .* wholly outside'):
        OverlapRefinement(flat, stray.positions_px, stray.diffraction_amplitude, stray.probe)
    rows = np.delete(np.arange(stray.num_patterns), 4)
    skipped = OverlapRefinement(
        flat, stray.positions_px, stray.diffraction_amplitude, stray.probe, rows=rows
    )
    kept = scan_data.subset(rows)
    subset = OverlapRefinement(flat, kept.positions_px, kept.diffraction_amplitude, kept.probe)
    for _ in range(3):
        assert skipped.step() == pytest.approx(subset.step(), rel=1e-6)
    np.testing.assert_allclose(skipped.object_, subset.object_, rtol=0, atol=1e-6)


def test_the_consistency_check_refuses_a_stray_point_and_skips_it_when_told(
    scan_data, small_scan
) -> None:
    from ptychopinn_plugin.solver.consistency import measure_consistency

    stray = _with_stray_point(scan_data, index=7)
    flat = np.ones(small_scan.truth.shape, np.complex64)
    args = (flat, stray.positions_px, stray.diffraction_amplitude, stray.probe)
    with pytest.raises(DataContractError, match=r'index 7\b'):
        measure_consistency(*args)
    rows = np.delete(np.arange(stray.num_patterns), 7)
    consistency = measure_consistency(*args, rows=rows)
    assert consistency.r_factor.shape == (stray.num_patterns - 1,)
    np.testing.assert_array_equal(consistency.positions_px, stray.positions_px[rows])


def test_the_probe_refinement_and_pre_training_check_leave_a_stray_point_out(scan_data) -> None:
    from ptychopinn_plugin.solver.consistency import preflight_consistency
    from ptychopinn_plugin.solver.probe import refine_probe

    stray = _with_stray_point(scan_data)
    check = preflight_consistency(
        stray.positions_px, stray.diffraction_amplitude, stray.probe, iterations=5
    )
    assert check.r_factor.size == stray.num_patterns - 1
    assert np.all(np.isfinite(check.noise_ratio))
    result = refine_probe(
        stray.positions_px, stray.diffraction_amplitude, stray.probe, iterations=6
    )
    assert np.all(np.isfinite(result.probe))
    assert result.after.r_factor.size == stray.num_patterns - 1


def test_a_stray_point_is_named_and_skipped_by_stitching_refinement_and_consistency(
    scan_data, small_scan, caplog
) -> None:
    from ptychopinn_plugin.config import InferenceConfig
    from ptychopinn_plugin.inference import reconstruct_object

    class FlatEngine:
        """Stands in for a trained network: unit patches (the stages after it are tested)."""

        solver_device = None  # the refinement runs with NumPy

        def predict(self, inputs, offsets):
            return np.ones(inputs.shape, np.complex64)

    stray = _with_stray_point(scan_data, index=5)
    with caplog.at_level(logging.WARNING):
        steps = list(
            reconstruct_object(
                FlatEngine(),
                stray,
                TINY_MODEL,
                InferenceConfig(refine_iterations=3),
                object_shape=small_scan.truth.shape,
            )
        )
    final = steps[-1]
    assert final.finished
    assert np.all(np.isfinite(final.object_))
    assert final.consistency is not None
    assert final.consistency.r_factor.size == stray.num_patterns - 1
    assert 'scan point 5 at (1e+06' in caplog.text
    assert 'skipped when stitching, refining and measuring the data consistency' in caplog.text
