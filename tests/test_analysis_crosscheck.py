"""Agreement with an independent implementation: solvation-analysis (MDAnalysis based).

Both analyse the same file with the same cutoffs: a LiFSI/DME box built by
``solvflow.build`` with a synthetic, seeded rigid-body random-walk trajectory
(not physical dynamics; see ``tests/synthetic.py``). Compared
quantities, defined identically in both codes:

* ``coordination_numbers[p]`` == ``solute.coordination.coordination_numbers[p]``
  (distinct partner residues per cation, mean over cations and frames);
* ``paired_fractions[p]`` == ``solute.pairing.solvent_pairing[p]`` (fraction of
  cations with at least one partner residue in the shell).

Skipped when solvation-analysis is not installed (it is a test-only dependency).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import mdtraj as md
import numpy as np
import pytest

import solvflow
from solvflow.analysis import analyze
from synthetic import write_random_walk

CUTOFFS_NM = {"FSI": 0.31, "DME": 0.29}
SEL_MDTRAJ = {"FSI": "resname FSI and (element O or element N)",
              "DME": "resname DME and element O"}
SEL_MDA = {"FSI": "resname FSI and (element O or element N)", "DME": "resname DME and element O"}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crosscheck") / "lifsi"
    solvflow.build("lifsi_dme", concentration=3.0, n_salt=20, output=out, write_system=False,
                   seed=5)
    write_random_walk(out / "topology.pdb", out / "traj.dcd", 40, sigma_nm=0.03, seed=6)
    return out


def test_no_pair_sits_on_a_cutoff(box: Path) -> None:
    # float32 coordinates are read by two libraries (nm vs Angstrom): a pair within 1e-5 nm of
    # a cutoff could be counted differently, so the comparison below requires a margin.
    traj = md.load(str(box / "traj.dcd"), top=str(box / "topology.pdb"))
    li = traj.topology.select("resname LI")
    for name, sel in SEL_MDTRAJ.items():
        sites = traj.topology.select(sel)
        pairs = np.array([(a, b) for a in li for b in sites])
        d = md.compute_distances(traj, pairs, periodic=True)
        assert np.min(np.abs(d - CUTOFFS_NM[name])) > 1e-5


def test_coordination_and_pairing_match_solvation_analysis(box: Path) -> None:
    pytest.importorskip("solvation_analysis")
    import MDAnalysis as mda
    from solvation_analysis.solute import Solute

    ours = analyze(box, cutoffs_nm=CUTOFFS_NM, dt_ps=1.0, diffusion=False).to_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = mda.Universe(str(box / "topology.pdb"), str(box / "traj.dcd"))
        solute = Solute.from_atoms(
            u.select_atoms("resname LI"),
            {name: u.select_atoms(sel) for name, sel in SEL_MDA.items()},
            solute_name="Li",
            radii={name: 10.0 * r for name, r in CUTOFFS_NM.items()},  # Angstrom
            skip_rdf=True,
            analysis_classes=["coordination", "pairing"],
        )
        solute.run()
    theirs_cn = solute.coordination.coordination_numbers
    theirs_paired = solute.pairing.solvent_pairing
    assert ours["n_frames"] == solute.n_frames == 40
    for name in CUTOFFS_NM:
        assert ours["coordination_numbers"][name] == pytest.approx(theirs_cn[name], abs=1e-6)
        assert ours["paired_fractions"][name] == pytest.approx(theirs_paired[name], abs=1e-6)
    # Non-trivial: both kinds of partner actually coordinate.
    assert min(theirs_cn.values()) > 0.05
