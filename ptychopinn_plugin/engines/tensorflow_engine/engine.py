"""The TensorFlow implementation of the engine protocol (``ENGINE_CLASS``).

:class:`TensorFlowEngine` places the network on the requested device (one GPU, the CPU, or a
``tf.distribute`` strategy for several devices), chooses the Keras dtype policy from the precision,
and implements ``fit`` / ``predict`` / ``predict_amplitude`` / canonical weights / ``release``.
Arrays cross the boundary as NumPy, channels first (B, C, N, N). The network and physics are in
``network.py``, the training loop in ``training.py``, the weight mapping in ``weights.py``.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import os
from collections.abc import Callable, Iterator

import keras
import numpy as np
import tensorflow as tf

from ...config import Backend, Device, ExecutionConfig, ModelConfig, Precision, TrainingConfig
from ...core.protocol import EpochReport, OptimizerState, ResumePoint, TrainingArrays
from ...errors import (
    ConfigurationError,
    DeviceUnavailableError,
    ReconstructionError,
)
from ..chunking import predict_chunk_groups, predict_in_chunks, prediction_arrays
from ..precision import resolve_precision
from .network import PtychoPINNNetwork
from .training import fit_network
from .weights import get_canonical_weights, set_canonical_weights

logger = logging.getLogger(__name__)

__all__ = [
    'ENGINE_CLASS',
    'JIT_COMPILE',
    'PREDICT_CHUNK_PATTERNS',
    'TensorFlowEngine',
    'solver_device',
]

PREDICT_CHUNK_PATTERNS = {'cpu': 32, 'gpu': 256}
"""Patterns of N = 64 per compiled inference call at gridsize 1, by device kind
(``chunking.predict_chunk_groups``); this engine keeps that many groups at every gridsize (C
patterns each). Every call is padded to the chunk (``engines/chunking.py``); on out-of-memory the
engine halves it."""
JIT_COMPILE = False
"""Compile steps with XLA (off: the oneDNN kernels are faster on CPU for this network)."""
_POLICIES = {
    Precision.FP32: 'float32',
    Precision.BF16_MIXED: 'mixed_bfloat16',
    Precision.FP16_MIXED: 'mixed_float16',
}


def _enable_memory_growth() -> list:
    """Ask TensorFlow to grow GPU memory on demand (before the first GPU op); the GPUs."""
    gpus = tf.config.list_physical_devices('GPU')
    for gpu in gpus:
        try:
            if not tf.config.experimental.get_memory_growth(gpu):
                tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: the setting can no longer change
            logger.debug('GPU %s already initialised; memory growth left as it is', gpu.name)
    return gpus


def _gpu_supports_bf16() -> bool:
    """Whether the first GPU computes bfloat16 natively (compute capability 8.0 or later)."""
    gpus = tf.config.list_physical_devices('GPU')
    if not gpus:
        return False
    details = tf.config.experimental.get_device_details(gpus[0])
    return tuple(details.get('compute_capability', (0, 0))) >= (8, 0)


def _placement(execution: ExecutionConfig) -> tuple[str, tf.distribute.Strategy | None]:
    """The device string for single-device work and the strategy for several devices."""
    gpus = _enable_memory_growth()
    device = Device(execution.device)
    if device is Device.CUDA and not gpus:
        raise DeviceUnavailableError(
            'device cuda was requested but TensorFlow sees no GPU '
            f'(tensorflow {tf.__version__}, built with CUDA: {tf.test.is_built_with_cuda()}); '
            'install a CUDA build of TensorFlow (pip install "tensorflow[and-cuda]") or select '
            'device cpu or auto'
        )
    use_gpu = bool(gpus) and device is not Device.CPU
    if execution.num_nodes > 1:
        if 'TF_CONFIG' not in os.environ:
            raise ConfigurationError(
                f'num_nodes={execution.num_nodes} needs multi-worker TensorFlow: set TF_CONFIG on '
                'every node (cluster and task), as tf.distribute.MultiWorkerMirroredStrategy '
                'expects, or train on one node'
            )
        return ('/GPU:0' if use_gpu else '/CPU:0'), tf.distribute.MultiWorkerMirroredStrategy()
    if execution.devices > 1:
        kind = 'GPU' if use_gpu else 'CPU'
        available = [d.name for d in tf.config.list_logical_devices(kind)]
        if len(available) < execution.devices:
            raise DeviceUnavailableError(
                f'{execution.devices} devices were requested but TensorFlow sees '
                f'{len(available)} {kind} device(s) (device {device.value}); lower devices, or '
                'select device cuda on a machine with enough GPUs'
            )
        names = available[: execution.devices]
        return names[0], tf.distribute.MirroredStrategy(devices=names)
    return ('/GPU:0' if use_gpu else '/CPU:0'), None


def solver_device(execution: ExecutionConfig) -> str | None:
    """Where the built-in refinement runs beside this engine (``solver/arrays.py``).

    The solver has no TensorFlow path (its in-place array updates have no TensorFlow
    equivalent). On the CPU it runs with NumPy (None). When this engine runs on a GPU, the
    refinement runs on that GPU through PyTorch if a CUDA build of PyTorch is installed beside
    TensorFlow (``'cuda:K'``); without one it runs with NumPy on the CPU, and the log names the
    install that moves it to the GPU.
    """
    if Device(execution.device) is Device.CPU or not _enable_memory_growth():
        return None
    if importlib.util.find_spec('torch') is not None:
        import torch

        if torch.cuda.is_available():
            return f'cuda:{torch.cuda.current_device()}'
    logger.info(
        'the built-in refinement runs with NumPy on the CPU while TensorFlow uses the GPU: '
        "install a CUDA build of PyTorch (pip install 'ptychopinn-plugin[torch]') to refine on "
        'the GPU'
    )
    return None


class TensorFlowEngine:
    """PtychoPINN on Keras 3 / TensorFlow (see :class:`~ptychopinn_plugin.core.protocol.Engine`).

    Parameters
    ----------
    model : ModelConfig
        The architecture and forward model.
    execution : ExecutionConfig
        Device, precision and number of devices.
    weights : dict of str -> ndarray
        Canonical weights (``core.weights.initial_weights`` or an archive's).
    """

    backend = Backend.TENSORFLOW

    def __init__(
        self, model: ModelConfig, execution: ExecutionConfig, weights: dict[str, np.ndarray]
    ) -> None:
        self._model = model
        self._device, self._strategy = _placement(execution)
        self.solver_device = solver_device(execution)
        on_gpu = 'GPU' in self._device
        self.precision = resolve_precision(
            execution.precision, on_gpu=on_gpu, gpu_supports_bf16=on_gpu and _gpu_supports_bf16()
        )
        self._execution = execution.model_copy(update={'precision': self.precision})
        self._policy = _POLICIES[self.precision]
        with self._scope():
            self._network: PtychoPINNNetwork | None = PtychoPINNNetwork(
                model, dtype_policy=self._policy
            )
        set_canonical_weights(self._network, weights)
        self._predict_functions: dict[tuple[str, int, int], object] = {}
        self._optimizer_state: Callable[[], OptimizerState] | None = None
        kind = 'gpu' if 'GPU' in self._device else 'cpu'
        patterns = PREDICT_CHUNK_PATTERNS[kind] * model.num_channels
        self._chunk = predict_chunk_groups(model, patterns)  # halved on out-of-memory
        logger.info(
            'TensorFlow engine on %s (%s%s)',
            self._device,
            self._policy,
            f', {self._strategy.num_replicas_in_sync} replicas' if self._strategy else '',
        )

    def _scope(self):
        return self._strategy.scope() if self._strategy is not None else tf.device(self._device)

    def _live_network(self) -> PtychoPINNNetwork:
        if self._network is None:
            raise ReconstructionError('this TensorFlow engine was released; build a new engine')
        return self._network

    def fit(
        self,
        arrays: TrainingArrays,
        training: TrainingConfig,
        resume: ResumePoint | None = None,
    ) -> Iterator[EpochReport]:
        """Train, yielding an :class:`EpochReport` after each epoch (stop any time)."""
        epochs, self._optimizer_state = fit_network(
            self._live_network(),
            arrays,
            training,
            device=self._device,
            precision=self.precision,
            strategy=self._strategy,
            jit_compile=JIT_COMPILE,
            resume=resume,
        )
        return epochs

    def optimizer_state(self) -> OptimizerState:
        if self._optimizer_state is None:
            raise ReconstructionError('optimizer_state: this engine has not trained yet')
        return self._optimizer_state()

    def _compiled(self, kind: str, canvas_px: int, chunk: int):
        key = (kind, canvas_px, chunk)
        if key not in self._predict_functions:
            network = self._live_network()
            model = self._model
            shape = (
                chunk,
                model.num_channels,
                model.pattern_size_px,
                model.pattern_size_px,
            )
            signature = [tf.TensorSpec(shape, tf.float32), tf.TensorSpec((*shape[:2], 2))]

            def run(inputs, offsets):
                _, _, patches = network(inputs, offsets, canvas_px=canvas_px, training=False)
                if kind == 'patches':
                    return tf.complex(*patches)
                parameters = network.physics
                intensity = network.forward_model.farfield_intensity(patches, parameters)
                return parameters.intensity_scale() * tf.sqrt(intensity)

            self._predict_functions[key] = tf.function(
                run, input_signature=signature, jit_compile=JIT_COMPILE
            )
        return self._predict_functions[key]

    def _run(self, inputs: np.ndarray, offsets_px: np.ndarray, *, amplitude: bool) -> np.ndarray:
        inputs, offsets = prediction_arrays(self._model, inputs, offsets_px)
        canvas_px = self._live_network().forward_model.canvas_size_px(offsets)

        def run_chunk(batch: np.ndarray, offsets: np.ndarray) -> np.ndarray:
            return self._predict_chunk(batch, offsets, canvas_px=canvas_px, amplitude=amplitude)

        chunks, self._chunk = predict_in_chunks(
            run_chunk, inputs, offsets, self._chunk, free_memory=self._free_memory
        )
        dtype = np.float32 if amplitude else np.complex64
        if not chunks:
            return np.zeros(inputs.shape, dtype)
        return np.concatenate(chunks).astype(dtype, copy=False)

    def _predict_chunk(
        self, inputs: np.ndarray, offsets_px: np.ndarray, *, canvas_px: int, amplitude: bool
    ) -> np.ndarray:
        """One call of exactly the chunk size: patches, or count amplitudes when ``amplitude``."""
        kind = 'amplitude' if amplitude else 'patches'
        function = self._compiled(kind, canvas_px, inputs.shape[0])
        with tf.device(self._device):
            return function(inputs, offsets_px).numpy()

    def predict(self, inputs: np.ndarray, offsets_px: np.ndarray) -> np.ndarray:
        """Object patches (B, C, N, N) complex64 for inputs (B, C, N, N) float32.

        With ``object_big`` and gridsize > 1, the patches re-extracted from each group's canvas.
        """
        return self._run(inputs, offsets_px, amplitude=False)

    def predict_amplitude(self, inputs: np.ndarray, offsets_px: np.ndarray) -> np.ndarray:
        """Predicted count amplitudes ``K |F|`` (B, C, N, N) float32."""
        return self._run(inputs, offsets_px, amplitude=True)

    def get_weights(self) -> dict[str, np.ndarray]:
        """Canonical weights, float32 copies."""
        return get_canonical_weights(self._live_network())

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load canonical weights (checked with ``core.weights.check_weights``)."""
        set_canonical_weights(self._live_network(), weights)

    def _free_memory(self) -> None:
        gc.collect()

    def release(self) -> None:
        """Drop the network and compiled functions, clear the Keras session, collect garbage."""
        self._predict_functions.clear()
        self._network = None
        self._strategy = None
        keras.backend.clear_session(free_memory=True)
        gc.collect()


ENGINE_CLASS = TensorFlowEngine
