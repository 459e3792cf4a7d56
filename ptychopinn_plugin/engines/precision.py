"""What ``Precision = auto`` means on this machine, for both engines (framework-free).

``auto`` trains and predicts with bfloat16 mixed precision where the hardware computes in bfloat16
natively (an NVIDIA GPU of compute capability 8.0 or later; an x86 CPU with AVX512-BF16 or
AMX-BF16), else in float32. Measured on the realistic benchmark (docs/results.md, "Precision: bf16
against fp32"): the same final quality in both precisions on both backends, with training 1.5 to
1.6x faster in bf16 on a CPU with AVX512-BF16. On hardware without native bfloat16 the mixed
precision is emulated and slower, so ``auto`` keeps float32 there.

The environment variable :data:`AUTO_PRECISION_ENV` fixes what ``auto`` resolves to (the test
suite sets it to ``32-true`` so that its results do not depend on the machine); explicit choices
are never changed.
"""

from __future__ import annotations

import logging
import os
import platform
from functools import cache
from pathlib import Path

from ..config import Precision
from ..errors import ConfigurationError

logger = logging.getLogger(__name__)

__all__ = ['AUTO_PRECISION_ENV', 'cpu_supports_bf16', 'resolve_precision']

AUTO_PRECISION_ENV = 'PTYCHOPINN_AUTO_PRECISION'
"""Environment variable that, when set to a precision, is what ``Precision = auto`` resolves to."""

_CPU_BF16_FLAGS = frozenset({'avx512_bf16', 'amx_bf16'})


@cache
def cpu_supports_bf16(cpuinfo: Path = Path('/proc/cpuinfo')) -> bool:
    """Whether this CPU computes bfloat16 natively (x86 flags ``avx512_bf16`` or ``amx_bf16``).

    Read from ``/proc/cpuinfo``; False where it cannot be read (not Linux, not x86).
    """
    if platform.machine().lower() not in {'x86_64', 'amd64'}:
        return False
    try:
        text = cpuinfo.read_text(errors='replace')
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith('flags'):
            return bool(_CPU_BF16_FLAGS & set(line.partition(':')[2].split()))
    return False


def resolve_precision(requested: Precision, *, on_gpu: bool, gpu_supports_bf16: bool) -> Precision:
    """The precision an engine runs for ``requested``: itself, unless it is ``auto``.

    Parameters
    ----------
    requested : the configured precision.
    on_gpu : whether the engine runs on a GPU.
    gpu_supports_bf16 : whether that GPU computes bfloat16 natively (the engine asks its
        framework).

    Raises
    ------
    ConfigurationError
        When :data:`AUTO_PRECISION_ENV` holds something other than an explicit precision.
    """
    requested = Precision(requested)
    if requested is not Precision.AUTO:
        return requested
    override = os.environ.get(AUTO_PRECISION_ENV, '').strip()
    if override:
        explicit = [p.value for p in Precision if p is not Precision.AUTO]
        if override not in explicit:
            raise ConfigurationError(
                f'{AUTO_PRECISION_ENV}={override!r} is not a precision; set it to one of '
                f'{", ".join(explicit)}, or unset it'
            )
        return Precision(override)
    native = gpu_supports_bf16 if on_gpu else cpu_supports_bf16()
    resolved = Precision.BF16_MIXED if native else Precision.FP32
    logger.info(
        'Precision auto: %s (%s %s bfloat16 natively)',
        resolved.value,
        'the GPU' if on_gpu else 'the CPU',
        'computes' if native else 'does not compute',
    )
    return resolved
