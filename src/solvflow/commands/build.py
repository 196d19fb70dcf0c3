"""``solvflow build``: make a run directory with a packed box."""

from __future__ import annotations

import argparse
from typing import Any


def add_build_options(parser: argparse.ArgumentParser, *, output_required: bool = True,
                      seed_default: int | None = 1) -> None:
    """Options shared by ``build`` and ``run SYSTEM`` (composition, seed, output)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--concentration", "-c", type=float, metavar="M",
                       help="salt molarity in mol/L of solution (initial box from estimated "
                            "density; the equilibrated molarity is reported after NPT)")
    group.add_argument("--molality", "-m", type=float, metavar="MOL_KG",
                       help="salt molality in mol/kg of solvent")
    group.add_argument("--ratio", "-r", type=_ratio, metavar="R",
                       help="salt solutions: salt:solvent molar ratio (0.25 or 1:4); "
                            "chloroaluminates: r = n(AlCl3)/n(EMImCl), 0 <= r <= 2")
    parser.add_argument("--n-salt", "--n-molecules", "-n", dest="n_salt", type=int, metavar="N",
                        help="salt formula units (chloroaluminates: EMIm+ ions; neat liquids: "
                             "molecules); default: about 5,000 atoms")
    parser.add_argument("--seed", type=int, default=seed_default,
                        help="RDKit and Packmol seed (default 1)")
    parser.add_argument("--charge-scale", type=float, metavar="F",
                        help="scale ionic charges by F (0.5-1.0); default: the system file's")
    parser.add_argument("--cutoff-nm", type=float, metavar="NM",
                        help="non-bonded cutoff in nm (default 1.0; LJ switched over the last "
                             "0.1 nm, PME beyond); the box edge must be at least twice it")
    parser.add_argument("--start", metavar="STATE",
                        help="starting state: random (default: molecules placed independently), "
                             "dissociated (no anion site within --start-distance-nm, default "
                             "0.5 nm, of any cation at t = 0) or paired (every cation in contact "
                             "with one anion, pre-assembled ion pairs; contact distance Li 0.200, "
                             "Mg 0.207, Ca 0.240 nm unless --start-distance-nm). Salt solutions "
                             "only; chloroaluminate melts and neat liquids take random")
    parser.add_argument("--start-distance-nm", type=float, metavar="NM",
                        help="dissociated: smallest cation - anion site distance (default 0.5); "
                             "paired: cation - anion site contact distance")
    parser.add_argument("-o", "--output", required=output_required, metavar="RUNDIR",
                        help="run directory to create")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing run directory")


def _ratio(text: str) -> float:
    try:
        if ":" in text:
            a, b = (float(x) for x in text.split(":"))
            return a / b
        return float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(
            f"invalid ratio {text!r}: give a number (0.25) or A:B (1:4)"
        ) from None


def build_from_args(args: argparse.Namespace) -> Any:
    """Call :func:`solvflow.build.build` with the parsed options."""
    from solvflow.build import build

    return build(args.system, output=args.output, concentration=args.concentration,
                 molality=args.molality, ratio=args.ratio, n_salt=args.n_salt, seed=args.seed,
                 charge_scale=args.charge_scale, overwrite=args.overwrite,
                 cutoff_nm=args.cutoff_nm, start=args.start or "random",
                 start_distance_nm=args.start_distance_nm)


def composition_table(result: Any) -> str:
    """Human-readable composition: species, counts, nominal vs achieved, box, atoms."""
    comp = result.composition
    spec = result.spec
    species = {s["name"]: s for s in spec["species"]}
    lines = [f"system   {comp.system}: {spec['system'].get('title', '')}",
             f"{'species':<10}{'residue':>8}{'charge':>8}{'count':>8}"]
    for name, count in comp.counts.items():
        s = species[name]
        lines.append(f"{name:<10}{s['residue']:>8}{s['charge']:>+8d}{count:>8d}")
    lines.append(f"{'measure':<22}{'nominal':>12}{'achieved':>12}")
    for key, value in comp.achieved.items():
        nominal = comp.nominal.get(key)
        shown = f"{nominal:12.4g}" if nominal is not None else f"{'-':>12}"
        lines.append(f"{key:<22}{shown}{value:12.4g}")
    lines.append(f"box      {comp.box_nm:.3f} nm (cubic; estimated density "
                 f"{comp.estimated_density_g_cm3:.3f} g/cm^3)")
    lines.append(f"atoms    {comp.n_atoms}")
    lines.append(f"charge scale {spec['charge_scale']:g}   seed {spec['seed']}")
    lines.append(_start_line(spec.get("start", {"state": "random"})))
    if comp.mode == "molarity":
        lines.append("note     molarity uses an estimated density; the equilibrated value is "
                     "reported after NPT")
    lines.append(f"wrote    {result.rundir}")
    return "\n".join(lines)


def _start_line(start: dict[str, Any]) -> str:
    measured = start.get("measured", {})
    if start["state"] == "dissociated":
        return (f"start    dissociated: no anion site within {start['distance_nm']:g} nm of a "
                f"cation (closest {measured.get('closest_anion_site_nm', float('nan')):.3f} nm)")
    if start["state"] == "paired":
        return (f"start    paired: every cation {start['distance_nm']:g} nm from one anion site "
                f"({', '.join(f'{k} {v}' for k, v in start.get('contact_site', {}).items())})")
    return "start    random"


def _run(args: argparse.Namespace) -> int:
    result = build_from_args(args)
    print(composition_table(result))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "build", help="build a run directory: composition, RDKit conformers, Packmol box",
        description="Build an electrolyte box (topology.pdb, spec.yaml, system.xml). "
                    "--start chooses the starting state (random, dissociated or paired); "
                    "building one system from both dissociated and paired starts is the "
                    "convergence check for slowly exchanging cations (Mg2+, Ca2+).")
    parser.add_argument("system", help="shipped system name (see `solvflow systems`) or YAML path")
    add_build_options(parser)
    parser.set_defaults(func=_run)
