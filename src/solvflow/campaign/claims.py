"""Claims as data (claims.yaml) and their verdicts on a set of run directories.

A claim is a conjunction of *tests*; a test compares one quantity of one
system at one composition with a threshold (``threshold``) or with the same
quantity at another composition (``than_at``). Verdict rules (docs/claims.md):

1. each test, at each charge scale: ``inconclusive`` when runs are missing, the
   production is too short (< 10 x the longest correlation/residence time, or
   < 10 effective samples), the time scales were not measured, an error bar is
   missing, or the difference from the threshold is within 2 standard errors;
   where the two starts disagree, each start is evaluated and the verdict
   stands only when both give it (the true value lies between them);
   otherwise ``supported`` or ``contradicted``;
2. a test over charge scales: the common verdict; ``inconclusive`` if one scale
   is inconclusive or the verdict flips between scales;
3. a claim: ``contradicted`` if any test is, ``supported`` if all are,
   ``inconclusive`` otherwise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from solvflow.campaign.claims_file import (
    COMPARISONS,
    VERDICTS,
    Claim,
    ClaimsFile,
    ClaimsFileError,
    Experiment,
    Test,
    default_claims_path,
    load_claims,
)
from solvflow.campaign.compare import (
    SIGMA,
    Comparison,
    Site,
    Stat,
    concentration_label,
    summarise,
)
from solvflow.campaign.runs import (
    MIN_EFFECTIVE_SAMPLES,
    TIME_FACTOR,
    Quantity,
    Run,
)
from solvflow.campaign.tables import cell

__all__ = ["COMPARISONS", "VERDICTS", "Claim", "ClaimsFile", "ClaimsFileError", "Experiment",
           "Test", "candidates", "default_claims_path", "evaluate_claims", "evaluate_claim",
           "find_site", "load_claims"]


# ---------------------------------------------------------------------------- evaluation


def find_site(comp: Comparison, system: str, mode: str, at: float, scale: float) -> Site | None:
    """The site of ``system`` at composition ``at`` and charge scale ``scale`` (or None)."""
    for site in comp.sites(system):
        if (site.mode == mode and math.isclose(site.concentration, at, rel_tol=1e-6)
                and math.isclose(site.charge_scale, scale, rel_tol=1e-9)):
            return site
    return None


def candidates(comp: Comparison, site: Site, quantity: Quantity) -> list[tuple[str, Stat]]:
    """Pooled stat when the starts agree (or one start); one per start when they disagree."""
    by_start = comp.site_runs(site)
    check = comp.checks.get(site)
    if check is not None and check.converged is not True:
        return [(start, summarise(by_start[start], quantity)) for start in sorted(by_start)]
    pooled = [run for runs in by_start.values() for run in runs]
    return [("all", summarise(pooled, quantity))]


def _decide(diff: float, sigma: float | None, compare: str, exact: bool = False) -> str | None:
    """'supported' / 'contradicted', or None when within SIGMA x sigma (or no sigma)."""
    d = diff if compare in (">=", ">") else -diff
    if exact:  # integer counts of the built composition: no error bar
        return "supported" if (d > 0 or (d == 0 and "=" in compare)) else "contradicted"
    if sigma is None or sigma == 0:  # 0: the quantity never changed, not a perfect error
        return None
    if d > SIGMA * sigma:
        return "supported"
    if d < -SIGMA * sigma:
        return "contradicted"
    return None


def _stat_json(stat: Stat, start: str) -> dict[str, Any]:
    return {"start": start, "value": stat.mean, "error": stat.error,
            "error_kind": stat.error_kind, "se_replicas": stat.se_replicas,
            "se_within": stat.se_within, "n_replicas": stat.n, "values": stat.values,
            "runs": [str(r.path) for r in stat.runs], "convergence": stat.convergence,
            "too_short": stat.too_short}


def evaluate_test(comp: Comparison, test: Test, scale: float) -> dict[str, Any]:
    """One test at one charge scale: verdict, numbers behind it and reasons."""
    where = [test.at] + ([test.than_at] if test.than_at is not None else [])
    sites = [find_site(comp, test.system, test.mode, a, scale) for a in where]
    out: dict[str, Any] = {"charge_scale": scale, "reasons": [], "numbers": []}
    absent = [concentration_label(test.mode, a) for a, s in zip(where, sites, strict=True)
              if s is None]
    if absent:
        out["reasons"].append(_missing_reason(comp, test, absent, scale))
        out |= {"verdict": "inconclusive", "convergence": "runs missing", "summary": "no runs"}
        return out
    found = [s for s in sites if s is not None]
    options = [candidates(comp, s, test.quantity) for s in found]
    out["numbers"] = [[_stat_json(st, start) | {"at": s.concentration} for start, st in opt]
                      for s, opt in zip(found, options, strict=True)]
    out["reasons"] += _quality_reasons(comp, found, options, test)
    decisions = {_combo(test, combo) for combo in itertools.product(*options)}
    if len(decisions) > 1 or None in decisions:
        if len(decisions - {None}) > 1:
            out["reasons"].append("the two starts disagree and give different verdicts "
                                  "(not converged; the true value lies between them)")
        elif None in decisions:
            out["reasons"].append(_straddle_reason(test, options))
    out["verdict"] = (decisions.pop() if not out["reasons"] and len(decisions) == 1
                      else "inconclusive")
    out["verdict"] = out["verdict"] or "inconclusive"
    out["convergence"] = _convergence(comp, found, test.quantity, options)
    out["summary"] = " vs ".join(
        " or ".join(f"{_pm(st)} ({site.label}" + ("" if start == "all" else f", {start}") + ")"
                   for start, st in opt) for site, opt in zip(found, options, strict=True))
    out["needs"] = _needs([st for opt in options for _, st in opt])
    out |= _test_summary(found, options)
    return out


def _combo(test: Test, combo: Sequence[tuple[str, Stat]]) -> str | None:
    stats = [st for _, st in combo]
    if any(st.mean is None for st in stats):
        return None
    exact = all(st.error_kind == "exact" for st in stats)
    if test.threshold is not None:
        return _decide(float(stats[0].mean or 0) - test.threshold, stats[0].error, test.compare,
                       exact)
    a, b = stats
    sigma = (math.hypot(a.error, b.error) if a.error is not None and b.error is not None
             else None)
    return _decide(float(a.mean or 0) - float(b.mean or 0), sigma, test.compare, exact)


def _quality_reasons(comp: Comparison, sites: Sequence[Site],
                     options: Sequence[list[tuple[str, Stat]]], test: Test) -> list[str]:
    reasons = []
    for site, opt in zip(sites, options, strict=True):
        label = f"{site.system} at {site.label}"
        check = comp.checks.get(site)
        if check is not None and check.converged is not True:
            reasons_line = check.describe()
            if check.converged is None:
                reasons.append(f"{label}: {reasons_line}")
        for start, stat in opt:
            tag = "" if start == "all" else f" ({start} start)"
            if stat.mean is None:
                reasons.append(f"{label}{tag}: {test.quantity.name} not available in "
                               "analysis.json")
            elif stat.too_short:
                why = "; ".join(f"{text} ({stat.too_short.count(text)} of {stat.n} runs)"
                                for text in dict.fromkeys(stat.too_short))
                reasons.append(f"{label}{tag}: production too short against the measured "
                               f"correlation/residence time: {why}")
            elif stat.time_unknown:
                reasons.append(f"{label}{tag}: convergence unknown (analysis.json has no "
                               "correlation or residence time)")
            elif stat.error is None:
                reasons.append(f"{label}{tag}: no error bar for {test.quantity.name}")
            elif stat.error == 0 and stat.error_kind != "exact":
                reasons.append(f"{label}{tag}: {test.quantity.name} did not change in any "
                               "frame or replica, so there is no error estimate (a frozen "
                               "state, not a perfect measurement)")
    return reasons


def _straddle_reason(test: Test, options: Sequence[list[tuple[str, Stat]]]) -> str:
    first = options[0][0][1]
    if test.threshold is not None:
        gap, sigma = abs(float(first.mean or 0) - test.threshold), first.error
        text = (f"the error bar straddles the threshold: {test.quantity.name} = "
                f"{_pm(first)} is within {SIGMA:g} sigma of {test.threshold:g}")
    else:
        second = options[1][0][1]
        gap = abs(float(first.mean or 0) - float(second.mean or 0))
        sigma = (math.hypot(first.error, second.error)
                 if first.error is not None and second.error is not None else None)
        text = (f"the difference is within {SIGMA:g} combined sigma: {_pm(first)} vs "
                f"{_pm(second)}")
    if sigma and gap > 0 and first.n >= 1:
        n = math.ceil(first.n * (SIGMA * sigma / gap) ** 2)
        text += (f"; about {n} replicas of this length would resolve it if the mean held "
                 "(error ~ 1/sqrt(n))")
    return text


def _needs(stats: Sequence[Stat]) -> str:
    """What a firmer answer needs in production time per run (from the measured tau)."""
    if any(st.unresolved for st in stats):
        return ("a residence time is longer than the longest lag analysed: run longer until it "
                "is resolved, then >= 10 x that time")
    needed = [st.needed_production_ns for st in stats if st.needed_production_ns is not None]
    prods = [r.production_ps / 1000.0 for st in stats for r in st.runs
             if r.production_ps is not None]
    if not needed:
        return "no time scale measured"
    if prods and min(prods) >= max(needed):
        return (f"production is long enough (10 x tau = {max(needed):.3g} ns, runs of "
                f"{min(prods):.3g} ns); a smaller error needs more replicas (error ~ 1/sqrt(n))")
    now = f"; now {min(prods):.3g} ns" if prods else ""
    return f">= {max(needed):.3g} ns of production per run (10 x tau{now})"


def _pm(stat: Stat) -> str:
    if stat.mean is None:
        return "n/a"
    return f"{stat.mean:.3f}" if stat.error is None else cell(stat)


def _missing_reason(comp: Comparison, test: Test, absent: list[str], scale: float) -> str:
    def wanted(params: dict[str, Any]) -> bool:
        value = next((params[k] for k in ("concentration", "molality", "ratio") if k in params),
                     None)
        labels = {concentration_label(test.mode, float(value))} if isinstance(
            value, (int, float)) else set()
        return params.get("system") == test.system and (not labels or bool(labels & set(absent)))

    failed = [m for m in comp.runset.missing if m.get("error") and wanted(m["params"])]
    extra = "; ".join(f"task {m['task']}: {m['state']}: {m['error']}" for m in failed[:3])
    return (f"runs missing: no analysed run of {test.system} at {', '.join(absent)} with "
            f"charge scale {scale:g}" + (f" ({extra})" if extra else ""))


def _test_summary(sites: Sequence[Site], options: Sequence[list[tuple[str, Stat]]]
                  ) -> dict[str, Any]:
    runs: dict[str, Run] = {str(r.path): r for opt in options for _, st in opt for r in st.runs}
    total = [r.simulated_ns for r in runs.values() if r.simulated_ns is not None]
    return {"simulated_ns": sum(total) if total else None,
            "platforms": sorted({r.platform for r in runs.values()}),
            "runs": sorted(runs)}


def _convergence(comp: Comparison, sites: Sequence[Site], quantity: Quantity,
                 options: Sequence[list[tuple[str, Stat]]]) -> str:
    """'converged', 'not converged (starts disagree)', 'too short', 'unknown' or 'exact'."""
    if quantity.source == "composition":
        return "exact (built composition)"
    if any(comp.checks.get(s) is not None and comp.checks[s].converged is False for s in sites):
        return "not converged (starts disagree)"
    stats = [st for opt in options for _, st in opt]
    if any(st.too_short for st in stats):
        return "too short"
    if any(st.time_unknown for st in stats):
        return "unknown"
    checked = all(comp.checks.get(s) is not None for s in sites)
    return "converged (two starts agree)" if checked else "converged in time (one start)"


def evaluate_over_scales(comp: Comparison, test: Test) -> dict[str, Any]:
    """A test at every charge scale with runs of its system; the combined verdict."""
    scales = sorted({s.charge_scale for s in comp.sites(test.system) if s.mode == test.mode})
    if test.quantity.source == "composition":
        return _composition_test(comp, test)
    out: dict[str, Any] = {"test": test.describe(), "quantity": test.quantity.name,
                           "system": test.system, "mode": test.mode, "at": test.at,
                           "compare": test.compare, "threshold": test.threshold,
                           "than_at": test.than_at, "by_charge_scale": {}}
    if not scales:
        out |= {"verdict": "inconclusive", "charge_scales": [],
                "reasons": [f"runs missing: no analysed run of {test.system} "
                            f"({concentration_label(test.mode, test.at)})"],
                "convergence": "no runs"}
        return out
    results = {}
    for scale in scales:
        results[f"{scale:g}"] = evaluate_test(comp, test, scale)
    out["by_charge_scale"] = results
    out["charge_scales"] = scales
    verdicts = {r["verdict"] for r in results.values()}
    reasons = [f"charge scale {k}: {why}" for k, r in results.items() for why in r["reasons"]]
    per_scale = ", ".join(f"{k}: {r['verdict']}" for k, r in results.items())
    if {"supported", "contradicted"} <= verdicts:
        reasons.insert(0, f"the verdict flips between charge scales ({per_scale})")
    elif len(verdicts) > 1:
        reasons.insert(0, f"decided at some charge scales only ({per_scale})")
    out["verdict"] = verdicts.pop() if len(verdicts) == 1 else "inconclusive"
    out["reasons"] = reasons
    out["convergence"] = "; ".join(sorted({f"{r['convergence']}" for r in results.values()}))
    return out


def _composition_test(comp: Comparison, test: Test) -> dict[str, Any]:
    """A test on the built composition (spec.yaml counts; any run directory, any scale)."""
    pool = [r for r in comp.runset.runs + comp.runset.built
            if r.system == test.system and r.mode == test.mode]
    where = [test.at] + ([test.than_at] if test.than_at is not None else [])
    stats = [summarise([r for r in pool if math.isclose(r.requested, a, rel_tol=1e-6)],
                       test.quantity) for a in where]
    result: dict[str, Any] = {"charge_scale": "any", "reasons": [],
                              "convergence": "exact (built composition)",
                              "numbers": [[_stat_json(st, "all") | {"at": a}]
                                          for a, st in zip(where, stats, strict=True)]}
    absent = [concentration_label(test.mode, a) for a, st in zip(where, stats, strict=True)
              if st.mean is None]
    if absent:
        result["reasons"].append(f"runs missing: no built run directory of {test.system} at "
                                 f"{', '.join(absent)}")
        verdict = None
    else:
        verdict = _combo(test, [("all", st) for st in stats])
    result |= {"verdict": verdict or "inconclusive",
               "summary": " vs ".join(f"{_pm(st)} ({concentration_label(test.mode, a)})"
                                      if st.mean is not None else "no runs"
                                      for a, st in zip(where, stats, strict=True))}
    result |= _test_summary([], [[("all", st)] for st in stats])
    return {"test": test.describe(), "quantity": test.quantity.name, "system": test.system,
            "mode": test.mode, "at": test.at, "compare": test.compare,
            "threshold": test.threshold, "than_at": test.than_at,
            "by_charge_scale": {"any": result}, "charge_scales": [],
            "verdict": result["verdict"], "convergence": result["convergence"],
            "reasons": [f"{why}" for why in result["reasons"]]}


def evaluate_claim(comp: Comparison, claim: Claim) -> dict[str, Any]:
    """The claim's verdict, reasons and the numbers, runs and platforms behind it."""
    tests = [evaluate_over_scales(comp, t) for t in claim.tests]
    verdicts = [t["verdict"] for t in tests]
    if "contradicted" in verdicts:
        verdict = "contradicted"
    elif all(v == "supported" for v in verdicts):
        verdict = "supported"
    else:
        verdict = "inconclusive"
    runs = sorted({r for t in tests for res in t["by_charge_scale"].values()
                   for r in res.get("runs", [])})
    by_path = {str(r.path): r for r in comp.runset.runs + comp.runset.built}
    used = [by_path[p] for p in runs if p in by_path]
    total = [r.simulated_ns for r in used if r.simulated_ns is not None]
    out: dict[str, Any] = {"id": claim.id, "title": claim.title, "statement": claim.statement,
           "source": claim.source, "verdict": verdict,
           "reasons": [f"{t['test']}: {why}" for t in tests for why in t["reasons"]],
           "explanation": [_explain(t) for t in tests],
           # composition tests hold at any scale: then the scales the runs behind them used
           "charge_scales": sorted({s for t in tests for s in t.get("charge_scales", [])}
                                   or {r.charge_scale for r in used
                                       if not math.isnan(r.charge_scale)}),
           "platforms": sorted({r.platform for r in used}),
           "simulated_ns": sum(total) if total else None,
           "n_runs": len(used),
           "convergence": "; ".join(dict.fromkeys(t["convergence"] for t in tests)),
           "uncertainty": _uncertainty_kind(tests), "tests": tests, "runs": runs}
    if claim.notes:
        out["notes"] = claim.notes
    if any(t.quantity.source == "composition" for t in claim.tests):
        out["melt"] = melt_evidence(comp, claim.tests[0].system)
    return out


