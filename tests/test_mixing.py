"""Geometric mixing, 1-4 scaling and charge scaling against hand-computed energies.

The force fields are inline XML (StringIO), so these tests check the mechanism
in solvflow.forcefield independently of the shipped parameter files.
"""

from __future__ import annotations

import math
from io import StringIO

import numpy as np
import openmm
import pytest
from openmm import unit
from openmm.app import Element, ForceField, Topology

from solvflow.errors import ForceFieldError
from solvflow.forcefield import SystemSettings, create_system

# Coulomb constant 1/(4 pi eps0) in kJ mol^-1 nm e^-2 (CODATA; OpenMM's ONE_4PI_EPS0).
COULOMB = 138.935456

PAIR_XML = """<ForceField>
 <AtomTypes>
  <Type name="t-A" class="t-A" element="Na" mass="22.99"/>
  <Type name="t-B" class="t-B" element="Cl" mass="35.45"/>
 </AtomTypes>
 <Residues>
  <Residue name="AAA"><Atom name="A" type="t-A" charge="0.7"/></Residue>
  <Residue name="BBB"><Atom name="B" type="t-B" charge="-0.7"/></Residue>
 </Residues>
 <NonbondedForce coulomb14scale="0.5" lj14scale="0.5">
  <UseAttributeFromResidue name="charge"/>
  <Atom type="t-A" sigma="0.25" epsilon="0.9"/>
  <Atom type="t-B" sigma="0.45" epsilon="0.2"/>
 </NonbondedForce>
</ForceField>"""

# A bent four-atom chain W-X-Y-Z: 1-2 and 1-3 pairs are excluded, W...Z is the only 1-4 pair.
CHAIN_XML = """<ForceField>
 <AtomTypes>
  <Type name="c-W" class="c-W" element="C" mass="12.0"/>
  <Type name="c-X" class="c-X" element="C" mass="12.0"/>
  <Type name="c-Y" class="c-Y" element="C" mass="12.0"/>
  <Type name="c-Z" class="c-Z" element="C" mass="12.0"/>
 </AtomTypes>
 <Residues>
  <Residue name="CHN">
   <Atom name="W" type="c-W" charge="0.4"/><Atom name="X" type="c-X" charge="-0.1"/>
   <Atom name="Y" type="c-Y" charge="0.1"/><Atom name="Z" type="c-Z" charge="-0.4"/>
   <Bond atomName1="W" atomName2="X"/><Bond atomName1="X" atomName2="Y"/>
   <Bond atomName1="Y" atomName2="Z"/>
  </Residue>
 </Residues>
 <HarmonicBondForce>
  <Bond class1="c-W" class2="c-X" length="0.15" k="1000"/>
  <Bond class1="c-X" class2="c-Y" length="0.15" k="1000"/>
  <Bond class1="c-Y" class2="c-Z" length="0.15" k="1000"/>
 </HarmonicBondForce>
 <HarmonicAngleForce>
  <Angle class1="c-W" class2="c-X" class3="c-Y" angle="1.9" k="100"/>
  ANGLE_XYZ
 </HarmonicAngleForce>
 <NonbondedForce coulomb14scale="0.5" lj14scale="0.5">
  <UseAttributeFromResidue name="charge"/>
  <Atom type="c-W" sigma="0.22" epsilon="0.8"/><Atom type="c-X" sigma="0.3" epsilon="0.3"/>
  <Atom type="c-Y" sigma="0.3" epsilon="0.3"/><Atom type="c-Z" sigma="0.48" epsilon="0.1"/>
 </NonbondedForce>
</ForceField>"""
ANGLE_XYZ = '<Angle class1="c-X" class2="c-Y" class3="c-Z" angle="1.9" k="100"/>'


def _topology(residues: list[tuple[str, list[tuple[str, str]], list[tuple[int, int]]]]):
    top = Topology()
    chain = top.addChain()
    for resname, atoms, bonds in residues:
        res = top.addResidue(resname, chain)
        made = [top.addAtom(name, Element.getBySymbol(sym), res) for name, sym in atoms]
        for i, j in bonds:
            top.addBond(made[i], made[j])
    return top


