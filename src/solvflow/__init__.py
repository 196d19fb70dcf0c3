"""solvflow: cation solvation structure in battery electrolytes."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from solvflow.errors import SolvflowError

try:
    __version__ = version("solvflow")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0+source"

from solvflow.analysis import AnalysisResult, analyze  # noqa: E402
from solvflow.build import BuildResult, build  # noqa: E402
from solvflow.composition import Composition, compose  # noqa: E402
from solvflow.simulate import SimulationResult, simulate  # noqa: E402
from solvflow.spec import SystemSpec, available_systems, load_system  # noqa: E402

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
