"""Bridge from Ptychodus's plugin namespace to the ``ptychodus.reconstructors`` entry points.

Shipped by ptychopinn-plugin as ``ptychodus/plugins/ptychopinn_plugin_bridge.py`` (source in
``bridge/`` so that nothing named ``ptychodus`` sits at the repository root). Ptychodus 1.7 imports
every module of ``ptychodus.plugins`` at the start of ``ModelCore`` and calls its
``register_plugins``; this one installs the hook that builds every library of the
``ptychodus.reconstructors`` entry-point group into Ptychodus's reconstructor list
(``ptychopinn_plugin.ptychodus_adapter.discovery``). It registers nothing in the plugin registry
itself, and it never lets an error escape: Ptychodus only catches ``AttributeError`` here, and a
plugin must not be able to stop Ptychodus from starting.
"""

import logging

logger = logging.getLogger(__name__)


def register_plugins(registry: object) -> None:  # noqa: ARG001  # Ptychodus's hook signature
    """Ptychodus's plugin hook: install the reconstructor entry-point start-up hook.

    ``registry`` (Ptychodus's plugin registry) is not needed: the hook acts on ``ModelCore``.
    """
    try:
        from ptychopinn_plugin.ptychodus_adapter.discovery import install_start_up_hook

        install_start_up_hook()
    except Exception:
        logger.exception(
            'ptychopinn-plugin could not install its reconstructor discovery; Ptychodus starts '
            'without the ptychodus.reconstructors entry points (PtychoPINN and third parties)'
        )
