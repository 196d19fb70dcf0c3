"""One campaign task on a Dask worker: build -> simulate -> analyze on one run directory.

:func:`run_task` never raises for a task's own failure: it returns an outcome
dict (``state`` finished, stopped or failed, with the error message), so one
bad task never stops the others. Progress goes to a small JSON file in the
campaign's ``.progress/`` folder (throttled), which the sweep's task board reads;
each task's output (OpenMM, Packmol, the analysis) goes to ``logs/<task-id>.log``.

A run directory counts as complete when ``status.json`` says finished for the
whole plan and ``analysis.json`` exists; ``analysis.json`` is written last and
atomically, so a kill at any moment leaves either a complete task or one that
resumes from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from solvflow.atomic import atomic_write
from solvflow.errors import InputError, SolvflowError

PROGRESS_DIR = ".progress"
LOG_DIR = "logs"
PROGRESS_EVERY_S = 2.0


def progress_path(campaign_dir: Path, task_id: str) -> Path:
    """The progress file of one task (JSON: phase, stage, ns done/total, ns/day, ETA in s)."""
    return campaign_dir / PROGRESS_DIR / f"{task_id}.json"


def read_progress(campaign_dir: Path, task_id: str) -> dict[str, Any] | None:
    """The last progress record of a task, or None (none yet, or being replaced)."""
    try:
        data = json.loads(progress_path(campaign_dir, task_id).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class ProgressFile:
    """Writes a task's progress atomically, at most every ``PROGRESS_EVERY_S`` seconds."""

    def __init__(self, path: Path, token: str) -> None:
        self.path, self.token = path, token
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.phase = "build"
        self._last = 0.0
        self._stage = ""
        self._phase_start = time.monotonic()
        self.phase_times: dict[str, float] = {}

    def write(self, phase: str, **figures: Any) -> None:
        if phase != self.phase:
            self.end_phase()
            self.phase = phase
        record = {"token": self.token, "phase": phase, "time": time.time(), "pid": os.getpid(),
                  "host": os.uname().nodename, **figures}
        with contextlib.suppress(OSError):  # progress is a courtesy; never fail a task for it
            atomic_write(self.path, json.dumps(record))
        self._last = time.monotonic()

    def end_phase(self) -> None:
        """Add the time since the current phase began to ``phase_times`` (s)."""
        now = time.monotonic()
        self.phase_times[self.phase] = round(
            self.phase_times.get(self.phase, 0.0) + now - self._phase_start, 3)
        self._phase_start = now

    def __call__(self, info: dict[str, Any]) -> None:
        """The ``progress`` callback of :func:`solvflow.simulate.simulate`."""
        stage = str(info.get("stage", ""))
        if stage == self._stage and time.monotonic() - self._last < PROGRESS_EVERY_S:
            return
        self._stage = stage
        keep = ("stage", "stage_index", "n_stages", "ns_done", "ns_total", "ns_per_day", "eta_s")
        self.write("simulate", **{k: info.get(k) for k in keep})


