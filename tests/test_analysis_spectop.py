"""The run-directory topology built from spec.yaml gives exactly what the parsed PDB gives.

``analyze(RUNDIR)`` builds its MDTraj topology from ``spec.yaml`` (species
order, residue, count, atom_names; elements from the SMILES) instead of
parsing ``topology.pdb``; without ``atom_names`` it falls back to the PDB.
These tests compare both routes on the shipped real OpenMM trajectory
(tests/data/lifsi_dme_1M_md) and on a freshly built box with a synthetic
trajectory, atom by atom and analysis.json key by key.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import mdtraj as md
import pytest
import yaml

import solvflow
from solvflow.analysis import analyze
from solvflow.analysis.spectop import topology_from_spec
from solvflow.errors import AnalysisInputError
from synthetic import write_random_walk

REAL = Path(__file__).parent / "data" / "lifsi_dme_1M_md"


def _copy(src: Path, dst: Path, edit: Any = None) -> Path:
    shutil.copytree(src, dst)
    if edit is not None:
        spec = yaml.safe_load((dst / "spec.yaml").read_text())
        edit(spec)
        (dst / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return dst


def _drop_atom_names(spec: dict) -> None:
    for sp in spec["species"]:
        sp.pop("atom_names")


def _without_paths(data: dict) -> dict:
    out = dict(data)
    out["provenance"] = {k: v for k, v in data["provenance"].items()
                         if k not in ("run_directory", "trajectory")}
    return out


def _same_atoms(a: md.Topology, b: md.Topology) -> None:
    assert (a.n_chains, a.n_residues, a.n_atoms) == (b.n_chains, b.n_residues, b.n_atoms)
    for x, y in zip(a.atoms, b.atoms, strict=True):
        assert (x.name, x.element, x.residue.name, x.residue.index, x.residue.chain.index) == (
            y.name, y.element, y.residue.name, y.residue.index, y.residue.chain.index)


def test_spec_topology_equals_parsed_pdb_on_real_run() -> None:
    spec = yaml.safe_load((REAL / "spec.yaml").read_text())
    built = topology_from_spec(spec)
    assert built is not None and built.n_bonds == 0
    _same_atoms(built, md.load_topology(str(REAL / "topology.pdb")))


def test_real_run_analysis_json_identical(tmp_path: Path) -> None:
    # The PDB route is forced by removing atom_names (the documented fallback).
    pdb_dir = _copy(REAL, tmp_path / "pdb", _drop_atom_names)
    assert topology_from_spec(yaml.safe_load((pdb_dir / "spec.yaml").read_text())) is None
    fast = analyze(REAL, dt_ps=0.4).to_dict()
    slow = analyze(pdb_dir, dt_ps=0.4).to_dict()
    assert fast["provenance"]["run_directory"] != slow["provenance"]["run_directory"]
    assert _without_paths(fast) == _without_paths(slow)


def test_built_box_analysis_json_identical(tmp_path: Path) -> None:
    out = tmp_path / "lifsi"
    solvflow.build("lifsi_dme", concentration=2.0, n_salt=6, output=out, write_system=False,
                   seed=5)
    write_random_walk(out / "topology.pdb", out / "traj.dcd", 30, sigma_nm=0.03, seed=6)
    spec = yaml.safe_load((out / "spec.yaml").read_text())
    built = topology_from_spec(spec)
    assert built is not None
    _same_atoms(built, md.load_topology(str(out / "topology.pdb")))
    pdb_dir = _copy(out, tmp_path / "pdb", _drop_atom_names)
    kwargs = {"cutoffs_nm": {"FSI": 0.3, "DME": 0.3}, "dt_ps": 1.0, "n_blocks": 3}
    fast = analyze(out, **kwargs).to_dict()
    slow = analyze(pdb_dir, **kwargs).to_dict()
    assert fast["diffusion"] == slow["diffusion"]  # element masses: centres of mass
    assert _without_paths(fast) == _without_paths(slow)


def test_spec_and_trajectory_disagree(tmp_path: Path) -> None:
    def one_dme_less(spec: dict) -> None:
        spec["species"][2]["count"] -= 1

    bad = _copy(REAL, tmp_path / "bad", one_dme_less)
    with pytest.raises(AnalysisInputError, match="spec.yaml and trajectory disagree.*1768 atoms"):
        analyze(bad, dt_ps=0.4)


def test_atom_names_that_do_not_match_the_smiles(tmp_path: Path) -> None:
    def extra_name(spec: dict) -> None:
        spec["species"][1]["atom_names"].append("X1")

    bad = _copy(REAL, tmp_path / "bad", extra_name)
    with pytest.raises(AnalysisInputError, match="FSI.*10 atom_names.*9 atoms"):
        analyze(bad, dt_ps=0.4)
