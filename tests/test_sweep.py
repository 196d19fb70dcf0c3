"""Sweeps on real Dask LocalClusters (2 CPU workers, tiny LiFSI/DME boxes of ~450 atoms):
the shipped smoke workflow end to end, reuse of finished tasks, a failing task recorded
while the others finish, a SIGKILL of the whole sweep, a --walltime stop and a SIGKILL of
the worker running the task, each resumed, ending with the frames of an uninterrupted run;
the --scheduler path, GPU pinning and the live board."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from solvflow.campaign.sweep import sweep
from solvflow.campaign.workflow import expand, load_workflow
from solvflow.cli import main as cli_main
from solvflow.dcd import dcd_frame_count, read_dcd_header
from solvflow.simulate import load_protocol

SRC = Path(__file__).resolve().parents[1] / "src"
TASK = "lifsi_dme-1M-cs0.8-random-r1"


def _campaign(root: Path) -> dict[str, Any]:
    return json.loads((root / "campaign.json").read_text())


def _tasks(root: Path) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in _campaign(root)["tasks"]}


def _frame_steps(rundir: Path) -> list[int]:
    header = read_dcd_header(rundir / "traj.dcd")
    n = dcd_frame_count(rundir / "traj.dcd")
    return [header.first_step + i * header.interval for i in range(n)]


def _log_steps(rundir: Path) -> list[int]:
    lines = (rundir / "log.csv").read_text().splitlines()
    column = lines[0].split(",").index("step")
    return [int(line.split(",")[column]) for line in lines[1:]]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, str]:
    """The shipped smoke workflow on a new LocalCluster of 2 CPU workers (with plots)."""
    root = tmp_path_factory.mktemp("smoke") / "campaign"
    board = io.StringIO()
    result = sweep("smoke", root, workers=2, platform="CPU", stream=board)
    return root, result, board.getvalue()


def test_smoke_sweep_finishes_every_task(smoke: tuple[Path, Any, str]) -> None:
    root, result, board = smoke
    assert result.exit_status == 0, board
    tasks = _tasks(root)
    assert sorted(tasks) == sorted(t.id for t in expand(load_workflow("smoke")))
    proto = load_protocol("smoke")
    frames = proto.production_steps // proto.frame_interval_steps  # 100 steps / 5 = 20
    for task_id, record in tasks.items():
        rundir = root / record["rundir"]
        assert record["state"] == "finished" and record["error"] is None
        assert record["platform"] == "CPU" and record["ns_per_day"] > 0
        assert record["simulated_ns"] == pytest.approx(0.00046)  # 230 steps of 2 fs
        assert dcd_frame_count(rundir / "traj.dcd") == frames == record["n_frames"]
        analysis = json.loads((rundir / "analysis.json").read_text())
        assert analysis["cation"] == "Li" and analysis["n_frames"] == frames
        assert (rundir / "rdf.png").is_file()
        assert (root / "logs" / f"{task_id}.log").is_file()
        assert set(record["phase_times_s"]) == {"build", "simulate", "analyze"}
    campaign = _campaign(root)
    assert campaign["workflow"] == "smoke"
    assert campaign["scheduler"] == "LocalCluster: 2 CPU worker(s) x 1 OpenMM thread(s)"
    assert len({t["worker"] for t in tasks.values()}) == 2  # both workers took tasks
    resolved = load_workflow(root / "workflow.yaml")
    assert expand(resolved) == expand(load_workflow("smoke"))
    assert "running  lifsi_dme-2M-cs0.8-random-r2" in board
    assert "sweep done: 4 finished, 0 running, 0 stopped, 0 failed, 0 queued" in board


def test_second_sweep_reuses_every_finished_task(smoke: tuple[Path, Any, str]) -> None:
    root, _, _ = smoke
    before = {p: p.stat().st_mtime_ns for p in root.glob("runs/*/*")}
    board = io.StringIO()
    started = time.monotonic()
    result = sweep("smoke", root, workers=2, platform="CPU", stream=board)
    elapsed = time.monotonic() - started
    assert result.exit_status == 0 and result.counts()["finished"] == 4
    assert {p: p.stat().st_mtime_ns for p in root.glob("runs/*/*")} == before  # no MD, no file
    assert "4 tasks, 4 finished before, 0 to run" in board.getvalue()
    assert elapsed < 30  # no cluster is started; seconds, mostly imports
    assert len(_campaign(root)["sweeps"]) == 2


@pytest.fixture(scope="module")
def cluster() -> Any:
    """A running LocalCluster (2 single-threaded CPU workers) used through its address."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", env={"OPENMM_CPU_THREADS": "1"}) as local:
        yield local


