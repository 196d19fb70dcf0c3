"""``solvflow report``: report.md with the verdicts, tables, plots and provenance."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from solvflow.campaign.report import write_report

    command = "solvflow " + " ".join(shlex.quote(a) for a in sys.argv[1:]) \
        if sys.argv[1:2] == ["report"] else _as_command(args)
    written = write_report(args.paths, args.output, args.claims, command)
    for path in written.values():
        print(f"wrote    {path}")
    return 0


def _as_command(args: argparse.Namespace) -> str:
    """The command line that gives this report (when called through main(argv))."""
    parts = ["solvflow", "report", *args.paths, "-o", args.output]
    if args.claims:
        parts += ["--claims", args.claims]
    return " ".join(shlex.quote(str(p)) for p in parts)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report", help="report.md: verdicts, comparison tables, plots and provenance",
        description="Write report.md (a one-minute verdict table, then the claims in detail, "
                    "the comparison tables and plots, the runs and how to reproduce them), "
                    "claims.json, compare.csv/.md and PNG plots into DIR.")
    parser.add_argument("paths", nargs="+", metavar="CAMPAIGN|RUNDIR",
                        help="a campaign folder, run directories, or folders searched for them")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--claims", metavar="YAML",
                        help="claims file (default: the shipped claims.yaml)")
    parser.set_defaults(func=_run)
