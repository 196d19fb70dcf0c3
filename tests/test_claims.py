"""Claims as data and their verdicts, on synthetic run directories (every verdict and reason)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from campaign_runs import write_campaign, write_run
from solvflow.campaign.claims import (
    ClaimsFileError,
    default_claims_path,
    evaluate_claims,
    load_claims,
)
from solvflow.campaign.compare import compare
from solvflow.cli import main


def _claims(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "claims.yaml"
    path.write_text(text)
    return path


def _verdicts(root: Path, claims: Path | None = None) -> dict[str, dict]:
    doc = evaluate_claims(compare([root]), load_claims(claims))
    return {c["id"]: c for c in doc["claims"]}


def _reasons(claim: dict) -> str:
    return " | ".join(claim["reasons"])


# ------------------------------------------------------------------ the shipped claims file


def test_shipped_claims_file_has_the_six_claims() -> None:
    claims = load_claims()
    assert [c.id for c in claims.claims] == ["1", "2", "3", "4", "5", "6"]
    assert claims.path == "claims.yaml shipped with solvflow" and default_claims_path().is_file()
    first = claims.claims[0].tests[0]  # "cation SSIP fraction at 1 M >= 0.5"
    assert (first.quantity.name, first.system, first.at, first.compare, first.threshold) == (
        "ssip_fraction", "lifsi_dme", 1.0, ">=", 0.5)
    ca = claims.claims[4].tests
    assert {(t.at, t.threshold) for t in ca} == {(0.25, 0.95), (0.5, 0.95)}


def test_pyproject_ships_the_claims_file_in_the_wheel() -> None:
    # the wheel packages the whole src/solvflow tree (protocols/*.yaml ship the same way)
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert 'packages = ["src/solvflow"]' in text
    assert default_claims_path().parent.name == "campaign"


# ------------------------------------------------------------------ verdicts


def test_supported_with_errors_across_replicas(tmp_path: Path) -> None:
    write_run(tmp_path, "a", seed=1, ssip=0.70, cn={"FSI": 0.30, "DME": 2.5})
    write_run(tmp_path, "b", seed=2, ssip=0.74, cn={"FSI": 0.26, "DME": 2.5})
    claim = _verdicts(tmp_path)["1"]
    assert claim["verdict"] == "supported", _reasons(claim)
    res = claim["tests"][0]["by_charge_scale"]["0.8"]
    number = res["numbers"][0][0]
    assert number["value"] == pytest.approx(0.72)
    se_rep = math.sqrt(((0.70 - 0.72) ** 2 + (0.74 - 0.72) ** 2) / 1 / 2)  # std(ddof=1)/sqrt(2)
    se_in = math.sqrt(2 * 0.01 ** 2) / 2
    assert number["se_replicas"] == pytest.approx(se_rep)
    assert number["error"] == pytest.approx(max(se_rep, se_in))
    assert number["error_kind"] == "replicas" and number["n_replicas"] == 2
    assert claim["uncertainty"] == "across replicas"
    assert claim["charge_scales"] == [0.8] and claim["platforms"] == ["CPU"]
    assert claim["simulated_ns"] == pytest.approx(2 * 21.0)
    assert claim["convergence"] == "converged in time (one start)"


def test_contradicted(tmp_path: Path) -> None:
    write_run(tmp_path, "a", ssip=0.20, cip=0.3)
    claim = _verdicts(tmp_path)["1"]
    assert claim["verdict"] == "contradicted"
    assert claim["tests"][0]["verdict"] == "contradicted"
    assert claim["uncertainty"].startswith("within-run")  # one replica: flagged


def test_a_zero_error_decides_nothing(tmp_path: Path) -> None:
    # one replica whose SSIP state never changed: error 0 is "no estimate", never 0 sigma
    write_run(tmp_path, "a", ssip=0.20, cip=0.3, err=0.0)
    claim = _verdicts(tmp_path)["1"]
    assert claim["tests"][0]["verdict"] == "inconclusive"
    assert "did not change in any frame or replica" in _reasons(claim)
    out = tmp_path / "report"
    assert main(["report", str(tmp_path), "-o", str(out)]) == 0
    assert "0.200 ± 0 (no change in any frame: no error estimate)" in \
        (out / "report.md").read_text(encoding="utf-8")


def test_error_bar_straddling_the_threshold_is_inconclusive(tmp_path: Path) -> None:
    write_run(tmp_path, "a", ssip=0.51, err=0.02, cn={"FSI": 0.1, "DME": 2.5})
    claim = _verdicts(tmp_path)["1"]
    assert claim["verdict"] == "inconclusive"
    assert "straddles the threshold" in _reasons(claim)
    write_run(tmp_path, "b", seed=2, ssip=0.51, err=0.002, cn={"FSI": 0.1, "DME": 2.5})
    write_run(tmp_path, "c", seed=3, ssip=0.53, err=0.002, cn={"FSI": 0.1, "DME": 2.5})
    # three replicas 0.51, 0.51, 0.53: mean 0.5167, se 0.0067 -> 2.5 sigma above 0.5
    assert _verdicts(tmp_path)["1"]["verdict"] == "supported"


def test_missing_runs_are_named(tmp_path: Path) -> None:
    write_run(tmp_path, "a", conc=1.0)
    claim = _verdicts(tmp_path)["2"]  # needs 4 M as well
    assert claim["verdict"] == "inconclusive"
    assert "runs missing: no analysed run of lifsi_dme at 4 M" in _reasons(claim)
    other = _verdicts(tmp_path)["4"]  # no DMAc runs at all
    assert "runs missing: no analysed run of mg_tfsi2_dmac" in _reasons(other)


def test_failed_task_is_given_as_the_reason(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "one", conc=1.0)
    write_campaign(tmp_path, [{"id": "one", "rundir": "runs/one", "state": "finished"},
                              {"id": "four", "rundir": "runs/four", "state": "failed",
                               "params": {"system": "lifsi_dme", "concentration": 4.0},
                               "error": "PackmolError: could not pack"},
                              {"id": "two", "rundir": "runs/two", "state": "failed",
                               "params": {"system": "lifsi_dme", "concentration": 2.0},
                               "error": "SimulationError: blew up"}])
    claim = _verdicts(tmp_path)["2"]
    assert "task four: failed: PackmolError: could not pack" in _reasons(claim)
    assert "task two" not in _reasons(claim)  # 2 M is not what claim 2 needs


@pytest.mark.parametrize(("kwargs", "why"), [
    ({"production_ps": 500.0, "tau_ps": 100.0}, "production 500 ps < 10 x 100 ps"),
    ({"few": ["ion_pairing.SSIP"]}, "fewer than 10 effective samples"),
    ({"residence_ps": None}, "residence time longer than the longest lag"),
])
def test_production_too_short(tmp_path: Path, kwargs: dict, why: str) -> None:
    write_run(tmp_path, "a", ssip=0.9, **kwargs)
    claim = _verdicts(tmp_path)["1"]
    assert claim["verdict"] == "inconclusive"
    assert "production too short" in _reasons(claim) and why in _reasons(claim)
    assert "too short" in claim["convergence"]


def test_no_time_scales_measured_is_inconclusive(tmp_path: Path) -> None:
    write_run(tmp_path, "a", ssip=0.9, time_info=False)
    claim = _verdicts(tmp_path)["1"]
    assert claim["verdict"] == "inconclusive"
    assert "convergence unknown" in _reasons(claim)


def test_two_starts_disagreeing_across_the_threshold(tmp_path: Path) -> None:
    write_run(tmp_path, "d", start="dissociated", ssip=0.80, cn={"FSI": 0.1, "DME": 2.5})
    write_run(tmp_path, "p", start="paired", ssip=0.30, cn={"FSI": 0.1, "DME": 2.5})
    comp = compare([tmp_path])
    (check,) = comp.checks.values()
    assert check.converged is False
    claim = _verdicts(tmp_path)["1"]
    assert claim["verdict"] == "inconclusive"
    assert "the two starts disagree" in _reasons(claim)
    assert "not converged" in claim["convergence"]
    values = {n["start"]: n["value"] for n in
              claim["tests"][0]["by_charge_scale"]["0.8"]["numbers"][0]}
    assert values == {"dissociated": pytest.approx(0.8), "paired": pytest.approx(0.3)}


def test_two_starts_disagreeing_on_the_same_side_keep_the_verdict(tmp_path: Path) -> None:
    # the true value lies between 0.65 and 0.90: both above 0.5, so the claim holds
    write_run(tmp_path, "d", start="dissociated", ssip=0.90, cn={"FSI": 0.1, "DME": 2.5})
    write_run(tmp_path, "p", start="paired", ssip=0.65, cn={"FSI": 0.1, "DME": 2.5})
    claim = _verdicts(tmp_path)["1"]
    assert claim["verdict"] == "supported", _reasons(claim)
    assert "not converged (starts disagree)" in claim["convergence"]


def test_two_starts_agreeing_are_pooled(tmp_path: Path) -> None:
    write_run(tmp_path, "d", start="dissociated", ssip=0.70, cn={"FSI": 0.1, "DME": 2.5})
    write_run(tmp_path, "p", start="paired", ssip=0.72, cn={"FSI": 0.1, "DME": 2.5})
    comp = compare([tmp_path])
    assert next(iter(comp.checks.values())).converged is True  # |0.02| < 2 sqrt(2) 0.01
    claim = _verdicts(tmp_path)["1"]
    assert claim["verdict"] == "supported"
    number = claim["tests"][0]["by_charge_scale"]["0.8"]["numbers"][0][0]
    assert number["n_replicas"] == 2 and number["value"] == pytest.approx(0.71)
    assert claim["convergence"] == "converged (two starts agree)"


def test_verdict_flipping_between_charge_scales(tmp_path: Path) -> None:
    write_run(tmp_path, "s08", scale=0.8, ssip=0.75, cn={"FSI": 0.1, "DME": 2.5})
    write_run(tmp_path, "s10", scale=1.0, ssip=0.20, cn={"FSI": 0.1, "DME": 2.5})
    claim = _verdicts(tmp_path)["1"]
    assert claim["verdict"] == "inconclusive"
    assert "the verdict flips between charge scales (0.8: supported, 1: contradicted)" in \
        _reasons(claim)
    assert claim["charge_scales"] == [0.8, 1.0]


def test_comparison_between_concentrations(tmp_path: Path) -> None:
    write_run(tmp_path, "c1", conc=1.0, ssip=0.7, cn={"FSI": 0.3, "DME": 2.5})
    write_run(tmp_path, "c4", conc=4.0, ssip=0.1, cip=0.2, cn={"FSI": 1.6, "DME": 1.2})
    assert _verdicts(tmp_path)["2"]["verdict"] == "supported"
    write_run(tmp_path, "c4b", seed=2, conc=4.0, ssip=0.8, cip=0.1, cn={"FSI": 0.2, "DME": 2})
    # 4 M replicas 0.1 and 0.8 SSIP: the spread makes every 4 M test undecidable
    claim = _verdicts(tmp_path)["2"]
    assert claim["verdict"] == "inconclusive" and "within 2 combined sigma" in _reasons(claim)


def _melt(root: Path, r: float, mono: int, dimer: int, analysed: bool = False) -> None:
    write_run(root, f"r{r}", system="alcl3_emimcl", kind="chloroaluminate", mode="lewis_ratio",
              conc=r, cation="EMIm", cn={"AlCl4": 1.0} if analysed else {}, scale=1.0,
              counts={"EMIm": 20, "AlCl4": mono, "Al2Cl7": dimer})


def test_speciation_from_the_built_composition(tmp_path: Path) -> None:
    write_run(tmp_path, "li", ssip=0.7)  # something analysed, so the folder is a comparison
    for r, mono, dimer in [(1.3, 14, 6), (1.5, 10, 10), (2.0, 0, 20)]:
        _melt(tmp_path, r, mono, dimer)
    claim = _verdicts(tmp_path)["6"]
    assert claim["verdict"] == "supported", _reasons(claim)
    assert claim["convergence"] == "exact (built composition)"
    assert claim["charge_scales"] == [1.0]  # the melt runs' own scale (tests hold at any)
    assert claim["melt"]["simulated"] is False and "no melt run" in claim["melt"]["note"]


def test_speciation_contradicted_when_the_dimer_does_not_grow(tmp_path: Path) -> None:
    write_run(tmp_path, "li", ssip=0.7)
    for r, mono, dimer in [(1.3, 10, 10), (1.5, 14, 6), (2.0, 0, 20)]:
        _melt(tmp_path, r, mono, dimer, analysed=(r == 1.5))
    claim = _verdicts(tmp_path)["6"]
    assert claim["verdict"] == "contradicted"
    assert claim["melt"]["simulated"] is True  # the analysed r = 1.5 run: its shell counts
    (shell,) = claim["melt"]["shells"]
    assert shell["at"] == 1.5 and shell["cation"] == "EMIm" and shell["n_runs"] == 1
    assert shell["cn"]["AlCl4"]["mean"] == pytest.approx(1.0)


# ------------------------------------------------------------------ user claims files


def test_a_user_claim_needs_no_code(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "a", cn={"FSI": 0.3, "DME": 2.5})
    path = _claims(tmp_path, """
