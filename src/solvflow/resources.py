"""Locating the data shipped with solvflow (force fields, systems, workflows).

In an installed wheel the data live in ``solvflow/data/`` (see the hatch
``force-include`` table in pyproject.toml).  In a source checkout used
without installation (``PYTHONPATH=src``) they are the top-level folders of
the repository.  Both are found here, nowhere else.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_PACKAGE_DATA = {
    "forcefields": ("ffxml", "solvflow"),
    "systems": ("systems",),
    "workflows": ("workflows",),
}


def _package_root() -> Path:
    return Path(str(resources.files("solvflow")))


def data_dir(kind: str) -> Path:
    """Folder holding the shipped files of one kind.

    Parameters
    ----------
    kind : str
        ``"forcefields"``, ``"systems"`` or ``"workflows"`` (protocols live inside the package,
        ``solvflow/protocols/``).

    Returns
    -------
    pathlib.Path
        The installed folder if present, else the source-tree folder.
    """
    if kind not in _PACKAGE_DATA:
        raise KeyError(f"unknown data kind {kind!r}; known: {sorted(_PACKAGE_DATA)}")
    installed = _package_root().joinpath("data", *_PACKAGE_DATA[kind])
    if installed.is_dir():
        return installed
    source_tree = _package_root().parent.parent / kind
    return source_tree


def openmm_forcefield_dir() -> str:
    """Entry point ``openmm.forcefielddir``: the folder holding ``solvflow/*.xml``.

    OpenMM calls this while it builds its search path and silently drops
    every later entry point if one raises, so this never raises.
    """
    try:
        return str(data_dir("forcefields").parent)
    except Exception:  # noqa: BLE001 - must never break OpenMM's loader
        return str(_package_root())
