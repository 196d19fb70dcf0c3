"""``solvflow systems``: list the shipped electrolyte systems."""

from __future__ import annotations

import argparse
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from solvflow.spec import available_systems, load_system

    for name in available_systems():
        spec = load_system(name, chemistry=False)  # a listing: no RDKit (tests check them)
        species = ", ".join(f"{sp.name} ({sp.residue})" for sp in spec.species)
        if spec.kind == "chloroaluminate":
            points = "r = " + ", ".join(f"{r:g}" for r in spec.ratios)
        elif spec.kind == "liquid":
            points = "neat liquid (force-field validation)"
        else:
            points = ", ".join(f"{c:g} M" for c in spec.concentrations_M)
        print(f"{name:<16}{spec.title}\n{'':<16}species: {species}\n{'':<16}"
              f"compositions: {points}; charge scale {spec.charge_scale:g}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("systems", help="list the shipped electrolyte systems")
    parser.set_defaults(func=_run)
