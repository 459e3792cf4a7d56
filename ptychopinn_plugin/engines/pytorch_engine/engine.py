"""The PyTorch engine: the engine protocol of ``core/protocol.py`` on PyTorch + Lightning.

Builds the network (``network.py``) from canonical weights (``weights.py``), trains it through
Lightning (``training.py``) as an iterator of per-epoch reports, and predicts in fixed-size chunks
under ``torch.inference_mode`` (autocast for the network when a mixed precision is configured, the
physics always in float32).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator

import numpy as np
import torch

from ...config import Backend, ExecutionConfig, ModelConfig, Precision, TrainingConfig
from ...core import physics
from ...core.protocol import EpochReport, OptimizerState, ResumePoint, TrainingArrays
from ...errors import DeviceUnavailableError, ReconstructionError
from ..chunking import predict_chunk_groups, predict_in_chunks, prediction_arrays
from ..precision import resolve_precision
from .network import PtychoPINNNetwork
from .training import fit_network
from .weights import get_canonical_weights, set_canonical_weights

__all__ = ['ENGINE_CLASS', 'PREDICT_CHUNK_PATTERNS', 'PyTorchEngine', 'solver_device']

PREDICT_CHUNK_PATTERNS = {'cpu': 128, 'gpu': 256}
"""Patterns of N = 64 per inference call, by device kind (``chunking.predict_chunk_groups``).

