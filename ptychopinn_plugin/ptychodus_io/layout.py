"""File names of Ptychodus's standard workflow directory; imports nothing from Ptychodus.

The names are Ptychodus's ``StandardFileLayout`` (``ptychodus.api.io``), written out here so that
the ``ptychopinn`` command can name and check its outputs before it spends a second importing
Ptychodus (tests check that the two agree).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ['DIFFRACTION_FILE', 'PRODUCT_FILE', 'SETTINGS_FILE', 'is_workflow_directory']

PRODUCT_FILE = 'product.h5'
DIFFRACTION_FILE = 'diffraction.h5'
SETTINGS_FILE = 'settings.ini'


def is_workflow_directory(path: Path) -> bool:
    """True for a directory holding ``product.h5`` and ``diffraction.h5``."""
    path = Path(path)
    return (path / PRODUCT_FILE).is_file() and (path / DIFFRACTION_FILE).is_file()
