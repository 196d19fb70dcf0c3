"""solvflow: cation solvation structure in battery electrolytes.

The public API (``__all__``) is imported lazily: ``import solvflow`` loads only
the version and the error hierarchy, and each name below is imported from its
module on first use (PEP 562 module ``__getattr__``), so that ``solvflow
--help`` does not pay for numpy, scipy, MDTraj, numba, RDKit or OpenMM.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from solvflow._version import __version__
from solvflow.errors import SolvflowError

if TYPE_CHECKING:  # the static view of the lazy names below
    from solvflow.analysis import AnalysisResult, analyze
    from solvflow.build import BuildResult, build
    from solvflow.composition import Composition, compose
    from solvflow.simulate import SimulationResult, simulate
    from solvflow.spec import SystemSpec, available_systems, load_system

_LAZY = {
    "AnalysisResult": "solvflow.analysis",
    "analyze": "solvflow.analysis",
    "BuildResult": "solvflow.build",
    "build": "solvflow.build",
    "Composition": "solvflow.composition",
    "compose": "solvflow.composition",
    "SimulationResult": "solvflow.simulate",
    "simulate": "solvflow.simulate",
    "SystemSpec": "solvflow.spec",
    "available_systems": "solvflow.spec",
    "load_system": "solvflow.spec",
}

__all__ = [
    "AnalysisResult",
    "BuildResult",
    "Composition",
    "SimulationResult",
    "SolvflowError",
    "SystemSpec",
    "__version__",
    "analyze",
    "available_systems",
    "build",
    "compose",
    "load_system",
    "simulate",
]


class _Package(types.ModuleType):
    """The ``solvflow`` module's type: ``solvflow.build`` and ``solvflow.simulate`` are the
    functions even after their submodules are imported.

    Importing a submodule sets it as an attribute of its package, so once something ran
    ``import solvflow.build``, plain lazy loading would leave ``solvflow.build`` the module.
    """

    def __getattribute__(self, name: str) -> Any:
        if name in _SHADOWED:
            return getattr(importlib.import_module(_LAZY[name]), name)
        return super().__getattribute__(name)


_SHADOWED = frozenset(name for name, module in _LAZY.items() if module == f"solvflow.{name}")
sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first access (then cached in globals)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'solvflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
