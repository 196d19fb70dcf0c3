"""Solvation analysis: streaming shells, ion pairing, clusters, residence and diffusion.

The functional core (:mod:`.contacts`, :mod:`.coordination`, :mod:`.pairing`,
:mod:`.rdf`, :mod:`.residence`, :mod:`.transport`, :mod:`.stats`) works on
numpy arrays in nm and ps; :class:`SolvationAccumulator` runs it frame by
frame; :func:`analyze` reads a run directory or any MDTraj-readable
trajectory and returns an :class:`AnalysisResult` whose ``to_dict()`` is the
``analysis.json`` contract.
"""

from __future__ import annotations

from solvflow.analysis.api import AnalysisResult, analyze
from solvflow.analysis.contacts import compute_contacts, orthorhombic_box, shell_molecules
from solvflow.analysis.coordination import shell_counts
from solvflow.analysis.engine import SolvationAccumulator
from solvflow.analysis.groups import Group, groups_from_spec, make_group, select_groups
from solvflow.analysis.pairing import classify_anions, classify_cations, cluster_sizes
from solvflow.analysis.rdf import first_minimum

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
