"""Training with Lightning: data loaders, the LightningModule and the per-epoch hand-off.

:func:`fit_network` (the entry point ``engine.py`` calls, as in ``tensorflow_engine``) checks the
arrays, sets which physics parameters train, builds a :class:`PtychoPINNModule` around the network
and a ``Trainer`` (:func:`build_trainer`), and runs ``Trainer.fit`` through :func:`iterate_epochs`,
which turns the per-epoch :class:`EpochReporter` callback into an iterator of ``EpochReport`` (the
training runs in a worker thread that waits at the end of every epoch until the consumer asks for
the next one).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch.utils.data import DataLoader, Dataset, Sampler

from ...config import ExecutionConfig, ModelConfig, TrainingConfig
from ...core import physics
from ...core.losses import LossTerm, loss_terms, weighted_sum
from ...core.protocol import (
    EpochReport,
    OptimizerState,
    ResumePoint,
    TrainingArrays,
    check_training_arrays,
)
from ...core.schedule import ADAM_BETAS, ADAM_EPSILON, EpochMonitor, epoch_order, monitored_loss
from ...core.weights import trainable_physics
from .losses import pinn_loss, realspace_mae, realspace_mse
from .network import PtychoPINNNetwork
from .weights import canonical_parameters, get_optimizer_state, set_optimizer_state

__all__ = [
    'EpochOrderSampler',
    'EpochReporter',
    'GroupDataset',
    'PtychoPINNModule',
    'build_trainer',
    'fit_network',
    'iterate_epochs',
    'make_dataloaders',
]


def _ignore_known_warnings() -> None:
    """Filter Lightning warnings that do not apply here (re-adding a filter does not duplicate it).

    Lightning's advice for in-memory tensors does not apply (no decoding work to parallelise); a
    model without validation groups legitimately has a validation_step; Lightning 2.6 still uses
    torch's deprecated pytree ``LeafSpec`` internally; under DDP the logged epoch values are
    already reduced across ranks (``strategy.reduce``), so ``sync_dist`` would reduce them twice.
    """
    warnings.filterwarnings('ignore', r'.*does not have many workers', PossibleUserWarning)
    warnings.filterwarnings('ignore', r'.*no `val_dataloader`', PossibleUserWarning)
    warnings.filterwarnings('ignore', r'.*isinstance\(treespec, LeafSpec\)', FutureWarning)
    warnings.filterwarnings('ignore', r'.*sync_dist=True', PossibleUserWarning)


_LIGHTNING_CHATTER = (
    'lightning.pytorch.utilities.rank_zero',
    'lightning.pytorch.accelerators.cuda',
)


class GroupDataset(Dataset):
    """Groups held as tensors in memory; a batch is gathered with one index per tensor."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return int(next(iter(self.tensors.values())).shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: value[index] for key, value in self.tensors.items()}

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        rows = torch.as_tensor(indices, dtype=torch.long)
        return {key: value[rows] for key, value in self.tensors.items()}


def _keep_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


def _group_tensors(arrays: TrainingArrays, indices: np.ndarray, truth: bool) -> dict:
    tensors = {
        'inputs': torch.from_numpy(np.ascontiguousarray(arrays.inputs[indices], np.float32)),
        'counts': torch.from_numpy(np.ascontiguousarray(arrays.count_targets[indices], np.float32)),
        'offsets': torch.from_numpy(np.ascontiguousarray(arrays.offsets_px[indices], np.float32)),
    }
    if truth and arrays.truth_patches is not None:
        tensors['truth'] = torch.from_numpy(
            np.ascontiguousarray(arrays.truth_patches[indices], np.complex64)
        )
    return tensors


class EpochOrderSampler(Sampler[int]):
    """Visits the training groups in ``core.schedule.epoch_order``, the TensorFlow engine's order.

    Each new iteration (one per epoch) advances the epoch; under DDP Lightning wraps the sampler
    and splits each epoch's order between the processes.
    """

    def __init__(self, num_groups: int, seed: int, epochs_done: int = 0) -> None:
        self.num_groups = num_groups
        self.seed = seed
        self.epoch = epochs_done

    def __len__(self) -> int:
        return self.num_groups

    def __iter__(self) -> Iterator[int]:
        self.epoch += 1
        return iter(epoch_order(self.num_groups, self.seed, self.epoch).tolist())


