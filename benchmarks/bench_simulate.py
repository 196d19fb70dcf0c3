"""Simulation speed: reporters' overhead, and ns/day per platform on the LiFSI/DME box.

    PYTHONPATH=src python benchmarks/bench_simulate.py             # 1 M LiFSI/DME, ~10,000 atoms
    PYTHONPATH=src python benchmarks/bench_simulate.py --small     # ~1,200 atoms (quick check)

1. Overhead: the same Simulation stepped bare (``integrator.step`` in chunks of
   the report interval) and with solvflow's reporters (blow-up watch, log.csv,
   traj.dcd, progress, checkpoint timer) at the ``quick`` protocol's intervals
   (log every 0.5 ps, a frame every 0.2 ps: the densest preset but smoke), in one
   process, alternating, best of ``--repeats``. Target: under 5 %.
2. ns/day of Langevin MD (2 fs, HBonds, PME, barostat off) on every platform
   that loads, ``--seconds`` of stepping each after a warm-up.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from solvflow.simulation import rundir as rd
from solvflow.simulation.platforms import choose_platform, list_platforms
from solvflow.simulation.protocols import load_protocol
from solvflow.simulation.reporters import (
    BlowUpWatch,
    CheckpointReporter,
    CsvLogReporter,
    DcdTrajectoryReporter,
    ProgressReporter,
    StageClock,
    degrees_of_freedom,
)


def build_box(workdir: Path, n_salt: int) -> Path:
    from solvflow.build import build

    rundir = workdir / f"lifsi_dme_{n_salt}"
    build("lifsi_dme", output=rundir, concentration=1.0, n_salt=n_salt, seed=1)
    return rundir


def make_simulation(rundir: Path, platform_name: str, positions: Any = None) -> Any:
    import openmm
    from openmm import app, unit

    inputs = rd.read_inputs(rundir)
    system = openmm.XmlSerializer.deserialize(inputs.system_xml)
    integrator = openmm.LangevinMiddleIntegrator(inputs.temperature_K, 1.0, 0.002)
    integrator.setRandomNumberSeed(1)
    platform, props = choose_platform(platform_name)
    sim = app.Simulation(inputs.topology, system, integrator, platform, props)
    sim.context.setPeriodicBoxVectors(*inputs.topology.getPeriodicBoxVectors())
    if positions is None:
        sim.context.setPositions(inputs.positions_nm * unit.nanometer)
        openmm.LocalEnergyMinimizer.minimize(sim.context, 10.0, 500)
    else:
        sim.context.setPositions(positions)
    sim.context.setVelocitiesToTemperature(inputs.temperature_K, 1)
    return sim, inputs, system


def attach_reporters(sim: Any, inputs: Any, system: Any, outdir: Path) -> list[Any]:
    protocol = load_protocol("quick")
    clock = StageClock(0.002, inputs.temperature_K, stage="production", run_end=10**9,
                       setpoint_K=inputs.temperature_K, dof=degrees_of_freedom(system))
    mass = sum(system.getParticleMass(i)._value for i in range(system.getNumParticles()))
    every = protocol.report_interval_steps
    log = CsvLogReporter(outdir / "log.csv", every, clock, mass)
    traj = DcdTrajectoryReporter(outdir / "traj.dcd", protocol.frame_interval_steps, clock,
                                 inputs.topology)
    reporters = [BlowUpWatch(every, clock), log, traj, ProgressReporter(every, clock, "quiet"),
                 CheckpointReporter(every, clock, protocol.checkpoint_interval_min,
                                    lambda s: None)]
    sim.reporters[:] = reporters
    return reporters


def timed(fn: Any) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def overhead(rundir: Path, platform: str, steps: int, repeats: int) -> dict[str, float]:
    """Bare vs with-reporters timings of ``steps`` steps, alternating, best of ``repeats``.

    Returns the best wall and CPU seconds of each (CPU time is the robust figure on a
    shared CPU machine; wall time is the one that matters on a GPU).
    """
    sim, inputs, system = make_simulation(rundir, platform)
    chunk = load_protocol("quick").report_interval_steps
    sim.step(50)  # warm-up

    def bare_loop() -> None:
        for _ in range(steps // chunk):
            sim.integrator.step(chunk)
        sim.context.getState(getEnergy=True)  # the same end-of-block sync for both

    def with_reporters() -> None:
        sim.step(steps)
        sim.context.getState(getEnergy=True)

    with tempfile.TemporaryDirectory() as tmp:
        reporters = attach_reporters(sim, inputs, system, Path(tmp))
        bare, full = [], []
        for i in range(repeats):
            for kind in (("bare", "full") if i % 2 == 0 else ("full", "bare")):
                sim.reporters[:] = [] if kind == "bare" else reporters
                (bare if kind == "bare" else full).append(
                    timed(bare_loop if kind == "bare" else with_reporters))
        reporters[1].close()
        reporters[2].close()
    return {"bare_wall": min(w for w, _ in bare), "full_wall": min(w for w, _ in full),
            "bare_cpu": min(c for _, c in bare), "full_cpu": min(c for _, c in full)}


def checkpoint_cost(rundir: Path, platform: str) -> float:
    """Seconds to write checkpoint.chk + state.xml + status.json once."""
    import json

    import openmm

    sim, _, _ = make_simulation(rundir, platform)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def write() -> None:
            state = sim.context.getState(getPositions=True, getVelocities=True)
            rd.atomic_write(root / "checkpoint.chk", sim.context.createCheckpoint())
            rd.atomic_write(root / "state.xml", openmm.XmlSerializer.serialize(state))
            rd.atomic_write(root / "status.json", json.dumps({"step": 0}))

        return min(timed(write)[0] for _ in range(3))


def ns_per_day(rundir: Path, platform: str, seconds: float, positions: Any) -> float:
    sim, _, _ = make_simulation(rundir, platform, positions)
    sim.step(20)
    sim.context.getState(getEnergy=True)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sim.step(100)
        sim.context.getState(getEnergy=True)
        steps += 100
    elapsed = time.perf_counter() - start
    return steps * 0.002 / 1000 / (elapsed / 86400)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="~1,200-atom box (n_salt 8)")
    parser.add_argument("--n-salt", type=int, default=68, help="LiFSI pairs (68: ~10,000 atoms)")
    parser.add_argument("--rundir", type=Path, help="use this built run directory instead")
    parser.add_argument("--platform", default=None, help="platform of the overhead test")
    parser.add_argument("--steps", type=int, default=1000, help="steps per overhead timing")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="timing per platform")
    args = parser.parse_args()
    import openmm
    from openmm import unit

    with tempfile.TemporaryDirectory() as tmp:
        rundir = args.rundir or build_box(Path(tmp), 8 if args.small else args.n_salt)
        n_atoms = rd.read_inputs(rundir).topology.getNumAtoms()
        platform = args.platform or choose_platform()[0].getName()
        print(f"system   lifsi_dme 1 M, {n_atoms} atoms ({rundir})  openmm {openmm.__version__}")
        t = overhead(rundir, platform, args.steps, args.repeats)
        print(f"overhead {platform}, {args.steps} steps, quick intervals (log 0.5 ps, "
              f"frame 0.2 ps), best of {args.repeats}:")
        for what in ("wall", "cpu"):
            bare, full = t[f"bare_{what}"], t[f"full_{what}"]
            print(f"  {what:<4} bare {bare:.2f} s, with reporters {full:.2f} s -> ratio "
                  f"{full / bare:.4f} ({100 * (full / bare - 1):+.2f} %)")
        cost = checkpoint_cost(rundir, platform)
        print(f"checkpoint: {1000 * cost:.0f} ms per write (every 10 min: "
              f"{100 * cost / 600:.3f} % of wall time)")
        sim, _, _ = make_simulation(rundir, "CPU")
        positions = sim.context.getState(getPositions=True).getPositions(asNumpy=True)
        for info in list_platforms(probe=False):
            if not info.usable or info.name == "Reference":
                continue
            speed = ns_per_day(rundir, info.name, args.seconds, positions.in_units_of(
                unit.nanometer))
            print(f"ns/day   {info.name:<7} {speed:8.3f}  {info.device or ''}")


if __name__ == "__main__":
    main()
