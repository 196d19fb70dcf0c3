"""``report.md``: the verdicts in a one-minute table, then the numbers, plots and provenance.

:func:`write_report` writes into one folder: ``report.md``, ``claims.json``,
``compare.csv``, ``compare.md`` and the PNG plots; every link in the report
is relative to that folder (run directories included), so the folder and the
campaign can move together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from solvflow.campaign.claims import ClaimsFile, evaluate_claims, load_claims
from solvflow.campaign.compare import (
    Comparison,
    compare,
    concentration_label,
    fmt,
    relpath,
    write_tables,
)
from solvflow.campaign.runs import QUANTITY_HELP, parse_quantity
from solvflow.campaign.tables import cell, markdown_tables, run_links

PACKAGES = ("solvflow", "openmm", "numpy", "scipy", "mdtraj", "rdkit", "numba", "matplotlib",
            "pyyaml", "packmol", "dask", "distributed")

DEFINITIONS = """\
- **First shell** of a cation: partner coordinating atoms within the shell radius; a molecule
  counts once. Campaign runs use one fixed radius per cation for every run and partner (the
  reference cation-O first-shell distance + 0.10 nm: Li 0.30, Mg 0.31, Ca 0.34 nm; the melt's
  EMIm+ C2-Cl 0.47 nm; `analysis/shell_cutoffs.yaml`); other cations, the first minimum of the
  run's own RDF.
  Each run's radii and their source are in its analysis.json (`cutoffs_nm`, `cutoff_source`).
- **Cation-centred** (each cation, each frame): **SSIP** no anion in the shell; **CIP** exactly
  one anion, and that anion touches no other cation; **AGG** otherwise (an anion shared with
  another cation, or two or more anions).
- **Anion-centred** (what Raman measures): **free** in no cation shell; **CIP** in exactly one;
  **AGG** in two or more.
- **CN P**: distinct molecules of partner P per cation shell.
- **Errors**: one standard error. With n >= 2 replicas (same point, different seeds): the larger
  of the standard error across replicas and the propagated within-run block error; with one
  replica: the block error (marked †, a lower bound when shells outlive a block).
- **Verdicts**: *supported* / *contradicted* when the number is beyond 2 standard errors on the
  claim's side of its threshold at every charge scale simulated, the production lasts >= 10
  correlation/residence times, and the two starts (where simulated) give the same verdict;
  *inconclusive* otherwise, with the reason. Full rules: `docs/claims.md`.
"""


def package_versions() -> dict[str, str]:
    """Installed versions of the packages behind the numbers ('not installed' otherwise)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _verdict_cell(verdict: str) -> str:
    return {"supported": "✅ **supported**", "contradicted": "❌ **contradicted**",
            "inconclusive": "❔ **inconclusive**"}.get(verdict, verdict)


def _key_number(claim: dict[str, Any], base: Path) -> str:
    """The first test's number(s) at each charge scale, linked to the runs behind it."""
    test = claim["tests"][0]
    parts = []
    for scale, result in test["by_charge_scale"].items():
        tag = "" if len(test["by_charge_scale"]) == 1 else f"scale {scale}: "
        links = " ".join(f"[{i + 1}]({relpath(Path(r), base)})"
                         for i, r in enumerate(result.get("runs", [])[:6]))
        parts.append(f"{tag}{short_name(test['quantity'])} {result.get('summary', 'no runs')}"
                     + (f" runs {links}" if links else ""))
    return "<br>".join(parts) or "no runs"


def short_name(quantity: str) -> str:
    """'SSIP', 'CIP+AGG', 'CN FSI', 'free anions', 'Al2Cl7- share' for the verdict table."""
    q = parse_quantity(quantity)
    names = {"ssip_fraction": "SSIP", "cip_fraction": "CIP", "agg_fraction": "AGG",
             "cip_plus_agg_fraction": "CIP+AGG", "anion_free_fraction": "free anions",
             "anion_cip_fraction": "anions in CIP", "anion_agg_fraction": "anions in AGG",
             "achieved_molarity_M": "M after NPT", "alcl4_fraction": "AlCl4- share",
             "al2cl7_fraction": "Al2Cl7- share"}
    if q.partner:
        return {"cn": "CN", "cn_atoms": "CN (sites)", "paired_fraction": "paired with"}[
            q.kind] + f" {q.partner}"
    return names.get(q.kind, q.name)


