"""``solvflow sweep``: every task of a workflow on Dask distributed, surviving kills and failures.

With no scheduler address a :class:`distributed.LocalCluster` of process
workers is started: one worker per GPU (``tasks_per_gpu`` per GPU, each pinned
to its device through ``CUDA_VISIBLE_DEVICES``) when GPUs are visible, else CPU
workers whose OpenMM thread count (``OPENMM_CPU_THREADS``) makes workers x
threads = cores. With an address (``tcp://HOST:8786``, e.g. a dask-jobqueue
cluster, see docs/jobqueue/) the tasks go to that scheduler; its workers must
see the campaign directory at the same path (a shared file system).

The campaign directory holds ``workflow.yaml`` (resolved), ``campaign.json``
(every task: parameters, state, wall time, platform, error, run directory;
rewritten atomically whenever a task changes state), ``runs/<task-id>/`` and
``logs/<task-id>.log``. A complete run directory is skipped without starting
MD; an interrupted one resumes from its checkpoint; a failure is recorded
and never stops the other tasks.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import logging
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from solvflow import __version__
from solvflow.atomic import atomic_write
from solvflow.campaign.board import make_board
from solvflow.campaign.task import PROGRESS_DIR, read_progress, run_complete, run_task
from solvflow.campaign.workflow import Task, Workflow, expand, load_workflow, resolved_document
from solvflow.durations import EXIT_RESUMABLE
from solvflow.errors import InputError, OutputExistsError

CAMPAIGN_FILE = "campaign.json"
WORKFLOW_COPY = "workflow.yaml"
LOCK_FILE = ".sweep.lock"
STATES = ("queued", "running", "finished", "stopped", "failed")
EXIT_OK, EXIT_FAILED = 0, 1
POLL_S = 0.5


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class SweepResult:
    """What a sweep left: the campaign directory and every task record of ``campaign.json``."""

    campaign_dir: Path
    tasks: list[dict[str, Any]]

    def counts(self) -> dict[str, int]:
        """Tasks per state (queued, running, finished, stopped, failed)."""
        return {s: sum(t["state"] == s for t in self.tasks) for s in STATES}

    @property
    def exit_status(self) -> int:
        """0: all finished; 1: some failed; 3: some stopped by the wall time (resumable)."""
        counts = self.counts()
        if counts["failed"]:
            return EXIT_FAILED
        if counts["finished"] < len(self.tasks):
            return EXIT_RESUMABLE
        return EXIT_OK


# ---------------------------------------------------------------------------- workers
@dataclass(frozen=True)
class WorkerPlan:
    """How many LocalCluster workers, OpenMM threads each, and the GPU of each worker."""

    workers: int
    threads: int
    gpus: tuple[str, ...] = ()
    tasks_per_gpu: int = 1

    def gpu_of(self, worker_index: int) -> str | None:
        """The CUDA device (as in CUDA_VISIBLE_DEVICES) of worker ``worker_index``, or None."""
        if not self.gpus:
            return None
        return self.gpus[(worker_index // self.tasks_per_gpu) % len(self.gpus)]

    def describe(self) -> str:
        if self.gpus:
            return (f"LocalCluster: {self.workers} workers on {len(self.gpus)} GPU(s) "
                    f"({self.tasks_per_gpu} per GPU)")
        return (f"LocalCluster: {self.workers} CPU worker(s) x {self.threads} OpenMM "
                f"thread(s)")


def visible_gpus() -> tuple[str, ...]:
    """CUDA devices: ``CUDA_VISIBLE_DEVICES`` if set, else ``nvidia-smi -L``; () when none."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return tuple(d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1")
    if shutil.which("nvidia-smi") is None:
        return ()
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    lines = [line for line in out.stdout.splitlines() if line.startswith("GPU ")]
    return tuple(str(i) for i in range(len(lines))) if out.returncode == 0 else ()


