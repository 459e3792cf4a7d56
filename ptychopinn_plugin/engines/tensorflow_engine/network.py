"""The PtychoPINN network (Keras 3) and its differentiable forward model.

:class:`Generator` is exactly the network of ``core/weights.py`` (channels-last inside): encoder,
amplitude and phase decoders, heads (and border heads with ``probe_big``).
:class:`PhysicsParameters` holds ``probe.real``, ``probe.imag`` and ``log_intensity_scale`` as
tracked Keras variables. :class:`ForwardModel` reproduces ``core/physics.py`` in float32: object
support, canvas merge and re-extraction (bilinear translations written as per-patch interpolation
matrices, so every (group, member) has its own offset and the whole chain is batched matmuls),
Gaussian smoothing, probe, disk mask and far field. :class:`PtychoPINNNetwork` joins the three.
Arrays here are (B, C, N, N) unless named ``*_nhwc``; complex patches are ``(real, imag)`` pairs.
Losses are in ``losses.py``, canonical weight mapping in ``weights.py``, the training loop in
``training.py``.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from ...config import AmpActivation, ModelConfig
from ...core import physics
from ...core.weights import DECODERS, decoder_widths, encoder_widths

__all__ = ['ForwardModel', 'Generator', 'PhysicsParameters', 'PtychoPINNNetwork']


def _amplitude_activation(name: AmpActivation):
    return {
        AmpActivation.SIGMOID: tf.sigmoid,
        AmpActivation.SWISH: tf.nn.silu,
        AmpActivation.SOFTPLUS: tf.nn.softplus,
        AmpActivation.RELU: tf.nn.relu,
    }[AmpActivation(name)]


def _phase_activation(values: tf.Tensor) -> tf.Tensor:
    return math.pi * tf.tanh(values)


class PhysicsParameters(keras.layers.Layer):
    """The normalised probe (real and imaginary parts) and ``log K``, always float32."""

    def __init__(self, n_px: int) -> None:
        super().__init__(dtype='float32', name='physics')
        self.probe_real = self.add_weight(
            shape=(n_px, n_px), initializer='zeros', dtype='float32', name='probe_real'
        )
        self.probe_imag = self.add_weight(
            shape=(n_px, n_px), initializer='zeros', dtype='float32', name='probe_imag'
        )
        self.log_intensity_scale = self.add_weight(
            shape=(), initializer='zeros', dtype='float32', name='log_intensity_scale'
        )

    def intensity_scale(self) -> tf.Tensor:
        """``K = exp(log_intensity_scale)``."""
        return tf.exp(self.log_intensity_scale.value)


class Generator(keras.Model):
    """Encoder, two decoders and heads; amplitude and phase patches for (B, N, N, C) inputs.

    Parameters
    ----------
    model : ModelConfig
        The architecture (``core/weights.py`` describes it).
    dtype_policy : str
        Keras dtype policy of the convolutions (``'float32'``, ``'mixed_float16'`` or
        ``'mixed_bfloat16'``); heads and activations always compute in float32.
    """

    def __init__(self, model: ModelConfig, dtype_policy: str = 'float32') -> None:
        super().__init__(name='generator')
        self.config = model
        self.dtype_policy_name = dtype_policy
        n_px, channels = model.pattern_size_px, model.num_channels
        self._border = model.pad_object and model.probe_big
        layers: dict[str, keras.layers.Conv2D] = {}

        def conv(name: str, cin: int, cout: int, relu: bool) -> keras.layers.Conv2D:
            layer = keras.layers.Conv2D(
                cout,
                3,
                padding='same',
                activation='relu' if relu else None,
                dtype=dtype_policy,
                name=name.replace('.', '_'),
            )
            layer.build((None, None, None, cin))
            layers[name] = layer
            return layer

        cin = channels
        self.encoder_layers = []
        for level, width in enumerate(encoder_widths(model)):
            self.encoder_layers.append(conv(f'encoder.{level}.conv1', cin, width, True))
            self.encoder_layers.append(conv(f'encoder.{level}.conv2', width, width, True))
            cin = width
        bottleneck = cin
        self.decoder_layers = []
        self.head_layers = []
        self.border_layers = []
        for decoder in DECODERS:
            cin = bottleneck
            blocks = []
            for block, width in enumerate(decoder_widths(model)):
                blocks.append(conv(f'{decoder}_decoder.{block}.conv1', cin, width, True))
                blocks.append(conv(f'{decoder}_decoder.{block}.conv2', width, width, True))
                cin = width
            self.decoder_layers.append(blocks)
            self.head_layers.append(conv(f'{decoder}_head', cin, channels, False))
            if self._border:
                self.border_layers.append(conv(f'{decoder}_border', cin, channels, False))
        self.pool = keras.layers.MaxPooling2D(2, dtype=dtype_policy)
        self.upsample = keras.layers.UpSampling2D(2, interpolation='nearest', dtype=dtype_policy)
        self.conv_names = list(layers)
        self.conv_list = list(layers.values())
        central = physics.object_support_mask(n_px, pad_object=True, probe_big=False)
        self._border_mask = tf.constant((1.0 - central)[None, :, :, None], tf.float32)
        self._activations = (_amplitude_activation(model.amp_activation), _phase_activation)
        self.built = True

    def conv_layers(self) -> dict[str, keras.layers.Conv2D]:
        """Convolutions keyed by canonical prefix (``encoder.0.conv1``, ``amp_head``, ...)."""
        return dict(zip(self.conv_names, self.conv_list, strict=True))

    def call(self, inputs_nhwc: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Amplitude and phase (B, N, N, C) float32 for inputs (B, N, N, C)."""
        features = inputs_nhwc
        for index, layer in enumerate(self.encoder_layers):
            features = layer(features)
            if index % 2 == 1:
                features = self.pool(features)
        outputs = []
        for number, blocks in enumerate(self.decoder_layers):
            decoded = features
            for index, layer in enumerate(blocks):
                decoded = layer(decoded)
                if index % 2 == 1:
                    decoded = self.upsample(decoded)
            outputs.append(self._head(number, decoded))
        return outputs[0], outputs[1]

    def _head(self, number: int, decoded: tf.Tensor) -> tf.Tensor:
        activation = self._activations[number]
        if not self.config.pad_object:
            return activation(tf.cast(self.head_layers[number](self.upsample(decoded)), tf.float32))
        quarter = self.config.pattern_size_px // 4
        central = activation(tf.cast(self.head_layers[number](decoded), tf.float32))
        padded = tf.pad(central, [[0, 0], [quarter, quarter], [quarter, quarter], [0, 0]])
        if not self._border:
            return padded
        border = activation(tf.cast(self.border_layers[number](self.upsample(decoded)), tf.float32))
        return padded + border * self._border_mask


