"""Reporters in OpenMM's protocol: ``describeNextReport(simulation)`` returns the dict
form, ``report(simulation, state)`` acts.  All schedules are relative to the
start of the current stage (held by a shared :class:`StageClock`), so a
resumed run reports at exactly the steps an uninterrupted one would.

Nothing here depends on the order in which OpenMM calls reporters of the same
step (``Simulation`` calls those wanting wrapped positions -- the trajectory --
before the others, whatever the list order):

- the trajectory writer checks its own state (positions, and energy when the
  state has it) with the blow-up watch *before* it writes a frame, so a NaN on
  a frame step never reaches ``traj.dcd``;
- the log and the trajectory remember the last step they wrote, and
  :meth:`CsvLogReporter.catch_up` / :meth:`DcdTrajectoryReporter.catch_up`
  write the row or frame of the current step if it is due and not written yet
  (the engine calls them before every checkpoint), so a checkpoint always
  covers the row and the frame of its own step;
- the counts a checkpoint records are derived from the step and the schedule
  (:func:`solvflow.simulation.stages.expected_counts`), and checked against
  what the reporters wrote.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from solvflow.constants import AVOGADRO
from solvflow.dcd import read_dcd_header
from solvflow.errors import SimulationError
from solvflow.simulation.rundir import LOG_COLUMNS

GAS_CONSTANT_KJ_MOL_K = 8.314462618e-3


def degrees_of_freedom(system: Any) -> int:
    """3 per massive particle, minus constraints, minus 3 with a CMMotionRemover."""
    import openmm

    massive = [system.getParticleMass(i)._value > 0 for i in range(system.getNumParticles())]
    dof = 3 * sum(massive)
    for i in range(system.getNumConstraints()):
        a, b, _ = system.getConstraintParameters(i)
        dof -= 1 if massive[a] or massive[b] else 0
    if any(isinstance(f, openmm.CMMotionRemover) for f in system.getForces()):
        dof -= 3
    return dof


@dataclass
class StageClock:
    """Where the run is: shared by the engine (writes) and the reporters (read).

    Steps are global (the context's step count); ``stage_start``/``stage_end``
    bound the current stage, ``run_end`` the last step of the run.
    """

    timestep_ps: float
    target_K: float
    stage: str = ""
    stage_index: int = 0
    n_stages: int = 0
    stage_start: int = 0
    stage_end: int = 0
    run_end: int = 0
    setpoint_K: float = 0.0
    ns_per_day: float | None = None
    last_good_checkpoint: int | None = None
    dof: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def temperature(self, kinetic_kJ_mol: float) -> float:
        """Instantaneous temperature (K) from the kinetic energy and ``dof``."""
        return 2.0 * kinetic_kJ_mol / (max(self.dof, 1) * GAS_CONSTANT_KJ_MOL_K)

    def steps_to_next(self, step: int, interval: int) -> int:
        """Steps from ``step`` to the next multiple of ``interval`` after the stage start."""
        return interval - (step - self.stage_start) % interval


def _quantity(value: Any, unit_name: str) -> float:
    from openmm import unit

    if unit_name == "nanometer**3":
        return float(value.value_in_unit(unit.nanometer**3))
    return float(value.value_in_unit(getattr(unit, unit_name)))


def _energy_problem(state: Any, clock: StageClock, factor: float) -> str:
    """Why the energies of ``state`` are not sane ("" if fine or not in the state)."""
    try:
        potential = _quantity(state.getPotentialEnergy(), "kilojoules_per_mole")
        kinetic = _quantity(state.getKineticEnergy(), "kilojoules_per_mole")
    except Exception:  # noqa: BLE001 - the state holds no energy (OpenMMException)
        return ""
    if not (math.isfinite(potential) and math.isfinite(kinetic)):
        return f"energy is not finite (potential {potential}, kinetic {kinetic} kJ/mol)"
    temperature = clock.temperature(kinetic)
    limit = factor * max(clock.target_K, clock.setpoint_K)
    if temperature > limit:
        return f"temperature {temperature:.0f} K exceeds {factor:g} x {limit / factor:.0f} K"
    return ""


def _position_problem(state: Any) -> str:
    """Why the positions of ``state`` are not sane ("" if fine or not in the state)."""
    import numpy as np

    try:
        positions = state.getPositions(asNumpy=True)._value
    except Exception:  # noqa: BLE001 - the state holds no positions
        return ""
    bad = ~np.isfinite(positions).all(axis=1)
    if bad.any():
        return (f"{int(bad.sum())} particle position(s) are not finite "
                f"(first: atom {int(bad.argmax())})")
    return ""


def _due(clock: StageClock, step: int, interval: int, last_step: int | None) -> bool:
    """True when a reporter of period ``interval`` owes a report at ``step``."""
    return (clock.stage_start < step <= clock.stage_end and step != last_step
            and (step - clock.stage_start) % interval == 0)


class BlowUpWatch:
    """Stops the run when the energy or a position is not finite, or the temperature runs
    away.

    Raises :class:`SimulationError` naming stage, step and time; the last good
    checkpoint is left as it is. The trajectory writer calls :meth:`check` on
    its own state before writing, so no reporter order can let a bad frame out.
    """

    def __init__(self, interval: int, clock: StageClock, factor: float = 5.0) -> None:
        self.interval, self.clock, self.factor = interval, clock, factor

    def describeNextReport(self, simulation: Any) -> dict[str, Any]:  # noqa: N802
        return {"steps": self.clock.steps_to_next(simulation.currentStep, self.interval),
                "periodic": None, "include": ["energy"]}

    def report(self, simulation: Any, state: Any) -> None:
        self.check(simulation.currentStep, state)

    def check(self, step: int, state: Any) -> None:
        """Raise if what ``state`` holds (energies and/or positions) is not sane."""
        problem = _energy_problem(state, self.clock, self.factor)
        if not problem:
            problem = _position_problem(state)
        if problem:
            self.fail(step, _quantity(state.getTime(), "picoseconds"), problem)

    def fail(self, step: int, time_ps: float, problem: str) -> None:
        kept = self.clock.last_good_checkpoint
        kept_text = (f"the last good checkpoint (step {kept}) is kept" if kept is not None
                     else "no checkpoint was written yet")
        raise SimulationError(
            f"simulation blew up in stage {self.clock.stage!r} at step {step} "
            f"(t = {time_ps:.3f} ps): {problem}; {kept_text}. Check the starting structure "
            "(overlapping atoms), the force field and the time step")


class CsvLogReporter:
    """Appends one row of ``LOG_COLUMNS`` to ``log.csv`` every ``interval`` steps."""

    def __init__(self, path: Path, interval: int, clock: StageClock, total_mass_dalton: float,
                 n_rows: int = 0) -> None:
        """``n_rows``: data rows already in ``path`` (appended to); 0 starts a new file."""
        self.interval, self.clock = interval, clock
        self.grams = total_mass_dalton / AVOGADRO
        self.n_rows = n_rows
        new = n_rows == 0
        self._fh: IO[str] = open(path, "w" if new else "a", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._fh)
        if new:
            self._writer.writerow(LOG_COLUMNS)
        self._last: tuple[float, int] | None = None
        self.last_step: int | None = None  # step of the last row written (no row twice)

    def describeNextReport(self, simulation: Any) -> dict[str, Any]:  # noqa: N802
        if self._last is None:
            self._last = (time.perf_counter(), simulation.currentStep)
        return {"steps": self.clock.steps_to_next(simulation.currentStep, self.interval),
                "periodic": None, "include": ["energy"]}

    def restart_timer(self) -> None:
        """Measure speed from the next step on (after a pause: minimisation, checkpoint...)."""
        self._last = None

    def report(self, simulation: Any, state: Any) -> None:
        step, now = simulation.currentStep, time.perf_counter()
        if step == self.last_step:
            return  # written already by catch_up()
        speed = ""
        if self._last is not None and step > self._last[1] and now > self._last[0]:
            ns = (step - self._last[1]) * self.clock.timestep_ps / 1000.0
            self.clock.ns_per_day = ns / ((now - self._last[0]) / 86400.0)
            speed = f"{self.clock.ns_per_day:.4g}"
        self._last = (now, step)
        self.write_row(simulation, state, speed)

    def write_row(self, simulation: Any, state: Any, speed: str = "") -> None:
        """Write the row for ``state`` (also used once after minimisation)."""
        potential = _quantity(state.getPotentialEnergy(), "kilojoules_per_mole")
        kinetic = _quantity(state.getKineticEnergy(), "kilojoules_per_mole")
        volume = _quantity(state.getPeriodicBoxVolume(), "nanometer**3")
        temperature = self.clock.temperature(kinetic)
        density = self.grams / (volume * 1e-21)
        self._writer.writerow([
            self.clock.stage, simulation.currentStep,
            f"{_quantity(state.getTime(), 'picoseconds'):.4f}", f"{potential:.4f}",
            f"{kinetic:.4f}", f"{potential + kinetic:.4f}", f"{temperature:.3f}",
            f"{volume:.5f}", f"{density:.5f}", speed])
        self.n_rows += 1
        self.last_step = simulation.currentStep

    def catch_up(self, simulation: Any) -> None:
        """Write the row of the current step now if it is due and not written yet."""
        if _due(self.clock, simulation.currentStep, self.interval, self.last_step):
            self.report(simulation, simulation.context.getState(getEnergy=True))

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class DcdTrajectoryReporter:
    """Production frames to ``traj.dcd`` every ``interval`` steps after the stage start.

    Molecules are kept whole and their centres wrapped into the box. The DCD
    header holds the first step, the interval and the time step, so frame
    times follow from it.
    """

    def __init__(self, path: Path, interval: int, clock: StageClock, topology: Any,
                 n_frames: int = 0, guard: BlowUpWatch | None = None) -> None:
        """``n_frames``: frames already in ``path`` (appended to); 0 starts a new file.
        ``guard``: checks every state before its frame is written (raises on NaN)."""
        self.path, self.interval, self.clock, self.topology = path, interval, clock, topology
        self.guard = guard
        self.last_step: int | None = None
        self.append = n_frames > 0
        self._fh: IO[bytes] | None = None
        self._dcd: Any = None
        self.n_frames = n_frames

    def describeNextReport(self, simulation: Any) -> dict[str, Any]:  # noqa: N802
        return {"steps": self.clock.steps_to_next(simulation.currentStep, self.interval),
                "periodic": True, "include": ["positions"]}

    def report(self, simulation: Any, state: Any) -> None:
        from openmm.app import DCDFile

        step = simulation.currentStep
        if step == self.last_step:
            return  # written already by catch_up()
        if self.guard is not None:
            self.guard.check(step, state)  # before the frame: a NaN never reaches the file
        if self._dcd is None:
            first = simulation.currentStep
            if self.append:  # DCDFile rewrites the last-step field from the first step
                first = read_dcd_header(self.path).first_step
            self._fh = open(self.path, "r+b" if self.append else "wb")  # noqa: SIM115
            self._dcd = DCDFile(self._fh, self.topology, self.clock.timestep_ps, first,
                                self.interval, self.append)
        self._dcd.writeModel(state.getPositions(asNumpy=True),
                             periodicBoxVectors=state.getPeriodicBoxVectors())
        self.n_frames += 1
        self.last_step = step

    def catch_up(self, simulation: Any) -> None:
        """Write the frame of the current step now if it is due and not written yet."""
        if _due(self.clock, simulation.currentStep, self.interval, self.last_step):
            self.report(simulation, simulation.context.getState(
                getPositions=True, getEnergy=True, enforcePeriodicBox=True))

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh, self._dcd = None, None


class ProgressReporter:
    """Stage, ns done/total, ns/day and ETA.

    ``mode``: ``"bar"`` rewrites one line (a terminal), ``"lines"`` prints a
    line at most every ``min_interval_s`` seconds, ``"quiet"`` prints nothing;
    a callable receives a dict of the same figures instead.
    """

    def __init__(self, interval: int, clock: StageClock, mode: str | Callable[..., Any],
                 stream: IO[str] | None = None, min_interval_s: float = 30.0) -> None:
        self.interval, self.clock, self.mode = interval, clock, mode
        self.stream = stream or sys.stdout
        self.min_interval_s = min_interval_s
        self._last_print = -math.inf

    def describeNextReport(self, simulation: Any) -> dict[str, Any]:  # noqa: N802
        return {"steps": self.clock.steps_to_next(simulation.currentStep, self.interval),
                "periodic": None, "include": []}

    def report(self, simulation: Any, state: Any) -> None:
        self.show(simulation.currentStep)

    def figures(self, step: int) -> dict[str, Any]:
        c = self.clock
        ns = c.timestep_ps / 1000.0
        eta = None
        if c.ns_per_day:
            eta = (c.run_end - step) * ns / c.ns_per_day * 86400.0
        return {"stage": c.stage, "stage_index": c.stage_index, "n_stages": c.n_stages,
                "step": step, "stage_ns_done": (step - c.stage_start) * ns,
                "stage_ns_total": (c.stage_end - c.stage_start) * ns, "ns_done": step * ns,
                "ns_total": c.run_end * ns, "ns_per_day": c.ns_per_day, "eta_s": eta}

    def show(self, step: int, force: bool = False) -> None:
        info = self.figures(step)
        if callable(self.mode):
            self.mode(info)
            return
        if self.mode == "quiet":
            return
        now = time.monotonic()
        if self.mode == "lines" and not force and now - self._last_print < self.min_interval_s:
            return
        self._last_print = now
        text = format_progress(info)
        if self.mode == "bar":
            self.stream.write("\r" + text.ljust(100) + ("\n" if force else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def format_progress(info: dict[str, Any]) -> str:
    """One progress line: ``[npt 4/5] ######---- 0.0600/0.1100 ns | 12.3 ns/day | ETA 00:05:12``."""
    total = info["stage_ns_total"]
    fraction = info["stage_ns_done"] / total if total > 0 else 1.0
    bar = "#" * int(round(10 * fraction)) + "-" * (10 - int(round(10 * fraction)))
    speed = f"{info['ns_per_day']:.3g} ns/day" if info["ns_per_day"] else "-- ns/day"
    eta = info["eta_s"]
    eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta is not None else "--"
    if eta is not None and eta >= 86400:
        eta_text = f"{eta / 86400:.1f} d"
    return (f"[{info['stage']} {info['stage_index']}/{info['n_stages']}] {bar} "
            f"{info['ns_done']:.4f}/{info['ns_total']:.4f} ns | {speed} | ETA {eta_text}")


class RunInterrupted(KeyboardInterrupt):
    """A stop request (Ctrl-C, SIGTERM) honoured after a consistent checkpoint."""


class CheckpointReporter:
    """Calls ``save(simulation)`` when ``minutes`` of wall-clock time have passed, or when
    ``stop_requested()`` is true (then raises :class:`RunInterrupted` after saving).

    ``save`` (the engine's checkpoint) first writes any log row or frame of its step
    not written yet (``catch_up``), so the checkpoint is consistent with log.csv and
    traj.dcd whatever order OpenMM calls the reporters in. Checked every
    ``interval`` steps (cheap: no state is requested).
    """

    def __init__(self, interval: int, clock: StageClock, minutes: float,
                 save: Callable[[Any], None],
                 stop_requested: Callable[[], bool] = lambda: False) -> None:
        self.interval, self.clock, self.seconds, self.save = interval, clock, minutes * 60, save
        self.stop_requested = stop_requested
        self._last = time.monotonic()

    def describeNextReport(self, simulation: Any) -> dict[str, Any]:  # noqa: N802
        return {"steps": self.clock.steps_to_next(simulation.currentStep, self.interval),
                "periodic": None, "include": []}

    def report(self, simulation: Any, state: Any) -> None:
        if self.stop_requested():
            self.save(simulation)
            raise RunInterrupted(f"stopped at step {simulation.currentStep} after a checkpoint")
        if time.monotonic() - self._last >= self.seconds:
            self.save(simulation)
            self.restart_clock()

    def restart_clock(self) -> None:
        """Count the next interval from now (after any checkpoint, also one saved elsewhere)."""
        self._last = time.monotonic()
