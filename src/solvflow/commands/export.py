"""``solvflow export``: a campaign's small results (no trajectories) copied to a new folder."""

from __future__ import annotations

import argparse
from typing import Any


def _names(ids: list[str], shown: int = 5) -> str:
    more = f" and {len(ids) - shown} more (campaign.json)" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


def _run(args: argparse.Namespace) -> int:
    from solvflow.campaign.export import export_campaign

    summary = export_campaign(args.campaign, args.output)
    print(f"exported {summary.runs} run directories, {len(summary.files)} files, "
          f"{summary.n_bytes / 1e6:.2f} MB to {summary.destination}")
    if summary.not_analysed:
        print(f"warning  {len(summary.not_analysed)} runs have no analysis.json (copied "
              f"without it): {_names(summary.not_analysed)}")
    if summary.not_built:
        print(f"warning  {len(summary.not_built)} tasks have no run directory: "
              f"{_names(summary.not_built)}")
    print(f"then:    solvflow report {summary.destination} -o DIR")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help="copy a campaign's small results (no trajectories) to a new folder",
        description="Copy campaign.json, workflow.yaml and each run's spec.yaml, status.json, "
                    "analysis.json and log.csv from CAMPAIGN to DIR: everything solvflow "
                    "compare, claims and report read, so they give the same verdicts from "
                    "DIR. Trajectories, checkpoints, system.xml and plots are left out. Use "
                    "it to publish a campaign or to bring one back from a GPU or cluster "
                    "machine. Rerunning updates DIR.")
    parser.add_argument("campaign", metavar="CAMPAIGN",
                        help="campaign folder written by solvflow sweep -o")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="export folder (new, empty, or an earlier export)")
    parser.set_defaults(func=_run)
