"""Errors from the frameworks, translated: no CUDA device, and running out of memory.

``Device = cuda`` on this machine (no GPU) is tested for real on both backends. Running out of
memory cannot be provoked safely, so a small test double wraps a real engine and raises the
framework's own out-of-memory exception (``torch.OutOfMemoryError``,
``tf.errors.ResourceExhaustedError``) for calls above a size: an engine must halve its own chunk
and streaming inference finish with the same object; an out-of-memory error that reaches inference
(a single group does not fit) must become a clear error, and training must name the batch size to
lower.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from ptychopinn_plugin.config import (
    Backend,
    ExecutionConfig,
    InferenceConfig,
    ModelConfig,
    PluginConfig,
    TrainingConfig,
)
from ptychopinn_plugin.core import physics, simulate
from ptychopinn_plugin.core.weights import initial_weights
from ptychopinn_plugin.engines import get_engine
from ptychopinn_plugin.errors import (
    DeviceOutOfMemoryError,
    DeviceUnavailableError,
    is_out_of_memory,
)
from ptychopinn_plugin.inference import reconstruct_object
from ptychopinn_plugin.workflow import TrainingRun

MODEL = ModelConfig(pattern_size_px=32, n_filters_scale=1)
BATCH_ATOL = 1e-5
"""Objects stitched from batches of different sizes: the engines pad every call to a fixed chunk,
so only float32 accumulation order can differ."""


@pytest.fixture(scope='module')
def scan():
    return simulate.make_scan('smooth', num_patterns=20, pattern_size_px=32, seed=5)


def _weights() -> dict[str, np.ndarray]:
    probe = physics.normalize_probe(simulate.disk_probe(32, 8), MODEL.probe_scale)
    return initial_weights(MODEL, probe, math.log(100.0), 0)


def _framework_oom(backend: Backend) -> Exception:
    """The exception the framework itself raises when device memory runs out."""
    if backend is Backend.PYTORCH:
        import torch

        return torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB')
    import tensorflow as tf

    return tf.errors.ResourceExhaustedError(None, None, 'OOM when allocating tensor')


class OutOfMemoryAbove:
    """A real engine whose ``predict`` fails like the framework for batches above ``limit``."""

    def __init__(self, engine, limit: int, error: Exception) -> None:
        self.engine = engine
        self.solver_device = engine.solver_device
        self.limit = limit
        self.error = error
        self.batch_sizes: list[int] = []

    def predict(self, inputs: np.ndarray, offsets_px: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(inputs.shape[0])
        if inputs.shape[0] > self.limit:
            raise self.error
        return self.engine.predict(inputs, offsets_px)


def _reconstruct(engine, scan, batch_size: int) -> np.ndarray:
    steps = list(
        reconstruct_object(
            engine,
            scan.data,
            MODEL,
            InferenceConfig(batch_size=batch_size, num_partial_results=2),
            object_shape=scan.object_.shape,
        )
    )
    assert steps[-1].finished
    return steps[-1].object_


def test_device_cuda_without_a_gpu_is_a_clear_error(backend) -> None:
    factory = get_engine(backend)
    execution = ExecutionConfig(backend=backend, device='cuda')
    with pytest.raises(DeviceUnavailableError, match=r'device cuda was requested but .* cpu'):
        factory(MODEL, execution, _weights())


def test_the_frameworks_out_of_memory_errors_are_recognised(backend) -> None:
    assert is_out_of_memory(_framework_oom(backend))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError('shapes do not match'))
    assert not is_out_of_memory(ValueError('out of memory'))  # only runtime or memory errors


def _fail_above(engine, backend, limit: int, monkeypatch) -> list[int]:
    """Make ``engine``'s chunk calls above ``limit`` groups raise the framework's out-of-memory
    error; the returned list records the size of every call."""
    real_chunk = engine._predict_chunk
    calls: list[int] = []

    def out_of_memory_above(batch, offsets_px, **kwargs):
        calls.append(batch.shape[0])
        if batch.shape[0] > limit:
            raise _framework_oom(backend)
        return real_chunk(batch, offsets_px, **kwargs)

    monkeypatch.setattr(engine, '_predict_chunk', out_of_memory_above)
    return calls


def test_inference_survives_out_of_memory_with_the_same_object(
    backend, scan, monkeypatch, caplog
) -> None:
    """The engine halves its chunk below what fails; the scan finishes with the same object."""
    engine = get_engine(backend)(MODEL, ExecutionConfig(backend=backend, device='cpu'), _weights())
    try:
        expected = _reconstruct(engine, scan, batch_size=16)
        calls = _fail_above(engine, backend, 4, monkeypatch)
        with caplog.at_level(logging.WARNING):
            result = _reconstruct(engine, scan, batch_size=16)
    finally:
        engine.release()
    assert calls[0] > 4
    assert calls[-1] == 4
    assert 'predicting 4 groups per call from now on' in caplog.text
    np.testing.assert_allclose(result, expected, rtol=0, atol=BATCH_ATOL)


def test_inference_out_of_memory_for_a_single_group_is_a_clear_error(backend, scan) -> None:
    """An out-of-memory error that reaches inference is not retried with smaller batches: the
    engines pad every call to their chunk, so only their own back-off lowers device memory."""
    engine = get_engine(backend)(MODEL, ExecutionConfig(backend=backend, device='cpu'), _weights())
    error = _framework_oom(backend)
    try:
        never = OutOfMemoryAbove(engine, limit=0, error=error)
        with pytest.raises(DeviceOutOfMemoryError, match=r'single group .* Device = cpu') as info:
            _reconstruct(never, scan, batch_size=4)
    finally:
        engine.release()
    assert never.batch_sizes == [4]
    assert info.value.__cause__ is error


def test_inference_does_not_convert_other_errors(backend, scan) -> None:
    engine = get_engine(backend)(MODEL, ExecutionConfig(backend=backend, device='cpu'), _weights())
    try:
        broken = OutOfMemoryAbove(engine, limit=0, error=RuntimeError('shapes do not match'))
        with pytest.raises(RuntimeError, match='shapes do not match'):
            _reconstruct(broken, scan, batch_size=4)
    finally:
        engine.release()
    assert broken.batch_sizes == [4]


class _FitOutOfMemory:
    """Wraps a real engine: its training runs one epoch, then fails like the framework."""

    def __init__(self, engine, error: Exception) -> None:
        self._engine = engine
        self._error = error

    def fit(self, arrays, training, resume=None):
        for report in self._engine.fit(arrays, training, resume):
            yield report
            raise self._error

    def __getattr__(self, name: str):
        return getattr(self._engine, name)


def test_training_out_of_memory_names_the_batch_size_to_lower(backend, scan) -> None:
    config = PluginConfig(
        model=MODEL,
        training=TrainingConfig(num_epochs=3, batch_size=8),
        execution=ExecutionConfig(backend=backend, device='cpu'),
    )
    run = TrainingRun([scan.data], config)
    run.engine = _FitOutOfMemory(run.engine, _framework_oom(backend))
    try:
        with pytest.raises(
            DeviceOutOfMemoryError, match=r'batches of 8 groups .* lower \[PtychoPINNTraining\]'
        ):
            list(run.epochs())
        assert len(run.history) == 1  # the finished epoch is kept
    finally:
        run.release()


def test_an_engine_halves_its_own_chunk_on_out_of_memory(
    backend, scan, monkeypatch, caplog
) -> None:
    """The engines pad every call to a fixed chunk, so only a smaller chunk lowers device memory."""
    engine = get_engine(backend)(MODEL, ExecutionConfig(backend=backend, device='cpu'), _weights())
    inputs = np.random.default_rng(0).random((40, 1, 32, 32), dtype=np.float32)
    offsets = np.zeros((40, 1, 2), np.float32)
    try:
        expected = engine.predict(inputs, offsets)
        calls = _fail_above(engine, backend, 4, monkeypatch)
        with caplog.at_level(logging.WARNING):
            result = engine.predict(inputs, offsets)
        first_chunk = calls[0]
        assert first_chunk > 4
        assert calls[-1] == 4
        assert set(calls[calls.index(4) :]) == {4}
        assert len(calls) == calls.index(4) + 10  # 40 groups in calls of 4, none repeated
        assert f'out of memory predicting {first_chunk} groups per call' in caplog.text
        calls.clear()
        engine.predict(inputs[:3], offsets[:3])
        assert calls == [4]  # the engine keeps the smaller chunk
    finally:
        engine.release()
    np.testing.assert_allclose(result, expected, rtol=0, atol=BATCH_ATOL)


def test_an_engine_out_of_memory_for_one_group_reaches_the_caller(backend, monkeypatch) -> None:
    engine = get_engine(backend)(MODEL, ExecutionConfig(backend=backend, device='cpu'), _weights())
    calls: list[int] = []

    def always_out_of_memory(batch, offsets_px, **kwargs):
        calls.append(batch.shape[0])
        raise _framework_oom(backend)

    monkeypatch.setattr(engine, '_predict_chunk', always_out_of_memory)
    try:
        with pytest.raises(type(_framework_oom(backend))):
            engine.predict(np.zeros((2, 1, 32, 32), np.float32), np.zeros((2, 1, 2), np.float32))
    finally:
        engine.release()
    assert calls[-1] == 1
    assert calls == sorted(calls, reverse=True)


def test_an_engine_does_not_retry_other_errors(backend, monkeypatch) -> None:
    engine = get_engine(backend)(MODEL, ExecutionConfig(backend=backend, device='cpu'), _weights())
    calls: list[int] = []

    def broken(batch, offsets_px, **kwargs):
        calls.append(batch.shape[0])
        raise RuntimeError('shapes do not match')

    monkeypatch.setattr(engine, '_predict_chunk', broken)
    try:
        with pytest.raises(RuntimeError, match='shapes do not match'):
            engine.predict(np.zeros((2, 1, 32, 32), np.float32), np.zeros((2, 1, 2), np.float32))
    finally:
        engine.release()
    assert len(calls) == 1
