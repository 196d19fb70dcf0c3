"""End-to-end analysis of a real built box with a synthetic trajectory, CLI and bad input.

The trajectory is NOT physical dynamics: a LiFSI/DME box built by
``solvflow.build`` (RDKit + Packmol) whose molecules make seeded rigid-body
random walks (``tests/synthetic.py``), written wrapped into the box
as DCD. It exercises streaming, periodic contacts, unwrapping and the
contract; its exact diffusion coefficient is known (sigma^2 / 2 dt).
"""

from __future__ import annotations

import json
from pathlib import Path

import mdtraj as md
import numpy as np
import pytest

import solvflow
from solvflow.analysis import analyze
from solvflow.cli import main
from solvflow.errors import AnalysisInputError
from synthetic import write_random_walk

SIGMA_NM = 0.03
N_FRAMES = 60
CUTOFFS = {"FSI": 0.3, "DME": 0.3}
SELECTIONS = {
    "cation": "Li=resname LI",
    "anions": ["FSI=resname FSI and (element O or element N)"],
    "solvents": ["DME=resname DME and element O"],
}


@pytest.fixture(scope="module")
def rundir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("analysis") / "lifsi"
    solvflow.build("lifsi_dme", concentration=2.0, n_salt=16, output=out, write_system=False,
                   seed=3)
    write_random_walk(out / "topology.pdb", out / "traj.dcd", N_FRAMES, sigma_nm=SIGMA_NM, seed=4)
    return out


@pytest.fixture(scope="module")
def result(rundir: Path) -> dict:
    return analyze(rundir, cutoffs_nm=CUTOFFS, dt_ps=1.0).to_dict()


def test_contract_keys_and_consistency(result: dict) -> None:
    for key in ("cation", "n_frames", "frames_used", "cutoffs_nm", "coordination_numbers",
                "coordination_numbers_atoms", "ion_pairing", "anion_states", "shells",
                "clusters", "stderr", "residence_times_ps", "diffusion", "rdf"):
        assert key in result, key
    assert result["cation"] == "Li" and result["n_frames"] == N_FRAMES
    assert result["frames_used"] == [0, N_FRAMES, 1]
    assert sum(result["ion_pairing"].values()) == pytest.approx(1.0)
    assert sum(result["anion_states"].values()) == pytest.approx(1.0)
    # Every molecule contributes >= 1 site, so atom CN >= molecule CN.
    for name in CUTOFFS:
        assert result["coordination_numbers_atoms"][name] >= result["coordination_numbers"][name]
        assert result["stderr"]["coordination_numbers"][name] is not None
    # Shells: fractions descending, mean DME count over all shells reproduces the CN only if
    # all compositions are listed; with 10 listed the sum is at most 1.
    fractions = [s["fraction"] for s in result["shells"]]
    assert fractions == sorted(fractions, reverse=True) and sum(fractions) <= 1 + 1e-12
    # Cluster sizes count every ion once per frame: ion fractions sum to 1.
    assert sum(result["clusters"]["ion_fraction_by_size"].values()) == pytest.approx(1.0)
    json.dumps(result)  # strict JSON (no NaN)


def test_pairing_matches_an_independent_per_frame_count(rundir: Path, result: dict) -> None:
    # Recompute SSIP fraction and FSI CN with plain mdtraj distances (all pairs, minimum image).
    traj = md.load(str(rundir / "traj.dcd"), top=str(rundir / "topology.pdb"))
    top = traj.topology
    li = top.select("resname LI")
    fsi_sites = top.select("resname FSI and (element O or element N)")
    pairs = np.array([(a, b) for a in li for b in fsi_sites])
    d = md.compute_distances(traj, pairs, periodic=True).reshape(traj.n_frames, li.size, -1)
    res = np.array([top.atom(i).residue.index for i in fsi_sites])
    close = d <= CUTOFFS["FSI"]
    n_fsi = np.stack([[np.unique(res[row]).size for row in frame] for frame in close])
    assert result["coordination_numbers"]["FSI"] == pytest.approx(n_fsi.mean(), abs=1e-12)
    assert result["ion_pairing"]["SSIP"] == pytest.approx((n_fsi == 0).mean(), abs=1e-12)
    assert result["coordination_numbers_atoms"]["FSI"] == pytest.approx(
        close.sum(axis=2).mean(), abs=1e-12)


def test_diffusion_of_the_random_walk(result: dict) -> None:
    # Exact D = sigma^2 / (2 dt) = 4.5e-4 nm^2/ps; 60 frames of ~100 molecules: within 25 %.
    expected = SIGMA_NM**2 / 2.0
    for name in ("Li", "DME"):
        d = result["diffusion"][name]
        assert d["D_nm2_ps"] == pytest.approx(expected, rel=0.25)
        assert d["fit_window_ps"][1] == pytest.approx(30.0)
        # time blocks: 5 blocks of 12 frames, lags up to 6 frames; errors from their spread
        assert d["block_fit_window_ps"][1] == pytest.approx(6.0)
        assert d["stderr_nm2_ps"] == pytest.approx(
            np.std(d["block_D_nm2_ps"], ddof=1) / np.sqrt(5))
    # Independent walks: no ion-ion correlation; the spec's charges and scale 0.8 are used.
    sigma = result["conductivity"]
    assert sigma["charge_scale"] == 0.8 and sigma["formal_charges"] == {"Li": 1.0, "FSI": -1.0}
    ne = sigma["nernst_einstein"]
    assert ne["scaled_charges_S_m"] == pytest.approx(0.64 * ne["formal_charges_S_m"])
    assert result["units"]["conductivity"] == "S/m"


