"""Solvation analysis: streaming shells, ion pairing, clusters, residence and diffusion.

The functional core (:mod:`.contacts`, :mod:`.coordination`, :mod:`.pairing`,
:mod:`.rdf`, :mod:`.residence`, :mod:`.transport`, :mod:`.stats`) works on
numpy arrays in nm and ps, with the hot loops compiled by numba
(:mod:`.kernels`); :class:`SolvationAccumulator` runs it frame by frame;
:func:`analyze` reads a run directory or any MDTraj-readable trajectory and
returns an :class:`AnalysisResult` whose ``to_dict()`` is the
``analysis.json`` contract.

The names below are imported lazily (PEP 562), so importing one submodule
(e.g. :mod:`.kernels`) does not load MDTraj and the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from solvflow.analysis.api import AnalysisResult, analyze
    from solvflow.analysis.contacts import compute_contacts, orthorhombic_box, shell_molecules
    from solvflow.analysis.coordination import shell_counts
    from solvflow.analysis.engine import SolvationAccumulator
    from solvflow.analysis.groups import Group, groups_from_spec, make_group, select_groups
    from solvflow.analysis.pairing import classify_anions, classify_cations, cluster_sizes
    from solvflow.analysis.rdf import first_minimum

_LAZY = {
    "AnalysisResult": "api",
    "analyze": "api",
    "compute_contacts": "contacts",
    "orthorhombic_box": "contacts",
    "shell_molecules": "contacts",
    "shell_counts": "coordination",
    "SolvationAccumulator": "engine",
    "Group": "groups",
    "groups_from_spec": "groups",
    "make_group": "groups",
    "select_groups": "groups",
    "classify_anions": "pairing",
    "classify_cations": "pairing",
    "cluster_sizes": "pairing",
    "first_minimum": "rdf",
}

__all__ = [
    "AnalysisResult",
    "Group",
    "SolvationAccumulator",
    "analyze",
    "classify_anions",
    "classify_cations",
    "cluster_sizes",
    "compute_contacts",
    "first_minimum",
    "groups_from_spec",
    "make_group",
    "orthorhombic_box",
    "select_groups",
    "shell_counts",
    "shell_molecules",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its submodule on first access (then cached in globals)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'solvflow.analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"solvflow.analysis.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
