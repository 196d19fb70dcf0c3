"""The topology of a run directory built from its ``spec.yaml`` (no PDB parsing).

A solvflow run directory's ``spec.yaml`` lists its species in topology order,
each with its residue name, ``count`` and ``atom_names`` (see
:func:`solvflow.species.atom_names`: the atoms of ``Chem.AddHs(MolFromSmiles)``
in order). That is all the analysis needs: chains (one per species, as
:func:`solvflow.build.build` writes them), residues and atoms with elements.
Bonds are not added: selections, shells, pairing and the molecule centres of
the diffusion tracker use residues and element masses only. Building it is far
faster than parsing ``topology.pdb`` (about 0.2 s for 10,000 atoms).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mdtraj as md

from solvflow.errors import AnalysisInputError, SpeciesError


def topology_from_spec(spec: Mapping[str, Any]) -> md.Topology | None:
    """An MDTraj topology (chains, residues, atoms with elements; no bonds) from ``spec.yaml``.

    Parameters
    ----------
    spec : mapping
        The loaded ``spec.yaml`` of a run directory.

    Returns
    -------
    mdtraj.Topology or None
        None when a species lacks ``atom_names`` (older run directories: parse
        the PDB instead).

    Raises
    ------
    AnalysisInputError
        A species entry is malformed (residue, count, SMILES) or its
        ``atom_names`` disagree with its SMILES.
    """
    species = spec.get("species") or []
    if not species or any(not isinstance(s, Mapping) or not s.get("atom_names")
                          for s in species):
        return None
    top = md.Topology()
    for sp in species:
        residue, count, names, elements = _species_layout(sp)
        chain = top.add_chain()
        add_residue, add_atom = top.add_residue, top.add_atom
        for _ in range(count):
            res = add_residue(residue, chain)
            for name, element in zip(names, elements, strict=True):
                add_atom(name, element, res)
    return top


def _species_layout(sp: Mapping[str, Any]) -> tuple[str, int, list[str], list[Any]]:
    name = sp.get("name", "?")
    residue, count, names = sp.get("residue"), sp.get("count"), sp.get("atom_names")
    if not isinstance(residue, str) or not residue:
        raise AnalysisInputError(f"spec.yaml: species {name!r} has no residue name")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise AnalysisInputError(
            f"spec.yaml: species {name!r} count must be a whole number >= 0, got {count!r}")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise AnalysisInputError(f"spec.yaml: species {name!r} atom_names must be a list of "
                                 f"strings, got {names!r}")
    recorded = sp.get("elements")  # written by build (no RDKit needed); older runs lack it
    if isinstance(recorded, list) and recorded and all(isinstance(e, str) for e in recorded):
        symbols, source = tuple(recorded), f"{len(recorded)} elements"
    else:
        symbols = _smiles_symbols(str(sp.get("smiles")), str(name))
        source = f"SMILES {sp.get('smiles')!r} has {len(symbols)} atoms (with hydrogens)"
    if len(symbols) != len(names):
        raise AnalysisInputError(
            f"spec.yaml: species {name!r} lists {len(names)} atom_names but its {source}")
    try:
        return residue, count, names, [md.element.get_by_symbol(s) for s in symbols]
    except KeyError as exc:
        raise AnalysisInputError(
            f"spec.yaml: species {name!r} has an unknown element {exc.args[0]!r}") from None


def _smiles_symbols(smiles: str, name: str) -> tuple[str, ...]:
    """Element symbols in atom order (:func:`solvflow.species.element_symbols`)."""
    from solvflow.species import element_symbols

    try:
        return element_symbols(smiles, name)
    except SpeciesError as exc:
        raise AnalysisInputError(f"spec.yaml: {exc}") from None