def make_dataloaders(
    arrays: TrainingArrays,
    training: TrainingConfig,
    *,
    use_truth: bool,
    pin_memory: bool,
    epochs_done: int = 0,
) -> tuple[DataLoader, DataLoader | None]:
    """Seeded shuffled training loader (its first epoch ``epochs_done + 1``) and sequential
    validation loader (None without groups)."""
    train = DataLoader(
        GroupDataset(_group_tensors(arrays, arrays.train_indices, use_truth)),
        batch_size=training.batch_size,
        sampler=EpochOrderSampler(arrays.train_indices.size, training.seed, epochs_done),
        collate_fn=_keep_batch,
        num_workers=0,
        pin_memory=pin_memory,
    )
    if arrays.validation_indices.size == 0:
        return train, None
    validation = DataLoader(
        GroupDataset(_group_tensors(arrays, arrays.validation_indices, use_truth)),
        batch_size=training.batch_size,
        shuffle=False,
        collate_fn=_keep_batch,
        num_workers=0,
        pin_memory=pin_memory,
    )
    return train, validation


class PtychoPINNModule(pl.LightningModule):
    """Loss, optimiser and schedule around a :class:`PtychoPINNNetwork`.

    The loss adds up the terms of ``core.losses.loss_terms`` (PINN: ``pinn_loss`` through the
    forward model, plus the real-space terms of the generator's own patches when ground truth is
    present; Supervised: ``realspace_mae`` only). Epoch losses are means over groups (batch means
    weighted by batch size), reduced over processes.
    """

    def __init__(
        self,
        network: PtychoPINNNetwork,
        model: ModelConfig,
        training: TrainingConfig,
        *,
        canvas_px: int,
        channels_last: bool,
        resume: ResumePoint | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.model_config = model
        self.training_config = training
        self.canvas_px = canvas_px
        self.channels_last = channels_last
        self.resume = resume
        self.optimizer: torch.optim.Optimizer | None = None
        self._sums: dict[str, list[torch.Tensor]] = {}

    def configure_optimizers(self):
        training = self.training_config
        parameters = [p for p in self.network.parameters() if p.requires_grad]
        # the learning rate follows core.schedule.EpochMonitor, applied by EpochReporter between
        # epochs, so both engines share one schedule
        learning_rate = training.learning_rate
        if self.resume is not None:
            learning_rate = EpochMonitor.replayed(
                training, self.resume.monitored_losses
            ).learning_rate
        self.optimizer = torch.optim.Adam(
            parameters, lr=learning_rate, betas=ADAM_BETAS, eps=ADAM_EPSILON
        )
        if self.resume is not None:
            set_optimizer_state(self.optimizer, self.network, self.resume.optimizer)
        return self.optimizer

    def optimizer_state(self) -> OptimizerState:
        """Adam's state now (after the epoch last reported, while the training waits)."""
        if self.optimizer is None:
            raise RuntimeError('the optimiser is built when training starts')
        return get_optimizer_state(self.optimizer, self.network)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = batch['inputs']
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        amplitude, phase, patches = self.network(inputs, batch['offsets'], canvas_px=self.canvas_px)
        training = self.training_config
        parameters = self.network.physics
        support = self.network.forward_model.support

        def value_of(term: LossTerm) -> torch.Tensor:
            if term is LossTerm.DIFFRACTION:
                return pinn_loss(
                    self.network.forward_model.farfield_intensity(patches, parameters),
                    parameters.log_intensity_scale,
                    batch['counts'],
                    nll_weight=training.nll_weight,
                    mae_weight=training.mae_weight,
                )
            if term is LossTerm.REALSPACE_MAE:
                return realspace_mae(amplitude, phase, batch['truth'], support)
            generated = torch.complex(amplitude * torch.cos(phase), amplitude * torch.sin(phase))
            return realspace_mse(generated, batch['truth'], support)

        terms = loss_terms(self.model_config, training, uses_truth='truth' in batch)
        with torch.autocast(inputs.device.type, enabled=False):
            return weighted_sum(terms, value_of)

    def _accumulate(self, key: str, loss: torch.Tensor, size: int) -> None:
        total = self._sums.setdefault(key, [torch.zeros((), device=loss.device)] * 2)
        total[0] = total[0] + loss.detach().float() * size
        total[1] = total[1] + size

    def epoch_loss(self, key: str) -> float | None:
        """Mean loss of the groups seen this epoch (``'train'`` or ``'val'``), None if none."""
        if key not in self._sums:
            return None
        total = torch.stack(self._sums[key])
        total = self.trainer.strategy.reduce(total, reduce_op='sum')
        return float(total[0] / total[1])

    def training_step(
        self,
        batch: dict[str, torch.Tensor],
        batch_idx: int,  # noqa: ARG002  # Lightning's hook
    ) -> torch.Tensor:
        loss = self.compute_loss(batch)
        self._accumulate('train', loss, batch['inputs'].shape[0])
        return loss

    def validation_step(
        self,
        batch: dict[str, torch.Tensor],
        batch_idx: int,  # noqa: ARG002  # Lightning's hook
    ) -> None:
        self._accumulate('val', self.compute_loss(batch), batch['inputs'].shape[0])

    def on_train_epoch_start(self) -> None:
        self._sums.pop('train', None)

    def on_validation_epoch_start(self) -> None:
        self._sums.pop('val', None)

    def on_validation_epoch_end(self) -> None:
        value = self.epoch_loss('val')
        if value is not None:
            self.log('val_loss', value)

    def on_train_epoch_end(self) -> None:
        self.log('train_loss', self.epoch_loss('train'))


class EpochReporter(pl.Callback):
    """Builds the ``EpochReport`` of each epoch, applies early stopping and hands the report on.

    ``on_report`` returns False when the consumer wants no more epochs; training then stops after
    this epoch (its weights are kept).
    """

    def __init__(
        self,
        training: TrainingConfig,
        on_report: Callable[[EpochReport], bool],
        resume: ResumePoint | None = None,
    ) -> None:
        self.num_epochs = training.num_epochs
        self.epochs_done = resume.epochs_completed if resume is not None else 0
        self.monitor = EpochMonitor.replayed(training, resume.monitored_losses if resume else ())
        self.on_report = on_report
        self.started = 0.0

    def on_train_epoch_start(
        self,
        trainer: pl.Trainer,  # noqa: ARG002  # Lightning's hook signature
        pl_module: pl.LightningModule,  # noqa: ARG002
    ) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        training_loss = pl_module.epoch_loss('train')
        validation_loss = pl_module.epoch_loss('val')
        seconds = time.perf_counter() - self.started
        learning_rate = float(trainer.optimizers[0].param_groups[0]['lr'])
        epoch = self.epochs_done + trainer.current_epoch + 1
        stop_early = self._stop_early(monitored_loss(training_loss, validation_loss))
        stop_early = stop_early and epoch < self.num_epochs
        stop_early = trainer.strategy.reduce_boolean_decision(stop_early, all=False)
        for optimizer in trainer.optimizers:  # the schedule's rate for the next epoch
            for group in optimizer.param_groups:
                group['lr'] = self.monitor.learning_rate
        parameters = pl_module.network.physics
        report = EpochReport(
            epoch=epoch,
            num_epochs=self.num_epochs,
            training_loss=float(training_loss),
            validation_loss=validation_loss,
            learning_rate=learning_rate,
            seconds=seconds,
            intensity_scale=float(parameters.intensity_scale().detach()),
            stopped_early=stop_early,
        )
        if stop_early:
            trainer.should_stop = True
        if not self.on_report(report):
            trainer.should_stop = True

    def _stop_early(self, loss: float) -> bool:
        """Record the epoch's monitored loss with the schedule; True when training should stop."""
        return self.monitor.update(float(loss))


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence Lightning's informational messages (device summary, "max_epochs reached")."""
    loggers = [logging.getLogger(name) for name in _LIGHTNING_CHATTER]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(max(log.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)


def build_trainer(
    execution: ExecutionConfig,
    training: TrainingConfig,
    *,
    accelerator: str,
    callbacks: list[pl.Callback],
    epochs_done: int = 0,
) -> pl.Trainer:
    """A Trainer that writes nothing (no logger, checkpoints, progress bar or model summary) and
    runs the epochs after ``epochs_done``."""
    _ignore_known_warnings()
    with _quiet_lightning():
        return pl.Trainer(
            accelerator=accelerator,
            devices=execution.devices,
            num_nodes=execution.num_nodes,
            strategy=execution.strategy,
            precision=execution.precision.value,
            max_epochs=training.num_epochs - epochs_done,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            callbacks=callbacks,
        )


def iterate_epochs(train: Callable[[Callable[[EpochReport], bool]], None]) -> Iterator[EpochReport]:
    """Run ``train(on_report)`` in a worker thread and yield its reports one epoch at a time.

    ``on_report`` (called by the worker) blocks until the consumer asks for the next report; it
    returns False when the consumer stopped iterating, so the worker finishes after that epoch.
    Closing the iterator waits for the worker; an exception in the worker is raised here.
    """
    events: queue.Queue[tuple[str, object]] = queue.Queue()
    replies: queue.Queue[bool] = queue.Queue()

    def on_report(report: EpochReport) -> bool:
        events.put(('report', report))
        return replies.get()

    def work() -> None:
        try:
            with _quiet_lightning():
                train(on_report)
        except BaseException as exc:  # handed to the consumer thread, re-raised there
            events.put(('error', exc))
        else:
            events.put(('done', None))

    worker = threading.Thread(target=work, name='ptychopinn-pytorch-fit', daemon=True)
    worker.start()
    finished = False
    try:
        while True:
            kind, payload = events.get()
            if kind == 'report':
                yield payload  # type: ignore[misc]
                replies.put(True)
                continue
            finished = True
            if kind == 'error':
                raise payload  # type: ignore[misc]
            return
    finally:
        while not finished:  # the consumer stopped early: let the worker finish this epoch
            replies.put(False)
            kind, payload = events.get()
            finished = kind != 'report'
            if kind == 'error':
                worker.join()
                raise payload  # type: ignore[misc]
        worker.join()


def fit_network(
    network: PtychoPINNNetwork,
    arrays: TrainingArrays,
    training: TrainingConfig,
    *,
    execution: ExecutionConfig,
    device: torch.device,
    channels_last: bool,
    resume: ResumePoint | None = None,
) -> tuple[Iterator[EpochReport], Callable[[], OptimizerState]]:
    """Train ``network`` in place, one epoch per step of the returned iterator.

    The arrays are checked and the physics parameters set trainable or not now (errors surface
    here, not at the first epoch); the epochs run as the caller iterates. With ``resume`` the
    optimiser's state is restored and training continues at the epoch after
    ``resume.epochs_completed``.

    Parameters
    ----------
    network : the network, on ``device``.
    arrays : grouped, normalised training arrays (``core.dataset.prepare_training``).
    training : epochs, batch size, optimiser schedule, loss weights, trainable physics.
    execution : devices, nodes, strategy and precision of the Lightning Trainer.
    device : the engine's device; the network is back on it after training.
    channels_last : feed the generator channels-last tensors.
    resume : where an interrupted training continues (its weights already in ``network``).

    Returns
    -------
    Iterator of EpochReport
        One after each epoch; the network holds that epoch's weights while the caller looks at
        it, and keeps them when the caller stops iterating.
    Callable
        The optimiser's state (``OptimizerState``) after the epoch last reported.
    """
    model = network.config
    use_truth = check_training_arrays(arrays, model, training)
    parameters = canonical_parameters(network)
    for name, trainable in trainable_physics(model, training).items():
        parameters[name].requires_grad_(trainable)
    epochs_done = resume.epochs_completed if resume is not None else 0
    train_loader, validation_loader = make_dataloaders(
        arrays,
        training,
        use_truth=use_truth,
        pin_memory=device.type == 'cuda',
        epochs_done=epochs_done,
    )
    module = PtychoPINNModule(
        network,
        model,
        training,
        canvas_px=physics.padded_canvas_size_px(model.pattern_size_px, arrays.offsets_px),
        channels_last=channels_last,
        resume=resume,
    )

    def train(on_report: Callable[[EpochReport], bool]) -> None:
        if epochs_done >= training.num_epochs:
            return  # nothing left to train
        torch.manual_seed(training.seed)
        trainer = build_trainer(
            execution,
            training,
            accelerator=device.type,
            callbacks=[EpochReporter(training, on_report, resume)],
            epochs_done=epochs_done,
        )
        trainer.fit(module, train_loader, validation_loader)

    return _epochs(network, device, train), module.optimizer_state


def _epochs(
    network: PtychoPINNNetwork,
    device: torch.device,
    train: Callable[[Callable[[EpochReport], bool]], None],
) -> Iterator[EpochReport]:
    try:
        yield from iterate_epochs(train)
    finally:
        network.to(device)  # Lightning's teardown leaves the module on the CPU
        network.train(False)