@pytest.fixture(scope="module")
def long_workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny LiFSI/DME task with a 2,500-step production (250 frames, a checkpoint every
    50 steps) and a box that cannot be built (1 LiFSI: 1.2 nm edge < 2 x 1.0 nm cutoff)."""
    folder = tmp_path_factory.mktemp("workflow")
    proto = load_protocol("smoke").to_dict()
    proto.update(name="sweep_test", checkpoint_interval_min=0.0, report_interval_ps=0.1)
    proto["stages"]["minimize"]["max_iterations"] = 30
    proto["stages"]["production"].update(duration_ns=0.005, frame_interval_ps=0.02)
    (folder / "sweep_test.yaml").write_text(yaml.safe_dump(proto))
    good = {"system": "lifsi_dme", "concentrations_M": [1.0], "n_salt": 3, "cutoff_nm": 0.6}
    bad = {"system": "lifsi_dme", "label": "toosmall", "concentrations_M": [1.0], "n_salt": 1}
    doc = {"name": "long", "protocol": "sweep_test.yaml", "systems": [good, bad]}
    (folder / "with_failure.yaml").write_text(yaml.safe_dump(doc))
    doc["systems"] = [good]
    (folder / "long.yaml").write_text(yaml.safe_dump(doc))
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, cluster: Any,
              long_workflow: Path) -> tuple[Path, Any]:
    root = tmp_path_factory.mktemp("reference") / "campaign"
    result = sweep(long_workflow / "with_failure.yaml", root, scheduler=cluster.scheduler_address,
                   platform="CPU", plots=False, stream=io.StringIO())
    return root, result


def test_a_failing_task_is_recorded_while_the_others_finish(reference: tuple[Path, Any]) -> None:
    root, result = reference
    assert result.exit_status == 1
    tasks = _tasks(root)
    bad = tasks["toosmall-1M-cs0.8-random-r1"]
    assert bad["state"] == "failed"
    assert bad["error"].startswith("build: the box edge 1.20 nm is shorter than twice the cutoff")
    assert not (root / bad["rundir"]).exists()
    good = tasks[TASK]
    assert good["state"] == "finished" and good["error"] is None
    assert dcd_frame_count(root / good["rundir"] / "traj.dcd") == 250
    assert not list((root / good["rundir"]).glob("*.png"))  # plots=False
    assert _campaign(root)["scheduler"].startswith("tcp://")  # the --scheduler path


def test_sigkill_walltime_and_dead_worker_all_resume_to_the_uninterrupted_frames(
        tmp_path: Path, cluster: Any, long_workflow: Path, reference: tuple[Path, Any],
        capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "campaign"
    rundir = root / "runs" / TASK
    _sigkill_mid_run(long_workflow / "long.yaml", root, rundir)
    assert _tasks(root)[TASK]["state"] == "running"  # as the killed sweep left it
    assert json.loads((rundir / "status.json").read_text())["state"] == "running"
    killed_at = dcd_frame_count(rundir / "traj.dcd")

    code = cli_main(["sweep", str(long_workflow / "long.yaml"), "-o", str(root), "--scheduler",
                     cluster.scheduler_address, "--platform", "CPU", "--no-plots",
                     "--walltime", "3s"])
    out = capsys.readouterr().out
    assert code == 3, out  # resumable
    record = _tasks(root)[TASK]
    status = json.loads((rundir / "status.json").read_text())
    assert record["state"] == "stopped" and status["state"] == "stopped", out
    assert status["stop_reason"] == "walltime"
    assert status["checkpoints"][-1]["n_frames"] == dcd_frame_count(rundir / "traj.dcd") < 250
    assert [s["resumed_from"] is not None for s in status["sessions"]] == [False, True]
    assert f"stopped  {TASK}" in out

    stopped_at = dcd_frame_count(rundir / "traj.dcd")
    result = _sweep_killing_its_worker(long_workflow / "long.yaml", root, rundir,
                                       cluster.scheduler_address, stopped_at + 20)
    assert result.exit_status == 0  # Dask re-ran the task; it resumed from its checkpoint
    assert _tasks(root)[TASK]["state"] == "finished"
    uninterrupted = reference[0] / "runs" / TASK
    assert dcd_frame_count(rundir / "traj.dcd") == 250 > stopped_at > killed_at
    assert _frame_steps(rundir) == _frame_steps(uninterrupted)
    assert _log_steps(rundir) == _log_steps(uninterrupted)
    assert json.loads((rundir / "analysis.json").read_text())["n_frames"] == 250
    sessions = json.loads((rundir / "status.json").read_text())["sessions"]
    assert len(sessions) == 4 and all(s["resumed_from"] for s in sessions[1:])


def _sweep_killing_its_worker(workflow: Path, root: Path, rundir: Path, address: str,
                              frames: int) -> Any:
    """Sweep (in a thread) on the shared cluster; SIGKILL the worker process running the
    task once traj.dcd has ``frames`` frames (the nanny restarts it, Dask reschedules)."""
    import threading

    from solvflow.campaign.task import read_progress

    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(result=sweep(
        workflow, root, scheduler=address, platform="CPU", plots=False,
        stream=io.StringIO())))
    thread.start()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and thread.is_alive():
        info = read_progress(root, TASK) or {}
        if info.get("phase") == "simulate" and dcd_frame_count(rundir / "traj.dcd") >= frames:
            os.kill(int(info["pid"]), signal.SIGKILL)  # a worker process of our cluster
            break
        time.sleep(0.05)
    else:
        pytest.fail("the task finished or stalled before its worker could be killed")
    thread.join(timeout=300)
    return outcome["result"]


def _sigkill_mid_run(workflow: Path, root: Path, rundir: Path) -> None:
    """Run the sweep (its own LocalCluster) in a subprocess and SIGKILL it and its workers
    once production has written 20 frames (200 of its 2,500 steps)."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OPENMM_CPU_THREADS": "1"}
    cmd = [sys.executable, "-m", "solvflow.cli", "sweep", str(workflow), "-o", str(root),
           "--workers", "1", "--platform", "CPU", "--no-plots"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (rundir / "traj.dcd").is_file() and dcd_frame_count(rundir / "traj.dcd") >= 20:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be killed"
        children = psutil.Process(proc.pid).children(recursive=True)
        os.killpg(proc.pid, signal.SIGKILL)
        for child in children:  # the worker processes, by id, should one have left the group
            if child.is_running():
                child.kill()
    finally:
        proc.wait(timeout=60)


def test_gpu_workers_are_pinned_to_their_devices() -> None:
    """The LocalCluster of a GPU plan sets CUDA_VISIBLE_DEVICES per worker before any task
    runs (K per GPU: test_worker_plan_cpu_and_gpu); no GPU is needed to check the pinning."""
    from solvflow.campaign.sweep import _client, worker_plan

    plan = worker_plan(2, tasks_per_gpu=1, cores=2, gpus=("5", "7"))
    with _client(None, plan) as client:
        seen = client.run(lambda dask_worker: (dask_worker.name,
                                               os.environ["CUDA_VISIBLE_DEVICES"],
                                               os.environ["OPENMM_CPU_THREADS"]))
    assert sorted(seen.values()) == [(0, "5", "1"), (1, "7", "1")]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_board_on_a_terminal(tmp_path: Path) -> None:
    """The rich board: counts, and per running task its stage, ns, ns/day and ETA as the
    worker's progress file gives them; failures listed when it closes."""
    from rich.console import Console

    from solvflow.campaign.board import LiveBoard, make_board
    from solvflow.campaign.sweep import Campaign
    from solvflow.campaign.task import ProgressFile, progress_path

    wf = load_workflow("smoke")
    tasks = expand(wf)
    campaign = Campaign(tmp_path, wf, tasks)
    campaign.open()
    terminal = _Terminal()
    board = make_board(terminal, campaign)
    assert isinstance(board, LiveBoard)
    assert type(make_board(io.StringIO(), campaign)).__name__ == "LineBoard"
    campaign.update(tasks[0].id, state="running")
    ProgressFile(progress_path(tmp_path, tasks[0].id), "token").write(
        "simulate", stage="npt", stage_index=4, n_stages=5, ns_done=0.0003, ns_total=0.00046,
        ns_per_day=12.5, eta_s=75.0)
    board.event(campaign.update(tasks[1].id, state="failed", error="build: no room [/b]"))
    console = Console(file=io.StringIO(), width=160)
    console.print(board._render())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "0 done" in text and "1 running" in text and "1 failed" in text
    assert "2 queued" in text
    row = next(line for line in text.splitlines() if line.split()[:1] == [tasks[0].id])
    assert row.split()[1:] == ["npt", "4/5", "0.0003", "/", "0.00046", "12.5", "00:01:15"]
    assert f"failed   {tasks[1].id}  build: no room [/b]" in text  # not read as markup
    board.close()
    assert f"failed   {tasks[1].id}: build: no room [/b]" in terminal.getvalue()
