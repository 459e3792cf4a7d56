"""The reconstructor as Ptychodus drives it, in-process: train, progress, products, files, errors.

Training here is minimal (N = 32, one or two epochs on PyTorch) because these tests check the
plumbing: what is yielded, what is written, what is refused and with which message. Quality and
both backends are checked through the real ``ptychodus -b`` in ``test_batch.py``.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np
import pytest
from ptychodus.api.reconstruct import ReconstructInput, TrainOutput
from ptychodus.api.settings import SettingsRegistry
from ptychodus_workflow import WorkflowScan, write_workflow_scan

from ptychopinn_plugin.config import InferenceConfig
from ptychopinn_plugin.core.archive import load_archive, read_manifest
from ptychopinn_plugin.core.checkpoint import checkpoint_path
from ptychopinn_plugin.core.contract import read_training_data
from ptychopinn_plugin.errors import (
    ArchiveError,
    ConfigurationError,
    DataContractError,
    ReconstructionError,
)
from ptychopinn_plugin.ptychodus_adapter.library import PtychoPINNLibrary
from ptychopinn_plugin.ptychodus_adapter.reconstructor import PtychoPINNReconstructor
from ptychopinn_plugin.ptychodus_io.products import product_with_object

NUM_EPOCHS = 2
INFERENCE_BATCH_SIZE = 16
"""144 scan points in batches of 16: nine batches, so four partial products can be spread out."""
PLUMBING_REFINE_ITERATIONS = 3
"""Refinement iterations of the reconstructions that test plumbing (goals, engine reuse, model
loading): the refinement is tested in tests/solver; one test keeps the default and its goal."""


def _library(**plugin: object) -> PtychoPINNLibrary:
    library = PtychoPINNLibrary(SettingsRegistry())
    settings = library.settings
    settings.model_settings.n_filters_scale.set_value(1)
    settings.training_settings.nepochs.set_value(NUM_EPOCHS)
    settings.training_settings.batch_size.set_value(16)
    settings.plugin_settings.device.set_value('cpu')
    settings.plugin_settings.inference_batch_size.set_value(INFERENCE_BATCH_SIZE)
    for name, value in plugin.items():
        getattr(settings.plugin_settings, name).set_value(value)
    return library


def _input(scan: WorkflowScan, object_: np.ndarray | None = None) -> ReconstructInput:
    given = scan.simulated.reconstruct_input
    product = product_with_object(given.product, scan.initial_guess if object_ is None else object_)
    return ReconstructInput(given.diffraction_patterns, given.bad_pixels, product)


@pytest.fixture(scope='module')
def trained(tmp_path_factory: pytest.TempPathFactory, workflow_scan: WorkflowScan):
    """A PINN reconstructor trained from exported training data, and what training yielded."""
    root = tmp_path_factory.mktemp('trained')
    library = _library()
    reconstructor = library.get_reconstructor('PINN')
    reconstructor.export_training_data(root / 'data' / 'train_data', _input(workflow_scan))
    goals = []
    outputs = []
    for output in reconstructor.train(root / 'data', root / 'out'):
        goals.append(reconstructor.get_progress_goal())
        outputs.append(output)
    return reconstructor, outputs, goals, root


def test_exported_training_data_is_our_contract_npz(trained, workflow_scan: WorkflowScan) -> None:
    _, _, _, root = trained
    data = read_training_data(root / 'data' / 'train_data.npz')
    counts = workflow_scan.simulated.counts
    assert data.num_patterns == counts.shape[0]
    assert data.probe.shape == (32, 32)
    np.testing.assert_allclose(data.diffraction_amplitude**2, counts, rtol=1e-5, atol=1e-3)
    assert data.metadata.object_pixel_width_m is not None


def test_training_yields_a_train_output_per_epoch_with_loss_curves(trained) -> None:
    reconstructor, outputs, goals, _ = trained
    assert [output.progress for output in outputs] == list(range(1, NUM_EPOCHS + 1))
    assert goals == [NUM_EPOCHS] * NUM_EPOCHS
    assert all(isinstance(output, TrainOutput) for output in outputs)
    last = outputs[-1]
    assert [loss.epoch for loss in last.training_loss] == list(range(1, NUM_EPOCHS + 1))
    assert [loss.epoch for loss in last.validation_loss] == list(range(1, NUM_EPOCHS + 1))
    assert all(np.isfinite(loss.value) for loss in last.training_loss)
    assert reconstructor.is_model_loaded()


def test_training_writes_the_model_archive_loss_csv_and_figure(trained) -> None:
    _, _, _, root = trained
    manifest = read_manifest(root / 'out' / 'model.zip')
    assert manifest['trained_backend'] == 'pytorch'
    assert manifest['mode'] == 'pinn'
    assert manifest['pattern_size_px'] == 32
    with (root / 'out' / 'loss_history.csv').open() as stream:
        rows = list(csv.DictReader(stream))
    assert [int(row['epoch']) for row in rows] == list(range(1, NUM_EPOCHS + 1))
    assert (root / 'out' / 'loss_curves.png').stat().st_size > 1000


def test_reconstruction_yields_a_few_partial_products_and_ends_at_the_goal(
    trained, workflow_scan: WorkflowScan
) -> None:
    reconstructor, _, _, _ = trained
    parameters = _input(workflow_scan)
    outputs = list(reconstructor.reconstruct(parameters))
    num_points = workflow_scan.positions_px.shape[0]
    goal = num_points + InferenceConfig().refine_iterations  # groups, then refinement steps
    assert [output.progress for output in outputs] == [48, 80, 112, num_points, goal]
    assert reconstructor.get_progress_goal() == goal
    product = outputs[-1].product
    given = parameters.product
    assert product.probe_positions is given.probe_positions
    assert product.probes is given.probes
    object_ = product.object_
    assert (object_.height_px, object_.width_px) == (
        given.object_.height_px,
        given.object_.width_px,
    )
    assert object_.get_pixel_geometry() == given.object_.get_pixel_geometry()
    layer = object_.get_layer(0)
    assert np.all(np.isfinite(layer))
    assert layer[0, 0] == given.object_.get_layer(0)[0, 0]  # uncovered pixels keep the input


def test_num_groups_limits_the_reconstruction_and_the_goal(
    trained, workflow_scan: WorkflowScan
) -> None:
    reconstructor, _, _, _ = trained
    plugin_settings = reconstructor._settings.plugin_settings
    plugin_settings.num_groups.set_value(20)
    plugin_settings.refine_iterations.set_value(PLUMBING_REFINE_ITERATIONS)
    try:
        outputs = list(reconstructor.reconstruct(_input(workflow_scan)))
    finally:
        plugin_settings.num_groups.set_value(0)
        plugin_settings.refine_iterations.set_value(InferenceConfig().refine_iterations)
    goal = 20 + PLUMBING_REFINE_ITERATIONS
    assert outputs[-1].progress == goal == reconstructor.get_progress_goal()


def test_a_saved_model_loads_into_a_fresh_reconstructor(trained, tmp_path: Path) -> None:
    reconstructor, _, _, _ = trained
    reconstructor.save_model(tmp_path / 'copy')
    fresh = _library().get_reconstructor('PINN')
    assert not fresh.is_model_loaded()
    fresh.load_model_from_file(tmp_path / 'copy.zip')
    assert fresh.is_model_loaded()
    assert fresh.get_model_file_extension() == '.zip'


def test_loading_a_model_warms_an_engine_that_reconstructions_reuse(
    trained, workflow_scan: WorkflowScan
) -> None:
    _, _, _, root = trained
    library = _library(refine_iterations=PLUMBING_REFINE_ITERATIONS)
    reconstructor = library.get_reconstructor('PINN')
    reconstructor.load_model_from_file(root / 'out' / 'model.zip')
    warm = reconstructor._engine
    assert warm is not None  # built at load: Ptychodus's reconstruction timer sees no start-up
    first = list(reconstructor.reconstruct(_input(workflow_scan)))[-1]
    assert reconstructor._engine is warm
    library.settings.plugin_settings.precision.set_value('bf16-mixed')
    second = list(reconstructor.reconstruct(_input(workflow_scan)))[-1]
    assert reconstructor._engine is not warm  # other execution settings: a new engine
    assert first.progress == second.progress == 144 + PLUMBING_REFINE_ITERATIONS


def test_model_path_setting_loads_the_model_on_first_reconstruction(
    trained, workflow_scan: WorkflowScan
) -> None:
    _, _, _, root = trained
    library = _library(refine_iterations=PLUMBING_REFINE_ITERATIONS)
    library.settings.inference_settings.model_path.set_value(root / 'out' / 'model.zip')
    reconstructor = library.get_reconstructor('PINN')
    outputs = list(reconstructor.reconstruct(_input(workflow_scan)))
    assert reconstructor.is_model_loaded()
    assert outputs[-1].progress == 144 + PLUMBING_REFINE_ITERATIONS


def test_reconstructing_without_a_model_says_how_to_get_one(workflow_scan: WorkflowScan) -> None:
    reconstructor = _library().get_reconstructor('PINN')
    with pytest.raises(ReconstructionError, match=r'no PtychoPINN model is loaded.*model.zip'):
        list(reconstructor.reconstruct(_input(workflow_scan)))


def test_a_model_for_another_pattern_size_is_refused(trained, workflow_scan: WorkflowScan) -> None:
    reconstructor, _, _, _ = trained
    given = _input(workflow_scan)
    patterns = np.asarray(given.diffraction_patterns)
    padded = np.pad(patterns, ((0, 0), (16, 16), (16, 16)))
    bigger = ReconstructInput(padded, None, given.product)
    with pytest.raises((ReconstructionError, DataContractError), match='32'):
        list(reconstructor.reconstruct(bigger))


def test_foreign_and_corrupt_model_files_are_refused(tmp_path: Path) -> None:
    reconstructor = _library().get_reconstructor('PINN')
    foreign = tmp_path / 'foreign.zip'
    with zipfile.ZipFile(foreign, 'w') as archive:
        archive.writestr('wts.h5', b'not ours')
    with pytest.raises(ArchiveError, match='not the members'):
        reconstructor.load_model_from_file(foreign)
    corrupt = tmp_path / 'corrupt.zip'
    corrupt.write_bytes(b'PK\x03\x04 truncated')
    with pytest.raises(ArchiveError, match='not a model archive'):
        reconstructor.load_model_from_file(corrupt)
    assert not reconstructor.is_model_loaded()


def test_a_failed_training_leaves_an_existing_model_archive_untouched(
    tmp_path: Path, trained, workflow_scan: WorkflowScan
) -> None:
    _, _, _, root = trained
    out = tmp_path / 'out'
    out.mkdir()
    before = (root / 'out' / 'model.zip').read_bytes()
    (out / 'model.zip').write_bytes(before)
    reconstructor = _library(backend='jax').get_reconstructor('PINN')
    with pytest.raises(ConfigurationError, match='Backend'):
        list(reconstructor.train(root / 'data', out))
    assert (out / 'model.zip').read_bytes() == before


def test_stopping_training_keeps_the_partial_model_loaded_and_writes_only_its_checkpoint(
    tmp_path: Path, trained
) -> None:
    _, _, _, root = trained
    reconstructor = _library().get_reconstructor('PINN')
    iterator = reconstructor.train(root / 'data' / 'train_data.npz', tmp_path / 'out')
    first = next(iterator)
    iterator.close()  # what Ptychodus does when the user stops training
    assert first.progress == 1
    assert reconstructor.is_model_loaded()
    assert reconstructor.archive.training_summary['epochs_completed'] == 1
    # no model, no loss files: only the checkpoint of the finished epoch (training there resumes)
    checkpoint = checkpoint_path(tmp_path / 'out' / 'model.zip')
    assert [path.name for path in (tmp_path / 'out').iterdir()] == [checkpoint.name]
    state = load_archive(checkpoint).training_state
    assert state is not None
    assert len(state.history) == 1
    np.testing.assert_array_equal(
        load_archive(checkpoint).weights['encoder.0.conv1.kernel'],
        reconstructor.archive.weights['encoder.0.conv1.kernel'],
    )


def test_supervised_training_refuses_a_flat_initial_guess_as_ground_truth(
    tmp_path: Path, workflow_scan: WorkflowScan
) -> None:
    directory = write_workflow_scan(tmp_path / 'flat', workflow_scan, {})
    reconstructor = _library().get_reconstructor('Supervised')
    with pytest.raises(DataContractError, match='flat or noise'):
        next(iter(reconstructor.train(directory, tmp_path / 'out')))


def test_supervised_training_cuts_ground_truth_from_a_real_object(
    tmp_path: Path, workflow_scan: WorkflowScan
) -> None:
    directory = write_workflow_scan(tmp_path / 'truth', workflow_scan, {}, object_is_truth=True)
    library = _library()
    library.settings.training_settings.nepochs.set_value(1)
    reconstructor: PtychoPINNReconstructor = library.get_reconstructor('Supervised')
    outputs = list(reconstructor.train(directory, tmp_path / 'out'))
    assert [output.progress for output in outputs] == [1]
    assert read_manifest(tmp_path / 'out' / 'model.zip')['mode'] == 'supervised'


def test_a_model_with_a_refined_probe_returns_products_carrying_it(
    tmp_path: Path, workflow_scan: WorkflowScan
) -> None:
    library = _library(probe_refinement='on', probe_refinement_iterations=20, refine_iterations=2)
    library.settings.training_settings.nepochs.set_value(1)
    reconstructor = library.get_reconstructor('PINN')
    reconstructor.export_training_data(tmp_path / 'data' / 'train_data', _input(workflow_scan))
    list(reconstructor.train(tmp_path / 'data', tmp_path / 'out'))
    assert reconstructor.archive.training_summary['probe_refinement']['adopted']
    parameters = _input(workflow_scan)
    given = parameters.product.probes.get_array()
    returned = list(reconstructor.reconstruct(parameters))[-1].product.probes.get_array()
    assert returned.shape == given.shape
    assert not np.allclose(returned[0, 0], given[0, 0])  # the model's refined probe ...
    np.testing.assert_allclose(  # ... at the power of the product's own
        np.sum(np.abs(returned[0, 0]) ** 2), np.sum(np.abs(given[0, 0]) ** 2), rtol=1e-4
    )
