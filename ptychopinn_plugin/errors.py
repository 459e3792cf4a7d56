"""Typed errors of the plugin: one base class, each subclass also a matching builtin.

Callers that only know the builtins (``ValueError``, ``ImportError``, ...) still catch our errors;
callers that want everything from this package catch :class:`PtychoPINNError`. Messages say what is
wrong, what was received, and how to fix it. Framework-specific failures are translated into these
types at the engine boundary.
"""

from __future__ import annotations


class PtychoPINNError(Exception):
    """Base class of every error raised on purpose by ptychopinn-plugin."""


class DataContractError(PtychoPINNError, ValueError):
    """Data that break the NPZ data contract (shape, quantity, values)."""


class ArchiveError(PtychoPINNError, ValueError):
    """A model archive that is corrupt, foreign, unsafe or incompatible with the request."""


class ConfigurationError(PtychoPINNError, ValueError):
    """A configuration or settings value that is unknown, out of range or inconsistent."""


class BackendUnavailableError(PtychoPINNError, ImportError):
    """The selected framework (TensorFlow or PyTorch) is not installed or cannot be used."""


class DeviceUnavailableError(PtychoPINNError, RuntimeError):
    """The requested compute device (for example ``cuda``) is not available."""


class ReconstructionError(PtychoPINNError, RuntimeError):
    """A reconstruction or training run that cannot proceed (no model, out of memory, ...)."""


class DeviceOutOfMemoryError(ReconstructionError, MemoryError):
    """The compute device ran out of memory; the message names the batch size to lower."""


_OUT_OF_MEMORY_TYPES = frozenset({'OutOfMemoryError', 'ResourceExhaustedError'})
"""Class names of the frameworks' out-of-memory errors (``torch.OutOfMemoryError``, also known as
``torch.cuda.OutOfMemoryError``, and ``tf.errors.ResourceExhaustedError``), matched by name so that
this module imports neither framework."""


def is_out_of_memory(exc: BaseException) -> bool:
    """True when ``exc`` reports that a device (or the host) ran out of memory.

    Recognises :class:`MemoryError` (ours included), PyTorch's and TensorFlow's out-of-memory
    errors, and the ``RuntimeError`` older PyTorch builds raise with "out of memory" in the text.
    """
    if isinstance(exc, MemoryError):
        return True
    if any(cls.__name__ in _OUT_OF_MEMORY_TYPES for cls in type(exc).__mro__):
        return True
    return isinstance(exc, RuntimeError) and 'out of memory' in str(exc).lower()
