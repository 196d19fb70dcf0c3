"""Geometric mixing, 1-4 scaling and charge scaling against hand-computed energies.

The force fields are inline XML (StringIO), so these tests check the mechanism
in solvflow.forcefield independently of the shipped parameter files.
"""

from __future__ import annotations

import math
from io import StringIO
from pathlib import Path

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


# AAA declares Lorentz-Berthelot (as a Li-Merz-type ion set would); BBB and CCC do not.
LB_XML = """<ForceField>
 <Info><MixingRule residues="AAA">lorentz-berthelot</MixingRule></Info>
 <AtomTypes>
  <Type name="t-A" class="t-A" element="Na" mass="22.99"/>
  <Type name="t-B" class="t-B" element="Cl" mass="35.45"/>
  <Type name="t-C" class="t-C" element="Ar" mass="39.95"/>
 </AtomTypes>
 <Residues>
  <Residue name="AAA"><Atom name="A" type="t-A" charge="0.7"/></Residue>
  <Residue name="BBB"><Atom name="B" type="t-B" charge="-0.7"/></Residue>
  <Residue name="CCC"><Atom name="C" type="t-C" charge="0.0"/></Residue>
 </Residues>
 <NonbondedForce coulomb14scale="0.5" lj14scale="0.5">
  <UseAttributeFromResidue name="charge"/>
  <Atom type="t-A" sigma="0.25" epsilon="0.9"/>
  <Atom type="t-B" sigma="0.45" epsilon="0.2"/>
  <Atom type="t-C" sigma="0.34" epsilon="0.5"/>
 </NonbondedForce>
</ForceField>"""
LB_PARAMS = {"A": (0.25, 0.9), "B": (0.45, 0.2), "C": (0.34, 0.5)}
LB_CHARGES = {"A": 0.7, "B": -0.7, "C": 0.0}


def _lb_energy_by_hand(names: list[str], pos: np.ndarray, lb: set[str]) -> float:
    total = 0.0
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            r = float(np.linalg.norm(pos[i] - pos[j]))
            (si, ei), (sj, ej) = LB_PARAMS[names[i]], LB_PARAMS[names[j]]
            sigma = (si + sj) / 2 if {names[i], names[j]} & lb else math.sqrt(si * sj)
            total += COULOMB * LB_CHARGES[names[i]] * LB_CHARGES[names[j]] / r
            total += lj(r, sigma, math.sqrt(ei * ej))
    return total


def test_declared_lorentz_berthelot_species_mix_lb_with_everyone(tmp_path):
    from solvflow.forcefield import lorentz_berthelot_residues, mixing_record

    path = tmp_path / "lb.xml"
    path.write_text(LB_XML)
    assert lorentz_berthelot_residues([path]) == ["AAA"]
    names = ["A", "A", "B", "C", "C"]
    top = _topology([(n * 3, [(n, {"A": "Na", "B": "Cl", "C": "Ar"}[n])], []) for n in names])
    system = create_system(top, ForceField(str(path)), periodic=False,
                           lorentz_berthelot_residues=["AAA"])
    pos = np.array([[0, 0, 0], [0.42, 0.05, 0], [0.1, 0.33, 0.02], [0.4, 0.4, 0.3],
                    [0.05, 0.1, 0.45]])
    energy = _nonbonded_energy(system, pos)
    # hand-computed: A-anything pairs LB (arithmetic sigma), B-C and C-C geometric
    assert energy == pytest.approx(_lb_energy_by_hand(names, pos, {"A"}), rel=1e-6)
    all_geometric = _lb_energy_by_hand(names, pos, set())
    assert abs(energy - all_geometric) > 0.1  # 1,000x the tolerance: the rules differ
    assert "Lorentz-Berthelot for every pair involving" in mixing_record(system)["mixing"]
    plain = create_system(top, ForceField(str(path)), periodic=False)
    assert _nonbonded_energy(plain, pos) == pytest.approx(all_geometric, rel=1e-6)
    assert mixing_record(plain)["mixing"].startswith("geometric (sigma and epsilon), Custom")


