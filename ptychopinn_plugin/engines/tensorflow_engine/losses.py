"""The losses of ``core/physics.py`` on TensorFlow tensors (float32), one value per group (B,).

``poisson_nll`` and ``pinn_loss`` compare predicted with observed counts; ``realspace_mae`` and
``realspace_mse`` compare object patches with ground truth over the object support. The names and
arguments mirror ``pytorch_engine/losses.py``; here each loss is kept per group, (B,), so that a
batch padded for several replicas can weight its padding 0 (``training.py``). Complex patches are
``(real, imag)`` pairs, as ``network.ForwardModel`` computes them.
"""

from __future__ import annotations

import math

import tensorflow as tf

from ...core import physics

__all__ = ['SQRT_FLOOR', 'pinn_loss', 'poisson_nll', 'realspace_mae', 'realspace_mse']

SQRT_FLOOR = 1e-30
"""Predicted counts are floored here before the square root of the amplitude MAE (finite gradient
at zero intensity; changes the value by at most 1e-15 counts)."""

_GROUP_AXES = [1, 2, 3]


def poisson_nll(predicted_counts: tf.Tensor, observed_counts: tf.Tensor) -> tf.Tensor:
    """Per-group ``mean(lam - y log lam)`` with ``lam = predicted + POISSON_EPSILON``."""
    lam = predicted_counts + physics.POISSON_EPSILON
    return tf.reduce_mean(lam - observed_counts * tf.math.log(lam), axis=_GROUP_AXES)


def pinn_loss(
    intensity: tf.Tensor,
    log_intensity_scale: tf.Tensor,
    counts: tf.Tensor,
    *,
    nll_weight: float,
    mae_weight: float,
) -> tf.Tensor:
    """Per-group ``physics.pinn_loss`` of the amplitude ``K sqrt(intensity)`` against the counts.

    ``K = exp(log_intensity_scale)``; the predicted counts are ``exp(2 log K) intensity``.
    """
    predicted_counts = tf.exp(2.0 * log_intensity_scale) * intensity
    loss = nll_weight * poisson_nll(predicted_counts, counts)
    if mae_weight:
        predicted = tf.sqrt(tf.maximum(predicted_counts, SQRT_FLOOR))
        error = tf.abs(predicted - tf.sqrt(counts))
        loss += mae_weight * tf.reduce_mean(error, axis=_GROUP_AXES)
    return loss


def realspace_mae(
    amplitude: tf.Tensor, phase: tf.Tensor, truth: tf.Tensor, support: tf.Tensor
) -> tf.Tensor:
    """Per-group ``physics.realspace_mae`` of ``amplitude * exp(i phase)`` vs complex ``truth``.

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
    return _support_mean(error, support)


def realspace_mse(
    patches: tuple[tf.Tensor, tf.Tensor], truth: tf.Tensor, support: tf.Tensor
) -> tf.Tensor:
    """Per-group ``physics.realspace_mse``: mean of ``|p - t|^2`` over the support pixels.

    ``patches`` is the ``(real, imag)`` pair of the complex patches.
    """
    real, imag = patches
    squared = (real - tf.math.real(truth)) ** 2 + (imag - tf.math.imag(truth)) ** 2
    return _support_mean(squared, support)


def _support_mean(values: tf.Tensor, support: tf.Tensor) -> tf.Tensor:
    """Per-group mean of ``values`` (B, C, N, N) over the support pixels of every channel."""
    channels = tf.cast(tf.shape(values)[1], tf.float32)
    total = tf.reduce_sum(values * support, axis=_GROUP_AXES)
    return total / (channels * tf.reduce_sum(support))
