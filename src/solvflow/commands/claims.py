"""``solvflow claims``: a verdict for each claim of a claims file, from analysed runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from solvflow.errors import InputError


def _run(args: argparse.Namespace) -> int:
    import json

    from solvflow.campaign.claims import evaluate_claims, load_claims
    from solvflow.campaign.compare import compare

    claims = load_claims(args.claims)
    output = Path(args.output)
    if output.is_dir():
        output = output / "claims.json"
    if not output.parent.is_dir():
        raise InputError(f"cannot write {output}: folder {output.parent} does not exist")
    doc = evaluate_claims(compare(args.paths), claims)
    output.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for claim in doc["claims"]:
        print(f"claim {claim['id']:<3} {claim['verdict']:<13} {claim['title']}")
        for line in claim["explanation"]:
            print(f"          {line}")
        for why in claim["reasons"][:4]:
            print(f"          - {why}")
    print(f"wrote    {output}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "claims", help="verdict per claim (supported/contradicted/inconclusive) from runs",
        description="Evaluate each claim of a claims file (default: the review's six, shipped "
                    "with solvflow) on analysed run directories: supported, contradicted or "
                    "inconclusive, with the numbers, errors and reasons (docs/claims.md).")
    parser.add_argument("paths", nargs="+", metavar="CAMPAIGN|RUNDIR",
                        help="a campaign folder, run directories, or folders searched for them")
    parser.add_argument("-o", "--output", required=True, metavar="JSON",
                        help="claims.json to write (a folder: FOLDER/claims.json)")
    parser.add_argument("--claims", metavar="YAML",
                        help="claims file (default: the shipped claims.yaml; see docs/claims.md)")
    parser.set_defaults(func=_run)
