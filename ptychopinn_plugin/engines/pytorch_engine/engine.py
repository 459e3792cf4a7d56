"""The PyTorch engine: the engine protocol of ``engines/__init__.py`` on PyTorch + Lightning.

Builds the network (``network.py``) from canonical weights (``weights.py``), trains it through
Lightning (``training.py``) as an iterator of per-epoch reports, and predicts in fixed-size chunks
under ``torch.inference_mode`` (autocast for the network when a mixed precision is configured, the
physics always in float32).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import numpy as np
import torch

from ...config import Backend, ExecutionConfig, Mode, ModelConfig, Precision, TrainingConfig
from ...core.protocol import EpochReport, TrainingArrays
from ...core.weights import check_weights
from ...errors import DeviceUnavailableError, ReconstructionError
from ..chunking import predict_in_chunks, prediction_arrays
from . import training as lightning_training
from .network import PtychoPINNNetwork, build_network
from .weights import get_canonical_weights, set_canonical_weights

__all__ = ['ENGINE_CLASS', 'PyTorchEngine']

_PREDICT_CHUNK_PATTERNS = {'cpu': 128, 'cuda': 256}
"""Patterns of N = 64 per inference chunk, by device type; scaled by (64 / N)**2 for larger N.

On CUDA the chunk matches the default inference batch (256 groups at gridsize 1): a larger chunk
would pad every batch up to it and compute padding (1,024 did four times the work needed).

Every chunk is padded to this size (``engines/chunking.py``): a fixed shape keeps predictions
independent of batch size and batch mates. On out-of-memory the engine halves its chunk."""
_AUTOCAST_DTYPES = {Precision.BF16_MIXED: torch.bfloat16, Precision.FP16_MIXED: torch.float16}


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
    """Engine on PyTorch; see :class:`ptychopinn_plugin.engines.Engine`."""

    backend = Backend.PYTORCH

    def __init__(
        self, model: ModelConfig, execution: ExecutionConfig, weights: dict[str, np.ndarray]
    ) -> None:
        self._model = model
        self._execution = execution
        self._device = _resolve_device(execution)
        self._autocast_dtype = _AUTOCAST_DTYPES.get(Precision(execution.precision))
        if self._autocast_dtype is torch.float16 and self._device.type == 'cpu':
            self._autocast_dtype = torch.bfloat16  # as Lightning trains 16-mixed on a CPU
        self._channels_last = True
        self._chunk = self._chunk_groups(self._device)  # halved on out-of-memory
        network = build_network(model)
        check_weights(model, weights)
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
        check_weights(self._model, weights)
        set_canonical_weights(self._live_network(), weights)

    # -- inference -----------------------------------------------------------------------------

    def predict(self, inputs: np.ndarray, offsets_px: np.ndarray) -> np.ndarray:
        return self._run(inputs, offsets_px, amplitude=False)

    def predict_amplitude(self, inputs: np.ndarray, offsets_px: np.ndarray) -> np.ndarray:
        return self._run(inputs, offsets_px, amplitude=True)

    def _run(self, inputs: np.ndarray, offsets_px: np.ndarray, *, amplitude: bool) -> np.ndarray:
        network = self._live_network()
        inputs, offsets_px = prediction_arrays(self._model, inputs, offsets_px)
        canvas_px = lightning_training.canvas_size_px(self._model, offsets_px)
        was_training = network.training
        network.eval()
        outputs = [np.zeros((0,) + inputs.shape[1:], np.float32 if amplitude else np.complex64)]

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

    def _chunk_groups(self, device: torch.device) -> int:
        patterns = _PREDICT_CHUNK_PATTERNS.get(device.type, _PREDICT_CHUNK_PATTERNS['cpu'])
        patterns = patterns * 64**2 // max(64, self._model.pattern_size_px) ** 2
        return max(1, patterns // self._model.num_channels)

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
            _, _, patches = network(batch, offsets, canvas_px)
        if not amplitude:
            return patches.to(torch.complex64).cpu().numpy()
        physics_model = network.physics
        counts = physics_model.farfield_intensity(patches)
        result = physics_model.intensity_scale() * torch.sqrt(counts)
        return result.float().cpu().numpy()

    # -- training ------------------------------------------------------------------------------

    def fit(self, arrays: TrainingArrays, training: TrainingConfig) -> Iterator[EpochReport]:
        network = self._live_network()
        use_truth = lightning_training.check_arrays(arrays, self._model, training)
        supervised = self._model.mode is Mode.SUPERVISED
        physics_model = network.physics
        physics_model.probe_real.requires_grad_(training.probe_trainable and not supervised)
        physics_model.probe_imag.requires_grad_(training.probe_trainable and not supervised)
        physics_model.log_intensity_scale.requires_grad_(
            training.intensity_scale_trainable and not supervised
        )
        train_loader, validation_loader = lightning_training.make_dataloaders(
            arrays, training, use_truth=use_truth, pin_memory=self._device.type == 'cuda'
        )
        module = lightning_training.PtychoPINNModule(
            network,
            self._model,
            training,
            canvas_px=lightning_training.canvas_size_px(self._model, arrays.offsets_px),
            has_validation=validation_loader is not None,
            channels_last=self._channels_last,
        )

        def train(on_report) -> None:
            torch.manual_seed(training.seed)
            trainer = lightning_training.build_trainer(
                self._execution,
                training,
                accelerator=self._device.type,
                callbacks=[lightning_training.EpochReporter(training, on_report)],
            )
            trainer.fit(module, train_loader, validation_loader)

        return self._epochs(network, train)

    def _epochs(self, network: PtychoPINNNetwork, train) -> Iterator[EpochReport]:
        try:
            yield from lightning_training.iterate_epochs(train)
        finally:
            network.to(self._device)  # Lightning's teardown leaves the module on the CPU
            network.train(False)

    # -- memory --------------------------------------------------------------------------------

    def _free_memory(self) -> None:
        gc.collect()
        if self._device.type == 'cuda':
            torch.cuda.empty_cache()

    def release(self) -> None:
        self._network = None
        self._free_memory()


ENGINE_CLASS = PyTorchEngine
