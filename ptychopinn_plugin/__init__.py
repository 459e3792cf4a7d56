"""PtychoPINN for Ptychodus: a physics-informed neural network ptychography reconstructor.

Importing this package loads neither TensorFlow nor PyTorch; the selected engine is imported only
when it is used (``ptychopinn_plugin.engines.get_engine``). The framework-free core (data contract,
grouping, stitching, physics oracle, archives, metrics, simulation) is in
``ptychopinn_plugin.core``.
"""

from importlib.metadata import PackageNotFoundError, version

from .config import Backend, Device, Mode, PluginConfig
from .errors import (
    ArchiveError,
    BackendUnavailableError,
    ConfigurationError,
    DataContractError,
    PtychoPINNError,
)

try:
    __version__ = version('ptychopinn-plugin')
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = '0.0.0+unknown'

__all__ = [
    'ArchiveError',
    'Backend',
    'BackendUnavailableError',
    'ConfigurationError',
    'DataContractError',
    'Device',
    'Mode',
    'PluginConfig',
    'PtychoPINNError',
    '__version__',
]
