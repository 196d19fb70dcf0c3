"""Cost of exact geometric-mixing LJ against OpenMM's native (Lorentz-Berthelot) LJ.

    PYTHONPATH=src OPENMM_CPU_THREADS=1 python benchmarks/bench_mixing.py --rundir RUNDIR
    PYTHONPATH=src python benchmarks/bench_mixing.py --n-salt 12      # builds the demo box

Every variant is the same System (the run directory's system.xml: PME, 1.0 nm
cutoff, switch at 0.9 nm, HBonds) with its Lennard-Jones term written another way:

``custom-product``   solvflow's force: CustomNonbondedForce, per-particle a, b
                     (E = a1 a2 / r^12 - b1 b2 / r^6), exact geometric mixing
``custom-table``     CustomNonbondedForce on per-type tables: E = A(t1,t2)/r^12 -
                     B(t1,t2)/r^6 (Discrete2DFunction), exact geometric mixing
``custom-sigeps``    the textbook expression 4 eps ((sig/r)^12 - (sig/r)^6) with
                     sig = sqrt(s1 s2), eps = sqrt(e1 e2) per pair, exact
``native-lb``        LJ back in NonbondedForce (Lorentz-Berthelot: **not** the
                     force field's mixing rule; the speed reference only)

Steps per CPU second of LangevinMiddle (2 fs; process CPU time, so that other jobs
on a shared machine do not enter the ratios) on every platform that loads (CPU, OpenCL),
alternating variants, best of ``--repeats`` timings of ``--seconds`` each, in
one process; prints a Markdown table with each variant's cost relative to
``native-lb`` on the same platform, and the speed-up of the fastest exact
variant over ``custom-product`` on the CPU platform.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS = ("custom-product", "custom-table", "custom-sigeps", "native-lb")


def _lj_index(system: Any) -> int:
    import openmm

    return next(k for k, f in enumerate(system.getForces())
                if isinstance(f, openmm.CustomNonbondedForce))


def _lj_force(system: Any) -> Any:
    return system.getForce(_lj_index(system))


def variant_system(system_xml: str, variant: str) -> Any:
    """The run's System with its LJ written as ``variant`` (see the module docstring)."""
    import openmm

    from solvflow.forcefield import (
        copy_pair_settings,
        geometric_lj_parameters,
        restore_native_lj,
        tabulated_geometric_lj,
    )

    system = openmm.XmlSerializer.deserialize(system_xml)
    if variant == "custom-product":
        return system
    sigma_eps = geometric_lj_parameters(system)
    if variant == "native-lb":
        restore_native_lj(system, sigma_eps)
        return system
    old = _lj_force(system)
    index = _lj_index(system)
    if variant == "custom-table":
        new = tabulated_geometric_lj(old, sigma_eps)
    else:
        new = openmm.CustomNonbondedForce(
            "4*eps*(sr6^2 - sr6); sr6 = (sig/r)^6; sig = sqrt(s1*s2); eps = sqrt(e1*e2)")
        new.addPerParticleParameter("s")
        new.addPerParticleParameter("e")
        for s, e in sigma_eps:
            new.addParticle([s, e])
        copy_pair_settings(old, new)
    system.removeForce(index)
    system.addForce(new)
    return system




def steps_per_s(system: Any, platform: str, state: Any, seconds: float) -> float:
    """Steps per CPU second of this process (all its threads: OpenMM's and PoCL's) of
    LangevinMiddle (2 fs) from ``state``, stepping for about ``seconds`` of CPU time.

    CPU time, not wall time: on a machine shared with other jobs the wall-clock rate
    follows their load; per CPU second is what one core gives when it is free."""
    import openmm

    from solvflow.simulation.platforms import choose_platform

    integrator = openmm.LangevinMiddleIntegrator(298.15, 1.0, 0.002)
    plat, props = choose_platform(platform)
    context = openmm.Context(system, integrator, plat, props)
    context.setState(state)
    integrator.step(20)
    context.getState(getEnergy=True)
    steps, chunk, start = 0, 20, time.process_time()
    while time.process_time() - start < seconds:
        integrator.step(chunk)
        context.getState(getEnergy=True)
        steps += chunk
        chunk = min(2 * chunk, 500)
    return steps / (time.process_time() - start)


