"""Compare run directories: points (system x concentration x charge scale x start), replica
statistics, the two-start convergence check, and CSV / Markdown tables.

Statistics of a quantity at a point (replicas = runs that differ only in seed):

* ``mean``: mean over replicas;
* ``se_replicas``: std(values, ddof=1) / sqrt(n), for n >= 2;
* ``se_within``: the runs' own block errors propagated to the mean,
  sqrt(sum e_i^2) / n;
* ``error`` (what verdicts use): max(se_replicas, se_within) when n >= 2
  (``error_kind`` "replicas"), so two replicas that agree by chance do not
  shrink it below what each run's blocks say; se_within when n = 1
  ("within-run": block errors, a lower bound when shells outlive a block).

Two-start check: where a system x concentration x charge scale has both a
``dissociated`` and a ``paired`` start, it is *converged* when, for each of
SSIP, CIP and AGG, |mean_d - mean_p| <= 2 sqrt(err_d^2 + err_p^2); otherwise
*not converged* and both values are shown (the true value lies between).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solvflow.analysis.stats import replica_mean_stderr
from solvflow.campaign.runs import (
    TIME_FACTOR,
    Quantity,
    Run,
    RunSet,
    find_runs,
    parse_quantity,
)
from solvflow.errors import InputError

SIGMA = 2.0  # agreement / decision band, in combined standard errors
STATES = ("SSIP", "CIP", "AGG")
TWO_STARTS = ("dissociated", "paired")
MODE_UNIT = {"molarity": "M", "molality": "mol/kg", "ratio": "salt:solvent",
              "lewis_ratio": "r", "neat": "neat"}


@dataclass(frozen=True, order=True)
class Site:
    """A system x composition x charge scale (all starts and seeds)."""

    system: str
    mode: str
    concentration: float
    charge_scale: float

    @property
    def label(self) -> str:
        return concentration_label(self.mode, self.concentration)


@dataclass(frozen=True, order=True)
class Point:
    """A site with one start state: its runs are replicas (different seeds)."""

    site: Site
    start: str


def concentration_label(mode: str, value: float) -> str:
    """'1 M', '2 mol/kg', 'r = 1.5', 'salt:solvent 0.25'."""
    unit = MODE_UNIT.get(mode, mode)
    if mode == "lewis_ratio":
        return f"r = {value:g}"
    if mode == "ratio":
        return f"salt:solvent {value:g}"
    return f"{value:g} {unit}"


@dataclass
class Stat:
    """A quantity at a point or site: replica mean, errors, and the runs behind it."""

    quantity: str
    mean: float | None
    error: float | None
    error_kind: str
    se_replicas: float | None
    se_within: float | None
    values: list[float]
    runs: list[Run]
    too_short: list[str] = field(default_factory=list)
    time_unknown: bool = False
    tau_ps: float | None = None  # longest correlation/residence time over the runs
    unresolved: bool = False  # a residence time was longer than the longest lag analysed

    @property
    def needed_production_ns(self) -> float | None:
        """Production per run that the measured time scale asks for (10 tau), ns."""
        return None if self.tau_ps is None else TIME_FACTOR * self.tau_ps / 1000.0

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def convergence(self) -> str:
        """'ok', 'too short' (see too_short) or 'unknown' (no time scale measured)."""
        if self.too_short:
            return "too short"
        return "unknown" if self.time_unknown else "ok"


def summarise(runs: Sequence[Run], quantity: Quantity | str) -> Stat:
    """Replica statistics of ``quantity`` over ``runs`` (runs lacking it are left out)."""
    q = parse_quantity(quantity) if isinstance(quantity, str) else quantity
    used, values, errors, short, taus = [], [], [], [], []
    unknown = unresolved = False
    for run in runs:
        m = run.measure(q)
        if m.value is None:
            continue
        used.append(run)
        values.append(m.value)
        errors.append(m.error)
        if q.source != "analysis":
            continue
        taus += [m.tau_ps] if m.tau_ps is not None else []
        unresolved |= m.unresolved
        reason = _time_check(run, m.tau_ps, m.unresolved, m.few)
        if reason:
            short.append(reason)
        unknown |= reason is None and m.tau_ps is None and m.effective_samples is None
    if not values:
        return Stat(q.name, None, None, "none", None, None, [], [])
    n = len(values)
    mean_or_none, headline, method = replica_mean_stderr(values, errors)
    mean = float(mean_or_none if mean_or_none is not None else math.nan)
    se_rep = headline if method == "across_replicas" else None
    se_in = (math.sqrt(sum(e * e for e in errors if e is not None)) / n
             if all(e is not None for e in errors) else None)
    error: float | None
    if q.source == "composition":
        error, kind = 0.0, "exact"
    elif n >= 2 and se_rep is not None:
        error, kind = (max(se_rep, se_in) if se_in is not None else se_rep), "replicas"
    else:
        error, kind = se_in, ("within-run" if se_in is not None else "none")
    return Stat(q.name, mean, error, kind, se_rep, se_in, values, used, short, unknown,
                max(taus) if taus else None, unresolved)


def _time_check(run: Run, tau: float | None, unresolved: bool, few: bool) -> str | None:
    """Why the production is too short for this quantity (every reason), or None."""
    reasons = []
    production = run.production_ps
    if tau is not None and production is not None and production < TIME_FACTOR * tau:
        reasons.append(f"production {duration(production)} < {TIME_FACTOR:g} x "
                       f"{duration(tau)}")
    if few:
        reasons.append("fewer than 10 effective samples")
    if unresolved:
        reasons.append("residence time longer than the longest lag analysed")
    return ", ".join(reasons) or None


def duration(ps: float) -> str:
    """'500 ps' or '12.5 ns' (ps given)."""
    return f"{ps / 1000.0:.3g} ns" if ps >= 1000.0 else f"{ps:.3g} ps"


@dataclass
class StartCheck:
    """Two-start check at a site: SSIP/CIP/AGG of the dissociated and paired starts."""

    site: Site
    converged: bool | None  # None: an error bar is missing, agreement cannot be judged
    stats: dict[str, dict[str, Stat]]  # state -> start -> Stat

    def describe(self) -> str:
        parts = []
        for state in STATES:
            d, p = (self.stats[state][s] for s in TWO_STARTS)
            parts.append(f"{state} {fmt(d.mean, d.error)} (dissociated) vs "
                         f"{fmt(p.mean, p.error)} (paired)")
        verdict = {True: "agree", False: "DISAGREE (not converged; the true value lies "
                   "between)", None: "cannot be compared (an error is missing)"}[self.converged]
        return f"two starts {verdict}: " + "; ".join(parts)


def start_check(site: Site, by_start: dict[str, list[Run]]) -> StartCheck:
    """Compare the two starts' SSIP/CIP/AGG at ``site`` (rule in the module docstring)."""
    stats = {state: {s: summarise(by_start[s], f"{state.lower()}_fraction") for s in TWO_STARTS}
             for state in STATES}
    converged: bool | None = True
    for state in STATES:
        d, p = (stats[state][s] for s in TWO_STARTS)
        if d.mean is None or p.mean is None or d.error is None or p.error is None:
            converged = None if converged else converged
            continue
        if abs(d.mean - p.mean) > SIGMA * math.hypot(d.error, p.error):
            converged = False
    return StartCheck(site, converged, stats)