def run_complete(rundir: Path, protocol: Any, production_ns: float) -> bool:
    """True when ``rundir`` finished the whole plan (``production_ns`` of production) and
    holds ``analysis.json``: such a task is skipped without starting MD."""
    from solvflow.simulation.stages import plan_stages

    try:
        status = json.loads((rundir / "status.json").read_text())
        json.loads((rundir / "analysis.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(status, dict) or status.get("state") != "finished":
        return False
    proto = protocol.with_production_ns(production_ns)
    end = plan_stages(proto, float(status.get("temperature_K", 298.15)))[-1].end
    return int(status.get("step", 0)) >= end


def run_task(task: dict[str, Any], campaign_dir: str, options: dict[str, Any]) -> dict[str, Any]:
    """Build (unless built), simulate (resuming) and analyze one task; return its outcome.

    Parameters
    ----------
    task : dict
        ``id``, ``rundir`` (relative), ``system_ref``, ``build`` (keyword arguments of
        :func:`solvflow.build.build`), ``production_ns``.
    campaign_dir : str
        The campaign directory (shared by client and workers).
    options : dict
        ``protocol`` (a Protocol), ``platform`` (name or None), ``deadline`` (Unix time
        after which no MD runs, or None), ``token`` (this sweep's id), ``plots`` (write
        the PNG plots of the analysis; default True).

    Returns
    -------
    dict
        ``state`` (finished, stopped or failed), ``error``, ``platform``, ``ns_per_day``,
        ``simulated_ns``, ``wall_time_s`` (MD, all sessions), ``task_time_s`` (this call)
        and ``phase_times_s`` (s spent to build, simulate, analyze in this call).
    """
    root = Path(campaign_dir)
    started = time.monotonic()
    progress = ProgressFile(progress_path(root, task["id"]), options["token"])
    outcome: dict[str, Any] = {"state": "failed", "error": None}
    try:
        with _task_output(root / LOG_DIR / f"{task['id']}.log"):
            outcome.update(_run(task, root, options, progress))
    except SolvflowError as exc:
        outcome["error"] = f"{progress.phase}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a task's failure must never stop the campaign
        outcome["error"] = f"{progress.phase}: {type(exc).__name__}: {exc}"
    progress.end_phase()
    outcome["task_time_s"] = round(time.monotonic() - started, 3)
    outcome["phase_times_s"] = progress.phase_times
    return outcome


def _run(task: dict[str, Any], root: Path, options: dict[str, Any],
         progress: ProgressFile) -> dict[str, Any]:
    from solvflow.simulate import simulate

    rundir = root / task["rundir"]
    deadline = options.get("deadline")
    if deadline is not None and time.time() >= deadline:
        return {"state": "stopped", "note": "not started: the sweep's wall time was used up"}
    progress.write("build")
    if not (rundir / "spec.yaml").is_file():
        from solvflow.build import build

        build(task["system_ref"], output=rundir, **task["build"])
    else:
        check_same_build(rundir, task)
    remaining = None if deadline is None else deadline - time.time()
    if remaining is not None and remaining <= 0:
        return {"state": "stopped", "note": "built; the sweep's wall time was used up"}
    progress.write("simulate")
    result = simulate(rundir, protocol=options["protocol"], platform=options.get("platform"),
                      production_ns=task["production_ns"], progress=progress,
                      walltime_s=remaining)
    figures = {"platform": result.platform, "ns_per_day": result.ns_per_day,
               "simulated_ns": result.simulated_ns, "wall_time_s": result.wall_time_s,
               "n_frames": result.n_frames}
    if result.state != "finished":
        return {"state": "stopped" if result.state == "stopped" else "failed",
                "error": None if result.state == "stopped" else f"run state {result.state!r}",
                **figures}
    if result.already_finished and (rundir / "analysis.json").is_file():
        return {"state": "finished", **figures}
    progress.write("analyze")
    _analyze(rundir, plots=options.get("plots", True))
    return {"state": "finished", **figures}


def _analyze(rundir: Path, plots: bool) -> None:
    """The PNG plots (``plots``), then analysis.json (last and atomically: it marks the task
    complete). The shell radius is the cation's fixed reference one where it has one
    (analysis/shell_cutoffs.yaml: the same in every run of a campaign), else the RDF's."""
    from solvflow.analysis import analyze

    reference = campaign_cutoffs(rundir)
    result = (analyze(rundir, cutoffs_nm=reference[0], cutoff_source=reference[1])
              if reference else analyze(rundir))
    if plots:
        result.plot(rundir)
    atomic_write(rundir / "analysis.json", json.dumps(result.to_dict(), indent=2) + "\n")


def campaign_cutoffs(rundir: Path) -> tuple[dict[str, float], str] | None:
    """The fixed reference shell radii for the run's cation and partners (or None)."""
    import yaml

    from solvflow.analysis.groups import analysed_names
    from solvflow.analysis.reference_shells import reference_cutoffs

    spec = yaml.safe_load((rundir / "spec.yaml").read_text(encoding="utf-8")) or {}
    cation, partners = analysed_names(spec)
    return reference_cutoffs(cation, partners) if partners else None


def check_same_build(rundir: Path, task: dict[str, Any]) -> None:
    """Refuse to continue a run directory built with other parameters than the task's."""
    import yaml

    spec = yaml.safe_load((rundir / "spec.yaml").read_text()) or {}
    comp = spec.get("composition", {})
    wanted = task["build"]
    value = next(wanted[k] for k in ("concentration", "ratio", "molality") if k in wanted)
    checks = [("seed", spec.get("seed"), wanted["seed"]),
              ("charge scale", spec.get("charge_scale"), wanted["charge_scale"]),
              ("n_salt", comp.get("n_salt"), wanted["n_salt"]),
              ("composition", comp.get("requested"), value)]
    if "start" in spec:  # {"state": "paired", "distance_nm": ..., "measured": ...}
        start = spec["start"]
        checks.append(("start", start.get("state") if isinstance(start, dict) else start,
                       wanted.get("start", "random")))
    differ = [f"{what} {have!r} (task: {want!r})" for what, have, want in checks
              if not _same(have, want)]
    if differ:
        raise InputError(f"{rundir} was built with other parameters: {'; '.join(differ)}; "
                         "move it away (or use another campaign directory) to rebuild it")


def _same(have: Any, want: Any) -> bool:
    if isinstance(have, (int, float)) and isinstance(want, (int, float)):
        return abs(float(have) - float(want)) <= 1e-9 * max(1.0, abs(float(want)))
    return bool(have == want)


@contextlib.contextmanager
def _task_output(path: Path) -> Iterator[None]:
    """Send this process's stdout/stderr (file descriptors 1 and 2) to ``path`` for the task.

    Only on a single-threaded worker (one task at a time, as solvflow's LocalCluster
    starts them); elsewhere the output stays where the worker's goes.
    """
    if not _single_task_worker():
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "a") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}\n")
        log.flush()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _single_task_worker() -> bool:
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads) == 1
    except (ImportError, ValueError, AttributeError):
        return False
