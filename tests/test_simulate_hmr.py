"""Hydrogen mass repartitioning and the 4 fs protocols: masses, validation of the option,
and the 4 fs smoke preset on a real LiFSI/DME box (smoke, then stop at a frame-and-checkpoint
step and resume)."""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path

import numpy as np
import openmm
import pytest
import yaml
from openmm import unit

from solvflow.build import build
from solvflow.dcd import dcd_frame_count, read_dcd_header
from solvflow.errors import InputError, SpecError
from solvflow.simulate import load_protocol, simulate
from solvflow.simulation import rundir as rd
from solvflow.simulation.hmr import repartition_hydrogen_mass
from solvflow.simulation.protocols import parse_protocol
from solvflow.simulation.testsystems import water_box


@pytest.fixture(scope="module")
def lifsi_box(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 M LiFSI/DME, 8 ion pairs (1,184 atoms), seed 1."""
    return build("lifsi_dme", concentration=1.0, n_salt=8, seed=1,
                 output=tmp_path_factory.mktemp("hmr") / "box").rundir


def _masses(system) -> np.ndarray:
    return np.array([system.getParticleMass(i).value_in_unit(unit.dalton)
                     for i in range(system.getNumParticles())])


def test_repartitioning_moves_mass_from_the_bonded_heavy_atom(lifsi_box: Path) -> None:
    inputs = rd.read_inputs(lifsi_box)
    system = openmm.XmlSerializer.deserialize(inputs.system_xml)
    before = _masses(system)
    summary = repartition_hydrogen_mass(system, inputs.topology, 3.0)
    after = _masses(system)
    hydrogens = [a.index for a in inputs.topology.atoms() if a.element.symbol == "H"]
    assert summary["hydrogens_repartitioned"] == len(hydrogens) > 0
    assert after[hydrogens] == pytest.approx(3.0)
    assert after.sum() == pytest.approx(before.sum(), rel=1e-12)  # density unchanged
    for residue in inputs.topology.residues():  # every molecule keeps its mass
        idx = [a.index for a in residue.atoms()]
        assert after[idx].sum() == pytest.approx(before[idx].sum(), rel=1e-12)
    # DME's methyl carbons carry three H: 12.011 - 3 x (3 - 1.008) = 6.035 amu
    assert summary["lightest_heavy_atom_amu"] == pytest.approx(12.011 - 3 * (3.0 - 1.008),
                                                               abs=0.01)
    lithium = [a.index for a in inputs.topology.atoms() if a.element.symbol == "Li"]
    assert after[lithium] == pytest.approx(before[lithium])  # no H: untouched
    with pytest.raises(InputError, match="lighter than its hydrogens"):
        repartition_hydrogen_mass(openmm.XmlSerializer.deserialize(inputs.system_xml),
                                  inputs.topology, 5.0)


def test_rigid_water_is_left_alone() -> None:
    topology, system, _ = water_box()
    before = _masses(system)
    summary = repartition_hydrogen_mass(system, topology, 3.0)
    assert summary["hydrogens_repartitioned"] == 0
    assert summary["rigid_residues_skipped"] == topology.getNumResidues()
    assert np.array_equal(_masses(system), before)


def test_hmr_option_is_validated() -> None:
    raw = load_protocol("smoke_hmr").to_dict()
    assert raw["hydrogen_mass_amu"] == 3.0 and raw["timestep_fs"] == 4.0
    assert parse_protocol(raw) == load_protocol("smoke_hmr")
    assert "hydrogen_mass_amu" not in load_protocol("smoke").to_dict()
    no_hmr = dict(raw)
    del no_hmr["hydrogen_mass_amu"]
    with pytest.raises(SpecError, match="timestep_fs = 4 needs hydrogen mass repartitioning"):
        parse_protocol(no_hmr)
    with pytest.raises(SpecError, match=r"hydrogen_mass_amu = 9 is outside the allowed range"):
        parse_protocol({**raw, "hydrogen_mass_amu": 9})


def _stop_at(step: int):
    def callback(info: dict) -> None:
        if info["step"] == step:
            os.kill(os.getpid(), signal.SIGTERM)
    return callback


def test_4fs_smoke_preset_runs_stops_at_a_frame_step_and_resumes(lifsi_box: Path,
                                                                 tmp_path: Path) -> None:
    import shutil

    rundir = tmp_path / "run"
    shutil.copytree(lifsi_box, rundir)
    stop = 130 + 50  # production starts at step 130; frame 10, a log and checkpoint step
    with pytest.raises(KeyboardInterrupt, match=f"stopped at step {stop}"):
        simulate(rundir, protocol="smoke_hmr", platform="CPU", progress=_stop_at(stop))
    assert dcd_frame_count(rundir / "traj.dcd") == 10
    result = simulate(rundir, platform="CPU", progress="quiet")
    assert result.state == "finished" and result.n_frames == 20
    status = result.status
    assert status["timestep_ps"] == 0.004 and status["simulated_ns"] == pytest.approx(230 * 4e-6)
    hmr = status["hydrogen_mass_repartitioning"]
    assert hmr["hydrogen_mass_amu"] == 3.0 and hmr["hydrogens_repartitioned"] > 0
    assert status["sessions"][-1]["resumed_from"]["step"] == stop
    header = read_dcd_header(rundir / "traj.dcd")
    assert [header.first_step + i * header.interval for i in range(20)] == list(
        range(135, 231, 5))
    with open(rundir / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows][-1] == 230 and len(rows) == 47
    temperatures = [float(r["temperature_K"]) for r in rows if r["stage"] == "production"]
    assert all(np.isfinite(temperatures)) and max(temperatures) < 600
    recorded = yaml.safe_load((rundir / "protocol.yaml").read_text())
    assert recorded["hydrogen_mass_amu"] == 3.0
