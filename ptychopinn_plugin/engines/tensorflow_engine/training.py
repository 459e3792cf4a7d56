"""Losses and the training loop of the TensorFlow engine (a compiled step, one epoch per yield).

PINN mode minimises the Poisson negative log-likelihood of the counts (plus the optional amplitude
MAE and, with ground truth, the real-space terms) through the physics chain of ``network.py``;
Supervised mode minimises the real-space amplitude/phase MAE of the raw network patches, no
physics. The loss definitions are those of ``core/physics.py``. Adam, reduce-on-plateau and early
stopping (``core/schedule.py``, shared with the PyTorch engine) are applied here, epoch by epoch,
so the caller can stop between epochs. Engine plumbing
(devices, strategies, weights) is in ``engine.py``.
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

from ...config import Mode, ModelConfig, Precision, TrainingConfig
from ...core import physics
from ...core.protocol import EpochReport, TrainingArrays
from ...core.schedule import ADAM_BETAS, ADAM_EPSILON, EpochMonitor, epoch_order
from ...errors import DataContractError
from .network import ForwardModel, PtychoPINNNetwork

logger = logging.getLogger(__name__)

__all__ = [
    'EpochMonitor',
    'fit_network',
    'make_optimizer',
    'per_group_losses',
]  # EpochMonitor: core

SQRT_FLOOR = 1e-30
"""Predicted counts are floored here before the square root of the amplitude MAE (finite gradient
at zero intensity; changes the value by at most 1e-15 counts)."""
LOSS_SCALE = 16.0
"""Initial dynamic loss scale of float16 mixed precision. The Poisson likelihood of photon counts
has large gradients; Keras's default 2**15 overflows float16 for the first ~10 steps, which are
then skipped. The scale still adapts (halved on overflow, doubled after 200 finite steps)."""


def _to_channels_first(values: tf.Tensor) -> tf.Tensor:
    return tf.transpose(values, [0, 3, 1, 2])


def _realspace_mae(
    amplitude: tf.Tensor, phase: tf.Tensor, truth: tf.Tensor, forward: ForwardModel
) -> tf.Tensor:
    """Per-group ``physics.realspace_mae`` of ``amplitude * exp(i phase)`` (B,) float32.

    The modulus and angle of the patch are taken from the real amplitude and phase (a negative
    amplitude turns the angle by pi; a zero one has angle 0), so gradients stay finite at zero.
    """
    truth_amplitude = tf.abs(truth)
    truth_phase = tf.math.angle(truth)
    patch_phase = tf.where(
        amplitude > 0,
        phase,
        tf.where(amplitude < 0, phase + math.pi, tf.zeros_like(phase)),
    )
    difference = patch_phase - truth_phase
    wrapped = tf.atan2(tf.sin(difference), tf.cos(difference))
    error = tf.abs(tf.abs(amplitude) - truth_amplitude) + tf.abs(wrapped)
    return _support_mean(error, forward)


def _support_mean(values: tf.Tensor, forward: ForwardModel) -> tf.Tensor:
    channels = tf.cast(tf.shape(values)[1], tf.float32)
    total = tf.reduce_sum(values * forward.support, axis=[1, 2, 3])
    return total / (channels * forward.support_count)


def per_group_losses(
    network: PtychoPINNNetwork,
    forward: ForwardModel,
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
    :class:`~ptychopinn_plugin.engines.TrainingArrays`, channels first.
    """
    inputs, counts, offsets = batch[:3]
    amplitude, phase = network(tf.transpose(inputs, [0, 2, 3, 1]), training=is_training)
    amplitude = _to_channels_first(amplitude)
    phase = _to_channels_first(phase)
    if network.config.mode is Mode.SUPERVISED:
        return _realspace_mae(amplitude, phase, batch[3], forward)
    real, imag = forward.object_patches(amplitude, phase, offsets, canvas_px)
    parameters = network.physics
    intensity = forward.farfield_intensity(
        real, imag, parameters.probe_real.value, parameters.probe_imag.value
    )
    predicted_counts = tf.exp(2.0 * parameters.log_intensity_scale.value) * intensity
    lam = predicted_counts + physics.POISSON_EPSILON
    loss = training.nll_weight * tf.reduce_mean(lam - counts * tf.math.log(lam), axis=[1, 2, 3])
    if training.mae_weight:
        predicted = tf.sqrt(tf.maximum(predicted_counts, SQRT_FLOOR))
        error = tf.abs(predicted - tf.sqrt(counts))
        loss += training.mae_weight * tf.reduce_mean(error, axis=[1, 2, 3])
    if uses_truth and training.realspace_mae_weight:
        loss += training.realspace_mae_weight * _realspace_mae(amplitude, phase, batch[3], forward)
    if uses_truth and training.realspace_weight:
        truth = batch[3]
        generated_real = amplitude * tf.cos(phase)
        generated_imag = amplitude * tf.sin(phase)
        squared = (generated_real - tf.math.real(truth)) ** 2 + (
            generated_imag - tf.math.imag(truth)
        ) ** 2
        loss += training.realspace_weight * _support_mean(squared, forward)
    return loss


