"""solvflow: cation solvation structure in battery electrolytes."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from solvflow.errors import SolvflowError

try:
    __version__ = version("solvflow")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0+source"

__all__ = ["SolvflowError", "__version__"]
