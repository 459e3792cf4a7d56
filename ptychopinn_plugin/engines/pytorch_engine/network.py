"""The PtychoPINN network, its differentiable forward model and losses as ``torch.nn`` code (NCHW).

``Generator`` is the encoder / two-decoder network exactly as ``core/weights.py`` describes it;
``ForwardModel`` reproduces ``core/physics.py`` (overlap canvas, probe, smoothing, far field) in
float32 and holds the physics parameters; ``PtychoPINNNetwork`` joins them; ``pinn_loss``,
``realspace_mae`` and ``realspace_mse`` are the losses of ``core/physics.py``. Canonical weight
names are mapped in ``weights.py``; the training loop is in ``training.py``.

Bilinear translations with zero fill (``physics.translate_bilinear``) are separable, so each is
applied as two small matrices with entries ``max(0, 1 - |source - (target - shift)|)``: exact,
batched per group and member, and differentiable.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ...config import AmpActivation, ModelConfig
from ...core import physics
from ...core.weights import decoder_widths, encoder_widths

__all__ = [
    'ForwardModel',
    'Generator',
    'PtychoPINNNetwork',
    'build_network',
    'pinn_loss',
    'poisson_nll',
    'realspace_mae',
    'realspace_mse',
    'translation_matrices',
]

_AMPLITUDE_ACTIVATIONS = {
    AmpActivation.SIGMOID: torch.sigmoid,
    AmpActivation.SWISH: F.silu,
    AmpActivation.SOFTPLUS: F.softplus,
    AmpActivation.RELU: F.relu,
}


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=True)


class ConvBlock(nn.Module):
    """conv3x3 -> ReLU -> conv3x3 -> ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = _conv(cin, cout)
        self.conv2 = _conv(cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x), inplace=True)), inplace=True)


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode='nearest')


class Generator(nn.Module):
    """Encoder and amplitude / phase decoders: inputs (B, C, N, N) -> amplitude, phase (B, C, N, N).

    Module names follow the canonical names (``encoder.0.conv1`` ...), see ``weights.py``.
    """

    def __init__(self, model: ModelConfig) -> None:
        super().__init__()
        channels = model.num_channels
        n_px = model.pattern_size_px
        self.pad_object = model.pad_object
        self.probe_big = model.pad_object and model.probe_big
        self.amp_activation = _AMPLITUDE_ACTIVATIONS[AmpActivation(model.amp_activation)]
        self.encoder = nn.ModuleList()
        cin = channels
        for width in encoder_widths(model):
            self.encoder.append(ConvBlock(cin, width))
            cin = width
        bottleneck = cin
        for name in ('amp', 'phase'):
            blocks = nn.ModuleList()
            cin = bottleneck
            for width in decoder_widths(model):
                blocks.append(ConvBlock(cin, width))
                cin = width
            setattr(self, f'{name}_decoder', blocks)
            setattr(self, f'{name}_head', _conv(cin, channels))
            setattr(self, f'{name}_border', _conv(cin, channels) if self.probe_big else None)
        quarter = n_px // 4
        self.padding = (quarter, quarter, quarter, quarter)
        border = np.ones((n_px, n_px), np.float32)
        border[quarter : 3 * quarter, quarter : 3 * quarter] = 0.0
        self.register_buffer('border_mask', torch.from_numpy(border), persistent=False)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = inputs
        for block in self.encoder:
            x = F.max_pool2d(block(x), kernel_size=2, stride=2)
        amplitude = self._decode(x, 'amp', self.amp_activation)
        phase = self._decode(x, 'phase', _phase_activation)
        return amplitude, phase

    def _decode(self, x: torch.Tensor, name: str, activation) -> torch.Tensor:
        for block in getattr(self, f'{name}_decoder'):
            x = _upsample(block(x))
        head = getattr(self, f'{name}_head')
        if not self.pad_object:
            return activation(head(_upsample(x)))
        central = F.pad(activation(head(x)), self.padding)
        border = getattr(self, f'{name}_border')
        if border is None:
            return central
        return central + activation(border(_upsample(x))) * self.border_mask


