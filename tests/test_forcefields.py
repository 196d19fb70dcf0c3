"""The shipped force-field files: every species, every system, CPU and OpenCL.

Per species (single molecule, no cutoff): the template matches, charges sum to
the formal charge, symmetry-equivalent atoms carry equal charges, every bond
and angle has parameters, and the <Info> block names its sources.
Per shipped system (tiny periodic box): system.xml is written, minimisation
gives finite energies, and CPU and OpenCL (PoCL in CI) agree.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import openmm
import pytest
from openmm import XmlSerializer, unit
from openmm.app import PDBFile, Topology
from rdkit import Chem

from solvflow.build import build
from solvflow.forcefield import create_system, forcefield_path, load_forcefield
from solvflow.resources import data_dir
from solvflow.spec import ION_PARAMETER_SETS, species_library
from solvflow.species import Species, add_residue, molecule

LIBRARY = species_library()


def _species(name: str) -> Species:
    d = LIBRARY[name]
    return Species(name=name, smiles=d["smiles"], residue=d["residue"], charge=d["charge"],
                   role=d["role"], forcefield=d["forcefield"], sites=d.get("sites"),
                   density_g_cm3=d.get("density_g_cm3"))


def _single_molecule_system(sp: Species):
    top = Topology()
    add_residue(top, top.addChain(), sp, molecule(sp))
    return top, create_system(top, load_forcefield([sp.forcefield]), periodic=False)


def _charges(system) -> np.ndarray:
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    return np.array([nb.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
                     for i in range(system.getNumParticles())])


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_species_charges_sum_and_symmetry(name):
    sp = _species(name)
    _, system = _single_molecule_system(sp)  # raises if a bond/angle/template is missing
    q = _charges(system)
    assert q.sum() == pytest.approx(sp.charge, abs=1e-6)
    ranks = np.array(Chem.CanonicalRankAtoms(Chem.AddHs(Chem.MolFromSmiles(sp.smiles)),
                                             breakTies=False))
    for rank in np.unique(ranks):
        members = q[ranks == rank]
        assert np.ptp(members) < 1e-9, f"{name}: unequal charges on equivalent atoms {members}"


@pytest.mark.parametrize("name", sorted({d["forcefield"] for d in LIBRARY.values()}))
def test_every_file_names_its_sources(name):
    info = ET.parse(forcefield_path(name)).getroot().find("Info")
    assert info is not None, f"{name} has no <Info>"
    assert info.findall("Source") and info.findall("Reference"), f"{name}: Source/Reference"


# Alternative parameter sets define the same residues as the file they replace (selected per
# system: `ion_parameters:` in spec.ION_PARAMETER_SETS; the CL&P EMIm+ kept for comparison).
ALTERNATIVES = {"ions_li_merz_hfe.xml": "ions.xml", "ions_li_merz_iod.xml": "ions.xml",
                "imidazolium_clandp.xml": "imidazolium.xml"}


def test_all_files_load_together():
    files = sorted(p.name for p in data_dir("forcefields").glob("*.xml"))
    defaults = [f for f in files if f not in ALTERNATIVES]
    assert len(defaults) >= 7 and set(ALTERNATIVES.values()) <= set(defaults)
    assert set(ION_PARAMETER_SETS.values()) <= set(files)
    load_forcefield(defaults)  # duplicate type names or 1-4 scales would raise here
    for alternative, replaced in ALTERNATIVES.items():
        assert alternative in files, f"{alternative} is listed but not shipped"
        load_forcefield([f for f in defaults if f != replaced] + [alternative])


# Tiny boxes (cutoff 0.8 nm, so the box edge must exceed 1.6 nm) of every shipped system.
TINY = {
    "lifsi_dme": {"concentration": 1.0, "n_salt": 6},
    "mg_tfsi2_dme": {"concentration": 0.5, "n_salt": 2},
    "mg_tfsi2_dmac": {"concentration": 0.5, "n_salt": 2},
    "ca_bhfip4_dme": {"concentration": 0.5, "n_salt": 2},
    "alcl3_emimcl": {"ratio": 1.5, "n_salt": 16},
    "dme": {"n_salt": 40},
    "dmac": {"n_salt": 40},
}


class _Boxes(dict):
    """Tiny run directories, built on first use (one per shipped system)."""

    def __init__(self, root: Path):
        super().__init__()
        self.root = root

    def __missing__(self, name: str) -> Path:
        rundir = build(name, output=self.root / name, seed=3, cutoff_nm=0.8, **TINY[name]).rundir
        self[name] = rundir
        return rundir


@pytest.fixture(scope="module")
def tiny_boxes(tmp_path_factory):
    return _Boxes(tmp_path_factory.mktemp("ff"))


def _context(rundir: Path, platform: str):
    system = XmlSerializer.deserialize((rundir / "system.xml").read_text())
    pdb = PDBFile(str(rundir / "topology.pdb"))
    properties = {"Precision": "double"} if platform == "OpenCL" else {}
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName(platform), properties)
    context.setPositions(pdb.positions)
    return context


def _energy_forces(context) -> tuple[float, np.ndarray]:
    state = context.getState(getEnergy=True, getForces=True)
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))


def test_shipped_systems_cover_every_system_file():
    from solvflow.spec import available_systems

    assert set(TINY) == set(available_systems())


@pytest.mark.parametrize("name", sorted(TINY))
def test_minimisation_converges_on_cpu(tiny_boxes, name):
    context = _context(tiny_boxes[name], "CPU")
    before, _ = _energy_forces(context)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 2000)
    after, forces = _energy_forces(context)
    assert np.isfinite(after) and after < before
    assert np.all(np.isfinite(forces))
    # Converged: no atom is left with a huge force (tolerance 10 kJ/mol/nm is on the RMS).
    assert np.sqrt((forces**2).sum(axis=1)).max() < 1e4


def _opencl_available() -> bool:
    names = [openmm.Platform.getPlatform(i).getName()
             for i in range(openmm.Platform.getNumPlatforms())]
    return "OpenCL" in names


@pytest.mark.opencl
@pytest.mark.parametrize("name", sorted(TINY))
def test_cpu_and_opencl_agree(tiny_boxes, name):
    if not _opencl_available():
        pytest.skip("OpenMM's OpenCL platform does not load here (install pocl-opencl-icd)")
    cpu = _context(tiny_boxes[name], "CPU")
    openmm.LocalEnergyMinimizer.minimize(cpu, 10.0, 500)
    positions = cpu.getState(getPositions=True).getPositions()
    try:
        ocl = _context(tiny_boxes[name], "OpenCL")
    except openmm.OpenMMException as exc:
        pytest.skip(f"OpenCL context could not be created: {exc}")
    ocl.setPositions(positions)
    e_cpu, f_cpu = _energy_forces(cpu)
    e_ocl, f_ocl = _energy_forces(ocl)
    assert np.isfinite(e_ocl)
    assert abs(e_ocl - e_cpu) / abs(e_cpu) < 1e-4
    rel_rms = np.sqrt(((f_ocl - f_cpu) ** 2).sum(axis=1).mean() / (f_cpu**2).sum(axis=1).mean())
    assert rel_rms < 1e-3


def test_openmm_finds_the_files_through_the_entry_point():
    """`ForceField("solvflow/ions.xml")` works in an installed solvflow, without solvflow code."""
    import solvflow

    if "site-packages" not in str(Path(solvflow.__file__)):
        pytest.skip("solvflow runs from a source tree here; the entry point needs an install")
    from openmm.app import ForceField

    ff = ForceField("solvflow/ions.xml", "solvflow/imides.xml", "solvflow/ethers.xml")
    assert {"LI", "FSI", "DME"} <= set(ff._templates)
