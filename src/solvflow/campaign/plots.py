"""PNG plots of a comparison (matplotlib, Agg backend), one set per system.

* ``<system>_pairing.png``: stacked SSIP/CIP/AGG bars versus concentration,
  one bar per charge scale x start, error bars on each segment;
* ``<system>_cn.png``: coordination numbers versus concentration with error bars;
* ``<system>_rdf.png``: cation-partner RDFs (solid) and running coordination
  numbers (dashed, right axis), one colour per concentration;
* ``<system>_anion_states.png``: anion-centred free/CIP/AGG versus concentration
  (the Raman-comparable view), with measured points where claims.yaml has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from solvflow.campaign.compare import (
    MODE_UNIT,
    STATES,
    Comparison,
    Point,
    concentration_label,
    summarise,
)
from solvflow.campaign.runs import Run

_STATE_COLOURS = {"SSIP": "#4c72b0", "CIP": "#dd8452", "AGG": "#c44e52", "free": "#4c72b0"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(comp: Comparison, system: str) -> dict[tuple[float, str], list[tuple[Point,
                                                                            list[Run]]]]:
    """Points of ``system`` grouped by (charge scale, start), ordered by concentration."""
    out: dict[tuple[float, str], list[tuple[Point, list[Run]]]] = {}
    for point, runs in comp.points.items():
        if point.site.system == system:
            out.setdefault((point.site.charge_scale, point.start), []).append((point, runs))
    return out


def _label(key: tuple[float, str]) -> str:
    return f"scale {key[0]:g}, {key[1]}"


def _concentrations(comp: Comparison, system: str) -> list[float]:
    return sorted({s.concentration for s in comp.sites(system)})


def plot_pairing(comp: Comparison, system: str, path: Path) -> Path:
    """Stacked SSIP/CIP/AGG bars versus concentration, one bar per charge scale x start."""
    plt = _pyplot()
    concs = _concentrations(comp, system)
    by_conc: dict[float, list[tuple[Point, list[Run]]]] = {c: [] for c in concs}
    for point, runs in comp.points.items():
        if point.site.system == system:
            by_conc[point.site.concentration].append((point, runs))
    most = max(len(v) for v in by_conc.values())
    width = 0.8 / most
    fig, ax = plt.subplots(figsize=(min(12.0, max(5.0, 1.2 + 1.1 * len(concs) * most)), 4.2))
    for i, conc in enumerate(concs):
        group = by_conc[conc]
        for k, (point, runs) in enumerate(group):
            x = i + (k - (len(group) - 1) / 2) * width
            bottom = 0.0
            for state in STATES:
                stat = summarise(runs, f"{state.lower()}_fraction")
                height = stat.mean or 0.0
                ax.bar(x, height, width * 0.9, bottom=bottom, color=_STATE_COLOURS[state],
                       edgecolor="white", label=state if (i, k) == (0, 0) else None)
                if stat.error is not None:
                    ax.errorbar(x, bottom + height, yerr=stat.error, color="black", capsize=2,
                                lw=0.8)
                bottom += height
            flag = "*" if (check := comp.checks.get(point.site)) and not check.converged else ""
            ax.text(x, 1.02, f"{point.start}{flag}\n{point.site.charge_scale:g}, "
                    f"n={len(runs)}", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(range(len(concs)))
    ax.set_xticklabels([concentration_label(comp.sites(system)[0].mode, c) for c in concs])
    ax.set_ylim(0, 1.18)
    ax.set_ylabel("fraction of cations")
    ax.set_title(f"{system}: cation-centred states\n(above the bars: start, charge scale, "
                 "replicas; * = the two starts disagree)", fontsize=8)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=7, ncol=3, frameon=False)
    return _save(fig, path)


def _line_plot(comp: Comparison, system: str, quantities: Sequence[tuple[str, str]],
               ylabel: str, title: str, path: Path,
               measured: Sequence[tuple[float, str, float, str]] = ()) -> Path:
    """quantity (name, label) versus concentration: colour = quantity, marker = series."""
    from matplotlib.lines import Line2D

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    markers, styles = "osD^v<>", ["-", "--", ":", "-."]
    series = _series(comp, system)
    for k, (_key, points) in enumerate(series.items()):
        for j, (name, _text) in enumerate(quantities):
            stats = [(p.site.concentration, summarise(runs, name)) for p, runs in points]
            xs = [c for c, s in stats if s.mean is not None]
            ys = [s.mean for _, s in stats if s.mean is not None]
            es = [s.error or 0.0 for _, s in stats if s.mean is not None]
            if xs:
                ax.errorbar(xs, ys, yerr=es, marker=markers[k % len(markers)], capsize=3,
                            color=f"C{j}", ls=styles[k % len(styles)], lw=1.2)
    labels = dict(quantities)
    for x, name, value, _source in measured:
        j = [q for q, _ in quantities].index(name) if name in labels else 0
        ax.plot([x], [value], marker="*", ms=13, color=f"C{j}", mec="black", ls="none")
    handles = [Line2D([], [], color=f"C{j}", lw=2, label=label)
               for j, (_, label) in enumerate(quantities)]
    handles += [Line2D([], [], color="grey", marker=markers[k % len(markers)],
                       ls=styles[k % len(styles)], label=_label(key))
                for k, key in enumerate(series)]
    if measured:
        handles.append(Line2D([], [], color="grey", marker="*", ms=11, mec="black", ls="none",
                              label="measured (claims.yaml experiments)"))
    mode = comp.sites(system)[0].mode
    ax.set_xlabel(f"concentration ({MODE_UNIT.get(mode, mode)})")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5),
              frameon=False)
    return _save(fig, path)


def plot_rdf(comp: Comparison, system: str, path: Path) -> Path | None:
    """Cation-partner g(r) and running CN (first run of each point), one panel per partner."""
    plt = _pyplot()
    partners = comp.partners(system)
    first = [(p, runs[0]) for p, runs in comp.points.items()
             if p.site.system == system and runs[0].analysis.get("rdf")]
    if not partners or not first:
        return None
    fig, axes = plt.subplots(1, len(partners), figsize=(4.2 * len(partners), 3.6), squeeze=False)
    for ax, partner in zip(axes[0], partners, strict=True):
        twin = ax.twinx()
        top = 1.0
        for k, (point, run) in enumerate(first):
            rdf = (run.analysis.get("rdf") or {}).get(partner)
            if not rdf:
                continue
            label = f"{point.site.label}, {point.site.charge_scale:g}, {point.start}"
            ax.plot(rdf["r_nm"], rdf["g"], color=f"C{k}", lw=1.2, label=label)
            twin.plot(rdf["r_nm"], rdf["running_cn_sites"], color=f"C{k}", lw=0.9, ls="--")
            near = [n for r, n in zip(rdf["r_nm"], rdf["running_cn_sites"], strict=True)
                    if r <= 0.5]
            top = max(top, 1.3 * max(near, default=1.0))
            cut = (run.analysis.get("cutoffs_nm") or {}).get(partner)
            if cut:
                ax.axvline(cut, color=f"C{k}", lw=0.6, ls=":")
        twin.set_ylim(0, top)  # the first shells, not the r^3 growth beyond them
        ax.set_xlabel("r / nm")
        ax.set_ylabel(f"g(r) {comp.cation(system)}-{partner} sites")
        twin.set_ylabel("running CN (sites; dashed)")
        ax.set_title(f"{system}: {partner} (dotted: shell cutoff)", fontsize=9)
        ax.legend(fontsize=6, loc="upper right")
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def write_plots(comp: Comparison, outdir: str | Path,
                measured: Sequence[Any] = ()) -> list[Path]:
    """Every plot of every system into ``outdir``; ``measured``: claims.yaml experiments."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for system in comp.systems:
        written.append(plot_pairing(comp, system, out / f"{system}_pairing.png"))
        partners = comp.partners(system)
        cn_measured = [(e.at, e.quantity.name, e.value, e.source) for e in measured
                       if e.system == system and e.quantity.kind == "cn"]
        written.append(_line_plot(
            comp, system, [(f"cn:{p}", f"CN {p}") for p in partners],
            "molecules per cation shell", f"{system}: coordination numbers", out /
            f"{system}_cn.png", cn_measured))
        rdf = plot_rdf(comp, system, out / f"{system}_rdf.png")
        if rdf is not None:
            written.append(rdf)
        if any(summarise(rs, "anion_free_fraction").mean is not None
               for p, rs in comp.points.items() if p.site.system == system):
            anion_measured = [(e.at, e.quantity.name, e.value, e.source) for e in measured
                              if e.system == system and e.quantity.name.startswith("anion_")]
            written.append(_line_plot(
                comp, system, [("anion_free_fraction", "free"), ("anion_cip_fraction", "CIP"),
                               ("anion_agg_fraction", "AGG")],
                "fraction of anions", f"{system}: anion states (Raman-comparable)",
                out / f"{system}_anion_states.png", anion_measured))
    return written
