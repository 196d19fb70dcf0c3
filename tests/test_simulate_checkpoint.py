"""Checkpoints that cannot lose a frame: counts from the schedule, the NaN check before any
frame of the same step, resume at a step that is both a frame and a checkpoint step, and a
checkpoint that does not load.  Real OpenMM on the built-in TIP3P water box (CPU)."""

from __future__ import annotations

import csv
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import mdtraj as md
import numpy as np
import openmm
import pytest
import yaml
from openmm import app, unit

from solvflow.dcd import dcd_frame_count, read_dcd_header
from solvflow.errors import SimulationError
from solvflow.simulate import load_protocol, simulate
from solvflow.simulation.reporters import (
    BlowUpWatch,
    CsvLogReporter,
    DcdTrajectoryReporter,
    StageClock,
    degrees_of_freedom,
)
from solvflow.simulation.stages import expected_counts, plan_stages
from solvflow.simulation.testsystems import water_box
from water import write_water_rundir


def _nan_integrator(nan_step: int) -> openmm.CustomIntegrator:
    """Velocity Verlet that puts NaN into every position at the end of step ``nan_step``."""
    integrator = openmm.CustomIntegrator(0.0005)
    integrator.addGlobalVariable("n", 0)
    integrator.addGlobalVariable("bad", float("nan"))
    integrator.addComputeGlobal("n", "n + 1")
    integrator.addComputePerDof("v", "v + 0.5*dt*f/m")
    integrator.addComputePerDof("x", "x + dt*v")
    integrator.addConstrainPositions()  # rigid water
    integrator.addComputePerDof("v", "v + 0.5*dt*f/m")
    integrator.addConstrainVelocities()
    integrator.beginIfBlock(f"n >= {nan_step}")
    integrator.addComputePerDof("x", "x + bad")
    integrator.endBlock()
    return integrator