def test_frame_range_and_rdf_cutoff_error(rundir: Path) -> None:
    part = analyze(rundir, cutoffs_nm=CUTOFFS, start=10, stop=40, step=3, dt_ps=1.0,
                   diffusion=False).to_dict()
    assert part["n_frames"] == 10 and part["frames_used"] == [10, 40, 3]
    assert "diffusion" in part and part["diffusion"] == {}
    # Random rigid-body placement has no first-shell structure: no RDF minimum -> clear error.
    with pytest.raises(AnalysisInputError, match="--cutoff"):
        analyze(rundir, cutoffs_nm={"FSI": 0.3}, dt_ps=1.0)


def test_selections_api_and_cli_agree(rundir: Path, result: dict, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a.json"
    args = [str(rundir / "traj.dcd"), "--top", str(rundir / "topology.pdb"),
            "--cation", SELECTIONS["cation"], "--anion", SELECTIONS["anions"][0],
            "--solvent", SELECTIONS["solvents"][0], "--cutoff", "FSI=0.3", "--cutoff", "DME=0.3",
            "--dt-ps", "1", "-o", str(out)]
    assert main(["analyze", *args]) == 0
    data = json.loads(out.read_text())
    assert data["coordination_numbers"] == result["coordination_numbers"]
    assert data["ion_pairing"] == result["ion_pairing"]
    for png in ("rdf.png", "ion_pairing.png", "shells.png"):
        assert (tmp_path / png).stat().st_size > 10_000
    assert "SSIP" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "message"), [
    (["--cation", "Li=resname XX"], "empty"),
    (["--cation", "Li=resname FSI"], "one centre atom per ion"),
    (["--cation", "Li=resname LI", "--solvent", "D=resname FSI and element O"], "overlap"),
    (["--cation", "Li=resname LI", "--stop", "500"], "out of range"),
    (["--cation", "Li=resname LI", "--cutoff", "XYZ=0.3"], "unknown partner"),
    (["--cation", "Li=resname LI and"], "cannot parse"),
    (["--cation", "Li=resname LI", "--box-nm", "2.5,3"], "a,b,c"),
])
def test_bad_input_is_one_clear_line(rundir: Path, tmp_path: Path, extra: list[str],
                                     message: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = [str(rundir / "traj.dcd"), "--top", str(rundir / "topology.pdb"),
            "--anion", SELECTIONS["anions"][0], "--cutoff", "FSI=0.3", "-o",
            str(tmp_path / "x.json")]
    assert main(["analyze", *base, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_box_needs_box_nm(rundir: Path, tmp_path: Path) -> None:
    # An XTC written without unit cell: the error names --box-nm; with it the run works.
    traj = md.load(str(rundir / "traj.dcd"), top=str(rundir / "topology.pdb"))[:5]
    traj.unitcell_vectors = None
    traj.save_xtc(str(tmp_path / "nobox.xtc"))
    kw = {"cation": SELECTIONS["cation"], "anions": SELECTIONS["anions"], "cutoffs_nm":
          {"FSI": 0.3}, "rdf_frames": 0, "diffusion": False}
    with pytest.raises(AnalysisInputError, match="--box-nm"):
        analyze(tmp_path / "nobox.xtc", rundir / "topology.pdb", **kw)
    box = float(md.load(str(rundir / "topology.pdb")).unitcell_lengths[0, 0])
    done = analyze(tmp_path / "nobox.xtc", rundir / "topology.pdb", box_nm=box, **kw).to_dict()
    assert done["n_frames"] == 5


def test_chunk_size_does_not_change_any_result(rundir: Path, result: dict) -> None:
    # Frames are analysed a chunk at a time (vectorised over frames); chunks of 7 frames (the
    # last one partial) and of 1 frame must give bit-identical shells, pairing, clusters,
    # residence and RDFs. Diffusion sums float displacements chunk by chunk (as it always did),
    # so only its last bits (and those of the conductivity built on it) may depend on the chunk.
    for chunk in (7, 1):
        other = analyze(rundir, cutoffs_nm=CUTOFFS, dt_ps=1.0, chunk=chunk).to_dict()
        diffusion = other.pop("diffusion")
        sigma = other.pop("conductivity")
        assert other == {k: v for k, v in result.items() if k not in ("diffusion", "conductivity")}
        for key in ("nernst_einstein", "einstein_helfand"):
            assert sigma[key]["formal_charges_S_m"] == pytest.approx(
                result["conductivity"][key]["formal_charges_S_m"], rel=1e-6)
        for name, d in diffusion.items():
            assert d["D_nm2_ps"] == pytest.approx(result["diffusion"][name]["D_nm2_ps"],
                                                  rel=1e-9)
