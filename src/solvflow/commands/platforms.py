"""``solvflow platforms``: which OpenMM platforms load here, why not, and how fast."""

from __future__ import annotations

import argparse
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from solvflow.simulate import choose_platform, list_platforms

    infos = list_platforms(probe=not args.no_probe and args.rundir is None,
                           probe_seconds=args.seconds)
    print(f"{'platform':<11}{'loads':<7}{'precision':<11}{'steps/s':>9}  device / reason")
    for info in infos:
        speed = f"{info.steps_per_s:9.0f}" if info.steps_per_s else f"{'-':>9}"
        detail = info.device if info.usable else info.reason
        print(f"{info.name:<11}{'yes' if info.usable else 'no':<7}{info.precision or '-':<11}"
              f"{speed}  {detail}")
    probed = next((i for i in infos if i.n_atoms_probe), None)
    if probed:
        print(f"speed probe: Langevin MD, 2 fs, PME, {probed.n_atoms_probe}-atom water box "
              f"(native LJ), about {args.seconds:g} s per platform; a run chooses by probing "
              "its own system.xml instead (--rundir)")
    if args.rundir is not None:
        return _run_choice(args)
    print(f"default for `solvflow run`: {choose_platform()[0].getName()} before probing a "
          "run's own System (see --rundir)")
    return 0


def _run_choice(args: argparse.Namespace) -> int:
    """Probe (or read the cached choice for) a run directory's own system.xml."""
    import openmm

    from solvflow.simulation.platforms import cache_path, choose_platform_for_run
    from solvflow.simulation.rundir import read_inputs

    inputs = read_inputs(args.rundir)
    system = openmm.XmlSerializer.deserialize(inputs.system_xml)
    platform, _, choice = choose_platform_for_run(
        None, system, inputs.positions_nm, inputs.topology.getPeriodicBoxVectors(),
        probe_seconds=args.seconds)
    speeds = choice.get("force_evaluations_per_s")
    if speeds:
        listed = ", ".join(f"{p} {v:.1f}" for p, v in speeds.items())
        print(f"{args.rundir}: force evaluations per second ({choice['n_atoms']} atoms): "
              f"{listed}")
    print(f"`solvflow run {args.rundir}` would use {platform.getName()}: {choice['how']} "
          f"(cache: {cache_path()})")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "platforms", help="list OpenMM platforms: loads or why not, speed probe",
        description="List the OpenMM platforms, whether each loads (and why not), with a short "
                    "speed probe on a small water box, or on a run directory's own System.")
    parser.add_argument("--no-probe", action="store_true", help="skip the speed probe")
    parser.add_argument("--seconds", type=float, default=2.0, metavar="S",
                        help="probe time per platform (default 2)")
    parser.add_argument("--rundir", default=None, metavar="RUNDIR",
                        help="probe this run directory's system.xml (what `solvflow run` "
                             "does when no GPU loads; the choice is cached per machine)")
    parser.set_defaults(func=_run)
