"""Which atoms are analysed: the cation centres and each partner's coordinating sites.

A *group* is one species: a name, a role (``cation``, ``anion`` or
``solvent``) and the indices of its selected atoms. For the cation the
selection is one centre atom per ion; for a partner it is the coordinating
sites (e.g. the O and N atoms of FSI-). A molecule is a topology residue and
counts once however many of its sites are in a shell.

Groups come from MDTraj selections (:func:`select_groups`) or from a run
directory's ``spec.yaml`` (:func:`groups_from_spec`). Both validate: empty
selections, atoms or residues shared by two groups, a cation selection with
several atoms per ion and duplicate names are :class:`AnalysisInputError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mdtraj as md
import numpy as np
from numpy.typing import NDArray

from solvflow.errors import AnalysisInputError
from solvflow.namevalue import parse_pairs
from solvflow.species import ROLES


@dataclass(frozen=True)
class Group:
    """One species taking part in the analysis.

    Attributes
    ----------
    name : str
        Species name used as key in the results (``"DME"``).
    role : str
        ``"cation"``, ``"anion"`` or ``"solvent"``.
    atoms : ndarray of int64, shape (n_selected,)
        Selected atom indices (cation: centres; partners: coordinating sites), sorted.
    atom_residue : ndarray of int64, shape (n_selected,)
        Topology residue index of each selected atom.
    residues : ndarray of int64, shape (n_molecules,)
        Sorted distinct residues (molecules) of the group.
    atom_molecule : ndarray of int64, shape (n_selected,)
        Position of each selected atom's residue in ``residues`` (0..n_molecules-1).
    selection : str
        The selection text it came from (for the record).
    """

    name: str
    role: str
    atoms: NDArray[np.int64]
    atom_residue: NDArray[np.int64]
    residues: NDArray[np.int64]
    atom_molecule: NDArray[np.int64]
    selection: str = field(default="")

    @property
    def n_molecules(self) -> int:
        return int(self.residues.size)


def make_group(topology: md.Topology, name: str, role: str, atoms: Sequence[int] | NDArray[Any],
               selection: str = "") -> Group:
    """A :class:`Group` from atom indices (validated: non-empty, in range)."""
    if role not in ROLES:
        raise AnalysisInputError(
            f"role of {name!r} must be one of {', '.join(ROLES)}, got {role!r}")
    idx = np.unique(np.asarray(atoms, dtype=np.int64))
    if idx.size == 0:
        raise AnalysisInputError(
            f"selection for {role} {name!r} is empty: {selection!r} matches no atom of the "
            f"topology ({topology.n_atoms} atoms; residues: {_residue_names(topology)})"
        )
    if idx[0] < 0 or idx[-1] >= topology.n_atoms:
        raise AnalysisInputError(f"atom indices of {name!r} outside 0..{topology.n_atoms - 1}")
    residue_of_atom = _residue_of_atom(topology)
    atom_residue = residue_of_atom[idx]
    residues, atom_molecule = np.unique(atom_residue, return_inverse=True)
    return Group(name, role, idx, atom_residue, residues, atom_molecule.astype(np.int64), selection)


def select_groups(topology: md.Topology, cation: tuple[str, str],
                  anions: Sequence[tuple[str, str]] = (),
                  solvents: Sequence[tuple[str, str]] = ()) -> tuple[Group, list[Group]]:
    """Groups from MDTraj selection strings.

    Parameters
    ----------
    topology : mdtraj.Topology
    cation : (name, selection)
        One atom per cation (``("Li", "resname LI")``).
    anions, solvents : sequence of (name, selection)
        Coordinating sites of each partner, e.g.
        ``("FSI", "resname FSI and (element O or element N)")``.

    Returns
    -------
    (cation_group, partner_groups)
    """
    cat = make_group(topology, cation[0], "cation", _select(topology, *cation), cation[1])
    partners = [make_group(topology, n, "anion", _select(topology, n, s), s) for n, s in anions]
    partners += [make_group(topology, n, "solvent", _select(topology, n, s), s)
                 for n, s in solvents]
    validate_groups(cat, partners)
    return cat, partners


def analysed_names(spec: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(cation, partner names) of a ``spec.yaml``: ``analysis.partners`` or every other
    species (not validated; :func:`groups_from_spec` checks them against the species)."""
    analysis = spec.get("analysis") or {}
    cation = str(analysis.get("cation"))
    names = [s["name"] for s in spec.get("species", [])]
    return cation, list(analysis.get("partners") or [n for n in names if n != cation])


