"""Simulation engine on a real OpenMM water box (780 atoms, CPU): stages, files, resume,
blow-ups, platforms and bad input.  The box is TIP3P from OpenMM's own force-field files,
so these tests exercise the engine's mechanics independently of solvflow's force fields."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mdtraj as md
import numpy as np
import pytest
import yaml

from solvflow.cli import main as cli_main
from solvflow.dcd import dcd_frame_count, read_dcd_header
from solvflow.errors import InputError, PlatformError, SimulationError
from solvflow.simulate import load_protocol, simulate
from solvflow.simulation.platforms import choose_platform
from water import write_water_rundir

SRC = Path(__file__).resolve().parents[1] / "src"


def _log(rundir: Path) -> list[dict[str, str]]:
    with open(rundir / "log.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _frame_steps(rundir: Path) -> list[int]:
    header = read_dcd_header(rundir / "traj.dcd")
    n = dcd_frame_count(rundir / "traj.dcd")
    return [header.first_step + i * header.interval for i in range(n)]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rundir = write_water_rundir(tmp_path_factory.mktemp("smoke") / "run", temperature_K=300.0)
    result = simulate(rundir, protocol="smoke", platform="CPU", progress="quiet")
    assert result.state == "finished" and not result.already_finished
    return rundir


def test_every_stage_runs_and_is_logged(smoke_run: Path) -> None:
    status = yaml.safe_load((smoke_run / "status.json").read_text())
    assert status["stages_finished"] == ["minimize", "heat", "anneal", "npt", "production"]
    assert status["state"] == "finished" and status["platform"] == "CPU"
    rows = _log(smoke_run)
    stages = [r["stage"] for r in rows]
    # smoke: 1 minimisation row, then one row every 5 steps: heat 50, anneal 30, npt 50, prod 100
    assert [stages.count(s) for s in ("minimize", "heat", "anneal", "npt", "production")] == [
        1, 10, 6, 10, 20]
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] == 230
    assert all(np.isfinite(float(r["potential_energy_kJ_mol"])) for r in rows)
    assert status["simulated_ns"] == pytest.approx(230 * 0.002 / 1000)
    assert status["ns_per_day"] > 0 and status["wall_time_s"] > 0


def test_npt_changes_volume_and_production_uses_its_mean(smoke_run: Path) -> None:
    rows = _log(smoke_run)
    npt_volumes = [float(r["volume_nm3"]) for r in rows if r["stage"] in ("anneal", "npt")]
    assert len(set(npt_volumes)) > 1  # the barostat acted
    heat = {float(r["volume_nm3"]) for r in rows if r["stage"] == "heat"}
    production = {float(r["volume_nm3"]) for r in rows if r["stage"] == "production"}
    assert heat == {8.0} and len(production) == 1  # NVT stages keep their volume
    status = yaml.safe_load((smoke_run / "status.json").read_text())
    npt = [float(r["volume_nm3"]) for r in rows if r["stage"] == "npt"]
    assert status["npt_mean_volume_nm3"] == pytest.approx(np.mean(npt[len(npt) // 2:]))
    assert production.pop() == pytest.approx(status["npt_mean_volume_nm3"], abs=1e-4)


def test_trajectory_holds_production_frames_only(smoke_run: Path) -> None:
    traj = md.load(str(smoke_run / "traj.dcd"), top=str(smoke_run / "topology.pdb"))
    assert traj.n_frames == 20
    assert _frame_steps(smoke_run) == list(range(135, 231, 5))  # production is steps 130-230
    assert np.all(np.isfinite(traj.xyz))


def test_run_records_every_setting(smoke_run: Path) -> None:
    recorded = yaml.safe_load((smoke_run / "protocol.yaml").read_text())
    assert recorded == load_protocol("smoke").to_dict()
    status = yaml.safe_load((smoke_run / "status.json").read_text())
    assert status["seed"] == 1 and status["protocol"] == "smoke"
    assert (smoke_run / "checkpoint.chk").is_file() and (smoke_run / "state.xml").is_file()


def test_finished_run_is_reported_finished(smoke_run: Path, capsys: pytest.CaptureFixture) -> None:
    before = (smoke_run / "log.csv").read_text()
    assert cli_main(["run", str(smoke_run)]) == 0
    assert "already finished" in capsys.readouterr().out
    assert (smoke_run / "log.csv").read_text() == before


def test_resume_settings_must_match(smoke_run: Path) -> None:
    with pytest.raises(InputError, match="started with protocol 'smoke'"):
        simulate(smoke_run, protocol="quick")
    with pytest.raises(InputError, match="started with seed 1"):
        simulate(smoke_run, seed=7)


@pytest.fixture(scope="module")
def long_protocol(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """smoke with a 1,000-step production (200 frames) and a checkpoint every 50 steps."""
    data = load_protocol("smoke").to_dict()
    data["name"] = "smoke_long"
    data["checkpoint_interval_min"] = 0.0
    data["report_interval_ps"] = 0.1
    data["stages"]["production"]["duration_ns"] = 0.002
    path = tmp_path_factory.mktemp("protocol") / "long.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, long_protocol: Path) -> Path:
    reference = write_water_rundir(tmp_path_factory.mktemp("reference") / "run")
    simulate(reference, protocol=long_protocol, platform="CPU", progress="quiet")
    return reference


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_stopped_in_production_then_resumed(tmp_path: Path, long_protocol: Path,
                                            uninterrupted: Path, sig: int) -> None:
    killed = write_water_rundir(tmp_path / "killed")
    code = (f"from solvflow.simulate import simulate; "
            f"simulate({str(killed)!r}, protocol={str(long_protocol)!r}, platform='CPU', "
            f"progress='quiet')")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if dcd_frame_count(killed / "traj.dcd") >= 60:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be stopped"
        os.kill(proc.pid, sig)
    finally:
        proc.wait(timeout=120)
    status = yaml.safe_load((killed / "status.json").read_text())
    if sig == signal.SIGTERM:  # graceful: a checkpoint at the stop, state recorded
        assert status["state"] == "interrupted"
        assert status["checkpoints"][-1]["n_frames"] == dcd_frame_count(killed / "traj.dcd")
    else:
        assert status["state"] == "running"
    result = simulate(killed, platform="CPU", progress="quiet")  # resumes: protocol recorded
    assert result.state == "finished"
    resumes = [s["resumed_from"] for s in result.status["sessions"]]
    assert resumes[0] is None and resumes[1]["step"] > 130  # resumed inside production

    steps = _frame_steps(killed)
    assert len(steps) == dcd_frame_count(uninterrupted / "traj.dcd") == 200
    assert steps == _frame_steps(uninterrupted)
    assert np.all(np.diff(steps) > 0)
    log_steps = [int(r["step"]) for r in _log(killed)]
    assert log_steps == [int(r["step"]) for r in _log(uninterrupted)]
    traj = md.load(str(killed / "traj.dcd"), top=str(killed / "topology.pdb"))
    assert traj.n_frames == 200
    moved = np.linalg.norm(traj.xyz[1:] - traj.xyz[:-1], axis=2).max(axis=1)
    assert np.all(moved > 0)  # no frame written twice


def test_overlapping_atoms_stop_with_a_clear_error(tmp_path: Path) -> None:
    rundir = write_water_rundir(tmp_path / "bad")
    pdb = (rundir / "topology.pdb").read_text().splitlines()
    atoms = [i for i, line in enumerate(pdb) if line.startswith(("ATOM", "HETATM"))]
    first, other = pdb[atoms[0]], pdb[atoms[30]]  # two oxygens: put one 0.002 nm off the other
    x = float(first[30:38]) + 0.02
    pdb[atoms[30]] = other[:30] + f"{x:8.3f}" + first[38:54] + other[54:]
    (rundir / "topology.pdb").write_text("\n".join(pdb) + "\n")
    data = load_protocol("smoke").to_dict()
    data["stages"]["minimize"]["max_iterations"] = 1
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(SimulationError, match=r"blew up in stage '(minimize|heat)'") as info:
        simulate(rundir, protocol=tmp_path / "p.yaml", platform="CPU", progress="quiet")
    status = yaml.safe_load((rundir / "status.json").read_text())
    assert status["state"] == "failed" and "blew up" in status["error"]
    if "'heat'" in str(info.value):
        assert "last good checkpoint (step 0) is kept" in str(info.value)
        assert status["checkpoints"][-1]["step"] == 0


def test_missing_files_and_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rundir = write_water_rundir(tmp_path / "r")
    (rundir / "system.xml").unlink()
    with pytest.raises(InputError, match="missing system.xml"):
        simulate(rundir, protocol="smoke")
    assert cli_main(["run", str(tmp_path / "nowhere")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    rundir = write_water_rundir(tmp_path / "s")
    assert cli_main(["run", str(rundir), "--production-ns", "-1"]) == 2
    assert "positive number of ns" in capsys.readouterr().err
    assert cli_main(["run", str(rundir), "--protocol", "fast"]) == 2
    assert "unknown protocol 'fast'" in capsys.readouterr().err
    assert cli_main(["run", str(rundir), "--platform", "Metal"]) == 1
    assert "unknown platform 'Metal'" in capsys.readouterr().err
    assert not (rundir / "status.json").exists()  # nothing started


def test_unavailable_platform_names_reason_and_alternatives() -> None:
    with pytest.raises(PlatformError, match=r"platform HIP does not load: .*available: .*CPU"):
        choose_platform("HIP")


def test_platforms_command(capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["platforms", "--no-probe"]) == 0
    out = capsys.readouterr().out
    assert "CPU        yes" in out and "default for `solvflow run`" in out


@pytest.fixture(scope="module")
def opencl() -> str:
    try:
        choose_platform("OpenCL")
    except PlatformError as exc:
        pytest.skip(f"OpenCL does not load here: {exc}")
    return "OpenCL"


@pytest.mark.opencl
def test_opencl_smoke_run_and_energies_agree_with_cpu(tmp_path: Path, opencl: str) -> None:
    rundir = write_water_rundir(tmp_path / "ocl")
    result = simulate(rundir, protocol="smoke", platform=opencl, progress="quiet")
    assert result.platform == "OpenCL" and result.precision == "mixed"
    assert result.n_frames == 20
    import openmm

    state = openmm.XmlSerializer.deserialize((rundir / "state.xml").read_text())
    system = openmm.XmlSerializer.deserialize((rundir / "system.xml").read_text())
    energies = []
    for name in ("CPU", "OpenCL"):
        platform, props = choose_platform(name)
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform, props)
        context.setPeriodicBoxVectors(*state.getPeriodicBoxVectors())
        context.setPositions(state.getPositions())
        energies.append(context.getState(getEnergy=True).getPotentialEnergy()._value)
    assert energies[1] == pytest.approx(energies[0], rel=1e-4)


def test_user_protocol_without_description_resumes(tmp_path: Path) -> None:
    data = load_protocol("smoke").to_dict()
    del data["description"]
    data["name"] = "mine"
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    rundir = write_water_rundir(tmp_path / "run")
    simulate(rundir, protocol=path, platform="CPU", progress="quiet")
    again = simulate(rundir, platform="CPU", progress="quiet")  # re-reads protocol.yaml
    assert again.already_finished


def test_changed_system_is_never_resumed_and_never_rewritten(smoke_run: Path, tmp_path: Path,
                                                              capsys) -> None:
    # parametrize refuses to rewrite the System under a simulated run directory ...
    code = cli_main(["parametrize", str(smoke_run), "--charge-scale", "0.7"])
    assert code == 2 and "already been simulated" in capsys.readouterr().err
    # ... and a hand-edited system.xml is caught when the run resumes.
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(smoke_run, copy)
    (copy / "system.xml").write_text((copy / "system.xml").read_text().replace(
        'version="1"', 'version="1" ', 1))
    with pytest.raises(SimulationError, match="changed since this run started"):
        simulate(copy, platform="CPU", production_ns=0.0004, progress="quiet")