def _uses_truth(model: ModelConfig, training: TrainingConfig, arrays: TrainingArrays) -> bool:
    if model.mode is Mode.SUPERVISED:
        if arrays.truth_patches is None:
            raise DataContractError(
                'Supervised training needs ground-truth object patches (TrainingArrays.'
                'truth_patches is None); train in PINN mode or provide ground truth'
            )
        return True
    wants = training.realspace_mae_weight > 0 or training.realspace_weight > 0
    return wants and arrays.truth_patches is not None


@dataclass(frozen=True)
class _Steps:
    train: Callable[..., tf.Tensor]
    evaluate: Callable[..., tf.Tensor]


def _build_steps(
    network: PtychoPINNNetwork,
    forward: ForwardModel,
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
        tf.TensorSpec(shape[:2] + (2,), tf.float32),
    ]
    if uses_truth:
        specs.append(tf.TensorSpec(shape, tf.complex64))
    specs.append(tf.TensorSpec(shape[:1], tf.float32))  # group weights: 1, or 0 for padding
    signature = [tuple(specs), tf.TensorSpec((), tf.float32)]

    def losses(batch, is_training):
        """Weighted sum of the group losses of ``batch`` (whose last column is the weights)."""
        per_group = per_group_losses(
            network,
            forward,
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
    forward: ForwardModel,
    arrays: TrainingArrays,
    training: TrainingConfig,
    *,
    device: str = '/CPU:0',
    precision: Precision = Precision.FP32,
    strategy: tf.distribute.Strategy | None = None,
    jit_compile: bool = False,
) -> Iterator[EpochReport]:
    """Train ``network`` in place, one epoch per step of the returned iterator.

    The arrays are checked and the optimiser built now (errors surface here, not at the first
    epoch); the epochs run as the caller iterates.

    Parameters
    ----------
    network, forward : the network and its physics chain (same ModelConfig).
    arrays : grouped, normalised training arrays (``core.dataset.prepare_training``).
    training : epochs, batch size, optimiser schedule, loss weights, trainable physics.
    device : TensorFlow device of the single-device steps (``'/GPU:0'``, ``'/CPU:0'``).
    precision : network precision (loss scaling for float16).
    strategy : a ``tf.distribute`` strategy whose scope holds the network, or None (one device).
    jit_compile : compile the steps with XLA.

    Returns
    -------
    Iterator of EpochReport
        One after each epoch; the network holds that epoch's weights while the caller looks at
        it, and keeps them when the caller stops iterating.
    """
    config = network.config
    uses_truth = _uses_truth(config, training, arrays)
    train_indices = np.asarray(arrays.train_indices, np.int64)
    if train_indices.size == 0:
        raise DataContractError('no training groups: TrainingArrays.train_indices is empty')
    parameters = network.physics
    physical = config.mode is Mode.PINN  # Supervised training has no physics to train
    parameters.log_intensity_scale.trainable = physical and training.intensity_scale_trainable
    parameters.probe_real.trainable = physical and training.probe_trainable
    parameters.probe_imag.trainable = physical and training.probe_trainable
    variables = list(network.trainable_variables)
    canvas_px = (
        forward.canvas_px(arrays.offsets_px) if forward.uses_canvas else config.pattern_size_px
    )
    with strategy.scope() if strategy is not None else tf.device(device):
        optimizer = make_optimizer(training.learning_rate, precision)
        optimizer.build(variables)
    steps = _build_steps(
        network,
        forward,
        training,
        optimizer,
        variables,
        canvas_px,
        uses_truth,
        strategy,
        jit_compile,
    )
    return _epochs(network, steps, optimizer, arrays, training, uses_truth, device, strategy)


def _epochs(
    network: PtychoPINNNetwork,
    steps: _Steps,
    optimizer: keras.optimizers.Optimizer,
    arrays: TrainingArrays,
    training: TrainingConfig,
    uses_truth: bool,
    device: str,
    strategy: tf.distribute.Strategy | None,
) -> Iterator[EpochReport]:
    tf.random.set_seed(training.seed)
    columns = _arrays(arrays, uses_truth)
    train_indices = np.asarray(arrays.train_indices, np.int64)
    validation_indices = np.asarray(arrays.validation_indices, np.int64)
    monitor = EpochMonitor.from_training(training)
    for epoch in range(1, training.num_epochs + 1):
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
        monitored = validation_loss if validation_loss is not None else training_loss
        stop = monitor.update(monitored) and epoch < training.num_epochs
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
