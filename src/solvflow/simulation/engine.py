"""Running a protocol on a run directory: stages, checkpoints, resume.

A run is one OpenMM ``Simulation`` driven stage by stage; all output goes
through reporters (see :mod:`solvflow.simulation.reporters`).  A checkpoint
is committed by ``status.json``: the checkpoint and state files are written
beside their targets, the status (with the step, the number of log rows and
frames it covers) is replaced, then the two files.  On resume the step
stored in ``checkpoint.chk`` (or ``state.xml`` when the platform changed)
selects the matching record; ``log.csv`` and ``traj.dcd`` are cut back to it.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from solvflow.dcd import dcd_frame_count
from solvflow.durations import parse_duration
from solvflow.errors import InputError
from solvflow.simulation import rundir as rd
from solvflow.simulation.protocols import Protocol, load_protocol, parse_protocol
from solvflow.simulation.run import Run
from solvflow.simulation.stages import plan_stages

DEFAULT_PROTOCOL = "quick"


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate` did. ``status`` is the content of ``status.json``."""

    rundir: Path
    state: str  # "finished", or "stopped" when walltime_s ran out (resumable)
    already_finished: bool
    platform: str
    precision: str | None
    ns_per_day: float | None
    wall_time_s: float
    simulated_ns: float
    n_frames: int
    status: dict[str, Any]


def simulate(
    rundir: str | Path,
    protocol: str | Path | Protocol | None = None,
    platform: str | None = None,
    production_ns: float | None = None,
    seed: int | None = None,
    progress: str | bool | Callable[[dict[str, Any]], Any] | None = None,
    walltime_s: float | str | None = None,
) -> SimulationResult:
    """Run (or resume) the protocol's stages in ``rundir``.

    Parameters
    ----------
    rundir : str or Path
        Run directory holding ``spec.yaml``, ``topology.pdb`` and ``system.xml``.
    protocol : str, Path or Protocol, optional
        Preset name (``smoke``, ``quick``, ``standard``, ``production``) or YAML
        path. Default: the protocol the run started with, else ``quick``.
    platform : str, optional
        ``CUDA``, ``OpenCL``, ``CPU`` or ``Reference``; default: a GPU when one loads,
        else the faster of CPU and OpenCL-on-PoCL for this System (measured once per
        machine and kind of System, cached; see ``choose_platform_for_run``); a resumed
        run keeps the platform it started on.
    production_ns : float, optional
        Production length in ns (> 0), overriding the protocol's; may extend a
        finished run.
    seed : int, optional
        Seed of velocities, thermostat and barostat; default: ``spec.yaml``'s.
    progress : None, bool, str or callable
        None/True: a progress bar on a terminal, else a line every 30 s;
        ``"bar"``, ``"lines"``; False or ``"quiet"``: nothing; a callable gets
        a dict (stage, ns done/total, ns/day, ETA in s) at every report.
    walltime_s : float or str, optional
        Wall-clock budget of this call in seconds (or a duration such as ``"2h30m"``, see
        :func:`solvflow.durations.parse_duration`). When it runs out, the run writes a
        checkpoint and returns with ``state == "stopped"`` (``status["stop_reason"] ==
        "walltime"``); calling :func:`simulate` again resumes it, like GROMACS ``-maxh``.
        The budget is checked every report interval (at most every 100 steps), so the
        call can overrun it by that much plus the time to write one checkpoint; the
        minimisation stage is not interrupted.

    Returns
    -------
    SimulationResult

    Raises
    ------
    InputError
        Missing files, unknown protocol, bad production length, or settings that
        contradict those the run started with.
    PlatformError
        The requested platform does not load.
    SimulationError
        The simulation blew up (the last good checkpoint is kept).
    """
    root = Path(rundir)
    budget = None if walltime_s is None else parse_duration(walltime_s, "walltime_s")
    inputs = rd.read_inputs(root)
    status = rd.read_status(root)
    proto = _resolve_protocol(root, protocol, production_ns, status)
    seed = _resolve_seed(seed, inputs.seed, status)
    plan = plan_stages(proto, inputs.temperature_K)
    if status is not None and status.get("state") == "finished" and (
            status.get("step", 0) >= plan[-1].end):
        return _result(root, status, already_finished=True)
    run = Run(inputs, proto, plan, seed, status, _progress_mode(progress), walltime_s=budget)
    with _graceful_stop(run):
        status = run.execute(platform)
    return _result(root, status, already_finished=False)


def _resolve_protocol(root: Path, protocol: str | Path | Protocol | None,
                      production_ns: float | None, status: dict[str, Any] | None) -> Protocol:
    recorded = None
    if status is not None and (root / rd.PROTOCOL_COPY).is_file():
        recorded = parse_protocol(yaml.safe_load((root / rd.PROTOCOL_COPY).read_text()),
                                  str(root / rd.PROTOCOL_COPY))
    proto = load_protocol(protocol) if protocol is not None else (
        recorded or load_protocol(DEFAULT_PROTOCOL))
    if production_ns is not None:
        proto = _with_production(proto, production_ns)
    elif recorded is not None:
        proto = _with_production(proto, recorded.production.duration_ns)
    if recorded is not None and _comparable(proto) != _comparable(recorded):
        raise InputError(
            f"{root} was started with protocol {recorded.name!r} (see {rd.PROTOCOL_COPY}); "
            f"a run continues with the same settings (only --production-ns may change). "
            "Run without --protocol, or use a new run directory")
    return proto


def _with_production(proto: Protocol, production_ns: Any) -> Protocol:
    try:
        return proto.with_production_ns(production_ns)
    except InputError as exc:
        raise InputError(f"--production-ns: {exc}") from None


def _comparable(proto: Protocol) -> dict[str, Any]:
    data = proto.to_dict()
    data["stages"]["production"].pop("duration_ns")
    return data


def _resolve_seed(seed: Any, spec_seed: int, status: dict[str, Any] | None) -> int:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if status is not None and "seed" in status:
        if seed is not None and seed != status["seed"]:
            raise InputError(f"this run started with seed {status['seed']}; a resumed run keeps "
                             f"its seed (got {seed}); use a new run directory for a new seed")
        return int(status["seed"])
    return spec_seed if seed is None else seed


def _progress_mode(progress: Any) -> Any:
    if callable(progress):
        return progress
    if progress is None or progress is True:
        return "bar" if sys.stdout.isatty() else "lines"
    if progress is False:
        return "quiet"
    if progress not in ("bar", "lines", "quiet"):
        raise InputError(f"progress must be None, a bool, 'bar', 'lines', 'quiet' or a "
                         f"callable, got {progress!r}")
    return progress


def _result(root: Path, status: dict[str, Any], already_finished: bool) -> SimulationResult:
    return SimulationResult(
        rundir=root, state=status.get("state", ""), already_finished=already_finished,
        platform=status.get("platform", ""), precision=status.get("precision"),
        ns_per_day=status.get("ns_per_day"), wall_time_s=float(status.get("wall_time_s", 0.0)),
        simulated_ns=float(status.get("simulated_ns", 0.0)),
        n_frames=dcd_frame_count(root / rd.TRAJECTORY), status=status)


@contextmanager
def _graceful_stop(run: Run) -> Iterator[None]:
    """Ctrl-C or SIGTERM (a batch system ending the job): checkpoint within
    ``STOP_CHECK_STEPS`` steps, then stop (``KeyboardInterrupt``); a second signal stops
    at once, keeping the previous checkpoint."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if run.stop_requested:
            raise KeyboardInterrupt(f"signal {signum}")
        run.stop_requested = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = ["SimulationResult", "simulate"]