def _interpolation_matrices(
    start: tf.Tensor, fraction: tf.Tensor, num_rows: int, num_cols: int
) -> tf.Tensor:
    """Per-image 1-D bilinear resampling matrices (..., rows, cols).

    Row ``r`` takes ``(1 - fraction)`` of column ``r + start`` and ``fraction`` of column
    ``r + start + 1``; columns outside ``0 .. num_cols - 1`` do not exist (zero fill).
    """
    rows = tf.range(num_rows)[:, None]
    cols = tf.range(num_cols)[None, :]
    step = cols - rows - start[..., None, None]
    fraction = fraction[..., None, None]
    zero = tf.zeros_like(fraction)
    return tf.where(step == 0, 1.0 - fraction, zero) + tf.where(step == 1, fraction, zero)


def _shift_parts(shift_px: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``floor(-shift)`` (int32) and ``-shift - floor(-shift)`` of ``translate_bilinear``."""
    start = tf.floor(-shift_px)
    return tf.cast(start, tf.int32), -shift_px - start


def _sandwich(left: tf.Tensor, real: tf.Tensor, imag: tf.Tensor, right: tf.Tensor) -> tf.Tensor:
    """``left @ part @ right^T`` for both parts, stacked as rows: (..., 2 R, R').

    Every matmul has identical batch dimensions on both sides: TensorFlow 2.21's oneDNN batch
    matmul can crash (segfault) on this project's CPUs when batch dimensions are broadcast.
    """
    columns = tf.matmul(left, tf.concat([real, imag], axis=-1))  # (..., R, 2K)
    width = real.shape[-1]
    rows = tf.concat([columns[..., :width], columns[..., width:]], axis=-2)  # (..., 2R, K)
    return tf.matmul(rows, right, transpose_b=True)


def _apply_last(values: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
    """``values @ matrix^T`` along the last axis, as one 2-D matmul."""
    shape = tf.shape(values)
    flat = tf.reshape(values, [-1, shape[-1]])
    return tf.reshape(tf.matmul(flat, matrix, transpose_b=True), shape)


def _smooth(values: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
    """``matrix @ values @ matrix^T`` over the last two axes (separable smoothing)."""
    along_x = _apply_last(values, matrix)
    swapped = tf.linalg.matrix_transpose(along_x)
    return tf.linalg.matrix_transpose(_apply_last(swapped, matrix))


class ForwardModel:
    """The float32 physics chain of one :class:`ModelConfig` (constants built once).

    Parameters
    ----------
    model : ModelConfig
        Supplies N, gridsize, ``object_big``, ``pad_object``, ``probe_big``, ``probe_mask`` and
        ``gaussian_smoothing_sigma_px``.
    """

    def __init__(self, model: ModelConfig) -> None:
        n_px = model.pattern_size_px
        self.n_px = n_px
        self.uses_canvas = model.object_big and model.num_channels > 1
        support = physics.object_support_mask(n_px, model.pad_object, model.probe_big)
        self.support = tf.constant(support, tf.float32)
        # both support masks are outer products of one 1-D profile (all ones or a central band)
        self.support_1d = tf.constant(support[n_px // 2], tf.float32)
        self.support_count = float(support.sum())
        matrix = physics.smoothing_matrix(n_px, model.gaussian_smoothing_sigma_px)
        self.smoothing = None if matrix is None else tf.constant(matrix, tf.float32)
        self.disk = tf.constant(physics.disk_mask(n_px), tf.float32) if model.probe_mask else None

    def canvas_size_px(self, offsets_px: np.ndarray) -> int:
        """Canvas side for ``offsets_px`` (``physics.padded_canvas_size_px``); N without canvas."""
        if not self.uses_canvas:
            return self.n_px
        return physics.padded_canvas_size_px(self.n_px, offsets_px)

    def object_patches(
        self, amplitude: tf.Tensor, phase: tf.Tensor, offsets_px: tf.Tensor, canvas_px: int
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Real and imaginary parts (B, C, N, N) of the object patches the physics sees.

        ``amplitude * exp(i phase)``, merged on each group's canvas and re-extracted when the
        canvas is used (``object_big`` with more than one channel).
        """
        real = amplitude * tf.cos(phase)
        imag = amplitude * tf.sin(phase)
        if not self.uses_canvas:
            return real, imag
        return self._merge_and_extract(real, imag, offsets_px, canvas_px)

    def _merge_and_extract(
        self, real: tf.Tensor, imag: tf.Tensor, offsets_px: tf.Tensor, canvas_px: int
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """``extract_from_canvas(merge_on_canvas(patches))`` of ``core/physics.py``, per group."""
        n_px = self.n_px
        pad = (canvas_px - n_px) // 2
        shift_x, shift_y = offsets_px[..., 0], offsets_px[..., 1]
        start_x, frac_x = _shift_parts(shift_x)
        start_y, frac_y = _shift_parts(shift_y)
        place_x = _interpolation_matrices(start_x - pad, frac_x, canvas_px, n_px)  # (B,C,M,N)
        place_y = _interpolation_matrices(start_y - pad, frac_y, canvas_px, n_px)
        moved = _sandwich(place_y, real * self.support, imag * self.support, place_x)
        numerator = tf.reduce_sum(moved, axis=1)  # (B, 2M, M): real rows, then imaginary rows
        weight_y = tf.reduce_sum(place_y * self.support_1d, axis=-1)  # (B, C, M)
        weight_x = tf.reduce_sum(place_x * self.support_1d, axis=-1)
        denominator = tf.reduce_sum(weight_y[..., :, None] * weight_x[..., None, :], axis=1)
        covered = tf.tile(denominator > physics.CANVAS_EPSILON, [1, 2, 1])
        safe = tf.where(covered, tf.tile(denominator, [1, 2, 1]), tf.ones_like(numerator))
        canvas = tf.where(covered, numerator / safe, tf.zeros_like(numerator))
        back_x, back_frac_x = _shift_parts(-shift_x)
        back_y, back_frac_y = _shift_parts(-shift_y)
        take_x = _interpolation_matrices(back_x + pad, back_frac_x, n_px, canvas_px)  # (B,C,N,M)
        take_y = _interpolation_matrices(back_y + pad, back_frac_y, n_px, canvas_px)
        canvas = tf.broadcast_to(
            canvas[:, None], tf.concat([tf.shape(take_y)[:2], [2 * canvas_px, canvas_px]], 0)
        )
        patches = _sandwich(take_y, canvas[..., :canvas_px, :], canvas[..., canvas_px:, :], take_x)
        return patches[..., :n_px, :], patches[..., n_px:, :]

    def farfield_intensity(
        self, patches: tuple[tf.Tensor, tf.Tensor], parameters: PhysicsParameters
    ) -> tf.Tensor:
        """``fftshift(|fft2(probe * smooth(patch) [* disk])|**2 / N**2)`` (B, C, N, N) float32.

        ``patches`` is the ``(real, imag)`` pair of :meth:`object_patches`; the probe is that of
        ``parameters``.
        """
        real, imag = patches
        probe_real, probe_imag = parameters.probe_real.value, parameters.probe_imag.value
        if self.smoothing is not None:
            real = _smooth(real, self.smoothing)
            imag = _smooth(imag, self.smoothing)
        wave_real = probe_real * real - probe_imag * imag
        wave_imag = probe_real * imag + probe_imag * real
        if self.disk is not None:
            wave_real = wave_real * self.disk
            wave_imag = wave_imag * self.disk
        spectrum = tf.signal.fft2d(tf.complex(wave_real, wave_imag))
        intensity = (tf.math.real(spectrum) ** 2 + tf.math.imag(spectrum) ** 2) / float(
            self.n_px**2
        )
        half = self.n_px // 2
        return tf.roll(intensity, shift=[half, half], axis=[-2, -1])


class PtychoPINNNetwork(keras.Model):
    """The model whose variables are the canonical weights: generator and physics parameters.

    ``generator`` (:class:`Generator`), ``physics`` (:class:`PhysicsParameters`) and
    ``forward_model`` (:class:`ForwardModel`, constants only) of one :class:`ModelConfig`.

    Parameters
    ----------
    model : ModelConfig
    dtype_policy : str
        Keras dtype policy of the generator's convolutions; the physics is always float32.
    """

    def __init__(self, model: ModelConfig, dtype_policy: str = 'float32') -> None:
        super().__init__(name='ptychopinn')
        self.config = model
        self.generator = Generator(model, dtype_policy=dtype_policy)
        self.physics = PhysicsParameters(model.pattern_size_px)
        self.forward_model = ForwardModel(model)
        self.built = True

    def generate(self, inputs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Raw amplitude and phase (B, C, N, N) float32 of the generator for inputs (B, C, N, N)."""
        amplitude, phase = self.generator(tf.transpose(inputs, [0, 2, 3, 1]))
        return tf.transpose(amplitude, [0, 3, 1, 2]), tf.transpose(phase, [0, 3, 1, 2])

    def call(
        self,
        inputs: tf.Tensor,
        offsets_px: tf.Tensor,
        canvas_px: int,
        training: bool = False,  # noqa: ARG002  # Keras hands it to every call
    ) -> tuple[tf.Tensor, tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
        """Raw amplitude and phase (B, C, N, N) of the generator and the object patches.

        ``training`` is Keras's flag, handed down by Keras itself (no layer here depends on it).
        """
        amplitude, phase = self.generate(inputs)
        patches = self.forward_model.object_patches(amplitude, phase, offsets_px, canvas_px)
        return amplitude, phase, patches
