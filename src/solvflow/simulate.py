"""Simulate a run directory: platform choice, protocol stages, reporters, checkpoints, resume.

The implementation lives in :mod:`solvflow.simulation`; this module is the
public face of the step::

    from solvflow.simulate import simulate
    result = simulate("runs/lifsi_1M", protocol="quick")
"""

from __future__ import annotations

from solvflow.simulation.engine import SimulationResult, simulate
from solvflow.simulation.platforms import PlatformInfo, choose_platform, list_platforms
from solvflow.simulation.protocols import (
    STAGE_NAMES,
    Protocol,
    available_protocols,
    load_protocol,
)

__all__ = [
    "STAGE_NAMES",
    "PlatformInfo",
    "Protocol",
    "SimulationResult",
    "available_protocols",
    "choose_platform",
    "list_platforms",
    "load_protocol",
    "simulate",
]