On a GPU the chunk matches the default inference batch (256 groups at gridsize 1), so batches are
not padded beyond it. Every call is padded to the chunk (``engines/chunking.py``); on
out-of-memory the engine halves it."""
_AUTOCAST_DTYPES = {Precision.BF16_MIXED: torch.bfloat16, Precision.FP16_MIXED: torch.float16}


def solver_device(execution: ExecutionConfig) -> str | None:
    """Where the built-in refinement runs beside this engine (``solver/arrays.py``): the engine's
    own device, ``'cpu'`` or ``'cuda:K'``."""
    return str(_resolve_device(execution))


def _resolve_device(execution: ExecutionConfig) -> torch.device:
    requested = execution.device.value
    if requested == 'cuda' and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            'device cuda was requested but PyTorch sees no CUDA GPU '
            f'(torch {torch.__version__}, CUDA build {torch.version.cuda or "none"}); install a '
            'CUDA build of PyTorch on a machine with an NVIDIA GPU, or set the device to auto or '
            'cpu'
        )
    if requested == 'cpu' or not torch.cuda.is_available():
        return torch.device('cpu')
    return torch.device('cuda', torch.cuda.current_device())


class PyTorchEngine:
    """Engine on PyTorch; see :class:`ptychopinn_plugin.core.protocol.Engine`."""

    backend = Backend.PYTORCH

    def __init__(
        self, model: ModelConfig, execution: ExecutionConfig, weights: dict[str, np.ndarray]
    ) -> None:
        self._model = model
        self._device = _resolve_device(execution)
        self.solver_device: str | None = str(self._device)
        on_gpu = self._device.type == 'cuda'
        self.precision = resolve_precision(
            execution.precision,
            on_gpu=on_gpu,
            # native bfloat16 from compute capability 8.0 (Ampere) on, as in the TensorFlow engine
            gpu_supports_bf16=on_gpu and torch.cuda.get_device_capability(self._device) >= (8, 0),
        )
        self._execution = execution.model_copy(update={'precision': self.precision})
        self._autocast_dtype = _AUTOCAST_DTYPES.get(self.precision)
        if self._autocast_dtype is torch.float16 and self._device.type == 'cpu':
            self._autocast_dtype = torch.bfloat16  # as Lightning trains 16-mixed on a CPU
        self._channels_last = True
        kind = 'gpu' if self._device.type == 'cuda' else 'cpu'
        self._chunk = predict_chunk_groups(model, PREDICT_CHUNK_PATTERNS[kind])  # halved on OOM
        self._optimizer_state: Callable[[], OptimizerState] | None = None
        network = PtychoPINNNetwork(model)
        set_canonical_weights(network, weights)
        self._network: PtychoPINNNetwork | None = network.to(
            self._device, memory_format=torch.channels_last
        )

    # -- weights -------------------------------------------------------------------------------

    def _live_network(self) -> PtychoPINNNetwork:
        if self._network is None:
            raise ReconstructionError('this engine was released; build a new engine')
        return self._network

    def get_weights(self) -> dict[str, np.ndarray]:
        return get_canonical_weights(self._live_network())

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        set_canonical_weights(self._live_network(), weights)

    # -- inference -----------------------------------------------------------------------------

    def predict(self, inputs: np.ndarray, offsets_px: np.ndarray) -> np.ndarray:
        return self._run(inputs, offsets_px, amplitude=False)

    def predict_amplitude(self, inputs: np.ndarray, offsets_px: np.ndarray) -> np.ndarray:
        return self._run(inputs, offsets_px, amplitude=True)

    def _run(self, inputs: np.ndarray, offsets_px: np.ndarray, *, amplitude: bool) -> np.ndarray:
        network = self._live_network()
        inputs, offsets_px = prediction_arrays(self._model, inputs, offsets_px)
        canvas_px = physics.padded_canvas_size_px(self._model.pattern_size_px, offsets_px)
        was_training = network.training
        network.eval()
        outputs = [np.zeros((0, *inputs.shape[1:]), np.float32 if amplitude else np.complex64)]

        def run_chunk(batch: np.ndarray, offsets: np.ndarray) -> np.ndarray:
            return self._predict_chunk(batch, offsets, canvas_px=canvas_px, amplitude=amplitude)

        try:
            with torch.inference_mode():
                chunks, self._chunk = predict_in_chunks(
                    run_chunk, inputs, offsets_px, self._chunk, free_memory=self._free_memory
                )
        finally:
            network.train(was_training)
        return np.concatenate(outputs + chunks)

    def _predict_chunk(
        self, inputs: np.ndarray, offsets_px: np.ndarray, *, canvas_px: int, amplitude: bool
    ) -> np.ndarray:
        """One call of exactly the chunk size: patches, or count amplitudes when ``amplitude``."""
        network = self._live_network()
        device = next(network.parameters()).device
        batch = torch.from_numpy(inputs).to(device)
        offsets = torch.from_numpy(offsets_px).to(device)
        if self._channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        enabled = self._autocast_dtype is not None
        with torch.autocast(device.type, dtype=self._autocast_dtype, enabled=enabled):
            _, _, patches = network(batch, offsets, canvas_px=canvas_px)
        if not amplitude:
            return patches.to(torch.complex64).cpu().numpy()
        parameters = network.physics
        counts = network.forward_model.farfield_intensity(patches, parameters)
        result = parameters.intensity_scale() * torch.sqrt(counts)
        return result.float().cpu().numpy()

    # -- training ------------------------------------------------------------------------------

    def fit(
        self,
        arrays: TrainingArrays,
        training: TrainingConfig,
        resume: ResumePoint | None = None,
    ) -> Iterator[EpochReport]:
        epochs, self._optimizer_state = fit_network(
            self._live_network(),
            arrays,
            training,
            execution=self._execution,
            device=self._device,
            channels_last=self._channels_last,
            resume=resume,
        )
        return epochs

    def optimizer_state(self) -> OptimizerState:
        if self._optimizer_state is None:
            raise ReconstructionError('optimizer_state: this engine has not trained yet')
        return self._optimizer_state()

    # -- memory --------------------------------------------------------------------------------

    def _free_memory(self) -> None:
        gc.collect()
        if self._device.type == 'cuda':
            torch.cuda.empty_cache()

    def release(self) -> None:
        self._network = None
        self._free_memory()


ENGINE_CLASS = PyTorchEngine