claims:
  - id: dme
    statement: two DME per Li at 1 M
    source: test
    system: lifsi_dme
    tests: [{quantity: "cn:DME", at: 1.0, compare: ">", threshold: 2.0}]
""")
    claim = _verdicts(tmp_path / "runs", path)["dme"]
    assert claim["verdict"] == "supported"
    assert claim["tests"][0]["test"] == "cn:DME of lifsi_dme at 1 M > 2"


@pytest.mark.parametrize(("test", "message"), [
    ('{quantity: ssip_fractoin, at: 1.0, compare: ">=", threshold: 0.5}',
     "unknown quantity 'ssip_fractoin'"),
    ('{quantity: ssip_fraction, at: 1.0, compare: "=>", threshold: 0.5}',
     "unknown comparison '=>'"),
    ('{quantity: ssip_fraction, at: 1.0, compare: ">=", threshold: 0.5, unit: M}',
     "unknown key 'unit'"),
    ('{quantity: ssip_fraction, at: 1.0, compare: ">="}', "exactly one of 'threshold'"),
    ('{quantity: ssip_fraction, at: 1.0, compare: ">=", threshold: high}',
     "threshold must be a number"),
    ('{quantity: ssip_fraction, compare: ">=", threshold: 0.5}', "missing at"),
])
def test_bad_claims_files_are_refused(tmp_path: Path, test: str, message: str) -> None:
    path = _claims(tmp_path, f"claims:\n  - {{id: x, statement: s, source: t, system: "
                             f"lifsi_dme, tests: [{test}]}}\n")
    with pytest.raises(ClaimsFileError, match="claim x, test 1: .*" + message.replace(
            "(", r"\(").replace("'", "'")):
        load_claims(path)


def test_duplicate_ids_and_unknown_top_level_keys(tmp_path: Path) -> None:
    one = "{id: x, statement: s, source: t, system: lifsi_dme, tests: [{quantity: " \
          "ssip_fraction, at: 1, compare: '>=', threshold: 0.5}]}"
    with pytest.raises(ClaimsFileError, match="unique"):
        load_claims(_claims(tmp_path, f"claims: [{one}, {one}]\n"))
    with pytest.raises(ClaimsFileError, match="unknown key 'claim'"):
        load_claims(_claims(tmp_path, f"claim: [{one}]\n"))


def test_claims_cli_writes_json_and_fails_cleanly(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    write_run(tmp_path / "runs", "a", ssip=0.8, cn={"FSI": 0.1, "DME": 2.5})
    out = tmp_path / "claims.json"
    assert main(["claims", str(tmp_path / "runs"), "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [c["verdict"] for c in doc["claims"]][0] == "supported"
    assert doc["rules"]["decision_band_sigma"] == 2.0
    bad = _claims(tmp_path, "claims:\n  - {id: x, statement: s, source: t, system: lifsi_dme,"
                            " tests: [{quantity: magic, at: 1, compare: '>', threshold: 0}]}\n")
    capsys.readouterr()
    code = main(["claims", str(tmp_path / "runs"), "-o", str(out), "--claims", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "unknown quantity 'magic'" in err


def test_a_scale_without_a_decision_leaves_the_test_open(tmp_path: Path) -> None:
    write_run(tmp_path, "s08", scale=0.8, ssip=0.75, cn={"FSI": 0.1, "DME": 2.5})
    write_run(tmp_path, "s10", scale=1.0, ssip=0.51, err=0.02, cn={"FSI": 0.1, "DME": 2.5})
    claim = _verdicts(tmp_path)["1"]
    assert claim["verdict"] == "inconclusive"
    assert "decided at some charge scales only (0.8: supported, 1: inconclusive)" in \
        _reasons(claim)


def test_an_exact_zero_error_is_shown_as_exact_not_frozen() -> None:
    # built-composition fractions are exact (error 0, kind "exact"): only a measured
    # quantity with error 0 is "no error estimate"
    from solvflow.campaign.compare import Stat
    from solvflow.campaign.tables import cell

    exact = Stat("alcl4_fraction", 0.5, 0.0, "exact", None, None, [0.5], [])
    frozen = Stat("ssip_fraction", 0.5, 0.0, "within-run", None, None, [0.5], [])
    assert cell(exact) == "0.500 (exact)"
    assert cell(frozen) == "0.500 ± 0 (no change in any frame: no error estimate)"