@dataclass
class Comparison:
    """Every analysed run grouped into points and sites, with the two-start checks."""

    runset: RunSet
    points: dict[Point, list[Run]]
    checks: dict[Site, StartCheck]

    @property
    def systems(self) -> list[str]:
        return sorted({p.site.system for p in self.points})

    def sites(self, system: str | None = None) -> list[Site]:
        return sorted({p.site for p in self.points if system in (None, p.site.system)})

    def site_runs(self, site: Site) -> dict[str, list[Run]]:
        return {p.start: runs for p, runs in sorted(self.points.items()) if p.site == site}

    def partners(self, system: str) -> list[str]:
        names: dict[str, None] = {}
        for point, runs in self.points.items():
            if point.site.system == system:
                for run in runs:
                    names.update(dict.fromkeys(run.partners))
        return list(names)

    def cation(self, system: str) -> str:
        return next(r.cation for p, rs in self.points.items() if p.site.system == system
                    for r in rs)


def compare(paths: Sequence[str | Path] | RunSet) -> Comparison:
    """Group the analysed runs under ``paths``; refuse a system analysed with two cations."""
    runset = paths if isinstance(paths, RunSet) else find_runs(paths)
    _check_cations(runset.runs)
    points: dict[Point, list[Run]] = {}
    for run in runset.runs:
        site = Site(run.system, run.mode, run.requested, run.charge_scale)
        points.setdefault(Point(site, run.start), []).append(run)
    for point, runs in points.items():
        runs.sort(key=lambda r: (str(r.seed), str(r.path)))
        _check_replicas(point, runs)
    comparison = Comparison(runset, dict(sorted(points.items())), {})
    for site in comparison.sites():
        by_start = comparison.site_runs(site)
        if all(s in by_start for s in TWO_STARTS):
            comparison.checks[site] = start_check(site, by_start)
    return comparison


def _model(run: Run) -> tuple[Any, ...]:
    """What replicas must share besides the point: temperature and force-field set-up."""
    ff = run.spec.get("forcefield") or {}
    return (run.spec.get("temperature_K"), ff.get("cutoff_nm"), tuple(ff.get("files") or ()))


def _check_replicas(point: Point, runs: Sequence[Run]) -> None:
    models = {_model(r): r for r in runs}
    if len(models) > 1:
        seen = "; ".join(f"{r.path}: T {m[0]} K, cutoff {m[1]} nm, {', '.join(m[2])}"
                         for m, r in models.items())
        raise InputError(f"runs of {point.site.system} at {point.site.label} (charge scale "
                         f"{point.site.charge_scale:g}, {point.start} start) differ in "
                         f"temperature or force field, so they are not replicas ({seen}); "
                         "compare them separately")


