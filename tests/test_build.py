"""Real RDKit + Packmol builds of tiny boxes."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from openmm import unit
from openmm.app import PDBFile, PDBxFile

from solvflow.build import build, check_min_distance
from solvflow.errors import BuildError, OutputExistsError, PackmolError
from solvflow.spec import available_systems, load_system
from solvflow.species import molecule

# `solvflow.build` is also the public function, so reach the module through importlib.
build_module = importlib.import_module("solvflow.build")
TOLERANCE_NM = build_module.PACKMOL_TOLERANCE_A / 10.0


def small_build(tmp: Path, name: str = "lifsi_dme", **kw):
    kw.setdefault("concentration", 1.0)
    kw.setdefault("n_salt", 4)
    return build(name, output=tmp, write_system=False, **kw)


@pytest.fixture(scope="module")
def lifsi_box(tmp_path_factory):
    return small_build(tmp_path_factory.mktemp("b") / "run", seed=7)


def read_positions(rundir: Path) -> np.ndarray:
    pdb = PDBFile(str(rundir / "topology.pdb"))
    return np.array(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer))


def test_counts_residues_and_bonds(lifsi_box):
    pdb = PDBFile(str(lifsi_box.rundir / "topology.pdb"))
    residues = [r.name for r in pdb.topology.residues()]
    counts = lifsi_box.composition.counts
    assert residues.count("LI") == 4 and residues.count("FSI") == 4
    assert residues.count("DME") == counts["DME"] > 0
    n_bonds = 4 * 8 + counts["DME"] * 15  # FSI has 8 bonds, DME 15, Li none
    assert pdb.topology.getNumBonds() == n_bonds
    for res in pdb.topology.residues():
        names = [a.name for a in res.atoms()]
        assert len(names) == len(set(names)), f"duplicate atom names in {res}"
    box = pdb.topology.getPeriodicBoxVectors().value_in_unit(unit.nanometer)
    assert box[0][0] == pytest.approx(lifsi_box.composition.box_nm, abs=1e-3)


def test_no_two_molecules_closer_than_tolerance(lifsi_box):
    pdb = PDBFile(str(lifsi_box.rundir / "topology.pdb"))
    pos = read_positions(lifsi_box.rundir)
    edge = lifsi_box.composition.box_nm
    # PDB keeps 3 decimals in Angstrom: allow 0.002 nm of rounding.
    smallest = check_min_distance(pdb.topology, pos, edge, TOLERANCE_NM - 0.002)
    assert smallest >= TOLERANCE_NM - 0.002


def test_min_distance_check_catches_overlap(lifsi_box):
    pdb = PDBFile(str(lifsi_box.rundir / "topology.pdb"))
    pos = read_positions(lifsi_box.rundir)
    pos[1] = pos[0] + [0.05, 0.0, 0.0]  # put the second Li on top of the first
    with pytest.raises(BuildError, match="apart"):
        check_min_distance(pdb.topology, pos, lifsi_box.composition.box_nm, TOLERANCE_NM)


def test_spec_yaml_records_the_resolved_input(lifsi_box):
    spec = yaml.safe_load((lifsi_box.rundir / "spec.yaml").read_text())
    assert spec["seed"] == 7
    assert spec["input_hash"].startswith("sha256:")
    assert spec["charge_scale"] == load_system("lifsi_dme").charge_scale
    assert spec["system"]["provenance"]["reference"]
    assert spec["composition"]["counts"] == lifsi_box.composition.counts
    by_name = {s["name"]: s for s in spec["species"]}
    assert by_name["DME"]["sites"] == ["O1", "O2"]
    assert by_name["Li"]["sites"] == ["LI"]
    assert spec["analysis"] == {"cation": "Li", "partners": ["FSI", "DME"]}
    net = sum(s["charge"] * s["count"] for s in spec["species"])
    assert net == 0


def test_same_seed_same_box_other_seed_other_box(lifsi_box, tmp_path):
    again = small_build(tmp_path / "again", seed=7)
    other = small_build(tmp_path / "other", seed=8)
    first = (lifsi_box.rundir / "topology.pdb").read_text().splitlines()[1:]
    assert (again.rundir / "topology.pdb").read_text().splitlines()[1:] == first
    assert (other.rundir / "topology.pdb").read_text().splitlines()[1:] != first
    spec_a = yaml.safe_load((again.rundir / "spec.yaml").read_text())
    spec_b = yaml.safe_load((other.rundir / "spec.yaml").read_text())
    assert spec_a["input_hash"] != spec_b["input_hash"]


def shipped_points():
    for name in available_systems():
        spec = load_system(name)
        if spec.kind == "chloroaluminate":
            yield from ((name, {"ratio": r, "n_salt": 10}) for r in spec.ratios)
        elif spec.kind == "liquid":
            yield name, {"n_salt": 20}
        else:
            yield from ((name, {"concentration": c, "n_salt": 2}) for c in spec.concentrations_M)


@pytest.mark.parametrize(("name", "kw"), list(shipped_points()),
                         ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v.values())))
def test_every_shipped_system_builds(tmp_path, name, kw):
    result = build(name, output=tmp_path / "run", write_system=False, **kw)
    pdb = PDBFile(str(result.rundir / "topology.pdb"))
    spec = load_system(name)
    counts: dict[str, int] = {}
    for res in pdb.topology.residues():
        counts[res.name] = counts.get(res.name, 0) + 1
    expected = {spec.get(s).residue: n for s, n in result.composition.counts.items()}
    assert counts == expected
    assert sum(spec.get(s).charge * n for s, n in result.composition.counts.items()) == 0
    if spec.kind == "salt_solution":
        assert counts[spec.cation.residue] == kw["n_salt"]


def test_molecules_without_mmff_parameters_get_sensible_geometry():
    # RDKit's MMFF has no B or Al: these fall back to UFF after embedding.
    spec = load_system("alcl3_emimcl")
    mol = molecule(spec.get("Al2Cl7"))
    xyz = mol.GetConformer().GetPositions()
    al_cl = [np.linalg.norm(xyz[b.GetBeginAtomIdx()] - xyz[b.GetEndAtomIdx()])
             for b in mol.GetBonds()]
    assert len(al_cl) == 8 and all(1.9 < d < 2.6 for d in al_cl)
    borate = molecule(load_system("ca_bhfip4_dme").get("BHFIP4"))
    xyz = borate.GetConformer().GetPositions()
    b_o = [np.linalg.norm(xyz[b.GetBeginAtomIdx()] - xyz[b.GetEndAtomIdx()])
           for b in borate.GetBonds() if "B" in (b.GetBeginAtom().GetSymbol(),
                                                 b.GetEndAtom().GetSymbol())]
    assert borate.GetNumAtoms() == 45 and len(b_o) == 4
    assert all(1.3 < d < 1.7 for d in b_o)  # B-O in borate esters is about 1.45-1.5 A


def test_existing_output_is_refused_then_overwritten(lifsi_box, tmp_path):
    target = tmp_path / "run"
    small_build(target)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        small_build(target)
    result = small_build(target, overwrite=True, seed=3)
    assert yaml.safe_load((result.rundir / "spec.yaml").read_text())["seed"] == 3
    assert not list(tmp_path.glob(".run.partial-*"))


def test_overwrite_never_deletes_a_foreign_directory(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.tex").write_text("precious")
    with pytest.raises(OutputExistsError, match="not a solvflow run directory"):
        small_build(target, overwrite=True)
    assert (target / "thesis.tex").read_text() == "precious"


def test_box_packmol_cannot_pack(tmp_path):
    data = {
        "name": "dense", "kind": "salt_solution", "salt": {"Li": 1, "FSI": 1},
        "solvent": {"DM2": 1.0},
        "species": ["Li", "FSI", {"name": "DM2", "smiles": "COCCOC", "residue": "DM2",
                                  "charge": 0, "role": "solvent", "forcefield": "ethers.xml",
                                  "density_g_cm3": 2.0}],
    }
    path = tmp_path / "dense.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PackmolError, match="too dense"):
        build(path, output=tmp_path / "run", concentration=1.0, n_salt=2, write_system=False,
              packmol_nloop=2)
    assert not (tmp_path / "run").exists()


def test_mmcif_above_the_pdb_atom_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(build_module, "PDB_ATOM_LIMIT", 100)
    result = small_build(tmp_path / "run")
    assert result.topology_file.name == "topology.cif"
    cif = PDBxFile(str(result.topology_file))
    assert cif.topology.getNumAtoms() == result.composition.n_atoms
    assert cif.topology.getNumBonds() == 4 * 8 + result.composition.counts["DME"] * 15