def groups_from_spec(topology: md.Topology, spec: Mapping[str, Any]) -> tuple[Group, list[Group]]:
    """Groups from a run directory's ``spec.yaml`` (species residue + ``sites`` atom names)."""
    species = {s["name"]: s for s in spec.get("species", [])}
    cation_name, partner_names = analysed_names(spec)
    if cation_name not in species:
        raise AnalysisInputError(
            f"spec.yaml: analysis.cation {cation_name!r} is not one of the species "
            f"{', '.join(species) or '(none)'}"
        )
    unknown = [n for n in partner_names if n not in species]
    if unknown:
        raise AnalysisInputError(f"spec.yaml: analysis.partners {unknown} are not species")

    def group(name: str, role: str) -> Group:
        s = species[name]
        sites = set(s.get("sites") or s.get("atom_names") or [])
        atoms = [a.index for a in topology.atoms
                 if a.residue.name == s["residue"] and a.name in sites]
        text = f"resname {s['residue']} and name {' '.join(sorted(sites))}"
        return make_group(topology, name, role, atoms, text)

    cat = group(cation_name, "cation")
    partners = [group(n, "anion" if species[n].get("role") == "anion" else "solvent")
                for n in partner_names]
    validate_groups(cat, partners)
    return cat, partners


def validate_groups(cation: Group, partners: Sequence[Group]) -> None:
    """Reject duplicate names, shared atoms or residues, several atoms per cation."""
    if cation.role != "cation":
        raise AnalysisInputError(f"{cation.name!r} must have role 'cation', not {cation.role!r}")
    if not partners:
        raise AnalysisInputError("no partner species: give at least one --anion or --solvent")
    names = [cation.name] + [p.name for p in partners]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AnalysisInputError(f"species names must be unique; repeated: {', '.join(dupes)}")
    per_ion = np.bincount(cation.atom_molecule)
    if per_ion.max() > 1:
        first = int(cation.residues[np.argmax(per_ion > 1)])
        raise AnalysisInputError(
            f"cation selection {cation.selection!r} has {per_ion.max()} atoms in residue "
            f"{first}; select exactly one centre atom per ion (e.g. add 'and name LI')"
        )
    groups = [cation, *partners]
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            shared = np.intersect1d(a.atoms, b.atoms)
            if shared.size:
                raise AnalysisInputError(
                    f"selections of {a.name!r} and {b.name!r} overlap in {shared.size} atoms "
                    f"(first: {int(shared[0])}); each atom may belong to one species only"
                )
            shared = np.intersect1d(a.residues, b.residues)
            if shared.size:
                raise AnalysisInputError(
                    f"{a.name!r} and {b.name!r} select atoms of the same residue "
                    f"{int(shared[0])}; a molecule (residue) may belong to one species only"
                )


def parse_named(items: Sequence[str] | None, what: str) -> list[tuple[str, str]]:
    """``["FSI=resname FSI and element O", ...]`` -> ``[("FSI", "resname ..."), ...]``."""
    return parse_pairs(items, what, "NAME=VALUE", AnalysisInputError)


def _select(topology: md.Topology, name: str, selection: str) -> NDArray[np.int64]:
    try:
        return np.asarray(topology.select(selection), dtype=np.int64)
    except Exception as exc:  # MDTraj raises ValueError/KeyError/pyparsing errors
        reason = " ".join(str(exc).split())[:160]
        raise AnalysisInputError(
            f"cannot parse the MDTraj selection for {name!r}: {selection!r} ({reason})"
        ) from None


def _residue_of_atom(topology: md.Topology) -> NDArray[np.int64]:
    return np.fromiter((a.residue.index for a in topology.atoms), dtype=np.int64,
                       count=topology.n_atoms)


def _residue_names(topology: md.Topology) -> str:
    names = sorted({r.name for r in topology.residues})
    return ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
