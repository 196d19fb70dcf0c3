"""`solvflow parametrize --smiles`: real antechamber/sqm/parmchk2/tleap on small molecules."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import openmm
import pytest
from openmm import unit
from openmm.app import AmberPrmtopFile, ForceField, NoCutoff, Topology
from rdkit import Chem

from solvflow.cli import main
from solvflow.errors import ParametrizeError
from solvflow.parametrize import (
    _run_amber,
    amber_environment,
    ffxml_from_prmtop,
    parametrize_species,
)
from solvflow.species import Species, add_residue, molecule, positions_nm

DEE = Species(name="DEE", smiles="CCOCC", residue="DEE", charge=0, role="solvent",
              forcefield="DEE.xml", density_g_cm3=0.713)


def _parametrized(sp: Species, tmp_path_factory) -> tuple[Path, Path]:
    """(prmtop, XML) of ``sp`` from a real antechamber/parmchk2/tleap run."""
    work = tmp_path_factory.mktemp(sp.name.lower())
    prmtop = _run_amber(sp, work, amber_environment(), seed=1)
    xml = work / f"{sp.name}.xml"
    xml.write_text(ffxml_from_prmtop(sp, prmtop))
    return prmtop, xml


@pytest.fixture(scope="module")
def dee(tmp_path_factory):
    return _parametrized(DEE, tmp_path_factory)


def _group_energies(system, positions) -> dict[str, float]:
    out = {}
    for k, force in enumerate(system.getForces()):
        force.setForceGroup(k)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    for k, force in enumerate(system.getForces()):
        state = context.getState(getEnergy=True, groups={k})
        out[type(force).__name__] = state.getPotentialEnergy().value_in_unit(
            unit.kilojoule_per_mole)
    return out


DMF = Species(name="DMF", smiles="CN(C)C=O", residue="DMF", charge=0, role="solvent",
              forcefield="DMF.xml", density_g_cm3=0.944)


@pytest.fixture(scope="module")
def dmf(tmp_path_factory):
    return _parametrized(DMF, tmp_path_factory)


@pytest.mark.parametrize("which", ["dee", "dmf"])
def test_xml_reproduces_prmtop_bonded_energies(which, request):
    """The XML gives the prmtop's bond, angle and torsion energies (DMF has impropers)."""
    prmtop, xml = request.getfixturevalue(which)
    sp = DEE if which == "dee" else DMF
    amber = AmberPrmtopFile(str(prmtop))
    mol = molecule(sp, seed=3)  # a different conformer from the one antechamber saw
    pos = positions_nm(mol) * unit.nanometer
    top = Topology()
    add_residue(top, top.addChain(), sp, mol)
    ours = ForceField(str(xml)).createSystem(top, nonbondedMethod=NoCutoff)
    theirs = amber.createSystem(nonbondedMethod=NoCutoff)
    e_ours, e_theirs = _group_energies(ours, pos), _group_energies(theirs, pos)
    for name in ("HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce"):
        assert e_ours[name] == pytest.approx(e_theirs[name], rel=1e-6, abs=1e-6), name
    if which == "dmf":
        assert "<Improper" in xml.read_text()


def test_charges_symmetric_and_neutral(dee):
    _, xml = dee
    ff = ForceField(str(xml))
    mol = molecule(DEE)
    top = Topology()
    add_residue(top, top.addChain(), DEE, mol)
    system = ff.createSystem(top, nonbondedMethod=NoCutoff)
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    q = np.array([nb.getParticleParameters(i)[0]._value for i in range(system.getNumParticles())])
    assert q.sum() == pytest.approx(0.0, abs=1e-6)
    ranks = np.array(Chem.CanonicalRankAtoms(Chem.AddHs(Chem.MolFromSmiles("CCOCC")),
                                             breakTies=False))
    for rank in np.unique(ranks):
        assert np.ptp(q[ranks == rank]) == 0.0
    assert q[2] < -0.2  # the ether oxygen is clearly negative under AM1-BCC


def test_cli_writes_xml_for_small_molecule(tmp_path, capsys):
    assert main(["parametrize", "--smiles", "CC#N", "--name", "ACN", "-o", str(tmp_path)]) == 0
    text = (tmp_path / "ACN.xml").read_text()
    assert '<Residue name="ACN">' in text and "AM1-BCC" in text
    assert "wrote" in capsys.readouterr().out
    # A second run does not silently replace the file.
    assert main(["parametrize", "--smiles", "CC#N", "--name", "ACN", "-o", str(tmp_path)]) == 2
    assert "exists" in capsys.readouterr().err


def test_boron_species_gives_clean_error(tmp_path, capsys):
    with pytest.raises(ParametrizeError, match="GAFF2 has no atom types for B"):
        parametrize_species("F[B-](F)(F)F", "BF4", output=tmp_path)
    code = main(["parametrize", "--smiles", "Cl[Al-](Cl)(Cl)Cl", "--name", "AlCl4",
                 "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0 and "Al" in err and "by hand" in err and "Traceback" not in err
    assert not any(Path(tempfile.gettempdir()).glob("solvflow-gaff2-AlCl4-*"))


def test_cli_resp_route_for_an_organic_species(tmp_path, capsys):
    """--charges resp: real HF/6-31G* RESP charges in a GAFF2 XML that OpenMM loads."""
    import json

    assert main(["parametrize", "--smiles", "CO", "--name", "MeOH", "--charges", "resp",
                 "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "RESP charges" in out and "GAFF2 types, RESP charges" in out
    doc = json.loads((tmp_path / "MeOH.resp.json").read_text())
    xml = (tmp_path / "MeOH.xml").read_text()
    assert "RESP" in xml and "AM1-BCC charges (antechamber" not in xml
    sp = Species(name="MeOH", smiles="CO", residue="MEO", charge=0, role="solvent",
                 forcefield="MeOH.xml", density_g_cm3=0.79)
    top = Topology()
    add_residue(top, top.addChain(), sp, molecule(sp))
    system = ForceField(str(tmp_path / "MeOH.xml")).createSystem(top, nonbondedMethod=NoCutoff)
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    q = np.array([nb.getParticleParameters(i)[0]._value for i in range(system.getNumParticles())])
    np.testing.assert_allclose(q, list(doc["charges_e"].values()), atol=1e-6)
    assert q.sum() == pytest.approx(0.0, abs=1e-6)
    assert q[1] < -0.5 and q[5] > 0.3  # hydroxyl O and H: strongly polar under HF/6-31G* RESP
    assert np.ptp(q[2:5]) == 0.0  # methyl H equal (stage 2)


def test_cli_resp_route_for_boron_writes_charges_only(tmp_path, capsys):
    import json

    assert main(["parametrize", "--smiles", "F[B-](F)(F)F", "--name", "BF4", "--charges",
                 "resp", "--formal-charge", "-1", "-o", str(tmp_path)]) == 0
    assert "no XML" in capsys.readouterr().out and not (tmp_path / "BF4.xml").exists()
    q = json.loads((tmp_path / "BF4.resp.json").read_text())["charges_e"]
    assert sum(q.values()) == pytest.approx(-1.0, abs=1e-9)
    assert len({q[f"F{i}"] for i in range(1, 5)}) == 1 and q["B1"] > 0.5


def test_cli_resp_charge_mismatch_is_one_line(tmp_path, capsys):
    code = main(["parametrize", "--smiles", "F[B-](F)(F)F", "--name", "BF4", "--charges",
                 "resp", "--formal-charge", "0", "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "does not match the SMILES" in err and "Traceback" not in err
