"""Hydrogen mass repartitioning (HMR): heavier hydrogens, lighter partners, same molecules.

With bonds to hydrogen constrained (solvflow's ``HBonds``), the fastest motions left
are the angle bends involving hydrogens; tripling the hydrogen mass slows them enough
for a 4 fs time step (Hopkins et al., J. Chem. Theory Comput. 11, 1864 (2015)). The
mass moved to a hydrogen is taken from the heavy atom it is bonded to, so every
molecule keeps its mass (densities and concentrations are unchanged) while its
dynamics is slightly slowed (diffusion and residence times are not exactly those of
the unmodified masses; structure and thermodynamics are).
"""

from __future__ import annotations

import math
from typing import Any

from solvflow.errors import InputError


def repartition_hydrogen_mass(system: Any, topology: Any, hydrogen_mass_amu: float
                              ) -> dict[str, Any]:
    """Give every H bonded to a heavy atom ``hydrogen_mass_amu`` (amu = dalton), in place.

    The mass is taken from the bonded heavy atom. Rigid residues (as many constraints
    as rigid-body degrees of freedom, e.g. rigid water) are left alone, as OpenMM's
    ``ForceField.createSystem(hydrogenMass=...)`` does. Constraints are not changed.

    Returns a summary for status.json: the hydrogen mass, hydrogens changed, lightest
    heavy atom left (amu), rigid residues skipped.

    Raises
    ------
    InputError
        The hydrogen mass would leave a heavy atom lighter than its hydrogens.
    """
    from openmm import unit

    constraints: dict[int, int] = {}
    residue_of = {a.index: a.residue.index for a in topology.atoms()}
    for k in range(system.getNumConstraints()):
        i, _, _ = system.getConstraintParameters(k)
        constraints[residue_of[i]] = constraints.get(residue_of[i], 0) + 1
    rigid = {r.index for r in topology.residues()
             if len(r) > 2 and constraints.get(r.index, 0) >= 3 * len(r) - 6}
    changed, lightest = 0, math.inf
    for a, b in topology.bonds():
        heavy, light = (b, a) if _is_hydrogen(a) else (a, b)
        if (not _is_hydrogen(light) or _is_hydrogen(heavy) or heavy.element is None
                or light.residue.index in rigid):
            continue
        transfer = hydrogen_mass_amu - system.getParticleMass(light.index).value_in_unit(
            unit.dalton)
        left = system.getParticleMass(heavy.index).value_in_unit(unit.dalton) - transfer
        system.setParticleMass(light.index, hydrogen_mass_amu * unit.dalton)
        system.setParticleMass(heavy.index, left * unit.dalton)
        changed += 1
        lightest = min(lightest, left)
    if changed and lightest < hydrogen_mass_amu:
        raise InputError(f"hydrogen_mass_amu = {hydrogen_mass_amu:g} leaves a heavy atom with "
                         f"{lightest:.2f} amu (lighter than its hydrogens); use a smaller "
                         "hydrogen mass (3 amu leaves a CH3 carbon 6.0 amu)")
    return {"hydrogen_mass_amu": hydrogen_mass_amu, "hydrogens_repartitioned": changed,
            "lightest_heavy_atom_amu": round(lightest, 4) if changed else None,
            "rigid_residues_skipped": len(rigid)}


def _is_hydrogen(atom: Any) -> bool:
    return atom.element is not None and atom.element.symbol == "H"
