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

GUI panels (:func:`install_view_hook`, installed by the same start-up hook): Ptychodus's
``ControllerCore`` builds a fixed list of settings-panel factories and hands it to
``ProcessingController``, which shows for each reconstructor the panel of the factory named like its
library. The hook replaces the name ``ProcessingController`` in ``ptychodus.controller.core`` by a
subclass that swaps in our panel factory (``view.py``) for each entry-point library we have a panel
for (today: :class:`~ptychopinn_plugin.ptychodus_adapter.library.PtychoPINNLibrary`), replacing the
built-in factory of the same name. ``ptychodus.controller.core`` imports PyQt5 and is imported only
when the GUI starts (after ``ModelCore``), so the hook waits for that import through a one-shot
``sys.meta_path`` finder and never imports Qt itself: batch mode, and installs without the ``gui``
extra, load nothing GUI-related. Whatever does not look as expected (no ``ProcessingController``,
other argument names, a panel that fails to build) is logged and the built-in panels stay.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import inspect
import logging
import sys
import weakref
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ptychodus.api.reconstruct import ReconstructorLibrary
from ptychodus.api.settings import SettingsRegistry

logger = logging.getLogger(__name__)

__all__ = [
    'BRIDGE_MODULE',
    'ENTRY_POINT_GROUP',
    'bridge_path',
    'create_library',
    'install_start_up_hook',
    'install_view_hook',
    'load_entry_point_libraries',
    'merge_libraries',
    'with_entry_point_views',
]

ENTRY_POINT_GROUP = 'ptychodus.reconstructors'
BRIDGE_MODULE = 'ptychodus.plugins.ptychopinn_plugin_bridge'
_HOOK_MARK = '_ptychodus_reconstructors_entry_points'
_PTYCHODUS_MODEL_CORE = 'ptychodus.model.core'
_PTYCHODUS_CONTROLLER_CORE = 'ptychodus.controller.core'
_VIEW_HOOK_MARK = '_ptychopinn_plugin_view_factories'
_VIEW_HOOK_ARGUMENTS = ('processing_api', 'file_dialog_factory', 'view_controller_factories')

_libraries_by_processing_api: weakref.WeakKeyDictionary[Any, list[ReconstructorLibrary]] = (
    weakref.WeakKeyDictionary()
)
"""Entry-point libraries of each hooked ``ProcessingCore``, keyed by its ``processing_api`` (the
object Ptychodus hands to ``ProcessingController``); weak, so a closed ``ModelCore`` is freed."""


def create_library(settings_registry: SettingsRegistry, *args: Any, **kwargs: Any):
    """Entry point ``ptychopinn``: build the PtychoPINN library on Ptychodus's settings."""
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
        install_view_hook()
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
                _libraries_by_processing_api[processing_api] = self.entry_point_libraries

    setattr(ProcessingCore, _HOOK_MARK, True)
    ProcessingCore.__module__ = __name__
    ProcessingCore.__qualname__ = 'ProcessingCore'
    core.ProcessingCore = ProcessingCore
    logger.debug('installed the %s start-up hook', ENTRY_POINT_GROUP)
    return True


# --- GUI panels ----------------------------------------------------------------------------------


def _view_controller_factory(library: ReconstructorLibrary, file_dialog_factory: Any) -> Any:
    """Our settings-panel factory for ``library``, or None when we have no panel for it."""
    from .library import PtychoPINNLibrary

    if not isinstance(library, PtychoPINNLibrary):
        return None
    from .view import PtychoPINNViewControllerFactory  # PyQt5: only while the GUI starts

    return PtychoPINNViewControllerFactory(library, file_dialog_factory)