def cpu_cores() -> int:
    """CPU cores this process may use (its affinity mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_plan(n_tasks: int, *, workers: int | None = None, tasks_per_gpu: int = 1,
                platform: str | None = None, cores: int | None = None,
                gpus: tuple[str, ...] | None = None) -> WorkerPlan:
    """Workers for ``n_tasks`` tasks: ``tasks_per_gpu`` per visible GPU, else CPU workers
    with ``OPENMM_CPU_THREADS`` (if set) or cores // workers threads each."""
    for name, value in (("workers", workers), ("tasks per GPU", tasks_per_gpu)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    on_cpu = platform is not None and platform.lower() in ("cpu", "reference")
    devices = () if on_cpu else (visible_gpus() if gpus is None else gpus)
    cores = cores or cpu_cores()
    if devices:
        count = workers or len(devices) * tasks_per_gpu
        return WorkerPlan(count, 1, devices, tasks_per_gpu)
    env_threads = os.environ.get("OPENMM_CPU_THREADS", "")
    if env_threads.isdigit() and int(env_threads) > 0:
        threads = int(env_threads)
        return WorkerPlan(workers or max(1, min(n_tasks, cores // threads)), threads)
    count = workers or max(1, min(n_tasks, cores))
    return WorkerPlan(count, max(1, cores // count))


def _pin_gpu_plugin(plan: WorkerPlan) -> Any:
    from distributed import WorkerPlugin

    class PinGpu(WorkerPlugin):
        """Sets CUDA_VISIBLE_DEVICES in each worker before any task loads OpenMM."""

        def setup(self, worker: Any) -> None:
            name = str(worker.name)
            device = plan.gpu_of(int(name) if name.isdigit() else 0)
            os.environ["CUDA_VISIBLE_DEVICES"] = device or ""

    return PinGpu()


@contextlib.contextmanager
def _client(scheduler: str | None, plan: WorkerPlan | None) -> Iterator[Any]:
    """A Dask client: of the scheduler at ``scheduler``, else of a new LocalCluster."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}; start "
                             "one (dask scheduler, or a dask-jobqueue cluster) or drop "
                             "--scheduler to use a LocalCluster") from None
        try:
            yield client
        finally:
            client.close()
        return
    assert plan is not None
    env = {"OPENMM_CPU_THREADS": str(plan.threads)}
    with LocalCluster(n_workers=plan.workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR, env=env) as cluster:
        with Client(cluster) as client:
            with contextlib.suppress(TimeoutError):  # tasks wait for late workers anyway
                client.wait_for_workers(plan.workers, timeout=120)
            if plan.gpus:
                client.register_plugin(_pin_gpu_plugin(plan), name="solvflow-pin-gpu")
            yield client


# --------------------------------------------------------------------------- campaign
@dataclass
class Campaign:
    """``campaign.json`` of one campaign directory, kept in step with every state change."""

    root: Path
    workflow: Workflow
    tasks: list[Task]
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def open(self) -> None:
        """Read an earlier ``campaign.json`` (checked against the workflow) and the run
        directories; write the resolved ``workflow.yaml`` and the new ``campaign.json``."""
        old = self._read_existing()
        old_records = {t["id"]: t for t in old.get("tasks", [])}
        for task in self.tasks:
            previous = old_records.pop(task.id, None)
            if previous is not None:
                _check_same_params(previous, task, self.root)
            self.records[task.id] = self._reconcile(task, previous)
        self.records.update(old_records)  # tasks no longer in the workflow stay listed
        self.meta = {"workflow": self.workflow.name, "workflow_file": self.workflow.source,
                     "solvflow_version": __version__, "created": old.get("created", _now()),
                     "updated": _now(), "scheduler": None,
                     "sweeps": old.get("sweeps", [])}
        atomic_write(self.root / WORKFLOW_COPY,
                     yaml.safe_dump(resolved_document(self.workflow, self.tasks),
                                    sort_keys=False))
        self.write()

    def _read_existing(self) -> dict[str, Any]:
        path = self.root / CAMPAIGN_FILE
        if not path.is_file():
            return {}
        try:
            old = json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(f"{path}: not valid JSON ({exc}); move it away to start the "
                             "campaign record afresh (run directories are kept)") from None
        if old.get("workflow") != self.workflow.name:
            raise InputError(f"{self.root} holds campaign {old.get('workflow')!r}, not "
                             f"{self.workflow.name!r}; choose another -o directory")
        return dict(old)

    def _reconcile(self, task: Task, previous: dict[str, Any] | None) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": task.id, "params": task.params(), "n_atoms": task.n_atoms, "state": "queued",
            "rundir": task.rundir, "wall_time_s": None, "platform": None, "ns_per_day": None,
            "simulated_ns": None, "error": None}
        for key in ("wall_time_s", "platform", "ns_per_day", "simulated_ns"):
            if previous and previous.get(key) is not None:
                record[key] = previous[key]
        rundir = self.root / task.rundir
        if run_complete(rundir, self.workflow.protocol, task.production_ns):
            record["state"] = "finished"
            status = json.loads((rundir / "status.json").read_text())
            for key in ("wall_time_s", "platform", "ns_per_day", "simulated_ns"):
                record[key] = status.get(key, record[key])
        return record

    def update(self, task_id: str, **fields: Any) -> dict[str, Any]:
        """Change one task's record and rewrite ``campaign.json``; returns the record."""
        record = self.records[task_id]
        record.update(fields)
        self.write()
        return record

    def write(self) -> None:
        self.meta["updated"] = _now()
        doc = {**self.meta, "tasks": list(self.records.values())}
        atomic_write(self.root / CAMPAIGN_FILE, json.dumps(doc, indent=1) + "\n")

    def pending(self) -> list[Task]:
        return [t for t in self.tasks if self.records[t.id]["state"] != "finished"]

    def in_workflow(self) -> list[dict[str, Any]]:
        return [self.records[t.id] for t in self.tasks]


def _check_same_params(previous: dict[str, Any], task: Task, root: Path) -> None:
    old = {k: v for k, v in previous.get("params", {}).items() if k != "production_ns"}
    new = {k: v for k, v in task.params().items() if k != "production_ns"}
    if old != new:
        differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        detail = ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in differ)
        raise InputError(f"task {task.id} in {root} was run with other parameters ({detail}); "
                         "only production_ns may change between sweeps: use another -o")


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One sweep at a time per campaign directory (the lock dies with the process)."""
    handle = open(root / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            raise InputError(f"another sweep is running on {root} ({handle.read().strip()}); "
                             "wait for it or stop it first") from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} on {os.uname().nodename} since {_now()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def _prepare_dir(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise OutputExistsError(f"campaign directory {str(root)!r} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and not (root / CAMPAIGN_FILE).is_file():
        raise OutputExistsError(f"{str(root)!r} is not empty and holds no {CAMPAIGN_FILE}: not a "
                                "campaign directory; choose a new or empty -o directory")
    root.mkdir(parents=True, exist_ok=True)


def _check_starts(tasks: list[Task]) -> None:
    import inspect

    from solvflow.build import build

    wanted = sorted({t.start for t in tasks} - {"random"})
    if wanted and "start" not in inspect.signature(build).parameters:
        raise InputError(f"the workflow asks for start states {', '.join(wanted)}, but this "
                         "solvflow's build() has only random starts")


# ----------------------------------------------------------------------------- sweep
def sweep(
    workflow: str | Path | Workflow,
    output: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    walltime: str | float | None = None,
    tasks_per_gpu: int | None = None,
    platform: str | None = None,
    plots: bool = True,
    stream: IO[str] | None = None,
) -> SweepResult:
    """Run every unfinished task of ``workflow`` into the campaign directory ``output``.

    Parameters
    ----------
    workflow : str, Path or Workflow
        Shipped short name (``"smoke"``), path of a workflow YAML, or a loaded workflow.
    output : str or Path
        Campaign directory (created; an existing one continues).
    scheduler : str, optional
        Address of a running Dask scheduler; default: a new LocalCluster.
    workers : int, optional
        LocalCluster workers (default: one per GPU x tasks_per_gpu, else one per core
        up to the number of tasks).
    walltime : str or float, optional
        Wall-time budget of the whole sweep (``"2h"``, seconds as a number); the MD of
        every task stops at a checkpoint by then (state ``stopped``, resumable); tasks not
        started by then stay for the next sweep. Default: the workflow's ``walltime``.
    tasks_per_gpu : int, optional
        Tasks sharing one GPU (default: the workflow's, else 1).
    platform : str, optional
        OpenMM platform of every task (default: the fastest that loads on each worker).
    plots : bool
        Write each run's PNG plots (RDFs, ion pairing, shells) after its analysis.
    stream : file, optional
        Where the task board goes (default stdout; a live board on a terminal, else one
        line per state change).

    Returns
    -------
    SweepResult
        ``exit_status``: 0 all finished, 1 some failed, 3 some stopped (resumable).
    """
    from solvflow.durations import parse_duration

    wf = workflow if isinstance(workflow, Workflow) else load_workflow(workflow)
    tasks = expand(wf)
    _check_starts(tasks)
    budget = wf.walltime_s if walltime is None else parse_duration(walltime, "--walltime")
    deadline = None if budget is None else time.time() + budget
    root = Path(output)
    _prepare_dir(root)
    with _locked(root):
        campaign = Campaign(root, wf, tasks)
        campaign.open()
        pending = campaign.pending()
        plan = None if scheduler else worker_plan(
            max(1, len(pending)), workers=workers, platform=platform,
            tasks_per_gpu=tasks_per_gpu or wf.tasks_per_gpu)
        campaign.meta["scheduler"] = scheduler if plan is None else plan.describe()
        board = make_board(stream, campaign)
        sweep_record = {"started": _now(), "scheduler": campaign.meta["scheduler"],
                        "walltime_s": budget}
        try:
            board.start(len(pending))
            if pending:
                options = {"protocol": wf.protocol, "platform": platform, "deadline": deadline,
                           "token": uuid.uuid4().hex, "plots": plots}
                with _client(scheduler, plan) as client:
                    _drive(client, campaign, pending, options, board)
        finally:
            board.close()
            result = SweepResult(root, campaign.in_workflow())
            sweep_record |= {"ended": _now(), "counts": result.counts()}
            campaign.meta["sweeps"].append(sweep_record)
            campaign.write()
    return result


def _drive(client: Any, campaign: Campaign, pending: list[Task], options: dict[str, Any],
           board: Any) -> None:
    """Submit ``pending`` and follow them to the end, recording every state change."""
    progress_dir = campaign.root / PROGRESS_DIR
    for task in pending:
        (progress_dir / f"{task.id}.json").unlink(missing_ok=True)  # stale from a killed sweep
    futures = {}
    for task in pending:
        payload = {"id": task.id, "rundir": task.rundir, "system_ref": task.system_ref,
                   "build": task.build_kwargs(), "production_ns": task.production_ns}
        future = client.submit(run_task, payload, str(campaign.root.resolve()), options,
                               key=f"solvflow-{task.id}-{options['token'][:8]}", pure=False)
        futures[future] = task.id
    try:
        while futures:
            for future in [f for f in futures if f.done()]:
                task_id = futures.pop(future)
                record = campaign.update(task_id, **_outcome(future))
                board.event(record)
            _mark_running(campaign, set(futures.values()), options["token"], board)
            board.refresh()
            if futures:
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        for task_id in futures.values():
            if campaign.records[task_id]["state"] == "running":
                campaign.update(task_id, state="stopped",
                                note="interrupted (Ctrl-C or SIGTERM); the next sweep resumes it")
        raise


def _mark_running(campaign: Campaign, ids: set[str], token: str, board: Any) -> None:
    for task_id in ids:
        record = campaign.records[task_id]
        if record["state"] == "running":
            continue
        info = read_progress(campaign.root, task_id)
        if info is not None and info.get("token") == token:
            board.event(campaign.update(task_id, state="running", error=None, note=None,
                                        worker=f"{info.get('host')}:{info.get('pid')}"))


def _outcome(future: Any) -> dict[str, Any]:
    """The task record fields from a finished future (its result, or why it has none)."""
    if future.status == "finished":
        outcome = dict(future.result())
        outcome.setdefault("note", None)
        return outcome
    if future.status == "cancelled":
        return {"state": "failed", "error": "the scheduler cancelled the task (rerun the sweep)"}
    exc = future.exception()
    name = type(exc).__name__
    if name == "KilledWorker":
        message = ("the worker running it died (killed, or out of memory) more than the "
                   "scheduler allows; the next sweep resumes it from its last checkpoint")
    else:
        message = f"{name}: {exc}"
    return {"state": "failed", "error": message}
