"""Markdown tables of a :class:`~solvflow.campaign.compare.Comparison` (links relative to a folder).

Cells read ``mean ± error``; a dagger marks a within-run error (one replica:
block error, a lower bound), otherwise the error is over replicas (see
:mod:`solvflow.campaign.compare`). Every row ends with links to its run
directories, labelled by seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from solvflow.campaign.compare import (
    STATES,
    TWO_STARTS,
    Comparison,
    Point,
    Stat,
    fmt,
    relpath,
    run_stats,
    summarise,
    top_shells,
)
from solvflow.campaign.runs import Run

LEGEND = ("Cells are mean ± error over replicas (max of the standard error across replicas "
          "and the propagated within-run block error); † marks a single replica (within-run "
          "block error only, a lower bound). *ns*: all MD simulated / production analysed, "
          "summed over replicas. *time*: `ok` when the production is at least 10 x the "
          "longest correlation or residence time; `too short` otherwise; `unknown` when the "
          "analysis measured neither.")


def cell(stat: Stat, digits: int = 3) -> str:
    """``0.252 ± 0.012`` (``†`` for a within-run error), ``0.708 (exact)`` for built-box
    counts, ``n/a`` when absent."""
    if stat.mean is None:
        return "n/a"
    if stat.error_kind == "exact":  # counts of the built box: no statistical error
        return f"{stat.mean:.{digits}f} (exact)"
    if stat.error == 0:  # a frozen state, not a zero error
        return f"{stat.mean:.{digits}f} ± 0 (no change in any frame: no error estimate)"
    mark = " †" if stat.error_kind == "within-run" else ""
    return fmt(stat.mean, stat.error, digits) + mark


def run_links(runs: Sequence[Run], base: Path) -> str:
    """``[s1](runs/a) [s2](runs/b)``: one link per run directory, labelled by seed."""
    return " ".join(f"[s{r.seed}]({relpath(r.path, base)})" for r in runs)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _ns(runs: Sequence[Run]) -> str:
    info = run_stats(runs)
    total = "?" if info["simulated_ns"] is None else f"{info['simulated_ns']:.3g}"
    prod = "?" if info["production_ns"] is None else f"{info['production_ns']:.3g}"
    return f"{total} / {prod}"


def _convergence(comp: Comparison, point: Point, stats: Sequence[Stat]) -> str:
    states = {s.convergence for s in stats if s.mean is not None}
    time = "too short" if "too short" in states else ("unknown" if "unknown" in states
                                                      else "ok")
    check = comp.checks.get(point.site)
    if check is None:
        return time
    starts = {True: "starts agree", False: "**starts disagree**",
              None: "starts not comparable"}[check.converged]
    return f"{time}; {starts}"


def _molarity(runs: Sequence[Run]) -> str:
    stat = summarise(runs, "achieved_molarity_M")
    if stat.mean is None:
        return "n/a"
    spread = f" ± {stat.se_replicas:.3f}" if stat.se_replicas is not None else ""
    return f"{stat.mean:.3f}{spread}"


def system_tables(comp: Comparison, system: str, base: Path) -> str:
    """Markdown for one system: coordination and pairing; anion states and shells."""
    partners = comp.partners(system)
    head = ["concentration", "charge scale", "start", "n", "ns", "M after NPT"]
    pairing_rows, anion_rows = [], []
    for point, runs in comp.points.items():
        if point.site.system != system:
            continue
        key = [point.site.label, f"{point.site.charge_scale:g}", point.start, str(len(runs))]
        cns = [summarise(runs, f"cn:{p}") for p in partners]
        pair = [summarise(runs, f"{s.lower()}_fraction") for s in STATES]
        anion = [summarise(runs, f"anion_{s.lower()}_fraction") for s in ("free", "CIP", "AGG")]
        pairing_rows.append(key + [_ns(runs), _molarity(runs)] + [cell(s) for s in cns + pair]
                            + [_convergence(comp, point, cns + pair), run_links(runs, base)])
        shells = "; ".join(f"{label} {frac:.2f}" for label, frac in top_shells(runs))
        anion_rows.append(key + [cell(s) for s in anion] + [shells or "n/a",
                                                           run_links(runs, base)])
    cation = comp.cation(system)
    dynamics = dynamics_table(comp, system, base)
    out = [f"### {system} (cation {cation})", "",
           _table(head + [f"CN {p}" for p in partners] + list(STATES) + ["time; starts", "runs"],
                  pairing_rows), "",
           _table(head[:4] + ["anion free", "anion CIP", "anion AGG", "top shells (fraction)",
                              "runs"], anion_rows)] + (["", dynamics] if dynamics else [])
    return "\n".join(out)


def dynamics_table(comp: Comparison, system: str, base: Path) -> str:
    """Residence times (intermittent / continuous) and conductivity, where analysed."""
    partners = comp.partners(system)
    rows = []
    for point, runs in comp.points.items():
        if point.site.system != system:
            continue
        res = [_residence(runs, p) for p in partners]
        cond = [summarise(runs, q) for q in ("conductivity_ne_S_m", "conductivity_eh_S_m")]
        if all(r == "n/a" for r in res) and all(c.mean is None for c in cond):
            continue
        rows.append([point.site.label, f"{point.site.charge_scale:g}", point.start,
                     str(len(runs)), *res, *[cell(c, 2) for c in cond], run_links(runs, base)])
    if not rows:
        return ""
    return _table(["concentration", "charge scale", "start", "n"]
                  + [f"residence {p} / ps (interm. / cont.)" for p in partners]
                  + ["σ Nernst-Einstein / S m⁻¹", "σ Einstein-Helfand / S m⁻¹", "runs"], rows)


def _residence(runs: Sequence[Run], partner: str) -> str:
    """'12.3 / 4.5' (replica means); '> lag' when a run's time exceeded the longest lag."""
    parts = []
    for kind, key in (("residence_ps", "residence_times_ps"),
                      ("residence_continuous_ps", "residence_times_continuous_ps")):
        stat = summarise(runs, f"{kind}:{partner}")
        present = any(partner in (r.analysis.get(key) or {}) for r in runs)
        if stat.mean is not None and stat.n == len(runs):
            parts.append(f"{stat.mean:.3g}")
        elif present:
            parts.append("> longest lag")
        else:
            parts.append("n/a")
    return " / ".join(parts) if any(p != "n/a" for p in parts) else "n/a"


