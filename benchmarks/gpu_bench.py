"""GPU benchmark (about 5 minutes on one GPU): CUDA ns/day of the 10k-atom 1 M LiFSI/DME box
at 2 fs and at 4 fs with hydrogen mass repartitioning, and the aggregate ns/day of K = 1, 2,
4, 8 small boxes run at once on the same GPU (K processes).

    # on a GPU node, in the repository (boxes built here or brought along with --rundir):
    PYTHONPATH=src python benchmarks/gpu_bench.py --out $OUT
    # the CPU fallback path on a tiny box (what this script's own check runs):
    PYTHONPATH=src python benchmarks/gpu_bench.py --platform CPU --n-salt 8 --small-n-salt 8 \\
        --seconds 2 --k 1,2 --out /tmp/gpu-bench

Writes ``gpu_bench.json`` under ``--out``: device, OpenMM version, per-measurement steps,
seconds and ns/day, and the K table (aggregate and per-process ns/day, speed-up over K = 1).
Every measurement: the run directory's own system.xml (exact geometric-mixing LJ, PME,
HBonds), LangevinMiddle at 298.15 K after a CPU minimisation, mixed precision on GPUs,
barostat off, ``--seconds`` of stepping after a warm-up; the K processes are released
together (a file barrier) and each times the same window.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HMR_AMU = 3.0
HERE = Path(__file__).resolve()


def build_box(workdir: Path, n_salt: int) -> Path:
    from solvflow.build import build

    rundir = workdir / f"lifsi_dme_1M_{n_salt}"
    if not (rundir / "system.xml").is_file():
        build("lifsi_dme", output=rundir, concentration=1.0, n_salt=n_salt, seed=1)
    return rundir


def measure(rundir: Path, platform: str, timestep_fs: float, seconds: float,
            barrier: Path | None = None) -> dict[str, Any]:
    """ns/day of one box: minimise on CPU, warm up, then step for ``seconds`` (wall)."""
    import openmm

    from solvflow.simulation import rundir as rd
    from solvflow.simulation.hmr import repartition_hydrogen_mass
    from solvflow.simulation.platforms import choose_platform

    inputs = rd.read_inputs(rundir)
    system = openmm.XmlSerializer.deserialize(inputs.system_xml)
    if timestep_fs > 2.0:
        repartition_hydrogen_mass(system, inputs.topology, HMR_AMU)
    integrator = openmm.LangevinMiddleIntegrator(298.15, 1.0, timestep_fs / 1000.0)
    plat, props = choose_platform(platform)
    context = openmm.Context(system, integrator, plat, props)
    context.setState(_start_state(system, rundir, inputs))
    context.setVelocitiesToTemperature(298.15, 1)
    integrator.step(200)  # kernels compiled, neighbour lists built, clocks up
    context.getState(getEnergy=True)
    if barrier is not None:
        _wait_at(barrier)
    steps, chunk, start = 0, 100, time.perf_counter()
    while time.perf_counter() - start < seconds:
        integrator.step(chunk)
        context.getState(getEnergy=True)  # waits for the device
        steps += chunk
        chunk = min(2 * chunk, 2000)
    wall = time.perf_counter() - start
    names = plat.getPropertyNames()
    device = {n: plat.getPropertyValue(context, n) for n in names if "Device" in n or
              n in ("Precision", "OpenCLPlatformName")}
    return {"rundir": str(rundir), "n_atoms": system.getNumParticles(), "platform": platform,
            "timestep_fs": timestep_fs, "hydrogen_mass_amu": HMR_AMU if timestep_fs > 2 else None,
            "steps": steps, "wall_s": round(wall, 3),
            "ns_per_day": steps * timestep_fs * 1e-6 / (wall / 86400.0), "device": device}


def _start_state(system: Any, rundir: Path, inputs: Any) -> Any:
    """The run's state.xml (an equilibrated box) if it has one, else the built box after
    500 L-BFGS iterations on the CPU platform."""
    import openmm
    from openmm import unit

    if (rundir / "state.xml").is_file():
        state = openmm.XmlSerializer.deserialize((rundir / "state.xml").read_text())
        cpu = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("CPU"))
        cpu.setState(state)
        return cpu.getState(getPositions=True)
    cpu = openmm.Context(system, openmm.VerletIntegrator(0.001),
                         openmm.Platform.getPlatformByName("CPU"))
    cpu.setPeriodicBoxVectors(*inputs.topology.getPeriodicBoxVectors())
    cpu.setPositions(inputs.positions_nm * unit.nanometer)
    openmm.LocalEnergyMinimizer.minimize(cpu, 10.0, 500)
    return cpu.getState(getPositions=True)


def _wait_at(barrier: Path) -> None:
    """Say ready (a file ``barrier/ready.PID``), then wait for ``barrier/go``."""
    (barrier / f"ready.{os.getpid()}").touch()
    deadline = time.monotonic() + 600
    while not (barrier / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("no go signal within 600 s")
        time.sleep(0.01)


def k_per_device(rundir: Path, platform: str, k: int, seconds: float) -> dict[str, Any]:
    """K worker processes on the same device, released together; aggregate ns/day."""
    with tempfile.TemporaryDirectory() as tmp:
        barrier = Path(tmp)
        env = {**os.environ, "PYTHONPATH": str(HERE.parents[1] / "src")}
        cmd = [sys.executable, str(HERE), "worker", "--rundir", str(rundir), "--platform",
               platform, "--timestep-fs", "4", "--seconds", str(seconds), "--barrier", tmp]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
                 for _ in range(k)]
        deadline = time.monotonic() + 600
        while len(list(barrier.glob("ready.*"))) < k:
            if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in procs):
                for p in procs:
                    p.kill()
                raise RuntimeError(f"K = {k}: a worker failed before the start")
            time.sleep(0.05)
        (barrier / "go").touch()
        outs = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1])
                for p in procs]
    speeds = [o["ns_per_day"] for o in outs]
    return {"k": k, "aggregate_ns_per_day": sum(speeds), "per_process_ns_per_day": speeds,
            "n_atoms": outs[0]["n_atoms"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", default="all", choices=("all", "worker"))
    parser.add_argument("--platform", default="CUDA")
    parser.add_argument("--rundir", type=Path, help="the large box (default: built, n_salt 68)")
    parser.add_argument("--small-rundir", type=Path, help="the K-per-GPU box (default: built)")
    parser.add_argument("--n-salt", type=int, default=68, help="68: 10,104 atoms")
    parser.add_argument("--small-n-salt", type=int, default=12, help="12: 1,784 atoms")
    parser.add_argument("--timestep-fs", type=float, default=4.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--k", default="1,2,4,8")
    parser.add_argument("--barrier", type=Path)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gpu-bench")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    args = parser.parse_args()
    if args.mode == "worker":
        print(json.dumps(measure(args.rundir, args.platform, args.timestep_fs, args.seconds,
                                 args.barrier)))
        return
    import openmm

    started = time.perf_counter()
    big = args.rundir or build_box(args.workdir, args.n_salt)
    small = args.small_rundir or build_box(args.workdir, args.small_n_salt)
    result: dict[str, Any] = {"openmm": openmm.__version__, "platform": args.platform,
                              "single": [], "k_per_device": []}
    for timestep in (2.0, 4.0):
        one = measure(big, args.platform, timestep, args.seconds)
        result["single"].append(one)
        print(f"{one['n_atoms']} atoms, {timestep:g} fs: {one['ns_per_day']:.1f} ns/day "
              f"({one['device']})", flush=True)
    for k in (int(x) for x in args.k.split(",")):
        row = k_per_device(small, args.platform, k, args.seconds)
        result["k_per_device"].append(row)
        print(f"K = {k} x {row['n_atoms']} atoms (4 fs): aggregate "
              f"{row['aggregate_ns_per_day']:.1f} ns/day", flush=True)
    base = result["k_per_device"][0]["aggregate_ns_per_day"] if result["k_per_device"] else 0
    for row in result["k_per_device"]:
        row["speedup_vs_k1"] = row["aggregate_ns_per_day"] / base if base else None
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_bench.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out / 'gpu_bench.json'} in {result['wall_s']} s")


if __name__ == "__main__":
    main()