def _phase_activation(x: torch.Tensor) -> torch.Tensor:
    return math.pi * torch.tanh(x)


def translation_matrices(
    offsets_px: torch.Tensor, n_px: int, canvas_px: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column matrices that place patches on the canvas, shifted by their offsets.

    Parameters
    ----------
    offsets_px : tensor (B, C, 2) float32, ``(dx, dy)`` in pixels.
    n_px, canvas_px : patch side N and canvas side M (``M - N`` even).

    Returns
    -------
    rows, cols : tensors (B, C, M, N) float32
        ``canvas = rows @ patch @ cols^T`` is ``physics.translate_bilinear`` of the zero-padded
        patch by ``(dx, dy)``; ``rows^T @ canvas @ cols`` is the re-extraction by ``(-dx, -dy)``.
    """
    pad = (canvas_px - n_px) // 2
    device = offsets_px.device
    target = torch.arange(canvas_px, device=device, dtype=torch.float32)[:, None]
    source = torch.arange(n_px, device=device, dtype=torch.float32)[None, :] + pad
    distance = (source - target)[None, None]  # (1, 1, M, N)
    shift_x = offsets_px[..., 0, None, None].float()
    shift_y = offsets_px[..., 1, None, None].float()
    rows = torch.clamp(1.0 - torch.abs(distance + shift_y), min=0.0)
    cols = torch.clamp(1.0 - torch.abs(distance + shift_x), min=0.0)
    return rows, cols


def _smoothing_matrix(n_px: int, sigma_px: float) -> torch.Tensor | None:
    kernel = physics.gaussian_kernel_1d(sigma_px)
    if kernel.size == 1:
        return None
    radius = kernel.size // 2
    index = np.arange(n_px)
    lag = index[None, :] - index[:, None] + radius  # out j <- in k with weight w[k - j + r]
    matrix = np.where((lag >= 0) & (lag < kernel.size), kernel[np.clip(lag, 0, kernel.size - 1)], 0)
    return torch.from_numpy(matrix.astype(np.float32))


class ForwardModel(nn.Module):
    """Physics of ``core/physics.py`` in float32, with the probe and intensity scale parameters."""

    def __init__(self, model: ModelConfig) -> None:
        super().__init__()
        n_px = model.pattern_size_px
        self.n_px = n_px
        self.use_canvas = model.object_big and model.num_channels > 1
        self.probe_real = nn.Parameter(torch.zeros(n_px, n_px))
        self.probe_imag = nn.Parameter(torch.zeros(n_px, n_px))
        self.log_intensity_scale = nn.Parameter(torch.zeros(()))
        support = physics.object_support_mask(n_px, model.pad_object, model.probe_big)
        self.register_buffer('support', torch.from_numpy(support.astype(np.float32)), False)
        disk = physics.disk_mask(n_px).astype(np.float32) if model.probe_mask else None
        self.register_buffer('disk', None if disk is None else torch.from_numpy(disk), False)
        smoothing = _smoothing_matrix(n_px, model.gaussian_smoothing_sigma_px)
        self.register_buffer('smoothing', smoothing, False)

    def intensity_scale(self) -> torch.Tensor:
        return torch.exp(self.log_intensity_scale)

    def object_patches(
        self,
        amplitude: torch.Tensor,
        phase: torch.Tensor,
        offsets_px: torch.Tensor,
        canvas_px: int,
    ) -> torch.Tensor:
        """Complex patches (B, C, N, N), merged on each group's canvas and re-extracted if used.

        ``canvas_px`` is ignored without the canvas; otherwise it must be at least
        ``physics.canvas_size_px`` of the offsets and differ from N by an even number.
        """
        real = amplitude.float() * torch.cos(phase.float())
        imag = amplitude.float() * torch.sin(phase.float())
        if not self.use_canvas:
            return torch.complex(real, imag)
        rows, cols = translation_matrices(offsets_px, self.n_px, canvas_px)
        rows_t, cols_t = rows.transpose(-1, -2), cols.transpose(-1, -2)
        parts = torch.stack((real, imag), dim=2) * self.support  # (B, C, 2, N, N)
        numerator = (rows[:, :, None] @ parts @ cols_t[:, :, None]).sum(dim=1)  # (B, 2, M, M)
        weight = (rows @ self.support @ cols_t).sum(dim=1)  # (B, M, M)
        covered = weight > physics.CANVAS_EPSILON
        canvas = torch.where(
            covered[:, None], numerator / torch.where(covered, weight, 1.0)[:, None], 0
        )
        patches = rows_t[:, :, None] @ canvas[:, None] @ cols[:, :, None]  # (B, C, 2, N, N)
        return torch.complex(patches[:, :, 0], patches[:, :, 1])

    def farfield_intensity(self, patches: torch.Tensor) -> torch.Tensor:
        """``|F(probe * smooth(patch) [* disk])|^2 / N^2``, fft-shifted, (B, C, N, N) float32."""
        if self.smoothing is not None:
            smoothing = self.smoothing.to(torch.complex64)
            patches = smoothing @ patches @ smoothing.T
        wave = patches * torch.complex(self.probe_real, self.probe_imag)
        if self.disk is not None:
            wave = wave * self.disk
        spectrum = torch.fft.fft2(wave)
        intensity = (spectrum.real.square() + spectrum.imag.square()) / float(self.n_px**2)
        return torch.fft.fftshift(intensity, dim=(-2, -1))


class PtychoPINNNetwork(nn.Module):
    """Generator plus forward model; the module whose parameters are the canonical weights."""

    def __init__(self, model: ModelConfig) -> None:
        super().__init__()
        self.generator = Generator(model)
        self.physics = ForwardModel(model)

    def forward(
        self, inputs: torch.Tensor, offsets_px: torch.Tensor, canvas_px: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw amplitude and phase (B, C, N, N) of the generator and the complex object patches.

        The generator runs in whatever autocast context the caller set; the physics runs in
        float32 with autocast off.
        """
        amplitude, phase = self.generator(inputs)
        with torch.autocast(inputs.device.type, enabled=False):
            amplitude, phase = amplitude.float(), phase.float()
            patches = self.physics.object_patches(amplitude, phase, offsets_px, canvas_px)
        return amplitude, phase, patches


def poisson_nll(predicted_counts: torch.Tensor, observed_counts: torch.Tensor) -> torch.Tensor:
    """``mean(lam - y log lam)`` with ``lam = predicted + POISSON_EPSILON`` (as in physics)."""
    lam = predicted_counts + physics.POISSON_EPSILON
    return torch.mean(lam - observed_counts * torch.log(lam))


def pinn_loss(
    intensity: torch.Tensor,
    scale: torch.Tensor,
    counts: torch.Tensor,
    *,
    nll_weight: float,
    mae_weight: float,
) -> torch.Tensor:
    """``physics.pinn_loss`` of the amplitude ``K sqrt(intensity)`` against observed counts.

    The Poisson term uses the counts ``K^2 intensity`` directly (no square root to differentiate).
    """
    loss = nll_weight * poisson_nll(scale.square() * intensity, counts)
    if mae_weight:
        amplitude = scale * torch.sqrt(torch.clamp(intensity, min=1e-12))
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
    """``physics.realspace_mse``: mean of ``|p - t|^2`` over the support pixels."""
    error = (patches - truth).abs().square() * support
    return error.sum() / (support.sum() * patches.shape[0] * patches.shape[1])


def build_network(model: ModelConfig) -> PtychoPINNNetwork:
    """A fresh network for ``model`` (parameters to be set from canonical weights)."""
    return PtychoPINNNetwork(model)
