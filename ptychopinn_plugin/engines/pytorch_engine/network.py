"""The PtychoPINN network and its differentiable forward model as ``torch.nn`` code (NCHW).

``Generator`` is the encoder / two-decoder network exactly as ``core/weights.py`` describes it;
``PhysicsParameters`` holds the probe and the intensity scale; ``ForwardModel`` reproduces
``core/physics.py`` (overlap canvas, probe, smoothing, far field) in float32;
``PtychoPINNNetwork`` joins the three. Losses are in ``losses.py``, canonical weight names in
``weights.py``, the training loop in ``training.py``.

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

__all__ = ['ForwardModel', 'Generator', 'PhysicsParameters', 'PtychoPINNNetwork']

_AMPLITUDE_ACTIVATIONS = {
    AmpActivation.SIGMOID: torch.sigmoid,
    AmpActivation.SWISH: F.silu,
    AmpActivation.SOFTPLUS: F.softplus,
    AmpActivation.RELU: F.relu,
}


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=True)


class _ConvBlock(nn.Module):
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
            self.encoder.append(_ConvBlock(cin, width))
            cin = width
        bottleneck = cin
        for name in ('amp', 'phase'):
            blocks = nn.ModuleList()
            cin = bottleneck
            for width in decoder_widths(model):
                blocks.append(_ConvBlock(cin, width))
                cin = width
            setattr(self, f'{name}_decoder', blocks)
            setattr(self, f'{name}_head', _conv(cin, channels))
            setattr(self, f'{name}_border', _conv(cin, channels) if self.probe_big else None)
        quarter = n_px // 4
        self.padding = (quarter, quarter, quarter, quarter)
        border = np.ones((n_px, n_px), np.float32)
        border[quarter : 3 * quarter, quarter : 3 * quarter] = 0.0
        self.register_buffer('border_mask', torch.from_numpy(border), persistent=False)

    def conv_layers(self) -> dict[str, nn.Conv2d]:
        """Convolutions keyed by canonical prefix (``encoder.0.conv1``, ``amp_head``, ...)."""
        return {name: m for name, m in self.named_modules() if isinstance(m, nn.Conv2d)}

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


def _translation_matrices(
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


class PhysicsParameters(nn.Module):
    """The trainable physics: the normalised probe (real and imaginary parts) and ``log K``."""

    def __init__(self, n_px: int) -> None:
        super().__init__()
        self.probe_real = nn.Parameter(torch.zeros(n_px, n_px))
        self.probe_imag = nn.Parameter(torch.zeros(n_px, n_px))
        self.log_intensity_scale = nn.Parameter(torch.zeros(()))

    def intensity_scale(self) -> torch.Tensor:
        """``K = exp(log_intensity_scale)``."""
        return torch.exp(self.log_intensity_scale)


class ForwardModel(nn.Module):
    """Physics of ``core/physics.py`` in float32: constants as buffers, no parameters."""

    def __init__(self, model: ModelConfig) -> None:
        super().__init__()
        n_px = model.pattern_size_px
        self.n_px = n_px
        self.uses_canvas = model.object_big and model.num_channels > 1
        support = physics.object_support_mask(n_px, model.pad_object, model.probe_big)
        self.register_buffer('support', torch.from_numpy(support.astype(np.float32)), False)
        disk = physics.disk_mask(n_px).astype(np.float32) if model.probe_mask else None
        self.register_buffer('disk', None if disk is None else torch.from_numpy(disk), False)
        smoothing = physics.smoothing_matrix(n_px, model.gaussian_smoothing_sigma_px)
        if smoothing is not None:
            smoothing = torch.from_numpy(smoothing.astype(np.float32))
        self.register_buffer('smoothing', smoothing, False)

    def canvas_size_px(self, offsets_px: np.ndarray) -> int:
        """Canvas side for ``offsets_px`` (``physics.padded_canvas_size_px``); N without canvas."""
        if not self.uses_canvas:
            return self.n_px
        return physics.padded_canvas_size_px(self.n_px, offsets_px)

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
        if not self.uses_canvas:
            return torch.complex(real, imag)
        rows, cols = _translation_matrices(offsets_px, self.n_px, canvas_px)
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

    def farfield_intensity(
        self, patches: torch.Tensor, parameters: PhysicsParameters
    ) -> torch.Tensor:
        """``|F(probe * smooth(patch) [* disk])|^2 / N^2``, fft-shifted, (B, C, N, N) float32.

        ``patches`` complex (B, C, N, N); the probe is that of ``parameters``.
        """
        if self.smoothing is not None:
            smoothing = self.smoothing.to(torch.complex64)
            patches = smoothing @ patches @ smoothing.T
        wave = patches * torch.complex(parameters.probe_real, parameters.probe_imag)
        if self.disk is not None:
            wave = wave * self.disk
        spectrum = torch.fft.fft2(wave)
        intensity = (spectrum.real.square() + spectrum.imag.square()) / float(self.n_px**2)
        return torch.fft.fftshift(intensity, dim=(-2, -1))


class PtychoPINNNetwork(nn.Module):
    """The module whose parameters are the canonical weights: generator and physics parameters.

    ``generator`` (:class:`Generator`), ``physics`` (:class:`PhysicsParameters`) and
    ``forward_model`` (:class:`ForwardModel`, constants only) of one :class:`ModelConfig`.
    """

    def __init__(self, model: ModelConfig) -> None:
        super().__init__()
        self.config = model
        self.generator = Generator(model)
        self.physics = PhysicsParameters(model.pattern_size_px)
        self.forward_model = ForwardModel(model)

    def generate(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw amplitude and phase (B, C, N, N) of the generator for inputs (B, C, N, N)."""
        return self.generator(inputs)

    def forward(
        self, inputs: torch.Tensor, offsets_px: torch.Tensor, canvas_px: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw amplitude and phase (B, C, N, N) of the generator and the complex object patches.

        The generator runs in whatever autocast context the caller set; the physics runs in
        float32 with autocast off.
        """
        amplitude, phase = self.generate(inputs)
        with torch.autocast(inputs.device.type, enabled=False):
            amplitude, phase = amplitude.float(), phase.float()
            patches = self.forward_model.object_patches(amplitude, phase, offsets_px, canvas_px)
        return amplitude, phase, patches