def _check_cations(runs: Sequence[Run]) -> None:
    by_system: dict[str, dict[str, Run]] = {}
    for run in runs:
        by_system.setdefault(run.system, {}).setdefault(run.cation, run)
    for system, cations in by_system.items():
        if len(cations) > 1:
            seen = "; ".join(f"{c} in {r.path}" for c, r in cations.items())
            raise InputError(f"runs of {system} were analysed with different cations ({seen}): "
                             "compare runs of one cation per system (re-analyse or pass "
                             "the run directories separately)")


def fmt(value: float | None, error: float | None, digits: int = 3) -> str:
    """'0.252 ± 0.012' (or 'n/a')."""
    if value is None:
        return "n/a"
    if error is None:
        return f"{value:.{digits}f} ± ?"
    return f"{value:.{digits}f} ± {error:.{digits}f}"


def point_quantities(comp: Comparison, system: str) -> list[str]:
    """The quantities tabulated for ``system``: CNs, pairing, anion states, molarity, dynamics."""
    partners = comp.partners(system)
    return ([f"cn:{p}" for p in partners]
            + ["ssip_fraction", "cip_fraction", "agg_fraction",
               "anion_free_fraction", "anion_cip_fraction", "anion_agg_fraction",
               "achieved_molarity_M", "alcl4_fraction", "al2cl7_fraction"]
            + [f"{k}:{p}" for k in ("residence_ps", "residence_continuous_ps") for p in partners]
            + ["conductivity_ne_S_m", "conductivity_eh_S_m"])


def top_shells(runs: Sequence[Run], n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` commonest shell compositions, fraction averaged over replicas."""
    totals: dict[str, float] = {}
    for run in runs:
        for shell in run.analysis.get("shells") or []:
            label = shell_label(run.cation, shell.get("composition") or {})
            totals[label] = totals.get(label, 0.0) + float(shell.get("fraction") or 0.0)
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:n]
    return [(label, total / max(len(runs), 1)) for label, total in ranked]


def shell_label(cation: str, composition: dict[str, Any]) -> str:
    """'Li(DME)2(FSI)' for {"DME": 2, "FSI": 1}; the bare cation for an empty shell."""
    parts = [f"({name})" + (str(count) if count != 1 else "")
             for name, count in composition.items() if count]
    return cation + "".join(parts)


def run_stats(runs: Sequence[Run]) -> dict[str, Any]:
    """Replicas, seeds, total and production simulated time (ns) and platforms of runs."""
    total = [r.simulated_ns for r in runs if r.simulated_ns is not None]
    prod = [r.production_ps for r in runs if r.production_ps is not None]
    return {"n": len(runs), "seeds": [r.seed for r in runs],
            "simulated_ns": sum(total) if total else None,
            "production_ns": sum(prod) / 1000.0 if prod else None,
            "platforms": sorted({r.platform for r in runs})}


CSV_COLUMNS = ["system", "cation", "mode", "concentration", "charge_scale", "start", "quantity",
               "mean", "error", "error_kind", "se_replicas", "se_within", "n_replicas",
               "simulated_ns", "production_ns", "convergence", "two_starts", "runs"]


def csv_rows(comp: Comparison, base: Path) -> list[dict[str, Any]]:
    """One row per point x quantity (long format); run paths relative to ``base``."""
    rows = []
    for point, runs in comp.points.items():
        site = point.site
        info = run_stats(runs)
        check = comp.checks.get(site)
        two = "" if check is None else {True: "agree", False: "disagree",
                                        None: "unknown"}[check.converged]
        for name in point_quantities(comp, site.system):
            stat = summarise(runs, name)
            if stat.mean is None:
                continue
            rows.append({
                "system": site.system, "cation": comp.cation(site.system), "mode": site.mode,
                "concentration": site.concentration, "charge_scale": site.charge_scale,
                "start": point.start, "quantity": name, "mean": stat.mean, "error": stat.error,
                "error_kind": stat.error_kind, "se_replicas": stat.se_replicas,
                "se_within": stat.se_within, "n_replicas": stat.n,
                "simulated_ns": info["simulated_ns"], "production_ns": info["production_ns"],
                "convergence": stat.convergence, "two_starts": two,
                "runs": ";".join(relpath(r.path, base) for r in stat.runs)})
    return rows


def relpath(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` with forward slashes (a Markdown link target)."""
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def write_tables(comp: Comparison, outdir: str | Path) -> list[Path]:
    """Write compare.csv and compare.md into ``outdir``; return their paths."""
    from solvflow.campaign.tables import markdown_tables

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "compare.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in csv_rows(comp, out):
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    md_path = out / "compare.md"
    md_path.write_text("# Comparison\n\n" + markdown_tables(comp, out) + "\n", encoding="utf-8")
    return [csv_path, md_path]
