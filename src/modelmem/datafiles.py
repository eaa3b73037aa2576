"""The package's data files (catalogues of formats, models, devices, published figures).

Read straight from the installed package folder: importlib.resources would also serve a
zipped install, which modelmem never is, at the cost of importing zipfile and tempfile on
every command's start-up.
"""

from __future__ import annotations

import os

__all__ = ["DATA_DIR", "data_names", "has_data", "read_data"]

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def read_data(*parts: str) -> str:
    """The text of ``data/<parts...>``."""
    with open(os.path.join(DATA_DIR, *parts), encoding="utf-8") as f:
        return f.read()


def data_names(folder: str) -> list[str]:
    """The file names in ``data/<folder>``, sorted."""
    return sorted(os.listdir(os.path.join(DATA_DIR, folder)))


def has_data(*parts: str) -> bool:
    return os.path.isfile(os.path.join(DATA_DIR, *parts))
