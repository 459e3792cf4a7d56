"""The ``PtychoPINN`` reconstructor library: two reconstructors sharing one set of settings.

Ptychodus keys reconstructors as ``f'{library.name.casefold()}_{reconstructor.name.casefold()}'``,
so this library provides ``ptychopinn_pinn`` and ``ptychopinn_supervised``. It takes the place of
Ptychodus's built-in (empty) PtychoPINN library through ``discovery.py``. The library logger is
``ptychopinn_plugin``, the parent of every logger of this package, so Ptychodus's task log (and its
log-level control) sees the engines and the core too.
"""

from __future__ import annotations

from collections.abc import Iterator

from ptychodus.api.reconstruct import Reconstructor, ReconstructorLibrary
from ptychodus.api.settings import SettingsRegistry

from .. import __version__
from ..config import Mode
from .reconstructor import PtychoPINNReconstructor
from .settings import PtychoPINNSettings

__all__ = ['LIBRARY_NAME', 'PtychoPINNLibrary']

LIBRARY_NAME = 'PtychoPINN'
"""Ptychodus splits keys at the first underscore: a library name must not contain one."""
LOGGER_NAME = 'ptychopinn_plugin'


class PtychoPINNLibrary(ReconstructorLibrary):
    """PtychoPINN for Ptychodus: ``PINN`` and ``Supervised``, either backend."""

    def __init__(self, settings_registry: SettingsRegistry) -> None:
        super().__init__(LOGGER_NAME)
        self.settings = PtychoPINNSettings(settings_registry)
        # Attribute names of Ptychodus's built-in library, for settings panels written against it.
        self.model_settings = self.settings.model_settings
        self.training_settings = self.settings.training_settings
        self.inference_settings = self.settings.inference_settings
        self.plugin_settings = self.settings.plugin_settings
        self.enumerators = self.settings.enumerators
        self._reconstructors = [
            PtychoPINNReconstructor(Mode.PINN, self.settings),
            PtychoPINNReconstructor(Mode.SUPERVISED, self.settings),
        ]
        self.get_logger().info('ptychopinn-plugin %s', __version__)

    @property
    def name(self) -> str:
        return LIBRARY_NAME

    def __iter__(self) -> Iterator[Reconstructor]:
        return iter(self._reconstructors)

    def get_reconstructor(self, name: str) -> PtychoPINNReconstructor:
        """The reconstructor ``PINN`` or ``Supervised`` (case-insensitive)."""
        for reconstructor in self._reconstructors:
            if reconstructor.name.casefold() == name.casefold():
                return reconstructor
        names = ', '.join(r.name for r in self._reconstructors)
        raise KeyError(f'no PtychoPINN reconstructor {name!r}; choose one of {names}')
