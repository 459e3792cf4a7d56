"""Train and reconstruct with either engine: the steps the Ptychodus plugin and the CLI share.

``TrainingRun`` prepares the data (``core.dataset``), builds the selected engine from seeded
canonical weights, trains it epoch by epoch and turns the result into an :class:`Archive`.
``reconstruct`` builds an engine from an archive (trained by either backend) and streams a scan
through it (``inference.py``). Neither function imports a framework until an engine is built.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import ExecutionConfig, InferenceConfig, PluginConfig, ProbeRefinement, TrainingConfig
from .core.archive import Archive, TrainingState, save_archive
from .core.checkpoint import fingerprint, history_of, resume_point
from .core.contract import TrainingData
from .core.dataset import PreparedTraining, prepare_training
from .core.protocol import Engine, EpochReport, ResumePoint
from .core.weights import (
    LOG_INTENSITY_SCALE,
    PHYSICS_WEIGHTS,
    PROBE_IMAG,
    PROBE_REAL,
    initial_weights,
)
from .engines import get_engine, solver_device
from .errors import (
    ConfigurationError,
    DataContractError,
    DeviceOutOfMemoryError,
    is_out_of_memory,
)
from .inference import InferenceProgress, check_group_extent, reconstruct_object
from .solver.consistency import WARN_NOISE_RATIO, DataConsistency, preflight_consistency
from .solver.probe import (
    PROBE_REFINEMENT_PATTERNS,
    ProbeChoice,
    ProbeRefinementResult,
    choose_probe,
    refine_probe,
)

logger = logging.getLogger(__name__)

__all__ = [
    'FineTuning',
    'TrainingRun',
    'build_engine',
    'framework_versions',
    'model_probe',
    'probe_was_refined',
    'reconstruct',
    'reconstruction_probe',
]

_FRAMEWORK_PACKAGES = (
    'ptychodus',
    'numpy',
    'torch',
    'lightning',
    'tensorflow',
    'tensorflow-cpu',
    'keras',
)


def framework_versions() -> dict[str, str]:
    """Versions of the packages that shape a model's numerics (recorded in archives)."""
    versions = {'ptychopinn-plugin': __version__, 'python': platform.python_version()}
    for name in _FRAMEWORK_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def build_engine(archive: Archive, execution: ExecutionConfig) -> Engine:
    """An engine of ``execution.backend`` holding the archive's weights (any training backend)."""
    factory = get_engine(execution.backend)
    return factory(archive.config.model, execution, archive.weights)