def _explain(test: dict[str, Any]) -> str:
    """'TEST: supported (scale 0.8: 0.62 ± 0.03)'."""
    numbers = "; ".join(f"charge scale {k}: {r.get('summary', 'no runs')}"
                        for k, r in test["by_charge_scale"].items())
    return f"{test['test']}: {test['verdict']}" + (f" ({numbers})" if numbers else "")


def _uncertainty_kind(tests: Sequence[dict[str, Any]]) -> str:
    kinds = {n["error_kind"] for t in tests for r in t["by_charge_scale"].values()
             for site in r.get("numbers", []) for n in site}
    if not kinds:
        return "none (no runs)"
    if kinds == {"exact"}:
        return "exact (counts)"
    if "within-run" in kinds:
        return "within-run block errors only for some numbers (one replica): lower bounds"
    return "across replicas"


def melt_evidence(comp: Comparison, system: str) -> dict[str, Any]:
    """What the simulated melt measured: anions per cation shell at each ratio.

    Classical MD with fixed bonds cannot change the speciation, so this is structure beside the
    claim (which is judged on the built composition), not evidence for it.
    """
    shells: list[dict[str, Any]] = []
    for site in comp.sites(system):
        runs = [r for rs in comp.site_runs(site).values() for r in rs]
        cns = {}
        for partner in comp.partners(system):
            stat = summarise(runs, f"cn:{partner}")  # mean None: no run has this partner
            if stat.mean is not None:
                cns[partner] = {"mean": stat.mean, "error": stat.error,
                                "error_kind": stat.error_kind}
        if cns:
            cation = str(runs[0].analysis.get("cation", "cation"))
            shells.append({"at": site.concentration, "label": site.label, "cation": cation,
                           "cn": cns, "n_runs": len(runs),
                           "runs": [str(r.path) for r in runs]})
    if not shells:
        return {"simulated": False, "note": "no melt run analysed: speciation from the built "
                "composition only"}
    return {"simulated": True, "shells": shells,
            "note": "classical MD with fixed bonds cannot change the AlCl4-/Al2Cl7- "
                    "speciation; the melt runs check structure, not chemistry"}


RULES = {
    "decision_band_sigma": SIGMA,
    "time_factor": TIME_FACTOR,
    "min_effective_samples": MIN_EFFECTIVE_SAMPLES,
    "error": "max(std error across replicas, propagated within-run block error) for n >= 2 "
             "replicas; within-run block error (a lower bound) for one",
    "two_starts": "converged when SSIP, CIP and AGG each agree within 2 combined errors; "
                  "otherwise each start is evaluated and a verdict stands only if both give it",
    "charge_scales": "the verdict must be the same at every charge scale simulated",
}


def evaluate_claims(comp: Comparison, claims: ClaimsFile | None = None) -> dict[str, Any]:
    """Every claim's verdict (the claims.json document)."""
    claims = claims or load_claims()
    return {"claims_file": claims.path, "rules": RULES,
            "sources": [str(p) for p in comp.runset.sources],
            "n_runs": len(comp.runset.runs), "missing": comp.runset.missing,
            "claims": [evaluate_claim(comp, c) for c in claims.claims]}