def with_entry_point_views(
    factories: Iterable[Any], processing_api: Any, file_dialog_factory: Any
) -> list[Any]:
    """``factories`` with our panel factory in place of the one named like each of our libraries."""
    merged = list(factories)
    for library in _libraries_by_processing_api.get(processing_api, ()):
        try:
            factory = _view_controller_factory(library, file_dialog_factory)
        except Exception:
            logger.exception('no settings panel for %r: the built-in panel stays', library.name)
            continue
        if factory is None:
            continue
        key = factory.name.casefold()
        for index, existing in enumerate(merged):
            if getattr(existing, 'name', '').casefold() == key:
                merged[index] = factory
                break
        else:
            merged.append(factory)
        logger.info('settings panel of %r: %s', library.name, type(factory).__qualname__)
    return merged


def _hook_processing_controller(module: Any) -> bool:
    """Replace ``module.ProcessingController`` by the subclass that adds our panels."""
    original = getattr(module, 'ProcessingController', None)
    if not isinstance(original, type):
        logger.warning(
            '%s has no ProcessingController class: the PtychoPINN settings panel is not shown '
            '(Ptychodus version not supported?)',
            module.__name__,
        )
        return False
    if getattr(original, _VIEW_HOOK_MARK, False):
        return False
    signature = inspect.signature(original.__init__)
    missing = [name for name in _VIEW_HOOK_ARGUMENTS if name not in signature.parameters]
    if missing:
        logger.warning(
            '%s.ProcessingController takes no %s: the PtychoPINN settings panel is not shown '
            '(Ptychodus version not supported?)',
            module.__name__,
            ', '.join(missing),
        )
        return False

    class ProcessingController(original):  # type: ignore[misc, valid-type]
        """Ptychodus's ProcessingController, with the entry-point libraries' settings panels."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            try:
                bound = signature.bind(self, *args, **kwargs)
                arguments = bound.arguments
                arguments['view_controller_factories'] = with_entry_point_views(
                    arguments['view_controller_factories'],
                    arguments['processing_api'],
                    arguments['file_dialog_factory'],
                )
            except Exception:
                logger.exception('could not add the entry-point settings panels')
            else:
                args, kwargs = bound.args[1:], bound.kwargs
            super().__init__(*args, **kwargs)

    setattr(ProcessingController, _VIEW_HOOK_MARK, True)
    ProcessingController.__module__ = __name__
    ProcessingController.__qualname__ = 'ProcessingController'
    module.ProcessingController = ProcessingController
    logger.debug('installed the settings-panel hook in %s', module.__name__)
    return True


class _PatchingLoader(importlib.abc.Loader):
    """Delegates to a module's own loader, then runs ``patch`` on the executed module."""

    def __init__(self, loader: Any, patch: Callable[[Any], object]) -> None:
        self._loader = loader
        self._patch = patch

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        try:
            self._patch(module)
        except Exception:
            logger.exception('could not hook %s', module.__name__)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ...
        return getattr(self._loader, name)


class _PostImportHook(importlib.abc.MetaPathFinder):
    """One-shot finder: runs ``patch`` on ``module_name`` right after its first import."""

    def __init__(self, module_name: str, patch: Callable[[Any], object]) -> None:
        self.module_name = module_name
        self._patch = patch

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.module_name:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find_spec = getattr(finder, 'find_spec', None)
            spec = find_spec(fullname, path, target) if find_spec else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, 'exec_module'):
            spec.loader = _PatchingLoader(spec.loader, self._patch)
        return spec


def install_view_hook() -> bool:
    """Arrange for Ptychodus's GUI to show our settings panels; True when newly arranged.

    Hooks ``ptychodus.controller.core`` now when it is imported already, else right after its
    import (if the GUI ever starts). Imports nothing from Qt or ``ptychodus.controller``.
    """
    module = sys.modules.get(_PTYCHODUS_CONTROLLER_CORE)
    if module is not None:
        return _hook_processing_controller(module)
    if any(isinstance(finder, _PostImportHook) for finder in sys.meta_path):
        return False
    sys.meta_path.insert(
        0, _PostImportHook(_PTYCHODUS_CONTROLLER_CORE, _hook_processing_controller)
    )
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
