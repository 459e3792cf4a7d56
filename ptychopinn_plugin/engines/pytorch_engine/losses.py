"""The losses of ``core/physics.py`` on PyTorch tensors (float32), each a mean over the batch.

``poisson_nll`` and ``pinn_loss`` compare predicted with observed counts; ``realspace_mae`` and
``realspace_mse`` compare object patches with ground truth over the object support. The names and
arguments mirror ``tensorflow_engine/losses.py``; which terms a training step adds up is in
``training.py``.
"""

from __future__ import annotations

import math

import torch

from ...core import physics

__all__ = ['SQRT_FLOOR', 'pinn_loss', 'poisson_nll', 'realspace_mae', 'realspace_mse']

SQRT_FLOOR = 1e-12
"""The intensity is floored here before the square root of the amplitude MAE (finite gradient at
zero intensity)."""


def poisson_nll(predicted_counts: torch.Tensor, observed_counts: torch.Tensor) -> torch.Tensor:
    """``mean(lam - y log lam)`` with ``lam = predicted + POISSON_EPSILON`` (as in physics)."""
    lam = predicted_counts + physics.POISSON_EPSILON
    return torch.mean(lam - observed_counts * torch.log(lam))


def pinn_loss(
    intensity: torch.Tensor,
    log_intensity_scale: torch.Tensor,
    counts: torch.Tensor,
    *,
    nll_weight: float,
    mae_weight: float,
) -> torch.Tensor:
    """``physics.pinn_loss`` of the amplitude ``K sqrt(intensity)`` against observed counts.

    ``K = exp(log_intensity_scale)``. The Poisson term uses the counts ``K^2 intensity`` directly
    (no square root to differentiate).
    """
    scale = torch.exp(log_intensity_scale)
    loss = nll_weight * poisson_nll(scale.square() * intensity, counts)
    if mae_weight:
        amplitude = scale * torch.sqrt(torch.clamp(intensity, min=SQRT_FLOOR))
        loss = loss + mae_weight * torch.mean(torch.abs(amplitude - torch.sqrt(counts)))
    return loss


def realspace_mae(
    amplitude: torch.Tensor, phase: torch.Tensor, truth: torch.Tensor, support: torch.Tensor
) -> torch.Tensor:
    """``physics.realspace_mae`` of ``amplitude * exp(i phase)`` vs complex ``truth``.

    Modulus and angle are taken from the generator's amplitude and phase (a negative swish
    amplitude flips the angle by pi), which keeps the gradient finite where the amplitude is 0.
    """
    modulus = torch.abs(amplitude)
    angle = phase + math.pi * (amplitude < 0)
    difference = angle - torch.angle(truth)
    wrapped = torch.atan2(torch.sin(difference), torch.cos(difference))
    error = (torch.abs(modulus - torch.abs(truth)) + torch.abs(wrapped)) * support
    return error.sum() / (support.sum() * amplitude.shape[0] * amplitude.shape[1])


def realspace_mse(
    patches: torch.Tensor, truth: torch.Tensor, support: torch.Tensor
) -> torch.Tensor:
    """``physics.realspace_mse``: mean of ``|p - t|^2`` over the support pixels (complex ``p``)."""
    error = (patches - truth).abs().square() * support
    return error.sum() / (support.sum() * patches.shape[0] * patches.shape[1])
