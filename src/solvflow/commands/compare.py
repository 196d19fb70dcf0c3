"""``solvflow compare``: tables and plots across run directories (replicas, concentrations)."""

from __future__ import annotations

import argparse
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from solvflow.campaign.claims import load_claims
    from solvflow.campaign.compare import compare, write_tables
    from solvflow.campaign.plots import write_plots

    comp = compare(args.paths)
    written = write_tables(comp, args.output)
    if not args.no_plots:
        written += write_plots(comp, args.output, load_claims(args.claims).experiments)
    print(f"compared {len(comp.runset.runs)} runs at {len(comp.points)} points "
          f"({', '.join(comp.systems)}); {len(comp.runset.missing)} without analysis")
    for site, check in comp.checks.items():
        if check.converged is not True:
            print(f"warning  {site.system} {site.label} scale {site.charge_scale:g}: "
                  f"{check.describe()}")
    for path in written:
        print(f"wrote    {path}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compare", help="tables and plots across run directories (concentration, replicas)",
        description="Group analysed run directories (spec.yaml + analysis.json) by system, "
                    "concentration, charge scale and start; write compare.csv, compare.md and "
                    "PNG plots (replica means, errors across replicas and within runs, the "
                    "two-start check).")
    parser.add_argument("paths", nargs="+", metavar="CAMPAIGN|RUNDIR",
                        help="a campaign folder (campaign.json), run directories, or folders "
                             "searched for them")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--claims", metavar="YAML",
                        help="claims file whose measured numbers are drawn on the plots "
                             "(default: the shipped one)")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    parser.set_defaults(func=_run)
