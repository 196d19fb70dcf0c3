"""compare, claims and report on a real smoke campaign (RDKit + Packmol + OpenMM + analysis).

The fixture builds four tiny LiFSI/DME boxes (4 salt units, 0.6 nm cutoff),
runs the smoke protocol on the CPU and analyses them: 1 M with two seeds, and
2 M with a dissociated and a paired start when ``build`` offers start states
(a random start otherwise). Every number checked is recomputed here from the
runs' own analysis.json / status.json / spec.yaml.
"""

from __future__ import annotations

import csv
import inspect
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from solvflow.cli import main

AVOGADRO = 6.02214076e23
CUTOFFS = {"FSI": 0.30, "DME": 0.28}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from solvflow import analyze, build, simulate

    os.environ.setdefault("OPENMM_CPU_THREADS", "1")
    root = tmp_path_factory.mktemp("campaign")
    has_starts = "start" in inspect.signature(build).parameters
    points = [("c1_s1", 1.0, 1, None), ("c1_s2", 1.0, 2, None)]
    points += ([("c2_diss", 2.0, 1, "dissociated"), ("c2_pair", 2.0, 1, "paired")]
               if has_starts else [("c2_s1", 2.0, 1, None)])
    tasks = []
    for name, conc, seed, start in points:
        rundir = root / "runs" / name
        extra = {"start": start} if start else {}
        build("lifsi_dme", output=rundir, concentration=conc, n_salt=4, seed=seed,
              cutoff_nm=0.6, **extra)
        simulate(rundir, protocol="smoke", platform="CPU", progress="quiet")
        analyze(rundir, cutoffs_nm=CUTOFFS).write_json(rundir / "analysis.json")
        tasks.append({"id": name, "rundir": f"runs/{name}", "state": "finished",
                      "params": {"system": "lifsi_dme", "concentration": conc}})
    tasks.append({"id": "c4_s1", "rundir": "runs/c4_s1", "state": "failed",
                  "params": {"system": "lifsi_dme", "concentration": 4.0},
                  "error": "not run in this test"})
    (root / "campaign.json").write_text(json.dumps({"workflow": "test", "tasks": tasks}))
    return root


def _analysis(campaign: Path, name: str) -> dict:
    return json.loads((campaign / "runs" / name / "analysis.json").read_text(encoding="utf-8"))


def _groups(campaign: Path) -> dict[tuple[float, str], list[str]]:
    out: dict[tuple[float, str], list[str]] = {}
    for rundir in sorted((campaign / "runs").iterdir()):
        if not (rundir / "analysis.json").is_file():
            continue
        spec = yaml.safe_load((rundir / "spec.yaml").read_text(encoding="utf-8"))
        start = (spec.get("start") or {}).get("state", "random")
        out.setdefault((spec["composition"]["requested"], start), []).append(rundir.name)
    return out


def test_compare_tables_equal_the_analysis_values(campaign: Path, tmp_path: Path) -> None:
    assert main(["compare", str(campaign), "-o", str(tmp_path)]) == 0
    with (tmp_path / "compare.csv").open(encoding="utf-8") as handle:
        rows = {(float(r["concentration"]), r["start"], r["quantity"]): r
                for r in csv.DictReader(handle)}
    keys = {"ssip_fraction": ("ion_pairing", "SSIP"), "cn:DME": ("coordination_numbers", "DME"),
            "anion_free_fraction": ("anion_states", "free")}
    for (conc, start), names in _groups(campaign).items():
        for quantity, (section, key) in keys.items():
            values = [_analysis(campaign, n)[section][key] for n in names]
            errors = [_analysis(campaign, n)["stderr"][section][key] for n in names]
            row = rows[(conc, start, quantity)]
            assert float(row["mean"]) == pytest.approx(np.mean(values), abs=1e-12)
            within = math.sqrt(sum(e * e for e in errors)) / len(errors)
            assert float(row["se_within"]) == pytest.approx(within, abs=1e-12)
            if len(values) > 1:
                assert float(row["se_replicas"]) == pytest.approx(
                    np.std(values, ddof=1) / math.sqrt(len(values)), abs=1e-12)
            assert row["n_replicas"] == str(len(names))
            assert row["runs"] == ";".join(os.path.relpath(campaign / "runs" / n, tmp_path)
                                           for n in names)
    molar = [_molarity(campaign, n) for n in ("c1_s1", "c1_s2")]
    assert float(rows[(1.0, "random", "achieved_molarity_M")]["mean"]) == pytest.approx(
        np.mean(molar))
    md = (tmp_path / "compare.md").read_text(encoding="utf-8")
    first = _analysis(campaign, "c1_s1")["coordination_numbers"]["DME"]
    second = _analysis(campaign, "c1_s2")["coordination_numbers"]["DME"]
    assert f"{(first + second) / 2:.3f} ± " in md