def test_mixing_rule_declarations_are_parsed_strictly(tmp_path):
    from solvflow.forcefield import lorentz_berthelot_residues

    every = tmp_path / "every.xml"
    every.write_text(LB_XML.replace(' residues="AAA"', ""))
    assert lorentz_berthelot_residues([every]) == ["AAA", "BBB", "CCC"]
    geometric = tmp_path / "geo.xml"
    geometric.write_text(LB_XML.replace(">lorentz-berthelot<", ">geometric<"))
    assert lorentz_berthelot_residues([geometric]) == []
    bad = tmp_path / "bad.xml"
    bad.write_text(LB_XML.replace(">lorentz-berthelot<", ">arithmetic<"))
    with pytest.raises(ForceFieldError, match="must be one of geometric, lorentz-berthelot"):
        lorentz_berthelot_residues([bad])
    shipped = sorted((Path(__file__).parents[1] / "forcefields").glob("*.xml"))
    assert lorentz_berthelot_residues(shipped) == []  # every shipped file is OPLS (geometric)


def test_periodic_lb_split_matches_one_force_per_rule():
    """Periodic (cutoff, switch): the three-force LB split equals the same pairs computed by
    one CustomNonbondedForce holding the per-pair rule. The long-range corrections are
    switched off for the comparison: OpenMM counts N(N+1)/2 pairs of a class without
    interaction groups and the N(N-1)/2 real pairs with them (an O(1/N) convention of the
    tail estimate, not a different pair energy)."""
    from openmm.app import PME

    names = ["A", "A", "B", "B", "C", "C", "C", "C"]
    top = _topology([(n * 3, [(n, {"A": "Na", "B": "Cl", "C": "Ar"}[n])], []) for n in names])
    top.setPeriodicBoxVectors(np.eye(3) * 2.2 * unit.nanometer)
    ff = ForceField(StringIO(LB_XML))
    kwargs = {"nonbondedMethod": PME, "nonbondedCutoff": 1.0 * unit.nanometer}
    split = ff.createSystem(top, **kwargs)
    from solvflow.forcefield import apply_geometric_mixing

    apply_geometric_mixing(split, 0.9, {0, 1})
    for force in split.getForces():
        if isinstance(force, openmm.CustomNonbondedForce):
            force.setUseLongRangeCorrection(False)
        elif isinstance(force, openmm.NonbondedForce):
            assert force.getUseDispersionCorrection() and force.getUseSwitchingFunction()
            force.setUseDispersionCorrection(False)
    one = ff.createSystem(top, **kwargs)
    nb = next(f for f in one.getForces() if isinstance(f, openmm.NonbondedForce))
    rule = openmm.CustomNonbondedForce(
        "4*eps*(sr6^2 - sr6); sr6 = (sig/r)^6; eps = sqrt(e1*e2);"
        "sig = select(lb1 + lb2, 0.5*(s1 + s2), sqrt(s1*s2))")
    for p in ("s", "e", "lb"):
        rule.addPerParticleParameter(p)
    for i in range(nb.getNumParticles()):
        q, s, e = nb.getParticleParameters(i)
        rule.addParticle([s._value, e._value, 1.0 if i < 2 else 0.0])
        nb.setParticleParameters(i, q, 1.0, 0.0)
    rule.setNonbondedMethod(rule.CutoffPeriodic)
    rule.setCutoffDistance(1.0)
    rule.setUseSwitchingFunction(True)
    rule.setSwitchingDistance(0.9)
    nb.setUseDispersionCorrection(False)
    one.addForce(rule)
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 2.2, size=(len(names), 3))
    assert _nonbonded_energy(split, pos) == pytest.approx(_nonbonded_energy(one, pos),
                                                          rel=1e-6)


def test_tabulated_geometric_lj_is_exact():
    from solvflow.forcefield import geometric_lj_parameters, tabulated_geometric_lj

    top = _topology([("AAA", [("A", "Na")], []), ("BBB", [("B", "Cl")], [])])
    system = create_system(top, ForceField(StringIO(PAIR_XML)), periodic=False)
    params = geometric_lj_parameters(system)
    assert params == [pytest.approx((0.25, 0.9)), pytest.approx((0.45, 0.2))]
    index, custom = next((k, f) for k, f in enumerate(system.getForces())
                         if isinstance(f, openmm.CustomNonbondedForce))
    table = tabulated_geometric_lj(custom, params)
    system.removeForce(index)
    system.addForce(table)
    r = 0.31
    energy = _nonbonded_energy(system, np.array([[0, 0, 0], [r, 0, 0]]))
    expected = COULOMB * 0.7 * -0.7 / r + lj(r, math.sqrt(0.25 * 0.45), math.sqrt(0.9 * 0.2))
    assert energy == pytest.approx(expected, rel=1e-6)
