"""The engine boundary: one protocol, two mirror-image implementations, chosen in one place.

An engine builds the network described in ``core/weights.py`` and implements hooks, not algorithms:
``fit`` (an iterator of per-epoch reports), ``predict`` (one batch of groups), canonical weights in
and out, and ``release``. Only NumPy arrays and frozen dataclasses cross this boundary. Grouping,
normalisation, stitching, archives and metrics are core code used identically by both engines.

``get_engine(backend)`` imports the selected framework lazily; a backend that is not installed is an
error naming the pip extra, never a silent switch to the other backend.
"""

from __future__ import annotations

import importlib
import importlib.util

from ..config import Backend, ExecutionConfig
from ..core.protocol import EngineFactory
from ..errors import BackendUnavailableError

__all__ = ['backend_is_installed', 'get_engine', 'solver_device']


_MODULES = {
    Backend.PYTORCH: 'ptychopinn_plugin.engines.pytorch_engine.engine',
    Backend.TENSORFLOW: 'ptychopinn_plugin.engines.tensorflow_engine.engine',
}
_REQUIREMENTS = {
    Backend.PYTORCH: ('torch', 'lightning'),
    Backend.TENSORFLOW: ('tensorflow', 'keras'),
}
_EXTRAS = {Backend.PYTORCH: 'torch', Backend.TENSORFLOW: 'tensorflow'}


def backend_is_installed(backend: Backend | str) -> bool:
    """True when every package the backend needs can be found (nothing is imported)."""
    backend = Backend(backend)
    return all(importlib.util.find_spec(name) is not None for name in _REQUIREMENTS[backend])


def _missing_message(backend: Backend, missing: list[str]) -> str:
    return (
        f'the {backend.value} backend needs {", ".join(missing)}, which is not installed. '
        f"Install it with: pip install 'ptychopinn-plugin[{_EXTRAS[backend]}]' "
        f'(or select the other backend in the settings: [PtychoPINN] Backend = '
        f'{"tensorflow" if backend is Backend.PYTORCH else "pytorch"})'
    )


def get_engine(backend: Backend | str) -> EngineFactory:
    """The engine class of ``backend``, importing its framework now.

    Raises
    ------
    BackendUnavailableError
        When the framework is not installed (the message names the pip extra).
    """
    backend = Backend(backend)
    missing = [name for name in _REQUIREMENTS[backend] if importlib.util.find_spec(name) is None]
    if missing:
        raise BackendUnavailableError(_missing_message(backend, missing))
    try:
        module = importlib.import_module(_MODULES[backend])
    except ImportError as exc:
        raise BackendUnavailableError(
            f'{_missing_message(backend, [str(exc.name or exc)])} ({exc})'
        ) from exc
    factory: EngineFactory = module.ENGINE_CLASS
    return factory


def solver_device(execution: ExecutionConfig) -> str | None:
    """Where the built-in refinement and the data checks run for ``execution``, before any engine
    is built (the pre-training check, the probe refinement and choice): what the engine's
    ``solver_device`` will be. PyTorch: the device its engine resolves (``'cpu'``, ``'cuda:K'``);
    TensorFlow (the solver has no TensorFlow path): None, NumPy on the CPU, or on a GPU that GPU
    through PyTorch when a CUDA build of PyTorch is installed beside it.

    Raises
    ------
    BackendUnavailableError, DeviceUnavailableError
        As building the engine would: the framework is missing, or CUDA was asked for and none
        is there.
    """
    get_engine(execution.backend)  # the framework's own error when it is missing
    device: str | None = importlib.import_module(_MODULES[execution.backend]).solver_device(
        execution
    )
    return device