@pytest.mark.parametrize("nan_step", [15, 20], ids=["frame-step", "frame-and-watch-step"])
@pytest.mark.parametrize("order", ["engine", "trajectory-first"])
def test_nan_on_a_frame_step_writes_no_nan_frame(tmp_path: Path, nan_step: int,
                                                 order: str) -> None:
    topology, system, positions = water_box()
    sim = app.Simulation(topology, system, _nan_integrator(nan_step),
                         openmm.Platform.getPlatformByName("CPU"))
    sim.context.setPositions(positions * unit.nanometer)
    clock = StageClock(0.0005, 300.0, stage="production", stage_end=10**6, run_end=10**6,
                       setpoint_K=300.0, dof=degrees_of_freedom(system))
    watch = BlowUpWatch(10, clock, factor=100.0)  # energy every 10 steps; frames every 5
    log = CsvLogReporter(tmp_path / "log.csv", 10, clock, 1000.0)
    traj = DcdTrajectoryReporter(tmp_path / "traj.dcd", 5, clock, topology, guard=watch)
    reporters = [watch, log, traj] if order == "engine" else [traj, log, watch]
    sim.reporters[:] = reporters
    # A frame-only step: the trajectory's own guard stops it (positions are NaN). A step that
    # also wants energies: OpenMM's getState already refuses NaN coordinates, before any
    # reporter runs (the engine reports that as a blow-up too).
    expected = (SimulationError, openmm.OpenMMException)
    with pytest.raises(expected, match=rf"at step {nan_step} .*not finite|coordinate is NaN"):
        sim.step(40)
    traj.close()
    log.close()
    frames_before = (nan_step - 1) // 5  # frames at steps 5, 10, ... < nan_step
    assert dcd_frame_count(tmp_path / "traj.dcd") == frames_before
    xyz = md.load(str(tmp_path / "traj.dcd"), top=md.Topology.from_openmm(topology)).xyz
    assert len(xyz) == frames_before and np.all(np.isfinite(xyz))
    with open(tmp_path / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert all(np.isfinite(float(r["potential_energy_kJ_mol"])) for r in rows)


def test_counts_follow_from_the_schedule(tmp_path: Path) -> None:
    rundir = write_water_rundir(tmp_path / "run")
    protocol = load_protocol("smoke")
    simulate(rundir, protocol=protocol, platform="CPU", progress="quiet")
    status = yaml.safe_load((rundir / "status.json").read_text())
    plan = plan_stages(protocol, 300.0)
    every, frame = protocol.report_interval_steps, protocol.frame_interval_steps
    for record in status["checkpoints"]:  # the stage-end records of the last stages
        assert (record["n_log_rows"], record["n_frames"]) == expected_counts(
            plan, every, frame, record["step"], record["stages_finished"])
    # smoke: 1 minimisation row + (50 + 30 + 50 + 100) / 5 rows; 100 / 5 frames
    assert expected_counts(plan, every, frame, 230, protocol.stages()) == (47, 20)
    assert expected_counts(plan, every, frame, 132, ["minimize", "heat", "anneal", "npt"]) == (
        27, 0)
    with open(rundir / "log.csv") as fh:
        assert sum(1 for _ in fh) - 1 == 47
    assert dcd_frame_count(rundir / "traj.dcd") == 20


def _protocol(tmp_path: Path, name: str, timestep_fs: float = 2.0,
              hydrogen_mass_amu: float | None = None) -> Path:
    """smoke with a 1,000-step production (200 frames, one every 5 steps), a log row and a
    checkpoint every 50 steps."""
    data = load_protocol("smoke").to_dict()
    data.update(name=name, checkpoint_interval_min=0.0, report_interval_ps=0.1,
                timestep_fs=timestep_fs)
    if hydrogen_mass_amu is not None:
        data["hydrogen_mass_amu"] = hydrogen_mass_amu
    scale = timestep_fs / 2.0  # the same number of steps at any time step
    for stage in data["stages"].values():
        for key in ("duration_ps", "ramp_ps", "hold_ps"):
            if key in stage:
                stage[key] *= scale
    data["report_interval_ps"] *= scale
    data["stages"]["production"].update(duration_ns=0.002 * scale,
                                        frame_interval_ps=0.01 * scale)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _stop_at(step: int):
    """A progress callback that asks for a graceful stop (SIGTERM) at ``step``."""
    def callback(info: dict) -> None:
        if info["step"] == step:
            os.kill(os.getpid(), signal.SIGTERM)
    return callback


def _frames(rundir: Path) -> tuple[list[int], np.ndarray]:
    header = read_dcd_header(rundir / "traj.dcd")
    xyz = md.load(str(rundir / "traj.dcd"), top=str(rundir / "topology.pdb")).xyz
    return [header.first_step + i * header.interval for i in range(len(xyz))], xyz


@pytest.fixture()
def one_cpu_thread() -> Iterator[None]:
    """Bitwise-reproducible CPU runs: one thread and deterministic force sums (with more
    threads, two runs from the same state differ from the first step on)."""
    import openmm

    cpu = openmm.Platform.getPlatformByName("CPU")
    before = {name: cpu.getPropertyDefaultValue(name) for name in ("Threads",
                                                                   "DeterministicForces")}
    cpu.setPropertyDefaultValue("Threads", "1")
    cpu.setPropertyDefaultValue("DeterministicForces", "true")
    try:
        yield
    finally:
        for name, value in before.items():
            cpu.setPropertyDefaultValue(name, value)


@pytest.mark.parametrize(("timestep_fs", "hmr"), [(2.0, None), (4.0, 3.0)],
                         ids=["2fs", "4fs-hmr"])
@pytest.mark.usefixtures("one_cpu_thread")
def test_resume_at_a_frame_and_checkpoint_step(tmp_path: Path, timestep_fs: float,
                                               hmr: float | None) -> None:
    protocol = _protocol(tmp_path, "frames", timestep_fs, hmr)
    reference = write_water_rundir(tmp_path / "reference")
    simulate(reference, protocol=protocol, platform="CPU", progress="quiet")
    stopped = write_water_rundir(tmp_path / "stopped")
    stop = 130 + 300  # production starts at step 130: frame 60, a log and checkpoint step
    with pytest.raises(KeyboardInterrupt, match=f"stopped at step {stop}"):
        simulate(stopped, protocol=protocol, platform="CPU", progress=_stop_at(stop))
    status = yaml.safe_load((stopped / "status.json").read_text())
    assert status["state"] == "interrupted" and status["step"] == stop
    assert status["checkpoints"][-1]["n_frames"] == dcd_frame_count(stopped / "traj.dcd") == 60
    result = simulate(stopped, platform="CPU", progress="quiet")
    assert result.status["sessions"][-1]["resumed_from"] == {"step": stop,
                                                             "from": "checkpoint.chk"}
    steps, xyz = _frames(stopped)
    ref_steps, ref_xyz = _frames(reference)
    assert steps == ref_steps == list(range(135, 1131, 5))  # 200 frames, none twice
    # the same trajectory: frames before the stop are the reference's, and the resumed ones
    # continue it (the checkpoint restores positions, velocities and RNG states). The CPU
    # platform's sums are not bitwise reproducible across a context rebuild, so chaos
    # separates the runs later on (here after ~90 frames); compare the first 30 resumed.
    np.testing.assert_array_equal(xyz[:60], ref_xyz[:60])
    np.testing.assert_allclose(xyz[60:90], ref_xyz[60:90], atol=2e-3)
    with open(stopped / "log.csv") as fh, open(reference / "log.csv") as ref:
        assert [r["step"] for r in csv.DictReader(fh)] == [r["step"] for r in
                                                            csv.DictReader(ref)]


def test_checkpoint_that_does_not_load_says_why(tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    protocol = _protocol(tmp_path, "frames")
    rundir = write_water_rundir(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        simulate(rundir, protocol=protocol, platform="CPU", progress=_stop_at(430))
    (rundir / "checkpoint.chk").write_bytes(b"not a checkpoint")
    capsys.readouterr()
    result = simulate(rundir, platform="CPU", progress="quiet")
    err = capsys.readouterr().err
    assert "checkpoint.chk does not load here (" in err and "state.xml" in err
    resumed = result.status["sessions"][-1]["resumed_from"]
    assert resumed["from"] == "state.xml" and resumed["step"] == 430
    assert "does not load here" in resumed["why"]
    assert dcd_frame_count(rundir / "traj.dcd") == 200
