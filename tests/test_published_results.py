"""The published results reproduce from the repository alone (issue 13's acceptance).

docs/results/campaign/ and docs/results/long/campaign/ hold each run's spec.yaml,
status.json and analysis.json (``solvflow export``). ``solvflow claims`` rerun on them here
(a clean clone in CI) must give the committed claims.json: the same verdicts, numbers and
reasons. This failed silently once: a ``runs/`` ignore pattern kept every exported run
directory out of git, and only a fresh clone showed it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from solvflow.cli import main

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = [("docs/results/campaign", "docs/results/claims.json", 38),
             ("docs/results/long/campaign", "docs/results/long/claims.json", 6)]


def _essentials(doc: dict) -> list[tuple]:
    return [(c["id"], c["verdict"], c["convergence"], c["n_runs"], c["charge_scales"],
             c["simulated_ns"], tuple(c["explanation"]), tuple(c["reasons"]))
            for c in doc["claims"]]


@pytest.mark.parametrize("campaign,claims,n_runs", PUBLISHED)
def test_published_claims_rerun_to_the_same_verdicts(campaign: str, claims: str, n_runs: int,
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    runs = sorted((ROOT / campaign / "runs").glob("*/analysis.json"))
    assert len(runs) == n_runs, f"{campaign}: {len(runs)} analysed runs in the checkout"
    monkeypatch.chdir(ROOT)  # claims.json names the runs by the path given on the command line
    out = tmp_path / "claims.json"
    assert main(["claims", campaign, "-o", os.fspath(out)]) == 0
    fresh = json.loads(out.read_text(encoding="utf-8"))
    committed = json.loads((ROOT / claims).read_text(encoding="utf-8"))
    assert fresh["n_runs"] == committed["n_runs"] == n_runs
    assert _essentials(fresh) == _essentials(committed)
