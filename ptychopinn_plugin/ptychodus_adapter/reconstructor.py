"""The PtychoPINN reconstructor Ptychodus drives: reconstruct, train, models, training data.

One class serves both modes (``PINN`` and ``Supervised``) and both backends: the mode comes from
the reconstructor, the backend and device from ``[PtychoPINN]`` settings at each call. Training and
inference are ``workflow.TrainingRun`` and ``workflow.reconstruct``; translation between Ptychodus
and the data contract is ``ptychodus_io``; the files ``train`` reads and writes are in
``training_io.py``; settings in ``settings.py``.

Progress: Ptychodus asks :meth:`get_progress_goal` before it starts a run and after every yield.
A reconstruction's goal is its number of groups (one per scan point unless ``NumGroups`` limits
it), a training's goal its number of epochs; each is set when the run starts, before its first
yield, and kept until the next run (so the call before a run reports the previous run's goal, and
0 before any run, which Ptychodus shows as a busy bar).

Checkpoints: a training writes ``model.checkpoint.zip`` into its output directory after every
epoch and removes it once ``model.zip`` is written; a training into a directory that holds one
continues it (``core/checkpoint.py``), so a killed ``ptychodus -b train`` is resumed by running it
again.

Warm engine: loading a model builds its engine (importing the framework and the network) for the
current backend settings, and reconstructions reuse it while the model and the execution settings
stay the same. Ptychodus times only ``reconstruct``, and a GUI user reconstructing several scans
pays the start-up once. A new model, a training run or other execution settings release it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from ptychodus.api.product import LossValue
from ptychodus.api.reconstruct import (
    ReconstructInput,
    ReconstructOutput,
    TrainableReconstructor,
    TrainOutput,
)

from .. import __version__
from ..config import ExecutionConfig, Mode, PluginConfig
from ..core.archive import ARCHIVE_EXTENSION, Archive, load_archive, save_archive
from ..core.checkpoint import checkpoint_path, discard_checkpoint
from ..core.contract import DiffractionQuantity, write_training_data
from ..core.protocol import Engine, EpochReport
from ..errors import PtychoPINNError, ReconstructionError
from ..ptychodus_io.inputs import training_data_from_reconstruct_input
from ..ptychodus_io.products import product_with_object, product_with_used_probe
from ..workflow import TrainingRun, build_engine, reconstruct
from . import training_io
from .settings import PtychoPINNSettings, build_config

logger = logging.getLogger(__name__)

__all__ = ['PtychoPINNReconstructor']

MODEL_FILE_FILTER = 'PtychoPINN Model Archive (*.zip)'
TRAINING_DATA_FILE_FILTER = 'PtychoPINN Training Data (*.npz)'


class PtychoPINNReconstructor(TrainableReconstructor):
    """A Ptychodus ``TrainableReconstructor`` for one training mode of PtychoPINN."""

    def __init__(self, mode: Mode, settings: PtychoPINNSettings) -> None:
        self._mode = Mode(mode)
        self._settings = settings
        self._archive: Archive | None = None
        self._archive_source = ''
        self._progress_goal = 0
        self._engine: Engine | None = None
        self._engine_key: tuple[int, str] | None = None

    @property
    def name(self) -> str:
        return 'PINN' if self._mode is Mode.PINN else 'Supervised'

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def archive(self) -> Archive | None:
        """The loaded model (None when no model is loaded)."""
        return self._archive

    def get_progress_goal(self) -> int:
        return self._progress_goal

    # --- models -----------------------------------------------------------------------------

    def is_model_loaded(self) -> bool:
        return self._archive is not None

    def get_model_file_filter(self) -> str:
        return MODEL_FILE_FILTER

    def get_model_file_extension(self) -> str:
        return ARCHIVE_EXTENSION

    def load_model_from_file(self, file_path: Path) -> None:
        archive = load_archive(file_path)  # ArchiveError for corrupt or foreign files
        if archive.config.model.mode is not self._mode:
            logger.warning(
                'model %s was trained in %s mode; the %s reconstructor uses it as is',
                file_path,
                archive.config.model.mode.value,
                self.name,
            )
        self._set_archive(archive, str(file_path))
        try:  # warm up now, so that reconstructing pays no start-up
            self._engine_for(archive, build_config(self._settings, self._mode).execution)
        except PtychoPINNError as exc:  # reconstruct reports it, with the settings then in force
            logger.info('engine not built at model load: %s', exc)

    def save_model(self, file_path: Path) -> None:
        archive = self._require_model()
        file_path = Path(file_path)
        if file_path.suffix == '':
            file_path = file_path.with_suffix(ARCHIVE_EXTENSION)
        save_archive(file_path, archive, overwrite=True)
        logger.info('saved the PtychoPINN model to %s', file_path)

    def _set_archive(self, archive: Archive, source: str) -> None:
        self._release_engine()
        self._archive = archive
        self._archive_source = source
        model = archive.config.model
        logger.info(
            'PtychoPINN model loaded from %s: %s mode, N = %d, gridsize %d, trained by %s',
            source,
            model.mode.value,
            model.pattern_size_px,
            model.gridsize,
            archive.trained_backend or 'an unknown backend',
        )

    def _engine_for(self, archive: Archive, execution: ExecutionConfig) -> Engine:
        """The warm engine for this archive and execution settings (built when they change)."""
        key = (id(archive), execution.model_dump_json())
        if self._engine is None or self._engine_key != key:
            self._release_engine()
            self._engine = build_engine(archive, execution)
            self._engine_key = key
        return self._engine

    def _release_engine(self) -> None:
        if self._engine is not None:
            self._engine.release()
        self._engine = None
        self._engine_key = None

    def _require_model(self) -> Archive:
        if self._archive is None:
            path = self._settings.model_path()
            if path is not None:
                self.load_model_from_file(path)
        if self._archive is None:
            raise ReconstructionError(
                f'no PtychoPINN model is loaded for the {self.name} reconstructor. Train one, '
                'load one (Load Model..., or [PtychoPINNInference] ModelPath), or in batch mode '
                'put it in the input directory as model.zip'
            )
        return self._archive

    # --- reconstruction ---------------------------------------------------------------------

    def reconstruct(self, parameters: ReconstructInput) -> Iterator[ReconstructOutput]:
        loaded = self._require_model()
        settings_config = build_config(self._settings, self._mode)
        data = training_data_from_reconstruct_input(parameters)
        model = loaded.config.model
        self._check_against_model(loaded, data.pattern_size_px, data.num_patterns)
        archive = self._with_inference_neighbors(loaded, settings_config)
        num_groups = data.num_patterns
        if settings_config.inference.num_groups is not None:
            num_groups = min(num_groups, settings_config.inference.num_groups)
        inference = settings_config.inference
        self._progress_goal = num_groups + inference.refine_iterations + inference.fine_tune_epochs
        execution = settings_config.execution
        logger.info(
            'PtychoPINN %s (ptychopinn-plugin %s): reconstructing %d scan points (%d groups of '
            '%d) with the %s backend on device %s; model trained by %s',
            self.name,
            __version__,
            data.num_patterns,
            num_groups,
            model.num_channels,
            execution.backend.value,
            execution.device.value,
            archive.trained_backend or 'an unknown backend',
        )
        object_ = parameters.product.object_
        for step in reconstruct(
            archive,
            data,
            execution=execution,
            inference=settings_config.inference,
            object_shape=(object_.height_px, object_.width_px),
            fill=data.object_guess,
            engine=self._engine_for(loaded, execution),
        ):
            if step.object_ is None:
                # batch steps and fine-tuning epochs (logged): Ptychodus writes a product file
                # per output, so only partial objects are yielded
                continue
            logger.info(
                'reconstructed %d of %d groups, %d of %d refinement iterations',
                step.num_done,
                step.num_groups,
                step.num_refined,
                step.num_refine_iterations,
            )
            product = product_with_object(parameters.product, step.object_)
            if step.probe_choice is not None:
                # the probe the object belongs to (for a hand-off to pty-chi), and why
                choice = step.probe_choice
                product = product_with_used_probe(
                    product, choice.probe, choice.note(), replaces=choice.source != 'scan'
                )
            yield ReconstructOutput(product=product, progress=step.num_steps_done)

    def _check_against_model(self, archive: Archive, pattern_size_px: int, num_points: int) -> None:
        model = archive.config.model
        if pattern_size_px != model.pattern_size_px:
            raise ReconstructionError(
                f'the diffraction patterns are {pattern_size_px} x {pattern_size_px} px but the '
                f'loaded model ({self._archive_source}) was trained on {model.pattern_size_px} x '
                f'{model.pattern_size_px} px patterns; set the diffraction crop to '
                f'{model.pattern_size_px} px or load a model trained for {pattern_size_px} px'
            )
        if num_points < model.num_channels:
            raise ReconstructionError(
                f'the model has gridsize {model.gridsize} (groups of {model.num_channels} scan '
                f'points) but the scan has only {num_points} points'
            )
        configured = self._settings.model_settings.gridsize.get_value()
        if configured != model.gridsize:
            logger.warning(
                '[PtychoPINNModel] GridSize is %d but the loaded model was trained with gridsize '
                '%d; reconstructing with the model gridsize %d',
                configured,
                model.gridsize,
                model.gridsize,
            )

    @staticmethod
    def _with_inference_neighbors(archive: Archive, config: PluginConfig) -> Archive:
        """The archive with the settings' ``NumNearestNeighbors`` (it shapes inference groups)."""
        model = archive.config.model
        wanted = config.model.num_neighbors
        if model.gridsize == 1 or wanted == model.num_neighbors or wanted < model.num_channels - 1:
            return archive
        new_config = archive.config.model_copy(
            update={'model': model.model_copy(update={'num_neighbors': wanted})}
        )
        return Archive(
            config=new_config,
            weights=archive.weights,
            normalization=archive.normalization,
            training_summary=archive.training_summary,
            trained_backend=archive.trained_backend,
            framework_versions=archive.framework_versions,
        )

    # --- training ---------------------------------------------------------------------------

    def get_training_data_file_filter(self) -> str:
        return TRAINING_DATA_FILE_FILTER

    def export_training_data(self, file_path: Path, parameters: ReconstructInput) -> None:
        file_path = Path(file_path)
        if file_path.suffix == '':
            file_path = file_path.with_suffix('.npz')
        data = training_data_from_reconstruct_input(parameters)
        write_training_data(file_path, data, overwrite=True)
        logger.info('exported %d patterns to %s', data.num_patterns, file_path)

    def train(self, input_path: Path, output_path: Path) -> Iterator[TrainOutput]:
        training_io.check_output_directory(Path(output_path))
        self._release_engine()  # free the inference network's memory for training
        datasets = training_io.read_training_inputs(Path(input_path))
        dose_known = all(d.metadata.source_quantity is DiffractionQuantity.COUNTS for d in datasets)
        pattern_size_px = datasets[0].pattern_size_px
        config = build_config(
            self._settings, self._mode, pattern_size_px=pattern_size_px, dose_known=dose_known
        )
        training = config.training
        if self._mode is Mode.SUPERVISED:
            datasets = training_io.with_ground_truth(datasets, 'Supervised training')
        elif training.realspace_mae_weight > 0 or training.realspace_weight > 0:
            datasets = training_io.with_ground_truth(datasets, 'the real-space loss terms')
        self._progress_goal = training.num_epochs
        logger.info(
            'PtychoPINN %s (ptychopinn-plugin %s): training on %d patterns of %d px from %s with '
            'the %s backend on device %s for %d epochs',
            self.name,
            __version__,
            sum(d.num_patterns for d in datasets),
            pattern_size_px,
            input_path,
            config.execution.backend.value,
            config.execution.device.value,
            training.num_epochs,
        )
        checkpoint = checkpoint_path(Path(output_path) / training_io.MODEL_FILE)
        run = TrainingRun(datasets, config, checkpoint=checkpoint)
        try:
            if checkpoint.is_file():  # an interrupted training into this directory
                run.resume_from(load_archive(checkpoint), checkpoint)
                if run.history:
                    yield _train_output(run.history, len(run.history))
            for report in run.epochs():
                _log_epoch(report)
                if report.stopped_early:
                    self._progress_goal = report.epoch
                yield _train_output(run.history, report.epoch)
        except GeneratorExit:  # the consumer stopped: keep what was trained, write nothing
            if run.history:
                self._set_archive(run.archive(), f'training stopped in {output_path}')
                logger.warning(
                    'training stopped after %d of %d epochs; that model is loaded but was not '
                    'written to %s (use Save Model to keep it); training into %s again '
                    'continues from its checkpoint %s',
                    len(run.history),
                    training.num_epochs,
                    output_path,
                    output_path,
                    checkpoint.name,
                )
            raise
        else:
            self._set_archive(run.archive(), f'training in {output_path}')
        finally:
            run.release()
        self._write_outputs(Path(output_path), run.history)
        discard_checkpoint(checkpoint)

    def _write_outputs(self, output_path: Path, history: list[EpochReport]) -> None:
        archive = self._require_model()
        output_path.mkdir(parents=True, exist_ok=True)
        model_path = save_archive(output_path / training_io.MODEL_FILE, archive, overwrite=True)
        csv_path = training_io.write_loss_csv(output_path / training_io.LOSS_CSV, history)
        png_path = training_io.write_loss_png(
            output_path / training_io.LOSS_PNG, history, f'PtychoPINN {self.name}'
        )
        logger.info(
            'wrote %s, %s%s',
            model_path,
            csv_path.name,
            f' and {png_path.name}' if png_path else '',
        )


def _log_epoch(report: EpochReport) -> None:
    validation = (
        '' if report.validation_loss is None else f', validation {report.validation_loss:.6g}'
    )
    logger.info(
        'epoch %d/%d: training loss %.6g%s, learning rate %.3g, %.2f s',
        report.epoch,
        report.num_epochs,
        report.training_loss,
        validation,
        report.learning_rate,
        report.seconds,
    )


def _train_output(history: list[EpochReport], progress: int) -> TrainOutput:
    return TrainOutput(
        training_loss=[LossValue(r.epoch, float(r.training_loss)) for r in history],
        validation_loss=[
            LossValue(r.epoch, float(r.validation_loss))
            for r in history
            if r.validation_loss is not None
        ],
        progress=progress,
    )