def _ns(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


_WHY = (("runs missing", "runs missing"), ("production too short", "production too short"),
        ("convergence unknown", "no time scale measured"),
        ("two starts disagree", "the two starts disagree"),
        ("flips between charge scales", "flips with the charge scale"),
        ("some charge scales only", "not decided at every charge scale"),
        ("straddles the threshold", "within 2σ of the threshold"),
        ("within 2 combined sigma", "difference within 2σ"),
        ("no error bar", "no error bar"), ("not available", "quantity not in analysis.json"))


def _why(claim: dict[str, Any]) -> str:
    """Short labels of the reasons a claim is not decided ('-' when it is)."""
    if claim["verdict"] != "inconclusive":
        return "-"
    text = " ".join(claim["reasons"])
    return ", ".join(label for key, label in _WHY if key in text) or "see details"


def verdict_table(doc: dict[str, Any], base: Path) -> str:
    """The one-minute table: claim, verdict, key number ± error, ns, charge scale, converged?"""
    lines = ["| # | claim | verdict | why not decided | key number ± error | simulated ns | "
             "charge scale | converged? |", "|---|---|---|---|---|---|---|---|"]
    for claim in doc["claims"]:
        scales = ", ".join(f"{s:g}" for s in claim["charge_scales"]) or "n/a"
        lines.append(f"| [{claim['id']}](#claim-{claim['id']}) | {claim['title']} | "
                     f"{_verdict_cell(claim['verdict'])} | {_why(claim)} | "
                     f"{_key_number(claim, base)} | {_ns(claim['simulated_ns'])} | {scales} | "
                     f"{claim['convergence']} |")
    return "\n".join(lines)


def claim_section(claim: dict[str, Any], base: Path) -> str:
    """One claim: statement, source, each test's numbers per charge scale, reasons, notes."""
    out = [f'<a id="claim-{claim["id"]}"></a>', f"### Claim {claim['id']}: {claim['title']}",
           "", f"> {claim['statement']}", ">", f"> Source: {claim['source']}", "",
           f"**Verdict: {claim['verdict']}.** Uncertainty: {claim['uncertainty']}. Platforms: "
           f"{', '.join(claim['platforms']) or 'n/a'}; {claim['n_runs']} runs, "
           f"{_ns(claim['simulated_ns'])} ns simulated.", "",
           "| test | charge scale | numbers (start) | n | verdict | convergence | runs |",
           "|---|---|---|---|---|---|---|"]
    for test in claim["tests"]:
        for scale, r in test["by_charge_scale"].items():
            n = "; ".join(str(x["n_replicas"]) for site in r.get("numbers", []) for x in site)
            links = " ".join(f"[{Path(p).name}]({relpath(Path(p), base)})"
                             for p in r.get("runs", []))
            out.append(f"| {test['test']} | {scale} | {r.get('summary', 'no runs')} | "
                       f"{n or 0} | {r['verdict']} | {r.get('convergence', '')} | "
                       f"{links or '-'} |")
    needs = sorted({r["needs"] for t in claim["tests"] for r in t["by_charge_scale"].values()
                    if r.get("needs")})
    if needs:
        out += ["", "What a firmer answer needs (from the measured correlation and residence "
                "times): " + "; ".join(needs) + "."]
    if claim["reasons"]:
        out += ["", "Why not decided:" if claim["verdict"] == "inconclusive" else "Caveats:"]
        out += [f"- {why}" for why in claim["reasons"]]
    if claim.get("notes"):
        out += ["", f"*Note:* {claim['notes']}"]
    if claim.get("melt"):
        melt = claim["melt"]
        if not melt["simulated"]:
            out += ["", f"*Simulated melt:* not simulated; {melt['note']}."]
        else:
            parts = []
            for shell in melt["shells"]:
                cns = ", ".join(f"{p} {fmt(v['mean'], v['error'])}"
                                + (" †" if v["error_kind"] == "within-run" else "")
                                for p, v in shell["cn"].items())
                parts.append(f"{shell['label']}: {cns}")
            cation = melt["shells"][0]["cation"]
            out += ["", f"*Simulated melt* (anions per {cation} first shell, {len(parts)} "
                    f"ratios): {'; '.join(parts)}. {melt['note'][:1].upper()}{melt['note'][1:]}."]
    return "\n".join(out)


def experiment_table(comp: Comparison, claims: ClaimsFile, base: Path) -> str:
    """Measured numbers beside the simulated ones (mean over starts and replicas per scale)."""
    from solvflow.campaign.claims import candidates, find_site
    from solvflow.campaign.compare import summarise

    lines = ["| system | composition | quantity | measured | simulated (charge scale) | "
             "source |", "|---|---|---|---|---|---|"]
    for exp in claims.experiments:
        sims = []
        pool = comp.runset.runs + comp.runset.built
        scales = sorted({r.charge_scale for r in pool if r.system == exp.system})
        for scale in scales:
            site = find_site(comp, exp.system, exp.mode, exp.at, scale)
            if exp.quantity.source == "composition":
                runs = [r for r in pool if r.system == exp.system and abs(r.requested - exp.at)
                        < 1e-9]
                options = [("all", summarise(runs, exp.quantity))]
            else:
                options = candidates(comp, site, exp.quantity) if site else []
            for start, stat in options:
                if stat.mean is None:
                    continue
                if exp.quantity.source == "composition":
                    text = f"{stat.mean:.3f} (exact: built box)"
                else:
                    where = "" if start == "all" else f", {start} start"
                    text = (f"{cell(stat) if stat.error is not None else f'{stat.mean:.3f}'} "
                            f"(scale {scale:g}{where})")
                sims.append(f"{text} {run_links(stat.runs, base)}")
            if exp.quantity.source == "composition":
                break
        lines.append(f"| {exp.system} | {concentration_label(exp.mode, exp.at)} | "
                     f"{exp.quantity.name} | {exp.value:g} | {'<br>'.join(sims) or 'not run'} "
                     f"| {exp.source} |")
    return "\n".join(lines)


def runs_table(comp: Comparison, base: Path) -> str:
    """Every run: link, system, composition, scale, start, seed, platform, ns, state."""
    lines = ["| run | system | composition | charge scale | start | seed | platform (precision) "
             "| protocol | simulated ns | production ps | ns/day | MD wall time | state |",
             "|---" * 13 + "|"]
    for run in sorted(comp.runset.runs, key=lambda r: (r.system, r.requested, r.charge_scale,
                                                       r.start, str(r.seed))):
        prod = "n/a" if run.production_ps is None else f"{run.production_ps:.4g}"
        lines.append(
            f"| [{run.path.name}]({relpath(run.path, base)}) | {run.system} | "
            f"{concentration_label(run.mode, run.requested)} | {run.charge_scale:g} | "
            f"{run.start} | {run.seed} | {run.platform} ({run.status.get('precision', '?')}) | "
            f"{run.status.get('protocol', '?')} | {_ns(run.simulated_ns)} | {prod} | "
            f"{_ns(run.status.get('ns_per_day'))} | {_wall(run.wall_time_s)} | "
            f"{run.status.get('state', '?')} |")
    return "\n".join(lines)


def _wall(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 600:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def provenance(comp: Comparison, command: str, claims_path: str = "") -> str:
    """The exact command, versions (now and recorded in the runs), force fields, platforms."""
    runs = comp.runset.runs
    recorded = sorted({f"solvflow {r.spec.get('solvflow_version')}, openmm "
                       f"{r.status.get('openmm_version')}" for r in runs})
    files = sorted({f for r in runs for f in (r.spec.get("forcefield") or {}).get("files", [])})
    ff = sorted({f"{(r.spec.get('forcefield') or {}).get('mixing', '?')}; cutoff "
                 f"{(r.spec.get('forcefield') or {}).get('cutoff_nm', '?')} nm; "
                 f"{(r.spec.get('forcefield') or {}).get('electrostatics', '?')}" for r in runs})
    scales = sorted({r.charge_scale for r in runs})
    platforms = sorted({f"{r.platform} ({r.status.get('precision', '?')})"
                        + (f", device {r.status['device']}" if r.status.get("device") else "")
                        for r in runs})
    versions = ", ".join(f"{k} {v}" for k, v in package_versions().items())
    walls = [r.wall_time_s for r in runs if r.wall_time_s is not None]
    simulated = [r.simulated_ns for r in runs if r.simulated_ns is not None]
    missing = comp.runset.missing
    lines = ["```bash", command, "```", "",
             f"- Report written with: {versions}.",
             f"- Versions recorded in the runs: {'; '.join(recorded) or 'n/a'}.",
             f"- Claims file: {claims_path}.",
             f"- Force-field files: {', '.join(files) or 'n/a'} (sources: `docs/forcefields.md`); "
             f"{' | '.join(ff) or 'n/a'}; ionic charge scale(s) "
             f"{', '.join(f'{s:g}' for s in scales)}.",
             f"- Platforms: {', '.join(platforms) or 'n/a'}.",
             f"- MD in all: {_ns(sum(simulated)) if simulated else 'n/a'} ns simulated; "
             f"{_wall(sum(walls)) if walls else 'n/a'} of MD wall time summed over "
             f"{len(walls)} runs (minimise to production, builds and analyses not included; "
             f"runs that ran side by side each count their own time).",
             f"- Sources: {', '.join(str(p) for p in comp.runset.sources)}; {len(runs)} analysed "
             f"runs, {len(missing)} without analysis."]
    return "\n".join(lines)


def _missing_section(comp: Comparison) -> str:
    if not comp.runset.missing:
        return ""
    lines = ["## Tasks without results", "", "| task | run directory | state | error |",
             "|---|---|---|---|"]
    for m in comp.runset.missing:
        error = str(m.get("error") or "").replace("|", "\\|").replace("\n", " ")[:200]
        lines.append(f"| {m.get('task') or '-'} | {m['rundir']} | {m.get('state') or '-'} | "
                     f"{error or '-'} |")
    return "\n".join(lines) + "\n"


def render(comp: Comparison, doc: dict[str, Any], claims: ClaimsFile, plots: Sequence[Path],
           base: Path, command: str) -> str:
    """The report's Markdown text (links relative to ``base``)."""
    runs = comp.runset.runs
    total = sum(r.simulated_ns or 0.0 for r in runs)
    counts = {v: sum(c["verdict"] == v for c in doc["claims"])
              for v in ("supported", "contradicted", "inconclusive")}
    head = [f"# Solvation claims: verdicts from {len(runs)} simulations", "",
            f"{len(runs)} analysed runs of {', '.join(comp.systems)}; {total:.3g} ns of MD in "
            f"all on {', '.join(sorted({r.platform for r in runs}))}. "
            f"Of {len(doc['claims'])} claims: {counts['supported']} supported, "
            f"{counts['contradicted']} contradicted, {counts['inconclusive']} inconclusive.",
            "", "## Verdicts", "",
            verdict_table(doc, base), "",
            "Key number: the claim's first test (value ± one standard error); details and "
            "every test below. Quantities: " + "; ".join(
                f"`{k}` {v}" for k, v in QUANTITY_HELP.items()
                if k in {t["quantity"] for c in doc["claims"] for t in c["tests"]}) + ".", "",
            "## Definitions", "", DEFINITIONS, "## Claims in detail", ""]
    body = [claim_section(c, base) + "\n" for c in doc["claims"]]
    tail = ["## Comparison with experiment", "", experiment_table(comp, claims, base), "",
            "## Numbers per system", "", markdown_tables(comp, base), "", "### Plots", ""]
    tail += [f"![{p.stem}]({relpath(p, base)})\n" for p in plots]
    tail += ["## Runs", "", runs_table(comp, base), "", _missing_section(comp),
             "## Reproduce", "", provenance(comp, command, claims.path), ""]
    return "\n".join(head + body + tail)


def write_report(paths: Sequence[str | Path], outdir: str | Path,
                 claims_path: str | Path | None = None, command: str = "solvflow report"
                 ) -> dict[str, Path]:
    """Write report.md, claims.json, compare tables and plots into ``outdir``."""
    from solvflow.campaign.plots import write_plots

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    claims = load_claims(claims_path)
    comp = compare(paths)
    doc = evaluate_claims(comp, claims)
    claims_json = out / "claims.json"
    claims_json.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    csv_path, md_path = write_tables(comp, out)
    plots = write_plots(comp, out, claims.experiments)
    report = out / "report.md"
    report.write_text(render(comp, doc, claims, plots, out, command), encoding="utf-8")
    return {"report": report, "claims": claims_json, "csv": csv_path, "markdown": md_path}
