"""Reconstructor discovery: the ``ptychodus.reconstructors`` entry points and their start-up hook.

Ptychodus 1.7 builds its reconstructor libraries from a fixed list in ``ModelCore.__init__`` and
reads no entry points for them. What it does offer is the ``ptychodus.plugins`` namespace: at the
start of ``ModelCore.__init__`` (before the libraries are built) ``PluginRegistry.load_plugins``
imports every module there and calls its ``register_plugins(registry)``. This package ships one such
module (``bridge/ptychodus/plugins/ptychopinn_plugin_bridge.py`` in the source tree, installed as
``ptychodus/plugins/ptychopinn_plugin_bridge.py``) that calls :func:`install_start_up_hook`.

The hook replaces the name ``ProcessingCore`` in ``ptychodus.model.core`` (which ``ModelCore``
looks up right after loading the plugins) by a subclass that, before handing the library list to
Ptychodus's own ``ProcessingCore``, builds every library of the ``ptychodus.reconstructors``
entry-point group from the settings registry and merges it in: a library whose name equals a
built-in library's name (case-insensitive) takes its place in the list, any other is appended.
Nothing else changes. Entry points are loaded in name order; one that fails to load or build is
logged and skipped, so a broken third-party plugin cannot stop Ptychodus.

Entry-point protocol: ``factory(settings_registry) -> ReconstructorLibrary`` (or an iterable of
libraries). Limits and the editable-install caveat are in ``specs/ptychodus_api_spec.md`` section 7;
``python -m ptychopinn_plugin.ptychodus_adapter.discovery`` prints what a start-up would find.

The start-up hook also installs the GUI settings-panel hook (``gui_hook.py``).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ptychodus.api.reconstruct import ReconstructorLibrary
from ptychodus.api.settings import SettingsRegistry

from . import gui_hook

logger = logging.getLogger(__name__)

__all__ = [
    'BRIDGE_MODULE',
    'ENTRY_POINT_GROUP',
    'bridge_path',
    'create_library',
    'install_start_up_hook',
    'load_entry_point_libraries',
    'merge_libraries',
]

ENTRY_POINT_GROUP = 'ptychodus.reconstructors'
BRIDGE_MODULE = 'ptychodus.plugins.ptychopinn_plugin_bridge'
_HOOK_MARK = '_ptychodus_reconstructors_entry_points'
_PTYCHODUS_MODEL_CORE = 'ptychodus.model.core'


def create_library(settings_registry: SettingsRegistry) -> ReconstructorLibrary:
    """Entry point ``ptychopinn``: build the PtychoPINN library on Ptychodus's settings.

    Called as ``factory(settings_registry)`` by :func:`load_entry_point_libraries` (Ptychodus
    itself reads no entry points).
    """
    from .library import PtychoPINNLibrary

    return PtychoPINNLibrary(settings_registry)


def load_entry_point_libraries(settings_registry: SettingsRegistry) -> list[ReconstructorLibrary]:
    """Build the libraries of every ``ptychodus.reconstructors`` entry point (failures logged)."""
    libraries: list[ReconstructorLibrary] = []
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        origin = f'{entry_point.name} = {entry_point.value}'
        try:
            factory = entry_point.load()
            produced = factory(settings_registry)
        except Exception:
            logger.exception('skipping reconstructor entry point %s: it failed to load', origin)
            continue
        candidates = [produced] if isinstance(produced, ReconstructorLibrary) else produced
        try:
            candidates = list(candidates)
        except TypeError:
            candidates = [produced]
        for library in candidates:
            if not isinstance(library, ReconstructorLibrary):
                logger.error(
                    'skipping reconstructor entry point %s: it returned %r, not a '
                    'ptychodus.api.reconstruct.ReconstructorLibrary',
                    origin,
                    library,
                )
            elif '_' in library.name:
                logger.error(
                    'skipping library %r from entry point %s: Ptychodus splits algorithm keys at '
                    'the first underscore, so a library name must not contain one',
                    library.name,
                    origin,
                )
            else:
                logger.info('reconstructor library %r from entry point %s', library.name, origin)
                libraries.append(library)
    return libraries


def merge_libraries(
    built_in: Sequence[ReconstructorLibrary], extra: Iterable[ReconstructorLibrary]
) -> list[ReconstructorLibrary]:
    """``built_in`` with each ``extra`` library replacing the one of the same name, or appended."""
    merged = list(built_in)
    for library in extra:
        key = library.name.casefold()
        for index, existing in enumerate(merged):
            if existing.name.casefold() == key:
                logger.info(
                    'reconstructor library %r (%s) replaces %s',
                    library.name,
                    type(library).__module__,
                    type(existing).__module__,
                )
                merged[index] = library
                break
        else:
            merged.append(library)
    return merged


def install_start_up_hook() -> bool:
    """Arrange for ``ModelCore`` to include the entry-point libraries; True when newly installed.

    Does nothing unless ``ptychodus.model.core`` is already imported (it is whenever ``ModelCore``
    is being built, which is when Ptychodus loads its plugins), and nothing twice.
    """
    try:
        gui_hook.install_view_hook()
    except Exception:
        logger.exception('could not install the GUI panel hook; the built-in panels stay')
    core = sys.modules.get(_PTYCHODUS_MODEL_CORE)
    if core is None:
        logger.debug('ptychodus.model.core is not loaded: no ModelCore to hook')
        return False
    original = core.ProcessingCore
    if getattr(original, _HOOK_MARK, False):
        return False

    class ProcessingCore(original):  # type: ignore[misc, valid-type]
        """Ptychodus's ProcessingCore, fed the ``ptychodus.reconstructors`` libraries too."""

        def __init__(
            self,
            task_manager: Any,
            settings_registry: SettingsRegistry,
            product_api: Any,
            algorithm_libraries: Sequence[ReconstructorLibrary],
            *args: Any,
            **kwargs: Any,
        ) -> None:
            self.entry_point_libraries = load_entry_point_libraries(settings_registry)
            self.algorithm_libraries = merge_libraries(
                algorithm_libraries, self.entry_point_libraries
            )
            super().__init__(
                task_manager,
                settings_registry,
                product_api,
                self.algorithm_libraries,
                *args,
                **kwargs,
            )
            processing_api = getattr(self, 'processing_api', None)
            if processing_api is not None:  # for the GUI panel hook
                gui_hook.remember_libraries(processing_api, self.entry_point_libraries)

    setattr(ProcessingCore, _HOOK_MARK, True)
    ProcessingCore.__module__ = __name__
    ProcessingCore.__qualname__ = 'ProcessingCore'
    core.ProcessingCore = ProcessingCore  # type: ignore[attr-defined]  # the hook itself
    logger.debug('installed the %s start-up hook', ENTRY_POINT_GROUP)
    return True


def bridge_path() -> Path | None:
    """Where the installed bridge module is, or None when Ptychodus would not find it."""
    import ptychodus.plugins

    for directory in ptychodus.plugins.__path__:
        candidate = Path(directory) / (BRIDGE_MODULE.rsplit('.', 1)[1] + '.py')
        if candidate.is_file():
            return candidate
    return None


def main() -> int:
    """Print what a Ptychodus start-up would discover (exit status 1 when the bridge is missing)."""
    found = bridge_path()
    print(f'bridge module: {found or "NOT FOUND (editable install? run: pip install .)"}')
    print(f'{ENTRY_POINT_GROUP} entry points:')
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = entry_point.dist.name if entry_point.dist else '?'
        print(f'  {entry_point.name} = {entry_point.value} ({dist})')
    spec = importlib.util.find_spec('ptychopinn_plugin')
    print(f'ptychopinn_plugin imported from: {spec.origin if spec else "?"}')
    return 0 if found else 1


if __name__ == '__main__':
    sys.exit(main())
