"""Starting states (random, dissociated, paired) on real RDKit + Packmol boxes.

The contact conditions are checked here by an independent brute-force numpy
minimum-image computation on the coordinates written to topology.pdb, not by
the production check (a k-d tree on the in-memory positions).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from openmm import unit
from openmm.app import PDBFile

from solvflow.build import build
from solvflow.cli import main
from solvflow.errors import BuildError, InputError
from solvflow.species import Species
from solvflow.start_states import CONTACT_NM, check_start, contact_position, nearest_anion_site_nm

PDB_ROUNDING_NM = 1e-4  # PDB coordinates carry 3 decimals in Angstrom (5e-5 nm)

# (system, composition) of the tiny boxes: 4 LiFSI at 1 M (43 molecules, 1.89 nm box),
# 2 Mg(TFSI)2 at 0.5 M (39 molecules).
BOXES = {"li": ("lifsi_dme", {"concentration": 1.0, "n_salt": 4}),
         "mg": ("mg_tfsi2_dme", {"concentration": 0.5, "n_salt": 2})}


def _build(tmp: Path, key: str, start: str, seed: int = 7, **kw):
    name, comp = BOXES[key]
    return build(name, output=tmp / f"{key}-{start}-{seed}", write_system=False, seed=seed,
                 start=start, **comp, **kw)


@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("starts")
    return {(key, start): _build(tmp, key, start)
            for key in BOXES for start in ("dissociated", "paired")}


def cation_to_anion_sites(rundir: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Brute-force minimum-image distances (nm) from every cation to every anion site atom.

    Returns the (n_cation, n_site) distance matrix, the residue index of each site column
    and the spec.yaml document.
    """
    spec = yaml.safe_load((rundir / "spec.yaml").read_text())
    by_residue = {s["residue"]: s for s in spec["species"]}
    pdb = PDBFile(str(rundir / "topology.pdb"))
    xyz = np.array(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    edge = pdb.topology.getPeriodicBoxVectors()[0][0].value_in_unit(unit.nanometer)
    cations, sites, site_residue = [], [], []
    for atom in pdb.topology.atoms():
        sp = by_residue[atom.residue.name]
        if sp["role"] == "cation":
            cations.append(atom.index)
        elif sp["role"] == "anion" and atom.name in sp["sites"]:
            sites.append(atom.index)
            site_residue.append(atom.residue.index)
    delta = xyz[cations][:, None, :] - xyz[sites][None, :, :]
    delta -= edge * np.round(delta / edge)
    return np.sqrt((delta**2).sum(axis=-1)), np.array(site_residue), spec


@pytest.mark.parametrize("key", ["li", "mg"])
def test_dissociated_start_has_no_anion_site_near_any_cation(boxes, key):
    distances, _, spec = cation_to_anion_sites(boxes[(key, "dissociated")].rundir)
    start = spec["start"]
    assert start["state"] == "dissociated" and start["distance_nm"] == 0.5
    assert distances.shape[0] == BOXES[key][1]["n_salt"]
    assert distances.min() >= 0.5 - PDB_ROUNDING_NM
    assert start["measured"]["closest_anion_site_nm"] == pytest.approx(distances.min(),
                                                                        abs=PDB_ROUNDING_NM)


@pytest.mark.parametrize(("key", "element"), [("li", "Li"), ("mg", "Mg")])
def test_paired_start_puts_every_cation_in_contact_with_its_own_anion(boxes, key, element):
    distances, site_residue, spec = cation_to_anion_sites(boxes[(key, "paired")].rundir)
    start = spec["start"]
    contact = CONTACT_NM[element]
    assert start["state"] == "paired" and start["distance_nm"] == contact
    assert start["anions_per_cation"] == 1
    nearest = distances.min(axis=1)
    assert np.all(np.abs(nearest - contact) <= 2 * PDB_ROUNDING_NM)  # a rigid pre-built pair
    partner = site_residue[distances.argmin(axis=1)]
    assert len(set(partner)) == len(nearest)  # one anion per cation, none shared
    # Packmol keeps every other molecule 0.2 nm from the pair, so the cation touches one site.
    assert np.sort(distances, axis=1)[:, 1].min() > contact


def test_starts_enter_the_input_hash_and_random_keeps_the_old_formula(boxes, tmp_path):
    random = _build(tmp_path, "li", "random")
    spec = yaml.safe_load((random.rundir / "spec.yaml").read_text())
    assert spec["start"] == {"state": "random"}
    # The hash formula of random builds before starting states existed (build.spec_document).
    old_request = {"system": spec["system"], "mode": "molarity", "requested": 1.0, "n_salt": 4,
                   "seed": 7, "charge_scale": spec["charge_scale"]}
    digest = hashlib.sha256(json.dumps(old_request, sort_keys=True).encode()).hexdigest()
    assert spec["input_hash"] == f"sha256:{digest}"
    hashes = {spec["input_hash"]} | {b.spec["input_hash"] for k, b in boxes.items() if k[0] == "li"}
    assert len(hashes) == 3


def test_random_start_gives_the_box_of_the_code_before_starting_states(tmp_path):
    # Regression value made before starting states existed (commit 26c6187; OpenMM 8.6.1,
    # RDKit 2026.09.1, Packmol 21.2.3) with
    #   build("lifsi_dme", output=R, concentration=1.0, n_salt=4, seed=7, write_system=False)
    # and sha256 of topology.pdb without its first (dated REMARK) line. Another version of
    # those three programs may move atoms and change it.
    result = _build(tmp_path, "li", "random")
    lines = (result.rundir / "topology.pdb").read_text().splitlines()
    digest = hashlib.sha256("\n".join(lines[1:]).encode()).hexdigest()
    assert digest == "1eccb3f6de654ecc2852a95ed04ba1bdba92711ba82575626f2aef3ed1035936"


def test_the_same_seed_gives_the_same_paired_box(boxes, tmp_path):
    again = _build(tmp_path, "mg", "paired")
    first = (boxes[("mg", "paired")].rundir / "topology.pdb").read_text().splitlines()[1:]
    assert (again.rundir / "topology.pdb").read_text().splitlines()[1:] == first


def test_impossible_dissociated_start_is_a_clear_error(tmp_path):
    # 4 cations kept 2 x (0.9 + 0.01) - 0.2 = 1.62 nm apart cannot fit a 1.89 nm periodic box
    # (the best arrangement, fcc, has them 1.89 / sqrt(2) = 1.33 nm apart).
    with pytest.raises(BuildError, match=r"dissociated.*0\.9 nm.*lower concentration"):
        _build(tmp_path, "li", "dissociated", start_distance_nm=0.9, packmol_nloop=3)
    assert not list(tmp_path.iterdir())


def test_paired_start_that_packmol_cannot_pack_is_a_clear_error(tmp_path):
    data = {"name": "dense", "kind": "salt_solution", "salt": {"Li": 1, "FSI": 1},
            "solvent": {"DM2": 1.0},
            "species": ["Li", "FSI", {"name": "DM2", "smiles": "COCCOC", "residue": "DM2",
                                      "charge": 0, "role": "solvent",
                                      "forcefield": "ethers.xml", "density_g_cm3": 2.0}]}
    path = tmp_path / "dense.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(BuildError, match=r"--start paired: .*too dense.*--start random"):
        build(path, output=tmp_path / "run", concentration=1.0, n_salt=2, write_system=False,
              start="paired", packmol_nloop=2)


def test_check_start_on_hand_placed_ions():
    li = Species("Li", "[Li+]", "LI", 1, "cation", "ions.xml")
    cl = Species("Cl", "[Cl-]", "CL", -1, "anion", "ions.xml")
    edge = 2.0
    # Li at x = 0.05 and Cl at x = 1.75: 0.30 nm apart through the periodic boundary.
    positions = np.array([[0.05, 1.0, 1.0], [1.75, 1.0, 1.0]])
    got = nearest_anion_site_nm(positions, edge, np.array([0]), np.array([1]))
    assert got == pytest.approx([0.30])
    message = r"within 0\.5 nm of any cation, but .* 0\.300 nm from cation atom 0"
    with pytest.raises(BuildError, match=message):
        check_start({"state": "dissociated", "distance_nm": 0.5}, [li, cl], [1, 1], positions,
                    edge)
    assert check_start({"state": "dissociated", "distance_nm": 0.25}, [li, cl], [1, 1],
                       positions, edge) == {"closest_anion_site_nm": 0.3}
    with pytest.raises(BuildError, match=r"paired .*0\.300 nm from the nearest"):
        check_start({"state": "paired", "distance_nm": 0.2}, [li, cl], [1, 1], positions, edge)


def test_contact_position_touches_the_most_exposed_site():
    # A bent triatomic O-S-O (S at the origin, O 0.145 nm out, 120 degrees apart).
    s_o = 1.45
    xyz = np.array([[s_o, 0.0, 0.0], [0.0, 0.0, 0.0],
                    [s_o * np.cos(2 * np.pi / 3), s_o * np.sin(2 * np.pi / 3), 0.0]])
    site, where = contact_position(xyz, [0, 2], 2.0)
    assert site in (0, 2)
    assert np.linalg.norm(where - xyz[site]) == pytest.approx(2.0)
    others = np.delete(xyz, site, axis=0)
    # Along the S=O bond away from S the other atoms are at least 1.45 + 2.0 A from it...
    assert np.linalg.norm(others - where, axis=1).min() >= 3.45 - 0.05


@pytest.mark.parametrize(("system", "start", "message"), [
    ("alcl3_emimcl", "paired", "chloroaluminate melt"),
    ("dme", "dissociated", "neat liquid"),
])
def test_only_random_for_melts_and_neat_liquids(tmp_path, system, start, message):
    with pytest.raises(InputError, match=f"{message}.*Only --start random"):
        build(system, output=tmp_path / "r", start=start, write_system=False)


@pytest.mark.parametrize(("kw", "message"), [
    ({"start": "paired", "start_distance_nm": 0.5}, r"\[0\.15, 0\.35\]"),
    ({"start": "dissociated", "start_distance_nm": -1.0}, r"\[0\.3, 1\.5\]"),
    ({"start": "random", "start_distance_nm": 0.5}, "only to --start dissociated or paired"),
])
def test_bad_start_distances(tmp_path, kw, message):
    with pytest.raises(InputError, match=message):
        _build(tmp_path, "li", **kw)


def test_cli_bogus_start_is_one_line_listing_the_allowed_values(tmp_path, capsys):
    code = main(["build", "lifsi_dme", "-n", "4", "--start", "bogus", "-o", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "'bogus'" in err and "random, dissociated, paired" in err
    assert not (tmp_path / "r").exists()


def test_cli_build_paired_prints_and_records_the_start(tmp_path, capsys):
    code = main(["build", "lifsi_dme", "-c", "1", "-n", "4", "--start", "paired",
                 "--start-distance-nm", "0.21", "--cutoff-nm", "0.9", "-o", str(tmp_path / "r")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "start    paired: every cation 0.21 nm from one anion site" in out
    spec = yaml.safe_load((tmp_path / "r" / "spec.yaml").read_text())
    assert spec["start"]["distance_nm"] == 0.21
    assert spec["start"]["measured"]["farthest_nearest_anion_site_nm"] == pytest.approx(0.21)


def test_build_help_documents_the_start_states(capsys):
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--start STATE", "random", "dissociated (no anion site within",
                 "paired (every cation in contact", "--start-distance-nm"):
        assert text in out


def test_run_system_refuses_a_run_directory_built_from_another_start(boxes, capsys):
    rundir = boxes[("li", "paired")].rundir
    code = main(["run", "lifsi_dme", "-o", str(rundir), "--start", "dissociated"])
    err = capsys.readouterr().err
    assert code == 2 and "built differently" in err and "start paired" in err