def potential_energy(system: Any, state: Any) -> float:
    """kJ/mol on the CPU platform at ``state`` (exact variants must agree)."""
    import openmm
    from openmm import unit

    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("CPU"))
    context.setState(state)
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(
        unit.kilojoule_per_mole)


def minimized_state(system_xml: str, rundir: Path) -> Any:
    """The run's state.xml when it has one (an equilibrated box), else the built box after
    500 L-BFGS iterations on the CPU platform, with velocities at 298.15 K."""
    import openmm
    from openmm import unit

    from solvflow.simulation import rundir as rd

    if (rundir / rd.STATE).is_file():
        return openmm.XmlSerializer.deserialize((rundir / rd.STATE).read_text())
    inputs = rd.read_inputs(rundir)
    system = openmm.XmlSerializer.deserialize(system_xml)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("CPU"))
    context.setPeriodicBoxVectors(*inputs.topology.getPeriodicBoxVectors())
    context.setPositions(inputs.positions_nm * unit.nanometer)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 500)
    context.setVelocitiesToTemperature(298.15, 1)
    return context.getState(getPositions=True, getVelocities=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rundir", type=Path, help="a built run directory (else one is built)")
    parser.add_argument("--n-salt", type=int, default=12, help="LiFSI pairs of the 1 M box")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--platforms", default="CPU,OpenCL")
    args = parser.parse_args()
    from solvflow.errors import PlatformError
    from solvflow.simulation import rundir as rd
    from solvflow.simulation.platforms import choose_platform

    with tempfile.TemporaryDirectory() as tmp:
        rundir = args.rundir
        if rundir is None:
            from solvflow.build import build

            rundir = build("lifsi_dme", output=Path(tmp) / "box", concentration=1.0,
                           n_salt=args.n_salt, seed=1).rundir
        xml = rd.read_inputs(rundir).system_xml
        state = minimized_state(xml, rundir)
        systems = {v: variant_system(xml, v) for v in VARIANTS}
        n_atoms = systems["native-lb"].getNumParticles()
        energies = {v: potential_energy(systems[v], state) for v in VARIANTS}
        for v in VARIANTS:
            print(f"potential energy {v}: {energies[v]:.4f} kJ/mol (custom-product "
                  f"{energies['custom-product'] - energies[v]:+.2e})", flush=True)
        results: dict[tuple[str, str], float] = {}
        for platform in args.platforms.split(","):
            try:
                choose_platform(platform)
            except PlatformError as exc:
                print(f"{platform}: skipped ({exc})")
                continue
            for _ in range(args.repeats):
                for v in VARIANTS:
                    speed = steps_per_s(systems[v], platform, state, args.seconds)
                    print(f"{platform} {v}: {speed:.1f} steps per CPU second", flush=True)
                    results[(platform, v)] = max(results.get((platform, v), 0.0), speed)
        report(results, n_atoms, rundir)


def report(results: dict[tuple[str, str], float], n_atoms: int, rundir: Path) -> None:
    print(f"\n{n_atoms} atoms ({rundir}); steps per CPU second, best of the repeats; "
          "cost = native / variant; ns/day if the process had one core to itself")
    print("| platform | variant | steps/CPU-s | ns/day (2 fs) | cost vs native-lb |")
    print("|---|---|---|---|---|")
    for (platform, v), speed in results.items():
        native = results.get((platform, "native-lb"))
        cost = f"{native / speed:.2f}x" if native else "-"
        print(f"| {platform} | {v} | {speed:.1f} | {speed * 0.002 * 86400 / 1000:.2f} | {cost} |")
    exact = [v for v in VARIANTS if v != "native-lb" and ("CPU", v) in results]
    if exact:
        best = max(exact, key=lambda v: results[("CPU", v)])
        ratio = results[("CPU", best)] / results[("CPU", "custom-product")]
        print(f"fastest exact on CPU: {best}, {ratio:.2f}x custom-product")
    exact_all = [(p, v) for (p, v) in results if v != "native-lb"]
    if exact_all and ("CPU", "custom-product") in results:
        p, v = max(exact_all, key=lambda k: results[k])
        print(f"fastest exact anywhere: {v} on {p}, "
              f"{results[(p, v)] / results[('CPU', 'custom-product')]:.2f}x CPU custom-product")


if __name__ == "__main__":
    main()
