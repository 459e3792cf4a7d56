"""PtychoPINN inside Ptychodus: reconstructor library, settings, discovery, GUI panel.

- ``library.py``: ``PtychoPINNLibrary`` (keys ``ptychopinn_pinn``, ``ptychopinn_supervised``)
- ``reconstructor.py``: reconstruct, train, model archives, training-data export
- ``settings.py``: Ptychodus settings groups and ``build_config`` (settings -> ``PluginConfig``)
- ``training_io.py``: training inputs (NPZ or workflow directory), loss CSV and figure
- ``discovery.py``: the ``ptychodus.reconstructors`` entry-point group and the start-up hook
- ``gui_hook.py``: the GUI hook that shows our settings panel (installed by the start-up hook)
- ``view.py``: the settings panel of the GUI (imports Qt; loaded only by the GUI)

Reading and writing Ptychodus's files and objects is ``ptychopinn_plugin.ptychodus_io``.
Importing this package imports Ptychodus but neither TensorFlow nor PyTorch. The contract with
Ptychodus is written down in ``specs/ptychodus_api_spec.md`` section 7.
"""

from .library import PtychoPINNLibrary
from .settings import PtychoPINNSettings, build_config

__all__ = ['PtychoPINNLibrary', 'PtychoPINNSettings', 'build_config']
