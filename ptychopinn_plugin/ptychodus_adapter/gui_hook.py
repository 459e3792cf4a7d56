"""The GUI settings-panel hook: our panel for each entry-point library we have one for.

Installed by the start-up hook of ``discovery.py`` (:func:`install_view_hook`). Ptychodus's
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
import inspect
import logging
import sys
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from ptychodus.api.reconstruct import ReconstructorLibrary

logger = logging.getLogger(__name__)

__all__ = ['install_view_hook', 'remember_libraries', 'with_entry_point_views']

_PTYCHODUS_CONTROLLER_CORE = 'ptychodus.controller.core'
_VIEW_HOOK_MARK = '_ptychopinn_plugin_view_factories'
_VIEW_HOOK_ARGUMENTS = ('processing_api', 'file_dialog_factory', 'view_controller_factories')

_libraries_by_processing_api: weakref.WeakKeyDictionary[Any, list[ReconstructorLibrary]] = (
    weakref.WeakKeyDictionary()
)
"""Entry-point libraries of each hooked ``ProcessingCore``, keyed by its ``processing_api`` (the
object Ptychodus hands to ``ProcessingController``); weak, so a closed ``ModelCore`` is freed."""


def remember_libraries(processing_api: Any, libraries: list[ReconstructorLibrary]) -> None:
    """Record the entry-point libraries of a ``ProcessingCore`` for its ``ProcessingController``."""
    _libraries_by_processing_api[processing_api] = libraries


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
    signature = inspect.signature(original.__init__)  # type: ignore[misc]  # binds self below
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
