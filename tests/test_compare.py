"""Comparison across run directories: grouping, replica statistics, two-start check, tables."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from campaign_runs import write_campaign, write_run
from solvflow.campaign.compare import compare, start_check, summarise, write_tables
from solvflow.campaign.runs import AVOGADRO, find_runs, parse_quantity
from solvflow.cli import main
from solvflow.errors import InputError


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_points_group_replicas_and_keep_starts_and_scales_apart(tmp_path: Path) -> None:
    write_run(tmp_path, "a", seed=1)
    write_run(tmp_path, "b", seed=2)
    write_run(tmp_path, "c", seed=1, conc=2.0)
    write_run(tmp_path, "d", seed=1, scale=1.0)
    write_run(tmp_path, "e", seed=1, start="paired")
    comp = compare([tmp_path])
    sizes = {(p.site.concentration, p.site.charge_scale, p.start): len(r)
             for p, r in comp.points.items()}
    assert sizes == {(1.0, 0.8, "random"): 2, (2.0, 0.8, "random"): 1,
                     (1.0, 1.0, "random"): 1, (1.0, 0.8, "paired"): 1}


def test_replica_statistics_match_numpy(tmp_path: Path) -> None:
    values, errors = [0.61, 0.70, 0.64], [0.010, 0.020, 0.015]
    for k, (v, e) in enumerate(zip(values, errors, strict=True)):
        write_run(tmp_path, f"r{k}", seed=k, ssip=v, err=e)
    runs = find_runs([tmp_path]).runs
    stat = summarise(runs, "ssip_fraction")
    x = np.array(values)
    assert stat.mean == pytest.approx(x.mean())
    assert stat.se_replicas == pytest.approx(x.std(ddof=1) / math.sqrt(3))
    assert stat.se_within == pytest.approx(math.sqrt(sum(e * e for e in errors)) / 3)
    assert stat.error == pytest.approx(max(stat.se_replicas, stat.se_within))
    both = summarise(runs, "cip_plus_agg_fraction")  # 1 - SSIP, same errors
    assert both.mean == pytest.approx(1 - x.mean()) and both.error == pytest.approx(stat.error)
    single = summarise(runs[:1], "ssip_fraction")
    assert (single.error, single.error_kind, single.se_replicas) == (0.01, "within-run", None)


def test_achieved_molarity_after_npt(tmp_path: Path) -> None:
    write_run(tmp_path, "a", n_salt=12, npt_volume_nm3=19.465275)
    stat = summarise(find_runs([tmp_path]).runs, "achieved_molarity_M")
    assert stat.mean == pytest.approx(12 / AVOGADRO / (19.465275e-24))  # = 1.0236 M
    assert stat.mean == pytest.approx(1.0236, abs=1e-4)


def test_two_start_rule(tmp_path: Path) -> None:
    # |0.70 - 0.64| = 0.06 > 2 sqrt(0.02^2 + 0.02^2) = 0.0566: disagree
    d = [write_run(tmp_path, "d", start="dissociated", ssip=0.70, cip=0.2, err=0.02)]
    p = [write_run(tmp_path, "p", start="paired", ssip=0.64, cip=0.2, err=0.02)]
    comp = compare([tmp_path])
    site = next(iter(comp.checks))
    assert comp.checks[site].converged is False
    assert "DISAGREE" in comp.checks[site].describe()
    # error 0.025 each: 0.06 < 2 sqrt(2) 0.025 = 0.0707: agree
    for path in d + p:
        data = json.loads((path / "analysis.json").read_text())
        data["stderr"]["ion_pairing"] = {k: 0.025 for k in ("SSIP", "CIP", "AGG")}
        (path / "analysis.json").write_text(json.dumps(data))
    comp = compare([tmp_path])
    assert start_check(site, comp.site_runs(site)).converged is True


def test_tables_hold_the_analysis_numbers(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "a", seed=1, ssip=0.60, cn={"FSI": 0.40, "DME": 2.2})
    write_run(tmp_path / "runs", "b", seed=2, ssip=0.66, cn={"FSI": 0.34, "DME": 2.4})
    write_run(tmp_path / "runs", "d", start="dissociated", conc=2.0, ssip=0.9)
    write_run(tmp_path / "runs", "p", start="paired", conc=2.0, ssip=0.2)
    out = tmp_path / "out"
    write_tables(compare([tmp_path / "runs"]), out)
    rows = {(r["concentration"], r["start"], r["quantity"]): r for r in _rows(out / "compare.csv")}
    cn = rows[("1.0", "random", "cn:DME")]
    assert float(cn["mean"]) == pytest.approx(2.3)
    assert float(cn["se_replicas"]) == pytest.approx(np.std([2.2, 2.4], ddof=1) / math.sqrt(2))
    assert cn["n_replicas"] == "2" and cn["runs"] == "../runs/a;../runs/b"
    assert rows[("2.0", "paired", "ssip_fraction")]["two_starts"] == "disagree"
    md = (out / "compare.md").read_text()
    assert "0.630 ± 0.030" in md  # SSIP mean of 0.60, 0.66; error = se across replicas
    assert "[s1](../runs/a) [s2](../runs/b)" in md
    assert "**not converged**" in md and "**starts disagree**" in md
    assert "Li(DME)2 0.63" in md  # top shell, averaged over the replicas


def test_campaign_json_lists_runs_and_missing_tasks(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "t1")
    write_campaign(tmp_path, [{"id": "t1", "rundir": "runs/t1", "state": "finished"},
                              {"id": "t2", "rundir": "runs/t2", "state": "failed",
                               "error": "boom"}])
    found = find_runs([tmp_path])
    assert [r.task_id for r in found.runs] == ["t1"]
    assert [(m["task"], m["state"], m["error"]) for m in found.missing] == [("t2", "failed",
                                                                             "boom")]


def test_no_run_directories_is_a_clear_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no analysed run directories"):
        compare([tmp_path / "empty"])
    code = main(["compare", str(tmp_path / "empty"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "no analysed run directories (spec.yaml + analysis.json)" in err


def test_mixed_cations_in_one_system_are_refused(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    write_run(tmp_path, "li", cation="Li")
    write_run(tmp_path, "na", cation="Na", seed=2)
    code = main(["compare", str(tmp_path), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "runs of lifsi_dme were analysed with different cations" in err


def test_unknown_quantity_names_the_allowed_ones() -> None:
    with pytest.raises(InputError, match="unknown quantity 'cn'.*ssip_fraction"):
        parse_quantity("cn")
    assert parse_quantity("cn:DME").partner == "DME"


def test_compare_cli_writes_tables_and_plots(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "a", conc=1.0)
    write_run(tmp_path / "runs", "b", conc=4.0, ssip=0.1, cn={"FSI": 1.5, "DME": 1.0})
    assert main(["compare", str(tmp_path / "runs"), "-o", str(tmp_path / "out")]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["compare.csv", "compare.md", "lifsi_dme_anion_states.png",
                     "lifsi_dme_cn.png", "lifsi_dme_pairing.png", "lifsi_dme_rdf.png"]
    assert all((tmp_path / "out" / n).stat().st_size > 5000 for n in names if n.endswith("png"))


def test_runs_that_differ_in_temperature_are_not_replicas(tmp_path: Path) -> None:
    import yaml

    write_run(tmp_path, "a", seed=1)
    hot = write_run(tmp_path, "b", seed=2)
    spec = yaml.safe_load((hot / "spec.yaml").read_text())
    spec["temperature_K"] = 350.0
    (hot / "spec.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(InputError, match="differ in temperature or force field"):
        compare([tmp_path])
