"""Simulation speed: ns/day of a box of each electrolyte family at 2 fs and at 4 fs + HMR on
every platform present, each against a bare OpenMM loop on the same System (the overhead of
solvflow's reporters), and the demo box's 4 fs / 2 fs ratio on the CPU platform.

    PYTHONPATH=src OPENMM_CPU_THREADS=1 python benchmarks/bench_simulate.py          # all
    PYTHONPATH=src OPENMM_CPU_THREADS=1 python benchmarks/bench_simulate.py \\
        --families lifsi_dme --platforms CPU --seconds 10                           # the ratio

Boxes (built with seed 1, or ``--rundir`` for one given box): ``lifsi_dme`` 1 M, 12 LiFSI
(the ``make demo`` box, 1,784 atoms), ``mg_tfsi2_dme`` 0.5 M, 4 Mg(TFSI)2 (1,180 atoms),
``ca_bhfip4_dme`` 0.5 M, 3 Ca[B(hfip)4]2 (849 atoms), ``alcl3_emimcl`` r = 1.5, 24 EMIm
(624 atoms). Each measurement: the run directory's own system.xml, minimised on the CPU
platform, LangevinMiddle at 298.15 K, barostat off; 2 fs as built, 4 fs with hydrogen
mass repartitioning (H 3 amu). "bare" steps ``integrator.step`` in chunks of the report
interval; "solvflow" runs ``Simulation.step`` with the engine's reporters (blow-up watch,
log.csv, traj.dcd, progress, checkpoint timer) at the ``quick`` preset's intervals (a row
every 0.5 ps, a frame every 0.2 ps). Bare and solvflow alternate, best of ``--repeats``.

Speeds are per **CPU second of this process** (all its threads, OpenMM's and PoCL's), so
other jobs on a shared machine do not enter the ratios; ``ns/day`` is then what one
process would get with its cores to itself. On a GPU (CUDA, or OpenCL on a real device)
the wall clock is used instead (the GPU does the work). ``--json FILE`` also writes every
number.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from solvflow.simulation import rundir as rd
from solvflow.simulation.platforms import POCL, choose_platform, list_platforms
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

HMR_AMU = 3.0
FAMILIES: dict[str, dict[str, Any]] = {
    "lifsi_dme": {"concentration": 1.0, "n_salt": 12},
    "mg_tfsi2_dme": {"concentration": 0.5, "n_salt": 4},
    "ca_bhfip4_dme": {"concentration": 0.5, "n_salt": 3},
    "alcl3_emimcl": {"ratio": 1.5, "n_salt": 24},
}


def build_box(workdir: Path, family: str) -> Path:
    from solvflow.build import build

    rundir = workdir / family
    if not (rundir / "system.xml").is_file():
        build(family, output=rundir, seed=1, **FAMILIES[family])
    return rundir


def minimized_positions(rundir: Path) -> Any:
    """(positions, box vectors) of the run's state.xml when it has one (an equilibrated
    box), else of the built box after 200 L-BFGS iterations on the CPU platform."""
    import openmm
    from openmm import unit

    if (rundir / rd.STATE).is_file():
        state = openmm.XmlSerializer.deserialize((rundir / rd.STATE).read_text())
        return state.getPositions(asNumpy=True), state.getPeriodicBoxVectors()
    inputs = rd.read_inputs(rundir)
    system = openmm.XmlSerializer.deserialize(inputs.system_xml)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("CPU"))
    context.setPeriodicBoxVectors(*inputs.topology.getPeriodicBoxVectors())
    context.setPositions(inputs.positions_nm * unit.nanometer)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 200)
    state = context.getState(getPositions=True)
    return state.getPositions(asNumpy=True), state.getPeriodicBoxVectors()


def make_simulation(rundir: Path, platform: str, timestep_fs: float, positions: Any) -> Any:
    import openmm
    from openmm import app

    from solvflow.simulation.hmr import repartition_hydrogen_mass

    inputs = rd.read_inputs(rundir)
    system = openmm.XmlSerializer.deserialize(inputs.system_xml)
    if timestep_fs > 2.0:
        repartition_hydrogen_mass(system, inputs.topology, HMR_AMU)
    integrator = openmm.LangevinMiddleIntegrator(inputs.temperature_K, 1.0,
                                                 timestep_fs / 1000.0)
    integrator.setRandomNumberSeed(1)
    plat, props = choose_platform(platform)
    sim = app.Simulation(inputs.topology, system, integrator, plat, props)
    sim.context.setPeriodicBoxVectors(*positions[1])
    sim.context.setPositions(positions[0])
    sim.context.setVelocitiesToTemperature(inputs.temperature_K, 1)
    return sim, inputs, system


def attach_reporters(sim: Any, inputs: Any, system: Any, outdir: Path,
                     timestep_fs: float) -> list[Any]:
    """The engine's reporters at the quick preset's intervals (in ps) at ``timestep_fs``."""
    protocol = load_protocol("quick")
    dt = timestep_fs / 1000.0
    clock = StageClock(dt, inputs.temperature_K, stage="production", stage_end=10**9,
                       run_end=10**9, setpoint_K=inputs.temperature_K,
                       dof=degrees_of_freedom(system))
    mass = sum(system.getParticleMass(i)._value for i in range(system.getNumParticles()))
    every = max(1, round(protocol.report_interval_ps / dt))
    frame = max(1, round(protocol.production.frame_interval_ps / dt))
    watch = BlowUpWatch(every, clock)
    log = CsvLogReporter(outdir / "log.csv", every, clock, mass)
    traj = DcdTrajectoryReporter(outdir / "traj.dcd", frame, clock, inputs.topology,
                                 guard=watch)
    reporters = [watch, log, traj, ProgressReporter(every, clock, "quiet"),
                 CheckpointReporter(every, clock, protocol.checkpoint_interval_min,
                                    lambda s: None)]
    sim.reporters[:] = reporters
    return reporters


def _clock(on_gpu: bool) -> Any:
    return time.perf_counter if on_gpu else time.process_time


def timed_steps(sim: Any, seconds: float, chunk: int, bare: bool, on_gpu: bool) -> float:
    """Steps per second (CPU seconds, or wall seconds on a GPU) for about ``seconds``."""
    clock = _clock(on_gpu)
    steps, start = 0, clock()
    while clock() - start < seconds:
        if bare:
            sim.integrator.step(chunk)
        else:
            sim.step(chunk)
        steps += chunk
    sim.context.getState(getEnergy=True)  # the same end-of-block sync for both
    return steps / (clock() - start)


def measure(rundir: Path, platform: str, timestep_fs: float, positions: Any,
            seconds: float, repeats: int, on_gpu: bool) -> dict[str, float]:
    """Best bare and with-reporters ns/day (alternating) of one box, platform, time step."""
    sim, inputs, system = make_simulation(rundir, platform, timestep_fs, positions)
    chunk = max(1, round(0.5 / (timestep_fs / 1000.0)))  # one report interval (0.5 ps)
    sim.step(chunk)  # warm-up: kernels, neighbour lists
    best = {"bare": 0.0, "solvflow": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        reporters = attach_reporters(sim, inputs, system, Path(tmp), timestep_fs)
        for i in range(repeats):
            for kind in (("bare", "solvflow") if i % 2 == 0 else ("solvflow", "bare")):
                sim.reporters[:] = [] if kind == "bare" else reporters
                rate = timed_steps(sim, seconds, chunk, kind == "bare", on_gpu)
                best[kind] = max(best[kind], rate * timestep_fs * 1e-6 * 86400.0)
        reporters[1].close()
        reporters[2].close()
    return {"n_atoms": system.getNumParticles(), "bare_ns_per_day": best["bare"],
            "ns_per_day": best["solvflow"],
            "overhead_percent": 100.0 * (best["bare"] / best["solvflow"] - 1.0)}


def platforms_present(wanted: str | None) -> list[tuple[str, bool]]:
    """(name, is a GPU) of every platform that loads (Reference excluded)."""
    out = []
    for info in list_platforms(probe=False):
        if not info.usable or info.name == "Reference":
            continue
        if wanted and info.name not in wanted.split(","):
            continue
        out.append((info.name, info.name != "CPU" and POCL not in info.device.lower()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--rundir", type=Path, help="benchmark this built box only")
    parser.add_argument("--platforms", default=None, help="e.g. CPU,OpenCL (default: all)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per timing")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the boxes here")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    import openmm

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        boxes = ({args.rundir.name: args.rundir} if args.rundir else
                 {f: build_box(workdir, f) for f in args.families.split(",")})
        platforms = platforms_present(args.platforms)
        print(f"openmm {openmm.__version__}; platforms {[p for p, _ in platforms]}; "
              f"{args.seconds:g} s per timing, best of {args.repeats}", flush=True)
        print("| box | atoms | platform | time step | bare ns/day | solvflow ns/day | "
              "overhead |\n|---|---|---|---|---|---|---|", flush=True)
        for name, rundir in boxes.items():
            positions = minimized_positions(rundir)
            for platform, on_gpu in platforms:
                for timestep in (2.0, 4.0):
                    r = measure(rundir, platform, timestep, positions, args.seconds,
                                args.repeats, on_gpu)
                    r.update(box=name, platform=platform, timestep_fs=timestep,
                             clock="wall" if on_gpu else "process CPU")
                    rows.append(r)
                    label = f"{timestep:g} fs" + (" + HMR" if timestep > 2 else "")
                    print(f"| {name} | {r['n_atoms']} | {platform} | {label} | "
                          f"{r['bare_ns_per_day']:.2f} | {r['ns_per_day']:.2f} | "
                          f"{r['overhead_percent']:+.1f} % |", flush=True)
    for name in boxes:
        for platform, _ in platforms:
            pair = {r["timestep_fs"]: r["ns_per_day"] for r in rows
                    if r["box"] == name and r["platform"] == platform}
            if 2.0 in pair and 4.0 in pair:
                print(f"{name} {platform}: 4 fs + HMR / 2 fs = {pair[4.0] / pair[2.0]:.2f}x "
                      f"({pair[2.0]:.2f} -> {pair[4.0]:.2f} ns/day, same run)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