class TrainingRun:
    """One training: iterate :meth:`epochs`, then take :meth:`archive` (also after stopping early).

    Parameters
    ----------
    datasets : training scans (their probe, from the first scan, becomes the model's probe,
        after the probe refinement when ``config.training.probe_refinement`` asks for one).
    config : model, training and execution settings.
    preflight : run the pre-training data check (and so the automatic probe refinement).
    checkpoint : write a checkpoint here after every epoch (``core/checkpoint.py``), replacing
        the previous one atomically; :meth:`resume_from` continues from one.
    """

    def __init__(
        self,
        datasets: Sequence[TrainingData],
        config: PluginConfig,
        *,
        preflight: bool = True,
        checkpoint: Path | None = None,
    ) -> None:
        self.config = config
        self.checkpoint = checkpoint
        self._datasets = list(datasets)
        self._fingerprint: dict[str, Any] | None = None
        self._resume: ResumePoint | None = None
        self.resumed_from: dict[str, Any] | None = None
        # the data are checked first (a stray position is refused before any memory is spent)
        self.prepared: PreparedTraining = prepare_training(datasets, config.model, config.training)
        for data, groups in zip(datasets, self.prepared.groups, strict=True):
            check_group_extent(groups, config.model.pattern_size_px, data.metadata.source)
        refines = config.training.probe_refinement is not ProbeRefinement.OFF
        device = solver_device(config.execution)  # the engine's, before it is built
        self.preflight = [
            _preflight(data, refines=refines and index == 0, device=device) if preflight else None
            for index, data in enumerate(datasets)
        ]
        self.probe_refinement = _probe_refinement(
            datasets[0], self.preflight[0], config.training, device
        )
        if self.probe_refinement is not None and self.probe_refinement.adopted:
            refined = self.probe_refinement.result.probe
            datasets = [replace(data, probe=refined) for data in datasets]
            self.prepared = prepare_training(datasets, config.model, config.training)
        self.num_patterns = sum(d.num_patterns for d in datasets)
        weights = initial_weights(
            config.model,
            self.prepared.normalized_probe,
            math.log(self.prepared.normalization.initial_intensity_scale),
            config.training.seed,
        )
        self.engine = get_engine(config.execution.backend)(config.model, config.execution, weights)
        self.history: list[EpochReport] = []
        self._seconds = 0.0

    def fingerprint(self) -> dict[str, Any]:
        """What this run trains on (``core.checkpoint.fingerprint``), computed once."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self._datasets, self.config)
        return self._fingerprint

    def resume_from(self, checkpoint: Archive, path: Path) -> None:
        """Continue the training of ``checkpoint`` (read from ``path``): its weights, history and
        optimiser state, after checking that it trained on these data with these settings.

        Raises
        ------
        ConfigurationError
            When the checkpoint was trained on other data or with other settings, or has more
            epochs than this run asks for.
        """
        point = resume_point(checkpoint, self.fingerprint(), path, self.config.training.num_epochs)
        self.engine.set_weights(checkpoint.weights)
        self.history = history_of(checkpoint)
        self._seconds = float(checkpoint.training_summary.get('seconds') or 0.0)
        finished = bool(self.history) and self.history[-1].stopped_early
        self._resume = None if finished else point
        self.resumed_from = {'path': str(path), 'epochs_completed': point.epochs_completed}
        logger.info(
            'resuming the training of %s after epoch %d of %d%s',
            path,
            point.epochs_completed,
            self.config.training.num_epochs,
            ' (it had stopped early: nothing left to train)' if finished else '',
        )

    @property
    def finished(self) -> bool:
        """Whether no epoch is left (all ran, or the schedule stopped early)."""
        last = self.history[-1] if self.history else None
        return last is not None and (
            last.stopped_early or last.epoch >= self.config.training.num_epochs
        )

    def start_from(self, archive: Archive) -> None:
        """Load the network weights of ``archive``, keeping this run's physics (its probe and
        intensity scale, from its own data): fine-tuning."""
        weights = self.engine.get_weights()
        weights.update({k: v for k, v in archive.weights.items() if k not in PHYSICS_WEIGHTS})
        self.engine.set_weights(weights)

    def epochs(self) -> Iterator[EpochReport]:
        """Train, yielding a report per finished epoch; stop iterating to cancel."""
        if self.finished:
            return
        start = time.perf_counter()
        try:
            resume = self._resume
            for report in self.engine.fit(self.prepared.arrays, self.config.training, resume):
                self.history.append(report)
                if self.checkpoint is not None:
                    self._write_checkpoint(time.perf_counter() - start)
                yield report
        except Exception as exc:
            if not is_out_of_memory(exc) or isinstance(exc, DeviceOutOfMemoryError):
                raise
            batch_size = self.config.training.batch_size
            raise DeviceOutOfMemoryError(
                f'the {self.config.execution.device.value} device ran out of memory training '
                f'with batches of {batch_size} groups ({type(exc).__name__}: {exc}); lower '
                f'[PtychoPINNTraining] BatchSize (try {max(1, batch_size // 2)}) or select '
                '[PtychoPINN] Precision = bf16-mixed'
            ) from exc
        finally:
            self._seconds += time.perf_counter() - start

    def _write_checkpoint(self, seconds_now: float) -> None:
        assert self.checkpoint is not None
        state = TrainingState(
            history=[asdict(report) for report in self.history],
            optimizer=self.engine.optimizer_state(),
            fingerprint=self.fingerprint(),
        )
        archive = self.archive(seconds=self._seconds + seconds_now)
        save_archive(
            self.checkpoint,
            replace(archive, training_state=state),
            overwrite=True,
            compress=False,
        )

    def archive(self, *, seconds: float | None = None) -> Archive:
        """The model as trained so far (weights of the last finished epoch)."""
        weights = self.engine.get_weights()
        last = self.history[-1] if self.history else None
        summary = {
            'epochs_completed': len(self.history),
            'epochs_requested': self.config.training.num_epochs,
            'num_patterns': self.num_patterns,
            'training_loss': [r.training_loss for r in self.history],
            'validation_loss': [r.validation_loss for r in self.history],
            'final_learning_rate': last.learning_rate if last else None,
            'seconds': self._seconds if seconds is None else seconds,
            'precision': self.engine.precision.value,
            'resumed_from': self.resumed_from,
            'preflight_consistency': [c.as_dict() if c else None for c in self.preflight],
            'probe_refinement': (
                self.probe_refinement.as_dict() if self.probe_refinement is not None else None
            ),
        }
        normalization = asdict(self.prepared.normalization)
        normalization['final_intensity_scale'] = float(np.exp(weights[LOG_INTENSITY_SCALE]))
        return Archive(
            config=self.config,
            weights=weights,
            normalization=normalization,
            training_summary=summary,
            trained_backend=self.config.execution.backend.value,
            framework_versions=framework_versions(),
        )

    def release(self) -> None:
        self.engine.release()


def _preflight(
    data: TrainingData, *, refines: bool, device: str | None = None
) -> DataConsistency | None:
    """Before training: can the scan's probe explain its patterns (``solver/consistency.py``)?
    Logged, and a warning naming the likely causes when it cannot (a PINN keeps the probe fixed).

    ``refines``: whether the probe refinement follows (``ProbeRefinement`` not ``off``), which the
    warning then says instead of predicting a poor model."""
    try:
        consistency = preflight_consistency(
            data.positions_px, data.diffraction_amplitude, data.probe, device=device
        )
    except DataContractError as exc:
        logger.warning('pre-training data consistency not measured: %s', exc)
        return None
    source = f' of {data.metadata.source}' if data.metadata.source else ''
    logger.info(
        'before training, the probe%s and a flat-start refinement: %s',
        source,
        consistency.summary(),
    )
    warning = consistency.warning()
    if warning:
        logger.warning(
            'before training%s: with its own probe, %s; %s',
            source,
            warning.replace(
                'the reconstruction does not explain',
                'a refinement of a flat object does not explain',
                1,
            ),
            'so the probe is refined first ([PtychoPINNTraining] ProbeRefinement)'
            if refines
            else 'a PINN trained with this probe will not explain them either (set '
            '[PtychoPINNTraining] ProbeRefinement = on to refine it before training)',
        )
    return consistency


@dataclass(frozen=True)
class ProbeRefinementRecord:
    """What training did about the probe: the refinement and whether its probe was adopted."""

    mode: ProbeRefinement
    result: ProbeRefinementResult
    adopted: bool

    def as_dict(self) -> dict[str, object]:
        return {'mode': self.mode.value, 'adopted': self.adopted, **self.result.as_dict()}


def _probe_refinement(
    data: TrainingData,
    preflight: DataConsistency | None,
    training: TrainingConfig,
    device: str | None = None,
) -> ProbeRefinementRecord | None:
    """Refine the first scan's probe when ``training.probe_refinement`` asks (``auto``: when the
    pre-training check warns); logged, and adopted when it explains the data better (``on``:
    always)."""
    mode = training.probe_refinement
    if mode is ProbeRefinement.OFF:
        return None
    if mode is ProbeRefinement.AUTO and (
        preflight is None or preflight.median_noise_ratio <= WARN_NOISE_RATIO
    ):
        return None
    logger.info(
        'refining the probe before training (%s, %d iterations on up to %d central scan points)',
        mode.value,
        training.probe_refinement_iterations,
        PROBE_REFINEMENT_PATTERNS,
    )
    try:
        result = refine_probe(
            data.positions_px,
            data.diffraction_amplitude,
            data.probe,
            iterations=training.probe_refinement_iterations,
            device=device,
        )
    except DataContractError as exc:
        logger.warning('probe refinement not run: %s', exc)
        return None
    adopted = mode is ProbeRefinement.ON or result.improves()
    before = f'{result.before.median_noise_ratio:.2f}'
    logger.log(
        logging.INFO if adopted else logging.WARNING,
        'probe refinement (%.1f s): median misfit %.2f x the Poisson noise with the refined probe '
        '(%s with the probe as given, as many iterations; the patterns centre (%.2f, %.2f) '
        "detector pixels (x, y) from the given probe's far field); %s",
        result.seconds,
        result.after.median_noise_ratio,
        before,
        *result.centre_offset_px,
        'training with the refined probe'
        if adopted
        else 'it does not explain the data better, so training keeps the probe as given',
    )
    return ProbeRefinementRecord(mode, result, adopted)


def model_probe(archive: Archive) -> np.ndarray:
    """The probe inside the model (normalised; the training's refined probe when it refined one)."""
    real = np.asarray(archive.weights[PROBE_REAL], dtype=np.float32)
    imag = np.asarray(archive.weights[PROBE_IMAG], dtype=np.float32)
    return (real + 1j * imag).astype(np.complex64)


def reconstruction_probe(
    archive: Archive, data: TrainingData, inference: InferenceConfig, device: str | None = None
) -> ProbeChoice:
    """The probe that reconstructing ``data`` with ``archive`` refines and measures with
    (``InferenceConfig.reconstruction_probe``, ``solver.probe.choose_probe``); logged.

    The model's probe is the one it was trained with: its training product's, or the plugin's
    refinement of it. A scan of the same session that comes with only the optics' model probe is
    explained far better by it. ``device``: where the checks run (``engines.solver_device``).
    """
    own = model_probe(archive)
    shape = (data.pattern_size_px, data.pattern_size_px)
    choice = choose_probe(
        data.positions_px,
        data.diffraction_amplitude,
        data.probe,
        own if own.shape == shape else None,
        inference.reconstruction_probe,
        refine_iterations=archive.config.training.probe_refinement_iterations,
        device=device,
    )
    logger.info('%s', choice.note())
    return choice


def probe_was_refined(archive: Archive) -> bool:
    """Whether training replaced the scan's probe by its refinement (``ProbeRefinement``)."""
    record = archive.training_summary.get('probe_refinement') if archive.training_summary else None
    return bool(isinstance(record, dict) and record.get('adopted'))


def reconstruct(
    archive: Archive,
    data: TrainingData,
    *,
    execution: ExecutionConfig,
    inference: InferenceConfig,
    object_shape: tuple[int, int],
    fill: np.ndarray | None = None,
    engine: Engine | None = None,
) -> Iterator[InferenceProgress]:
    """Stream ``data`` through a model from ``archive`` on the backend of ``execution``.

    ``engine``: an engine already holding the archive's weights (the caller keeps and releases
    it); without one, an engine is built for this call and released at its end.
    """
    choice = reconstruction_probe(archive, data, inference, solver_device(execution))
    data = replace(data, probe=choice.probe)
    tuning = (
        FineTuning(archive, data, inference.fine_tune_epochs, execution)
        if inference.fine_tune_epochs
        else None
    )
    if tuning is not None:
        engine = tuning.run.engine  # the tuned copy; the caller's engine is left as it is
    owned = engine is None or tuning is not None
    live = build_engine(archive, execution) if engine is None else engine
    try:
        if tuning is not None:
            yield from tuning.progress(data, inference)
        for step in reconstruct_object(
            live,
            data,
            archive.config.model,
            inference,
            object_shape=object_shape,
            fill=fill,
            seed=archive.config.training.seed,
        ):
            if tuning is not None:
                step = replace(
                    step,
                    num_tuned=tuning.epochs,
                    num_tune_epochs=tuning.epochs,
                    tuned_archive=tuning.archive if step.finished else None,
                )
            yield replace(step, probe_choice=choice)
    finally:
        if owned:
            live.release()


class FineTuning:
    """PINN training of a model on the very scan it is about to reconstruct.

    The PINN loss needs no ground truth, so a trained model can adapt to the scan in hand: the
    model's network weights start a training of ``epochs`` epochs on ``data`` (the scan's own
    normalisation and intensity scale, the model's probe and settings, no probe refinement, no
    pre-training check). ``archive`` itself is not changed; :attr:`archive` is the tuned model
    once :meth:`progress` has run.
    """

    def __init__(
        self, archive: Archive, data: TrainingData, epochs: int, execution: ExecutionConfig
    ) -> None:
        from .config import Mode

        if archive.config.model.mode is not Mode.PINN:
            raise ConfigurationError(
                f'[PtychoPINNInference] FineTuneEpochs = {epochs} needs a PINN model: this one '
                'was trained Supervised, whose loss needs a known object; set FineTuneEpochs = 0'
            )
        training = archive.config.training.model_copy(
            update={
                'num_epochs': epochs,
                'probe_refinement': ProbeRefinement.OFF,
                'early_stopping_patience': None,
            }
        )
        config = archive.config.model_copy(update={'training': training, 'execution': execution})
        self.epochs = epochs
        self.run = TrainingRun([data], config, preflight=False)
        self.run.start_from(archive)
        self.archive: Archive | None = None

    def progress(
        self, data: TrainingData, inference: InferenceConfig
    ) -> Iterator[InferenceProgress]:
        """Train, yielding an :class:`InferenceProgress` (no object yet) per finished epoch."""
        num_groups = data.num_patterns
        if inference.num_groups is not None:
            num_groups = min(num_groups, inference.num_groups)
        start = time.perf_counter()
        for report in self.run.epochs():
            logger.info(
                'fine-tuning on the scan: epoch %d of %d, loss %.5g (%.1f s)',
                report.epoch,
                self.epochs,
                report.training_loss,
                time.perf_counter() - start,
            )
            yield InferenceProgress(
                0,
                num_groups,
                None,
                None,
                0,
                inference.refine_iterations,
                num_tuned=len(self.run.history),
                num_tune_epochs=self.epochs,
            )
        self.archive = self.run.archive()
        self.archive.training_summary['fine_tuned_on'] = data.metadata.source or 'the scan'
