"""File names of Ptychodus's standard workflow directory; imports nothing from Ptychodus.

The names are Ptychodus's ``StandardFileLayout`` (``ptychodus.api.io``), written out here so that
the ``ptychopinn`` command can name and check its outputs before it spends a second importing
Ptychodus (tests check that the two agree).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    'DIFFRACTION_FILE',
    'PRODUCT_FILE',
    'SETTINGS_FILE',
    'is_workflow_directory',
    'product_file',
]

PRODUCT_FILE = 'product.h5'
DIFFRACTION_FILE = 'diffraction.h5'
SETTINGS_FILE = 'settings.ini'


NUMBERED_PRODUCT = re.compile(r'product\.(\d+)\.h5')
"""What Ptychodus 1.7's batch reconstruction writes: one ``product.NNNNNN.h5`` per result."""


def product_file(directory: Path) -> Path | None:
    """The product of a workflow directory: ``product.h5``, else the ``product.NNNNNN.h5`` with
    the largest number (the last result a Ptychodus batch reconstruction wrote), else None."""
    directory = Path(directory)
    if (directory / PRODUCT_FILE).is_file():
        return directory / PRODUCT_FILE
    numbered = [
        (int(match.group(1)), path)
        for path in directory.glob('product.*.h5')
        if (match := NUMBERED_PRODUCT.fullmatch(path.name)) and path.is_file()
    ]
    return max(numbered)[1] if numbered else None


def is_workflow_directory(path: Path) -> bool:
    """True for a directory holding ``diffraction.h5`` and a product (:func:`product_file`)."""
    path = Path(path)
    return (path / DIFFRACTION_FILE).is_file() and product_file(path) is not None
