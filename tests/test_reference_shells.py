"""The fixed campaign shell radii: the rule of shell_cutoffs.yaml, and how a task reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from solvflow.analysis.reference_shells import reference_cutoffs
from solvflow.campaign.task import campaign_cutoffs
from solvflow.validate import load_checks


def test_each_cutoff_is_the_reference_distance_plus_a_tenth_of_a_nm() -> None:
    # the references are the upper ends of the shell checks' peak ranges (validate_checks.yaml)
    shells: dict[str, float] = {}
    for c in load_checks().values():  # Mg has two checks (DMAc 0.205-0.210, DME 0.207)
        if c.kind == "shell":
            shells[c.cation] = max(shells.get(c.cation, 0.0), c.reference["peak_nm"][1])
    for cation in ("Li", "Mg", "Ca"):
        cutoffs, label = reference_cutoffs(cation, ["A", "B"])
        assert cutoffs["A"] == cutoffs["B"] == pytest.approx(shells[cation] + 0.10, abs=1e-9)
        assert "+ 0.10 nm" in label and "shell_cutoffs.yaml" in label
    # the melt's EMIm+ (centre C2, partner sites Cl): the same rule on the C2-Cl contact
    cutoffs, label = reference_cutoffs("EMIm", ["AlCl4", "Al2Cl7"])
    assert cutoffs == {"AlCl4": 0.47, "Al2Cl7": 0.47} and label.startswith("reference: C2-Cl")
    assert reference_cutoffs("Na", ["Cl"]) is None  # not listed: the RDF's first minimum


def _spec(tmp_path: Path, cation: str, species: list[str], partners: list[str] | None) -> Path:
    analysis = {"cation": cation} | ({"partners": partners} if partners else {})
    doc = {"species": [{"name": n} for n in species], "analysis": analysis}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return tmp_path


def test_a_task_uses_the_cations_radius_for_every_partner(tmp_path: Path) -> None:
    rundir = _spec(tmp_path, "Mg", ["Mg", "TFSI", "DME"], ["TFSI", "DME"])
    cutoffs, label = campaign_cutoffs(rundir)
    assert cutoffs == {"TFSI": 0.31, "DME": 0.31} and label.startswith("reference: Mg-O")
    implicit = _spec(tmp_path, "Li", ["Li", "FSI", "DME"], None)  # partners: all the others
    assert campaign_cutoffs(implicit)[0] == {"FSI": 0.30, "DME": 0.30}
    assert campaign_cutoffs(_spec(tmp_path, "EMIm", ["EMIm", "Cl"], None))[0] == {"Cl": 0.47}
    assert campaign_cutoffs(_spec(tmp_path, "K", ["K", "Cl"], None)) is None