def start_table(comp: Comparison, base: Path) -> str:
    """The two-start check of every site that has both starts ('' when none has)."""
    if not comp.checks:
        return ""
    rows = []
    for site, check in comp.checks.items():
        runs = comp.site_runs(site)
        cells = [cell(check.stats[s][t]) for s in STATES for t in TWO_STARTS]
        verdict = {True: "converged (agree within 2σ)",
                   False: "**not converged**: true value between the two",
                   None: "cannot tell (error missing)"}[check.converged]
        links = " ".join(f"{t}: {run_links(runs[t], base)}" for t in TWO_STARTS)
        rows.append([site.system, site.label, f"{site.charge_scale:g}", *cells, verdict, links])
    header = ["system", "concentration", "charge scale"] + [
        f"{s} {t[:5]}." for s in STATES for t in TWO_STARTS] + ["verdict", "runs"]
    return ("### Two-start convergence check\n\nSSIP/CIP/AGG from boxes started dissociated "
            "and paired; converged when every fraction agrees within 2 combined standard "
            "errors.\n\n" + _table(header, rows))


def markdown_tables(comp: Comparison, base: Path) -> str:
    """Every system's tables, the two-start check and the legend."""
    parts = [LEGEND, ""]
    for system in comp.systems:
        parts += [system_tables(comp, system, base), ""]
    check = start_table(comp, base)
    if check:
        parts += [check, ""]
    return "\n".join(parts)
