"""Where the package's data folders are, in a source checkout and in an installed wheel alike.

``notebooks/`` (the report notebooks) and ``examples/`` (the shipped scenarios and the customer's
audit table) are package data: in a wheel they are real folders inside the installed package; in a
source checkout they are links to the repository's ``notebooks/`` and ``params/`` (one copy of each).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["PACKAGE_FOLDERS", "package_dir"]

#: Data folders shipped inside the package.
PACKAGE_FOLDERS = ("notebooks", "examples", "catalog", "validation")


def package_dir(name: str) -> Path:
    """The file-system path of the package data folder ``name`` (one of :data:`PACKAGE_FOLDERS`)."""
    if name not in PACKAGE_FOLDERS:
        raise ValueError(f"unknown package folder {name!r}; choose one of: {', '.join(PACKAGE_FOLDERS)}")
    # The package is installed as files (setuptools wheels are not zip-safe here), so the
    # Traversable is a real path.
    return Path(str(resources.files("llmsizing") / name))
