"""The training loop of the TensorFlow engine (a compiled step, one epoch per yield).

:func:`fit_network` (the entry point ``engine.py`` calls, as in ``pytorch_engine``) checks the
arrays, sets which physics parameters train and returns the epochs as an iterator.
:func:`per_group_losses` adds up the terms ``core.losses.loss_terms`` names, computed by
``losses.py``: PINN mode minimises the Poisson
negative log-likelihood of the counts (plus the optional amplitude MAE and, with ground truth, the
real-space terms) through the physics chain of ``network.py``; Supervised mode minimises the
real-space amplitude/phase MAE of the raw network patches, no physics. Adam, reduce-on-plateau and
early stopping (``core/schedule.py``, shared with the PyTorch engine) are applied here, epoch by
epoch, so the caller can stop between epochs. Engine plumbing (devices, strategies, weights) is in
``engine.py``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ...config import Mode, Precision, TrainingConfig
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

logger = logging.getLogger(__name__)

__all__ = ['LOSS_SCALE', 'fit_network', 'make_optimizer', 'per_group_losses']

LOSS_SCALE = 16.0
"""Initial dynamic loss scale of float16 mixed precision, below Keras's default 2**15, which the
large gradients of the Poisson likelihood overflow. The scale still adapts (halved on overflow,
doubled after 200 finite steps)."""


def per_group_losses(
    network: PtychoPINNNetwork,
    training: TrainingConfig,
    batch: tuple[tf.Tensor, ...],
    canvas_px: int,
    *,
    uses_truth: bool,
    is_training: bool,
) -> tf.Tensor:
    """The loss of every group of a batch, (B,) float32 (``core/physics.py`` definitions).

    The real-space terms compare the network's own patches (before the overlap canvas) with the
    ground truth over the object support, as in Supervised mode.

    ``batch`` is ``(inputs, count_targets, offsets_px[, truth_patches])`` as in
    :class:`~ptychopinn_plugin.core.protocol.TrainingArrays`, channels first.
    """
    inputs, counts, offsets = batch[:3]
    forward = network.forward_model
    parameters = network.physics
    terms = loss_terms(network.config, training, uses_truth=uses_truth)
    if network.config.mode is Mode.SUPERVISED:  # no physics: the generator alone
        amplitude, phase = network.generate(inputs)
        patches = None
    else:
        amplitude, phase, patches = network(
            inputs, offsets, canvas_px=canvas_px, training=is_training
        )

    def value_of(term: LossTerm) -> tf.Tensor:
        if term is LossTerm.DIFFRACTION:
            return pinn_loss(
                forward.farfield_intensity(patches, parameters),
                parameters.log_intensity_scale.value,
                counts,
                nll_weight=training.nll_weight,
                mae_weight=training.mae_weight,
            )
        if term is LossTerm.REALSPACE_MAE:
            return realspace_mae(amplitude, phase, batch[3], forward.support)
        generated = (amplitude * tf.cos(phase), amplitude * tf.sin(phase))
        return realspace_mse(generated, batch[3], forward.support)

    return weighted_sum(terms, value_of)


@dataclass(frozen=True)
class _Steps:
    train: Callable[..., tf.Tensor]
    evaluate: Callable[..., tf.Tensor]


def _build_steps(
    network: PtychoPINNNetwork,
    training: TrainingConfig,
    optimizer: keras.optimizers.Optimizer,
    variables: list,
    canvas_px: int,
    uses_truth: bool,
    strategy: tf.distribute.Strategy | None,
    jit_compile: bool,
) -> _Steps:
    config = network.config
    shape = (None, config.num_channels, config.pattern_size_px, config.pattern_size_px)
    specs = [
        tf.TensorSpec(shape, tf.float32),
        tf.TensorSpec(shape, tf.float32),
        tf.TensorSpec((*shape[:2], 2), tf.float32),
    ]
    if uses_truth:
        specs.append(tf.TensorSpec(shape, tf.complex64))
    specs.append(tf.TensorSpec(shape[:1], tf.float32))  # group weights: 1, or 0 for padding
    signature = [tuple(specs), tf.TensorSpec((), tf.float32)]

    def losses(batch, is_training):
        """Weighted sum of the group losses of ``batch`` (whose last column is the weights)."""
        per_group = per_group_losses(
            network,
            training,
            batch[:-1],
            canvas_px,
            uses_truth=uses_truth,
            is_training=is_training,
        )
        return tf.reduce_sum(per_group * batch[-1])

    def replica_train(batch, total):
        with tf.GradientTape() as tape:
            loss = losses(batch, True) / total
            scaled = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, variables)
        optimizer.apply(gradients, variables)
        return loss

    def replica_evaluate(batch):
        return losses(batch, False)

    if strategy is None:
        train = tf.function(replica_train, input_signature=signature, jit_compile=jit_compile)
        evaluate = tf.function(
            replica_evaluate, input_signature=signature[:1], jit_compile=jit_compile
        )
        return _Steps(train, evaluate)

    sum_ = tf.distribute.ReduceOp.SUM

    @tf.function
    def distributed_train(batch, total):
        per_replica = strategy.run(replica_train, args=(batch, total))
        return strategy.reduce(sum_, per_replica, axis=None)

    @tf.function
    def distributed_evaluate(batch):
        per_replica = strategy.run(replica_evaluate, args=(batch,))
        return strategy.reduce(sum_, per_replica, axis=None)

    return _Steps(distributed_train, distributed_evaluate)


def _arrays(arrays: TrainingArrays, uses_truth: bool) -> list[np.ndarray]:
    columns = [
        np.asarray(arrays.inputs, np.float32),
        np.asarray(arrays.count_targets, np.float32),
        np.asarray(arrays.offsets_px, np.float32),
    ]
    if uses_truth:
        columns.append(np.asarray(arrays.truth_patches, np.complex64))
    columns.append(np.ones(arrays.num_groups, np.float32))
    return columns


def _batches(
    columns: list[np.ndarray],
    indices: np.ndarray,
    batch_size: int,
    strategy: tf.distribute.Strategy | None,
) -> Iterator[tuple[object, int]]:
    """(batch, number of groups) in the order of ``indices``.

    Under a strategy each batch is padded to a multiple of the replica count with copies of its
    first group at weight 0 (an empty replica batch would break the convolutions) and split into
    equal consecutive slices, one per replica.
    """
    for start in range(0, indices.size, batch_size):
        rows = indices[start : start + batch_size]
        if strategy is None:
            yield tuple(tf.constant(column[rows]) for column in columns), rows.size
            continue
        replicas = strategy.num_replicas_in_sync
        padding = -rows.size % replicas
        padded_rows = np.concatenate([rows, np.repeat(rows[:1], padding)])
        parts = [column[padded_rows] for column in columns]
        parts[-1][rows.size :] = 0.0
        yield _distribute(strategy, parts), rows.size


def _distribute(strategy: tf.distribute.Strategy, parts: list[np.ndarray]) -> object:
    share = parts[0].shape[0] // strategy.num_replicas_in_sync

    def replica_values(context: tf.distribute.experimental.ValueContext) -> tuple:
        first = context.replica_id_in_sync_group * share
        return tuple(tf.constant(part[first : first + share]) for part in parts)

    return strategy.experimental_distribute_values_from_function(replica_values)


def make_optimizer(learning_rate: float, precision: Precision) -> keras.optimizers.Optimizer:
    """Adam as in both engines (``core.schedule``); dynamic loss scaling for float16 mixed."""
    beta_1, beta_2 = ADAM_BETAS
    optimizer = keras.optimizers.Adam(
        learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=ADAM_EPSILON
    )
    if precision is Precision.FP16_MIXED:
        optimizer = keras.optimizers.LossScaleOptimizer(
            optimizer, initial_scale=LOSS_SCALE, dynamic_growth_steps=200
        )
    return optimizer


def fit_network(
    network: PtychoPINNNetwork,
    arrays: TrainingArrays,
    training: TrainingConfig,
    *,
    device: str = '/CPU:0',
    precision: Precision = Precision.FP32,
    strategy: tf.distribute.Strategy | None = None,
    jit_compile: bool = False,
    resume: ResumePoint | None = None,
) -> tuple[Iterator[EpochReport], Callable[[], OptimizerState]]:
    """Train ``network`` in place, one epoch per step of the returned iterator.

    The arrays are checked and the optimiser built now (errors surface here, not at the first
    epoch); the epochs run as the caller iterates. With ``resume`` the optimiser's state is
    restored and training continues at the epoch after ``resume.epochs_completed``.

    Parameters
    ----------
    network : the network (generator, physics parameters and forward model).
    arrays : grouped, normalised training arrays (``core.dataset.prepare_training``).
    training : epochs, batch size, optimiser schedule, loss weights, trainable physics.
    device : TensorFlow device of the single-device steps (``'/GPU:0'``, ``'/CPU:0'``).
    precision : network precision (loss scaling for float16).
    strategy : a ``tf.distribute`` strategy whose scope holds the network, or None (one device).
    jit_compile : compile the steps with XLA.
    resume : where an interrupted training continues (its weights already in ``network``).

    Returns
    -------
    Iterator of EpochReport
        One after each epoch; the network holds that epoch's weights while the caller looks at
        it, and keeps them when the caller stops iterating.
    Callable
        The optimiser's state (``OptimizerState``) after the epoch last reported.
    """
    config = network.config
    uses_truth = check_training_arrays(arrays, config, training)
    variables_by_name = canonical_parameters(network)
    for name, trainable in trainable_physics(config, training).items():
        variables_by_name[name].trainable = trainable
    variables = list(network.trainable_variables)
    canvas_px = network.forward_model.canvas_size_px(arrays.offsets_px)
    with strategy.scope() if strategy is not None else tf.device(device):
        optimizer = make_optimizer(training.learning_rate, precision)
        optimizer.build(variables)
        if resume is not None:
            set_optimizer_state(optimizer, network, resume.optimizer)
    steps = _build_steps(
        network,
        training,
        optimizer,
        variables,
        canvas_px,
        uses_truth,
        strategy,
        jit_compile,
    )
    epochs = _epochs(
        network, steps, optimizer, arrays, training, uses_truth, device, strategy, resume
    )
    return epochs, lambda: get_optimizer_state(optimizer, network)


def _epochs(
    network: PtychoPINNNetwork,
    steps: _Steps,
    optimizer: keras.optimizers.Optimizer,
    arrays: TrainingArrays,
    training: TrainingConfig,
    uses_truth: bool,
    device: str,
    strategy: tf.distribute.Strategy | None,
    resume: ResumePoint | None,
) -> Iterator[EpochReport]:
    tf.random.set_seed(training.seed)
    columns = _arrays(arrays, uses_truth)
    train_indices = np.asarray(arrays.train_indices, np.int64)
    validation_indices = np.asarray(arrays.validation_indices, np.int64)
    done = resume.epochs_completed if resume is not None else 0
    monitor = EpochMonitor.replayed(training, resume.monitored_losses if resume else ())
    for epoch in range(done + 1, training.num_epochs + 1):
        started = time.perf_counter()
        learning_rate = monitor.learning_rate
        with tf.device(device):  # entered per epoch: a device scope must not span a yield
            optimizer.learning_rate.assign(learning_rate)
            order = train_indices[epoch_order(train_indices.size, training.seed, epoch)]
            weighted = []
            for batch, size in _batches(columns, order, training.batch_size, strategy):
                total = tf.constant(float(size), tf.float32)
                weighted.append(steps.train(batch, total) * total)
            training_loss = float(tf.add_n(weighted)) / train_indices.size
            validation_loss = None
            if validation_indices.size:
                batches = _batches(columns, validation_indices, training.batch_size, strategy)
                sums = [steps.evaluate(batch) for batch, _ in batches]
                validation_loss = float(tf.add_n(sums)) / validation_indices.size
        if not math.isfinite(training_loss):
            logger.warning('epoch %d: the training loss is %s', epoch, training_loss)
        stop = (
            monitor.update(monitored_loss(training_loss, validation_loss))
            and epoch < training.num_epochs
        )
        yield EpochReport(
            epoch=epoch,
            num_epochs=training.num_epochs,
            training_loss=training_loss,
            validation_loss=validation_loss,
            learning_rate=float(learning_rate),
            seconds=time.perf_counter() - started,
            intensity_scale=float(np.exp(network.physics.log_intensity_scale.value.numpy())),
            stopped_early=stop,
        )
        if stop:
            logger.info('early stopping after epoch %d (best loss %.6g)', epoch, monitor.stop_best)
            return
