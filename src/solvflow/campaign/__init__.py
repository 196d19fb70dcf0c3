"""Campaigns: workflow expansion and sweeps, comparison across run directories, claims, report.

``load_workflow`` / ``expand`` (:mod:`solvflow.campaign.workflow`) turn a workflow file
into tasks; ``solvflow.campaign.sweep.sweep`` runs them on Dask distributed (the function
is not re-exported here: its name is also its module's). Names are imported on first use,
so importing the package costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from solvflow.campaign.sweep import SweepResult
    from solvflow.campaign.workflow import (
        Task,
        Workflow,
        available_workflows,
        expand,
        load_workflow,
    )

_LAZY = {
    "SweepResult": "solvflow.campaign.sweep",
    "Task": "solvflow.campaign.workflow",
    "Workflow": "solvflow.campaign.workflow",
    "available_workflows": "solvflow.campaign.workflow",
    "expand": "solvflow.campaign.workflow",
    "load_workflow": "solvflow.campaign.workflow",
}

__all__ = [
    "SweepResult",
    "Task",
    "Workflow",
    "available_workflows",
    "expand",
    "load_workflow",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'solvflow.campaign' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
