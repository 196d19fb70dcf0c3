"""One session of a run: OpenMM objects, stage loop, checkpoints, resume."""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from solvflow import __version__
from solvflow.atomic import durable_write
from solvflow.errors import SimulationError
from solvflow.simulation import rundir as rd
from solvflow.simulation.hmr import repartition_hydrogen_mass
from solvflow.simulation.platforms import choose_platform_for_run, is_pocl
from solvflow.simulation.protocols import Protocol
from solvflow.simulation.reporters import (
    BlowUpWatch,
    CheckpointReporter,
    CsvLogReporter,
    DcdTrajectoryReporter,
    ProgressReporter,
    RunInterrupted,
    StageClock,
    degrees_of_freedom,
)
from solvflow.simulation.stages import StagePlan, expected_counts

KEEP_CHECKPOINT_RECORDS = 5
STOP_CHECK_STEPS = 100  # a stop request (Ctrl-C, SIGTERM) is honoured within this many steps


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Run:
    """Executes the stages of ``plan`` not finished yet, in one process."""

    def __init__(self, inputs: rd.RunInputs, protocol: Protocol, plan: list[StagePlan],
                 seed: int, status: dict[str, Any] | None, progress: Any,
                 walltime_s: float | None = None) -> None:
        self.inputs, self.protocol, self.plan, self.seed = inputs, protocol, plan, seed
        self.root: Path = inputs.rundir
        self.progress_mode = progress
        self.status: dict[str, Any] = status or {}
        self.resuming = bool(self.status.get("checkpoints"))
        self.clock = StageClock(protocol.timestep_ps, inputs.temperature_K,
                                n_stages=len(plan), run_end=plan[-1].end)
        self.session_start = time.monotonic()
        self.wall_before = float(self.status.get("wall_time_s", 0.0)) if self.resuming else 0.0
        self.finished: list[str] = []
        self.log: CsvLogReporter | None = None
        self.traj: DcdTrajectoryReporter | None = None
        self.stop_requested = False  # set by the signal handler of simulate()
        self.checkpoint_fallback = ""  # why checkpoint.chk did not load, if it did not
        # --walltime: stop at a checkpoint once this monotonic time is reached (resumable)
        self.deadline = None if walltime_s is None else self.session_start + walltime_s
        self.walltime_s = walltime_s
        self.walltime_reached = False

    def should_stop(self) -> bool:
        """A signal asked to stop, or the wall time of this session is used up."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.walltime_reached = True
        return self.stop_requested or self.walltime_reached

    # ----------------------------------------------------------------- set-up
    def execute(self, platform_name: str | None) -> dict[str, Any]:
        """Run to the end of the plan; returns the final status."""
        import openmm

        self._create_simulation(platform_name)
        n_rows, n_frames = self._restore() if self.resuming else self._fresh_start()
        rd.atomic_write(self.root / rd.PROTOCOL_COPY,  # every setting, as run (incl. extension)
                        yaml.safe_dump(self.protocol.to_dict(), sort_keys=False))
        self._open_reporters(n_rows, n_frames)
        try:
            for stage in self.plan:
                if stage.name not in self.finished:
                    self._run_stage(stage)
                    if self.should_stop() and stage is not self.plan[-1]:
                        raise RunInterrupted("stopped after a stage-end checkpoint")
        except SimulationError as exc:
            self._fail(str(exc))
            raise
        except openmm.OpenMMException as exc:
            message = self._blowup_message(str(exc))
            self._fail(message)
            raise SimulationError(message) from None
        except RunInterrupted:
            if self.walltime_reached and not self.stop_requested:
                return self._stopped_by_walltime()
            self.status["state"] = "interrupted"
            rd.write_status(self.root, self.status)
            raise
        except KeyboardInterrupt:  # a hard stop: keep the last checkpoint as it is
            self.status["state"] = "interrupted"
            self._update_status(self.clock.last_good_checkpoint or 0)
            rd.write_status(self.root, self.status)
            raise
        finally:
            self._close()
        return self._finish()

    def _create_simulation(self, platform_name: str | None) -> None:
        import openmm
        from openmm import app

        p = self.protocol
        self.system = openmm.XmlSerializer.deserialize(self.inputs.system_xml)
        self.hmr = None
        if p.hydrogen_mass_amu is not None:  # system.xml stays as built; masses change here
            self.hmr = repartition_hydrogen_mass(self.system, self.inputs.topology,
                                                 p.hydrogen_mass_amu)
        self.total_mass = sum(self.system.getParticleMass(i).value_in_unit(openmm.unit.dalton)
                              for i in range(self.system.getNumParticles()))
        if any(isinstance(f, openmm.MonteCarloBarostat) for f in self.system.getForces()):
            raise SimulationError(f"{self.root / rd.SYSTEM} already holds a MonteCarloBarostat; "
                                  "solvflow adds its own for the NPT stages")
        self.barostat = openmm.MonteCarloBarostat(p.pressure_bar, self.inputs.temperature_K, 0)
        self.barostat.setRandomNumberSeed(self.seed)
        self.system.addForce(self.barostat)
        self.clock.dof = degrees_of_freedom(self.system)
        integrator = openmm.LangevinMiddleIntegrator(self.inputs.temperature_K,
                                                     p.friction_per_ps, p.timestep_ps)
        integrator.setRandomNumberSeed(self.seed)
        platform, properties, choice = choose_platform_for_run(
            platform_name, self.system, self.inputs.positions_nm,
            self.inputs.topology.getPeriodicBoxVectors(),
            recorded=self.status.get("platform") if self.resuming else None)
        self.status["platform_choice"] = choice
        first = next((s for s in self.plan if s.name not in self._finished_recorded()),
                     self.plan[-1])
        self._set_barostat_frequency(first, reinitialize=False)
        self.simulation = app.Simulation(self.inputs.topology, self.system, integrator,
                                         platform, properties)
        self.context = self.simulation.context
        self._record_platform(platform)

    def _finished_recorded(self) -> list[str]:
        records = self.status.get("checkpoints") or [{}]
        return list(records[-1].get("stages_finished", []))

    def _record_platform(self, platform: Any) -> None:
        import openmm

        names = platform.getPropertyNames()
        props = {n: platform.getPropertyValue(self.context, n) for n in names}
        self.platform_name = platform.getName()
        self.status.update({
            "platform": self.platform_name,
            "precision": props.get("Precision", "double (Reference platform)"
                                   if self.platform_name == "Reference"
                                   else "single (CPU platform default)"),
            "device": props.get("DeviceName", props.get("OpenCLPlatformName", "")),
            "platform_properties": props, "openmm_version": openmm.__version__})

    def _fresh_start(self) -> tuple[int, int]:
        from openmm import unit

        box = self.inputs.topology.getPeriodicBoxVectors()
        if box is None:
            raise SimulationError(f"{self.root / rd.TOPOLOGY} has no periodic box (CRYST1)")
        self.context.setPeriodicBoxVectors(*box)
        self.context.setPositions(self.inputs.positions_nm * unit.nanometer)
        for name in (rd.TRAJECTORY, rd.CHECKPOINT, rd.STATE):
            (self.root / name).unlink(missing_ok=True)
        self.status.update({
            "solvflow_version": __version__, "state": "running", "stage": self.plan[0].name,
            "stages_finished": [], "protocol": self.protocol.name,
            "protocol_file": rd.PROTOCOL_COPY, "seed": self.seed,
            "system_xml_sha256": self._system_digest(),
            "temperature_K": self.inputs.temperature_K, "total_steps": self.plan[-1].end,
            "timestep_ps": self.protocol.timestep_ps,
            "hydrogen_mass_repartitioning": self.hmr, "stages": {}, "checkpoints": [],
            "sessions": [], "error": None})
        self._session_record(None)
        rd.write_status(self.root, self.status)
        return 0, 0

    def _system_digest(self) -> str:
        return hashlib.sha256(self.inputs.system_xml.encode()).hexdigest()

    def _restore(self) -> tuple[int, int]:
        """Load the last checkpoint; cut log.csv and traj.dcd back to what it covers."""
        recorded = self.status.get("system_xml_sha256")
        if recorded is not None and recorded != self._system_digest():
            raise SimulationError(
                f"{self.root / rd.SYSTEM} changed since this run started (its checksum differs "
                f"from the one in {rd.STATUS}); a resumed run must use the same System. Build a "
                "new run directory for the new parameters")
        source = self._load_checkpoint()
        step = self.context.getStepCount()
        matching = [r for r in self.status["checkpoints"] if r["step"] == step]
        if not matching:
            raise SimulationError(f"{self.root / source} is at step {step}, which no checkpoint "
                                  f"record in {rd.STATUS} describes; the run directory was "
                                  "modified by hand")
        record = matching[-1]
        rd.truncate_log(self.root / rd.LOG, record["n_log_rows"])
        rd.truncate_dcd(self.root / rd.TRAJECTORY, record["n_frames"])
        self.finished = list(record["stages_finished"])
        self.clock.last_good_checkpoint = step
        self.status.update({"state": "running", "error": None, "total_steps": self.plan[-1].end,
                            "stages_finished": list(self.finished)})
        for key in ("stop_reason", "walltime_s"):
            self.status.pop(key, None)
        if "production" in self.finished and self.plan[-1].end > step:
            self.finished.remove("production")  # production was extended
        self._session_record({"step": step, "from": source,
                              **({"why": self.checkpoint_fallback}
                                 if self.checkpoint_fallback else {})})
        return record["n_log_rows"], record["n_frames"]

    def _load_checkpoint(self) -> str:
        import openmm

        chk = self.root / rd.CHECKPOINT
        why = f"{rd.CHECKPOINT} is missing"
        if chk.is_file():
            try:
                self.simulation.loadCheckpoint(str(chk))
                return rd.CHECKPOINT
            except Exception as exc:  # noqa: BLE001 - another platform/OpenMM, or corrupt
                why = f"{rd.CHECKPOINT} does not load here ({_first_line(exc)})"
        if not (self.root / rd.STATE).is_file():
            raise SimulationError(f"{self.root}: {rd.STATUS} lists checkpoints but {why} "
                                  f"and there is no {rd.STATE}")
        self.checkpoint_fallback = why
        print(f"solvflow: {self.root}: {why}; resuming from the portable {rd.STATE} "
              "(exact positions, velocities and box; the random-number streams restart)",
              file=sys.stderr)
        state = openmm.XmlSerializer.deserialize((self.root / rd.STATE).read_text())
        self.context.setState(state)
        return rd.STATE

    def _session_record(self, resumed: dict[str, Any] | None) -> None:
        self.status.setdefault("sessions", []).append({
            "started": _now(), "platform": self.platform_name, "resumed_from": resumed,
            "host": os.uname().nodename})

    def _open_reporters(self, n_rows: int, n_frames: int) -> None:
        p, clock = self.protocol, self.clock
        every = p.report_interval_steps
        self.watch = BlowUpWatch(every, clock, p.blowup_temperature_factor)
        self.log = CsvLogReporter(self.root / rd.LOG, every, clock, self.total_mass, n_rows)
        self.traj = DcdTrajectoryReporter(self.root / rd.TRAJECTORY, p.frame_interval_steps,
                                          clock, self.inputs.topology, n_frames, self.watch)
        self.progress = ProgressReporter(every, clock, self.progress_mode)
        self.checkpointer = CheckpointReporter(
            min(every, STOP_CHECK_STEPS), clock, p.checkpoint_interval_min,
            lambda sim: self.checkpoint(), self.should_stop)
        self.simulation.reporters[:] = [self.watch, self.log, self.progress, self.checkpointer]

    # ------------------------------------------------------------------ stages
    def _run_stage(self, stage: StagePlan) -> None:
        c = self.clock
        c.stage, c.stage_start, c.stage_end = stage.name, stage.start, stage.end
        c.stage_index = self.plan.index(stage) + 1
        self.status["stage"] = stage.name
        rd.write_status(self.root, self.status)  # stage reached (checkpoint records unchanged)
        self._set_barostat_frequency(stage, reinitialize=True)
        started, first_step = time.monotonic(), self.context.getStepCount()
        if stage.name == "minimize":
            self._minimize()
        else:
            self._prepare_md_stage(stage)
            self._integrate(stage)
        self._stage_done(stage, time.monotonic() - started, first_step)

    def _set_barostat_frequency(self, stage: StagePlan, reinitialize: bool) -> None:
        frequency = self.protocol.barostat_interval_steps if stage.ensemble == "NPT" else 0
        if self.barostat.getFrequency() != frequency:
            self.barostat.setFrequency(frequency)
            if reinitialize:
                self.context.reinitialize(preserveState=True)

    def _minimize(self) -> None:
        import openmm

        m = self.protocol.minimize
        assert m is not None and self.log is not None
        if is_pocl(self.simulation.context.getPlatform(), self.context):
            self._minimize_on_cpu(m.tolerance_kJ_mol_nm, m.max_iterations)
        else:
            openmm.LocalEnergyMinimizer.minimize(self.context, m.tolerance_kJ_mol_nm,
                                                 m.max_iterations)
        state = self.context.getState(getEnergy=True)
        energy = state.getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)
        if not math.isfinite(energy):
            self.watch.fail(0, 0.0, f"minimised potential energy is {energy}")
        self.log.write_row(self.simulation, state)

    def _minimize_on_cpu(self, tolerance: float, max_iterations: int) -> None:
        """PoCL aborts in OpenMM's GPU minimiser kernels: minimise on the CPU platform."""
        import openmm

        state = self.context.getState(getPositions=True)
        cpu = openmm.Context(self.system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("CPU"))
        cpu.setState(state)
        openmm.LocalEnergyMinimizer.minimize(cpu, tolerance, max_iterations)
        self.context.setPositions(cpu.getState(getPositions=True).getPositions())

    def _prepare_md_stage(self, stage: StagePlan) -> None:
        step = self.context.getStepCount()
        if step == stage.start:
            if step == 0 or stage.name == self._first_md_stage():
                self.context.setVelocitiesToTemperature(stage.schedule[0][1], self.seed)
            if stage.name == "production" and stage.ensemble == "NVT":
                self._set_mean_npt_volume()
        reporters: list[Any] = [self.watch, self.log, self.progress, self.checkpointer]
        if stage.name == "production":
            reporters.insert(2, self.traj)
        self.simulation.reporters[:] = reporters
        assert self.log is not None
        self.log.restart_timer()
        self.progress.show(step, force=True)

    def _first_md_stage(self) -> str:
        return next(s.name for s in self.plan if s.ensemble is not None)

    def _integrate(self, stage: StagePlan) -> None:
        import openmm

        integrator = self.simulation.integrator
        for end, temperature in stage.schedule:
            step = self.context.getStepCount()
            if end <= step:
                continue
            self.clock.setpoint_K = temperature
            integrator.setTemperature(temperature)
            self.context.setParameter(openmm.MonteCarloBarostat.Temperature(), temperature)
            self.simulation.step(end - step)

    def _set_mean_npt_volume(self) -> None:
        """Scale molecule centres and box to the mean volume of the last part of ``npt``."""
        npt = self.protocol.npt
        assert npt is not None
        rows = [r for r in rd.log_rows(self.root / rd.LOG) if r["stage"] == "npt"]
        used = rows[len(rows) - max(1, round(npt.average_last_fraction * len(rows))):]
        if not used:
            raise SimulationError("no npt rows in log.csv: cannot set the production volume")
        volume = float(np.mean([float(r["volume_nm3"]) for r in used]))
        density = float(np.mean([float(r["density_g_cm3"]) for r in used]))
        self.scale_volume(volume)
        self.status.update({"npt_mean_volume_nm3": volume, "npt_mean_density_g_cm3": density,
                            "npt_rows_averaged": len(used)})

    def scale_volume(self, volume_nm3: float) -> None:
        """Rescale the box to ``volume_nm3``, moving molecules rigidly (like the barostat)."""
        from openmm import unit

        state = self.context.getState(getPositions=True)
        box = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)
        pos = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        factor = (volume_nm3 / abs(np.linalg.det(box))) ** (1.0 / 3.0)
        for atoms in self.context.getMolecules():
            idx = np.asarray(atoms)
            pos[idx] += pos[idx].mean(axis=0) * (factor - 1.0)
        self.context.setPeriodicBoxVectors(*(box * factor))
        self.context.setPositions(pos * unit.nanometer)

    def _stage_done(self, stage: StagePlan, wall_s: float, first_step: int) -> None:
        steps = self.context.getStepCount() - first_step
        speed = (steps * self.protocol.timestep_ps / 1000.0 / (wall_s / 86400.0)
                 if steps and wall_s > 0 else None)
        self.finished.append(stage.name)
        record = self.status.setdefault("stages", {}).setdefault(stage.name, {})
        record.update({"start_step": stage.start, "end_step": stage.end,
                       "ensemble": stage.ensemble,
                       "wall_time_s": round(record.get("wall_time_s", 0.0) + wall_s, 3)})
        if speed is not None:
            record["ns_per_day"] = round(speed, 4)
        self.checkpoint()
        self.progress.show(self.context.getStepCount(), force=True)

    # ------------------------------------------------------------- checkpoints
    def checkpoint(self) -> None:
        """Commit a checkpoint covering every log row and frame written so far."""
        import openmm

        assert self.log is not None and self.traj is not None
        state = self.context.getState(getPositions=True, getVelocities=True, getEnergy=True)
        step, time_ps = self.context.getStepCount(), state.getTime().value_in_unit(
            openmm.unit.picosecond)
        energy = state.getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)
        if not math.isfinite(energy):
            self.watch.fail(step, time_ps, f"potential energy is {energy} at a checkpoint")
        n_rows, n_frames = self._catch_up(step)
        chk_tmp = self.root / (rd.CHECKPOINT + ".tmp")
        durable_write(chk_tmp, self.context.createCheckpoint())  # renamed after the commit
        durable_write(self.root / (rd.STATE + ".tmp"), openmm.XmlSerializer.serialize(state))
        record = {"step": step, "time_ps": round(time_ps, 6), "stage": self.clock.stage,
                  "stages_finished": list(self.finished), "n_log_rows": n_rows,
                  "n_frames": n_frames,
                  "volume_nm3": round(float(state.getPeriodicBoxVolume().value_in_unit(
                      openmm.unit.nanometer**3)), 6), "written": _now()}
        self.status["checkpoints"] = (self.status.get("checkpoints", []) + [record])[
            -KEEP_CHECKPOINT_RECORDS:]
        self._update_status(step)
        rd.write_status(self.root, self.status)  # the commit point
        os.replace(chk_tmp, self.root / rd.CHECKPOINT)
        os.replace(self.root / (rd.STATE + ".tmp"), self.root / rd.STATE)
        self.clock.last_good_checkpoint = step
        self.checkpointer.restart_clock()
        if self.log is not None:
            self.log.restart_timer()

    def _catch_up(self, step: int) -> tuple[int, int]:
        """Write any row/frame of ``step`` still owed, flush; (rows, frames) from the schedule.

        The counts come from the step and the schedule, never from the order in which
        OpenMM happened to call the reporters; a mismatch with the files is an error.
        """
        assert self.log is not None and self.traj is not None
        if self.clock.stage != "minimize":
            self.log.catch_up(self.simulation)
        if self.clock.stage == "production":
            self.traj.catch_up(self.simulation)
        self.log.flush()
        self.traj.flush()
        p = self.protocol
        rows, frames = expected_counts(self.plan, p.report_interval_steps,
                                       p.frame_interval_steps, step, self.finished)
        if (rows, frames) != (self.log.n_rows, self.traj.n_frames):
            raise SimulationError(
                f"at step {step} the schedule expects {rows} log rows and {frames} frames but "
                f"{self.log.n_rows} rows and {self.traj.n_frames} frames were written; no "
                "checkpoint was committed (a bug: please report it)")
        return rows, frames

    def _update_status(self, step: int) -> None:
        self.status.update({
            "stages_finished": list(self.finished), "step": step,
            "simulated_ns": round(step * self.protocol.timestep_ps / 1000.0, 6),
            "wall_time_s": round(self.wall_before + time.monotonic() - self.session_start, 3),
            "ns_per_day": self._ns_per_day()})

    def _ns_per_day(self) -> float | None:
        production = self.status.get("stages", {}).get("production", {})
        value = production.get("ns_per_day") or self.clock.ns_per_day
        return round(value, 4) if value else None

    def _finish(self) -> dict[str, Any]:
        self.status["state"] = "finished"
        self._update_status(self.context.getStepCount())
        rd.write_status(self.root, self.status)
        return self.status

    def _stopped_by_walltime(self) -> dict[str, Any]:
        """The wall time ran out: the checkpoint just written covers everything; resumable."""
        self.status.update({"state": "stopped", "stop_reason": "walltime",
                            "walltime_s": self.walltime_s})
        rd.write_status(self.root, self.status)
        return self.status

    def _fail(self, message: str) -> None:
        self.status.update({"state": "failed", "error": message})
        self._update_status(self.clock.last_good_checkpoint or 0)
        rd.write_status(self.root, self.status)

    def _blowup_message(self, text: str) -> str:
        kept = self.clock.last_good_checkpoint
        if "less than twice the cutoff" in text:
            return (f"the box shrank below twice the cutoff in stage {self.clock.stage!r} near "
                    f"step {self.context.getStepCount()} (NPT): use more molecules or a smaller "
                    "--cutoff-nm; " + (f"the last good checkpoint (step {kept}) is kept"
                                       if kept is not None else "no checkpoint was written yet"))
        return (f"simulation blew up in stage {self.clock.stage!r} near step "
                f"{self.context.getStepCount()}: OpenMM: {text.strip()}; "
                + (f"the last good checkpoint (step {kept}) is kept" if kept is not None
                   else "no checkpoint was written yet"))

    def _close(self) -> None:
        for reporter in (self.log, self.traj):
            if reporter is not None:
                reporter.close()
