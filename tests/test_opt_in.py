"""Opt-in tests: the CUDA path (``--run-gpu``) and the whole demo pipeline (``--run-slow``).

They skip cleanly by default (see conftest.py); CI has no GPU. On a GPU machine:
``make test PYTEST_ARGS="--run-gpu -k gpu"``.
"""

from __future__ import annotations

import json

import numpy as np
import openmm
import pytest
from openmm import XmlSerializer, unit

from solvflow.analysis import analyze
from solvflow.build import build
from solvflow.simulate import simulate
from solvflow.simulation.platforms import choose_platform


def _energy_forces(system, positions, name: str) -> tuple[float, np.ndarray]:
    platform, props = choose_platform(name)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform, props)
    context.setPositions(positions)
    state = context.getState(getEnergy=True, getForces=True)
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))


@pytest.mark.gpu
def test_cuda_agrees_with_cpu_and_runs_the_smoke_protocol(tmp_path):
    rundir = build("lifsi_dme", concentration=1.0, n_salt=8, output=tmp_path / "run",
                   seed=1).rundir
    result = simulate(rundir, protocol="smoke", platform="CUDA", progress="quiet")
    assert result.platform == "CUDA" and result.precision == "mixed"
    assert result.n_frames > 0 and result.state == "finished"
    state = XmlSerializer.deserialize((rundir / "state.xml").read_text())
    system = XmlSerializer.deserialize((rundir / "system.xml").read_text())
    system.setDefaultPeriodicBoxVectors(*state.getPeriodicBoxVectors())
    e_cpu, f_cpu = _energy_forces(system, state.getPositions(), "CPU")
    e_gpu, f_gpu = _energy_forces(system, state.getPositions(), "CUDA")
    assert abs(e_gpu - e_cpu) / abs(e_cpu) < 1e-4
    rms = np.sqrt(((f_gpu - f_cpu) ** 2).sum(axis=1).mean() / (f_cpu**2).sum(axis=1).mean())
    assert rms < 1e-3


@pytest.mark.slow
def test_demo_pipeline_build_quick_run_analyze(tmp_path):
    """What `make demo` does: 1 M LiFSI/DME, quick protocol on CPU, then the analysis."""
    rundir = build("lifsi_dme", concentration=1.0, n_salt=12, output=tmp_path / "demo",
                   seed=1).rundir
    result = simulate(rundir, protocol="quick", platform="CPU", progress="quiet")
    assert result.state == "finished" and result.n_frames == 100
    analysis = analyze(rundir)
    analysis.write_json(rundir / "analysis.json")
    data = json.loads((rundir / "analysis.json").read_text())
    assert sum(data["ion_pairing"].values()) == pytest.approx(1.0)
    # Li+ in DME is chelated: every Li has DME oxygens in its shell after 50 ps.
    assert data["paired_fractions"]["DME"] > 0.9
    assert data["provenance"]["status"]["platform"] == "CPU"
    assert data["provenance"]["charge_scale"] == 0.8