def _molarity(campaign: Path, name: str) -> float:
    spec = yaml.safe_load((campaign / "runs" / name / "spec.yaml").read_text(encoding="utf-8"))
    status = json.loads((campaign / "runs" / name / "status.json").read_text(encoding="utf-8"))
    return spec["composition"]["n_salt"] / AVOGADRO / (status["npt_mean_volume_nm3"] * 1e-24)


def test_claims_on_the_smoke_campaign(campaign: Path, tmp_path: Path) -> None:
    out = tmp_path / "claims.json"
    assert main(["claims", str(campaign), "-o", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    claims = {c["id"]: c for c in doc["claims"]}
    assert sorted(claims) == ["1", "2", "3", "4", "5", "6"]
    one = claims["1"]
    # 0.2 ps of production cannot settle anything: never a verdict from a smoke run
    assert one["verdict"] == "inconclusive"
    assert re.search(r"production too short|convergence unknown", " ".join(one["reasons"]))
    number = one["tests"][0]["by_charge_scale"]["0.8"]["numbers"][0][0]
    values = [_analysis(campaign, n)["ion_pairing"]["SSIP"] for n in ("c1_s1", "c1_s2")]
    assert number["value"] == pytest.approx(np.mean(values))
    assert number["n_replicas"] == 2 and one["platforms"] == ["CPU"]
    assert "task c4_s1: failed: not run in this test" in " ".join(claims["2"]["reasons"])
    for other in ("3", "4", "5", "6"):
        assert claims[other]["verdict"] == "inconclusive"
        assert "runs missing" in " ".join(claims[other]["reasons"])


def test_report_reads_and_links_resolve(campaign: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", str(campaign), "-o", str(out)]) == 0
    text = (out / "report.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    start = lines.index("## Verdicts")
    table = [line for line in lines[start + 2:start + 12] if line.startswith("| [")]
    assert len(table) == 6 and all("inconclusive" in row for row in table)
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        assert (out / target).exists(), target  # every run directory link and every plot
    linked = {Path(t).name for t in re.findall(r"\]\(([^)#]+)\)", text)}
    assert {"c1_s1", "c1_s2"} <= linked
    for png in ("lifsi_dme_pairing.png", "lifsi_dme_cn.png", "lifsi_dme_rdf.png",
                "lifsi_dme_anion_states.png"):
        assert f"]({png})" in text and (out / png).stat().st_size > 5000
    assert "solvflow report" in text and "openmm" in text and "ions.xml" in text
    assert "**SSIP** no anion in the shell" in text
    assert "c4_s1" in text  # the failed task is listed
    # MD wall time per run (Runs table, column 12) = the sum of status.json's stage times
    header = next(line for line in lines if line.startswith("| run | system |"))
    col = [c.strip() for c in header.split("|")].index("MD wall time")
    total = 0.0
    for name in ("c1_s1", "c1_s2"):
        status = json.loads((campaign / "runs" / name / "status.json").read_text(
            encoding="utf-8"))
        wall = sum(s["wall_time_s"] for s in status["stages"].values())
        total += wall
        row = next(line for line in lines if line.startswith(f"| [{name}]("))
        assert [c.strip() for c in row.split("|")][col] == f"{wall:.0f} s"
    assert total > 0 and "of MD wall time summed over 4 runs" in text
    claims = (out / "claims.json").read_bytes()
    assert main(["report", str(campaign), "-o", str(out)]) == 0  # rerun: the same files
    assert (out / "report.md").read_text(encoding="utf-8") == text
    assert (out / "claims.json").read_bytes() == claims


def test_export_keeps_what_report_reads_and_gives_the_same_verdicts(campaign: Path,
                                                                     tmp_path: Path) -> None:
    dest = tmp_path / "published"
    assert main(["export", str(campaign), "-o", str(dest)]) == 0
    kept = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    names = {Path(p).name for p in kept}
    assert names <= {"campaign.json", "workflow.yaml", "spec.yaml", "status.json",
                     "analysis.json", "log.csv"}
    assert "runs/c1_s1/analysis.json" in kept and "runs/c1_s1/log.csv" in kept
    assert not any(p.endswith((".dcd", ".chk", ".xml", ".png")) for p in kept)
    for rel in kept:  # byte-for-byte copies
        assert (dest / rel).read_bytes() == (campaign / rel).read_bytes()
    a, b = tmp_path / "from_campaign.json", tmp_path / "from_export.json"
    assert main(["claims", str(campaign), "-o", str(a)]) == 0
    assert main(["claims", str(dest), "-o", str(b)]) == 0
    verdicts = [json.loads(d.read_text(encoding="utf-8"))["claims"] for d in (a, b)]
    assert [(c["id"], c["verdict"]) for c in verdicts[0]] == \
        [(c["id"], c["verdict"]) for c in verdicts[1]]
    assert main(["export", str(campaign), "-o", str(dest)]) == 0  # rerun updates in place


def test_export_bad_input_is_one_clear_error(campaign: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(campaign / "runs"), "-o", str(tmp_path / "x")]) == 2
    assert "not a campaign folder (no campaign.json)" in capsys.readouterr().err
    assert main(["export", str(campaign), "-o", str(campaign / "copy")]) == 2
    assert "must be outside the campaign" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["export", str(campaign), "-o", str(tmp_path / "other")]) == 2
    assert "is not an earlier export" in capsys.readouterr().err


def test_block_drift_blocks_average_to_the_whole_run(campaign: Path, tmp_path: Path) -> None:
    # tools/block_drift.py: two equal blocks of a run, analysed alone with the run's own
    # radii, must average to the whole run's SSIP and CN (fractions over frames add up)
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "block_drift", Path(__file__).parents[1] / "tools" / "block_drift.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    whole = _analysis(campaign, "c1_s1")
    n = whole["n_frames_in_file"] // 2 * 2
    assert whole["n_frames"] == n  # the fixture's frame count is even: two whole blocks
    out = tool.block_values(campaign / "runs" / "c1_s1", block_ps=n // 2 * whole["timestep_ps"])
    assert len(out["blocks"]) == 2 and out["cutoffs_nm"] == whole["cutoffs_nm"]
    for name, key in (("SSIP", ("ion_pairing", "SSIP")), ("CN FSI", ("coordination_numbers",
                                                                      "FSI"))):
        mean = sum(b[name] for b in out["blocks"]) / 2
        assert mean == pytest.approx(whole[key[0]][key[1]], abs=1e-9)
    text = tool.markdown([out], 1.0)
    rows = [line for line in text.splitlines() if line.startswith("| 0")]
    assert "## lifsi_dme 1 (seeds 1)" in text and len(rows) == 2  # one row per block
    # --reference: a campaign with runs of the same names adds their whole-run values
    ref_row = next(line for line in tool.markdown([out], 1.0, campaign).splitlines()
                   if line.startswith(f"| {campaign.name}: whole run"))
    assert ref_row.split("|")[2].strip() == f"{whole['ion_pairing']['SSIP']:.2f}"