def _nonbonded_energy(system, positions_nm: np.ndarray) -> float:
    """Energy of the NonbondedForce plus the geometric LJ force only (group 1)."""
    for force in system.getForces():
        is_nb = isinstance(force, openmm.NonbondedForce | openmm.CustomNonbondedForce)
        force.setForceGroup(1 if is_nb else 0)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions_nm * unit.nanometer)
    state = context.getState(getEnergy=True, groups={1})
    return state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def lj(r: float, sigma: float, eps: float) -> float:
    return 4 * eps * ((sigma / r) ** 12 - (sigma / r) ** 6)


def test_pair_energy_is_geometric_mixing():
    top = _topology([("AAA", [("A", "Na")], []), ("BBB", [("B", "Cl")], [])])
    system = create_system(top, ForceField(StringIO(PAIR_XML)), periodic=False)
    r = 0.31
    energy = _nonbonded_energy(system, np.array([[0, 0, 0], [r, 0, 0]]))
    # Hand-computed: geometric sigma sqrt(0.25*0.45) and epsilon sqrt(0.9*0.2).
    expected = COULOMB * 0.7 * -0.7 / r + lj(r, math.sqrt(0.25 * 0.45), math.sqrt(0.9 * 0.2))
    assert energy == pytest.approx(expected, rel=1e-6)
    lorentz_berthelot = COULOMB * -0.49 / r + lj(r, 0.35, math.sqrt(0.18))
    assert abs(energy - lorentz_berthelot) > 1.0  # the test can tell the two rules apart


def test_14_pair_scaled_half_with_geometric_sigma():
    top = _topology([("CHN", [("W", "C"), ("X", "C"), ("Y", "C"), ("Z", "C")],
                      [(0, 1), (1, 2), (2, 3)])])
    xml = CHAIN_XML.replace("ANGLE_XYZ", ANGLE_XYZ)
    system = create_system(top, ForceField(StringIO(xml)), periodic=False)
    pos = np.array([[0.0, 0.1, 0.0], [0.0, 0.0, 0.0], [0.15, 0.0, 0.0], [0.16, 0.14, 0.05]])
    r14 = float(np.linalg.norm(pos[3] - pos[0]))
    energy = _nonbonded_energy(system, pos)
    expected = 0.5 * COULOMB * 0.4 * -0.4 / r14 + 0.5 * lj(r14, math.sqrt(0.22 * 0.48),
                                                           math.sqrt(0.8 * 0.1))
    assert energy == pytest.approx(expected, rel=1e-6)


def test_charge_scaling_touches_ions_only():
    top = _topology([("AAA", [("A", "Na")], []), ("BBB", [("B", "Cl")], []),
                     ("CHN", [("W", "C"), ("X", "C"), ("Y", "C"), ("Z", "C")],
                      [(0, 1), (1, 2), (2, 3)])])
    ff = ForceField(StringIO(PAIR_XML), StringIO(CHAIN_XML.replace("ANGLE_XYZ", ANGLE_XYZ)))
    system = create_system(top, ff, settings=SystemSettings(charge_scale=0.8), periodic=False)
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    charges = [nb.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
               for i in range(system.getNumParticles())]
    assert charges == pytest.approx([0.56, -0.56, 0.4, -0.1, 0.1, -0.4])


def test_missing_angle_names_residue_and_atoms():
    top = _topology([("CHN", [("W", "C"), ("X", "C"), ("Y", "C"), ("Z", "C")],
                      [(0, 1), (1, 2), (2, 3)])])
    xml = CHAIN_XML.replace("ANGLE_XYZ", "")
    with pytest.raises(ForceFieldError, match=r"residue 1 \(CHN\), atoms X-Y-Z"):
        create_system(top, ForceField(StringIO(xml)), periodic=False)


def test_missing_template_names_residue():
    top = _topology([("QQQ", [("K1", "K")], [])])  # no template has a lone potassium
    with pytest.raises(ForceFieldError, match="QQQ"):
        create_system(top, ForceField(StringIO(PAIR_XML)), periodic=False)
