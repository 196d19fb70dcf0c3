"""``solvflow platforms``: which OpenMM platforms load here, why not, and how fast."""

from __future__ import annotations

import argparse
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from solvflow.simulate import choose_platform, list_platforms

    infos = list_platforms(probe=not args.no_probe, probe_seconds=args.seconds)
    print(f"{'platform':<11}{'loads':<7}{'precision':<11}{'steps/s':>9}  device / reason")
    for info in infos:
        speed = f"{info.steps_per_s:9.0f}" if info.steps_per_s else f"{'-':>9}"
        detail = info.device if info.usable else info.reason
        print(f"{info.name:<11}{'yes' if info.usable else 'no':<7}{info.precision or '-':<11}"
              f"{speed}  {detail}")
    probed = next((i for i in infos if i.n_atoms_probe), None)
    if probed:
        print(f"speed probe: Langevin MD, 2 fs, PME, {probed.n_atoms_probe}-atom water box, "
              f"about {args.seconds:g} s per platform")
    print(f"default for `solvflow run`: {choose_platform()[0].getName()}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "platforms", help="list OpenMM platforms: loads or why not, speed probe",
        description="List the OpenMM platforms, whether each loads (and why not), with a short "
                    "speed probe on a small water box.")
    parser.add_argument("--no-probe", action="store_true", help="skip the speed probe")
    parser.add_argument("--seconds", type=float, default=2.0, metavar="S",
                        help="probe time per platform (default 2)")
    parser.set_defaults(func=_run)
