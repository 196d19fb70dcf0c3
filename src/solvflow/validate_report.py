"""Tables (Markdown, JSON) and plots of validation results (see :mod:`solvflow.validate`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from solvflow.atomic import atomic_write
from solvflow.validate import rank_ion_sets

_SERIES_KEYS = ("density_series_g_cm3", "rdf", "cn_series")


def _ref(values: list[float], factor: float = 1.0, fmt: str = ".3f") -> str:
    low, high = values
    return f"{factor * low:{fmt}}" if low == high else f"{factor * low:{fmt}}-{factor * high:{fmt}}"


def _se(value: Any, fmt: str) -> str:
    return "n/a" if value is None else f"{value:{fmt}}"


def markdown(results: list[dict[str, Any]]) -> str:
    """Pass/miss tables: densities, then first shells, then the ion-set ranking."""
    dens = ["| run | density / g cm^-3 (+- s.e.) | N_eff | experiment | dev. % | tolerance "
            "| result | ns (equil+prod) | atoms | cutoff / nm | q scale | platform |",
            "|" + "---|" * 12]
    shell = ["| run | ion set | start | peak / A (+- s.e.) | first min / A | CN (+- s.e.) "
             "| CN at start | shell kept | CN by residue | reference peak / A, CN "
             "| result (peak, CN) | ns (equil+prod) | atoms | q scale |", "|" + "---|" * 14]
    for r in results:
        ns = f"{r['equilibration_ns']:g}+{r['production_ns']:g}"
        verdict = "pass" if r["passed"] else "**miss**"
        if r["kind"] == "density":
            dens.append(
                f"| {r['run_id']} | {r['density_g_cm3']:.3f} +- {_se(r['stderr'], '.3f')} | "
                f"{r['effective_samples']:g} | {_ref(r['reference']['density_g_cm3'])} | "
                f"{r['deviation_pct']:+.1f} | {100 * r['tolerance']['relative']:g} % | {verdict} "
                f"| {ns} | {r['n_atoms']} | {r['cutoff_nm']:g} | {r['charge_scale']:g} | "
                f"{r['platform']} |")
            continue
        ok = "/".join("pass" if r[k] else "miss" for k in ("peak_nm_passed", "cn_passed"))
        by_res = ", ".join(f"{k} {v:.2f}" for k, v in r["cn_by_residue"].items())
        shell.append(
            f"| {r['run_id']} | {r['ion_parameters']} | {r['start']} | {10 * r['peak_nm']:.2f} "
            f"+- {10 * r['peak_stderr_nm']:.2f} | {10 * r['first_min_nm']:.2f} | {r['cn']:.2f} "
            f"+- {_se(r['cn_stderr'], '.2f')} | {r['cn_first_frame']:.2f} | "
            f"{r['shell_retained']:.2f} | {by_res} | {_ref(r['reference']['peak_nm'], 10, '.2f')}"
            f", {_ref(r['reference']['cn'], 1, 'g')} | {ok} | {ns} | {r['n_atoms']} | "
            f"{r['charge_scale']:g} |")
    parts = []
    if len(dens) > 2:
        parts.append("\n".join(dens))
    if len(shell) > 2:
        parts.append("\n".join(shell))
    ranking = rank_ion_sets(results)
    if ranking:
        rows = ["| rank | ion set | passes (peak + CN) | runs | sum abs(peak dev) / A |",
                "|---|---|---|---|---|"]
        rows += [f"| {k} | {r['ion_parameters']} | {r['passes']} / {2 * r['runs']} | {r['runs']} "
                 f"| {10 * r['sum_abs_peak_dev_nm']:.2f} |" for k, r in enumerate(ranking, 1)]
        parts.append("\n".join(rows))
    return "\n\n".join(parts) + "\n"


def text_table(results: list[dict[str, Any]]) -> str:
    """A short plain-text pass/miss table for the terminal."""
    rows = [f"{'run':<44} {'measured':>24} {'reference':>14} {'result':>6}"]
    for r in results:
        if r["kind"] == "density":
            meas = f"{r['density_g_cm3']:.3f}+-{_se(r['stderr'], '.3f')} g/cm3"
            ref = _ref(r["reference"]["density_g_cm3"])
        else:
            meas = f"{10 * r['peak_nm']:.2f} A, CN {r['cn']:.2f}"
            ref = (f"{_ref(r['reference']['peak_nm'], 10, '.2f')} A, "
                   f"{_ref(r['reference']['cn'], 1, 'g')}")
        verdict = "pass" if r["passed"] else "MISS"
        rows.append(f"{r['run_id']:<44} {meas:>24} {ref:>14} {verdict:>6}")
    return "\n".join(rows)


def write_report(results: list[dict[str, Any]], out: str | Path, plots: bool = True) -> list[Path]:
    """results.json (no series), results.md and PNG plots under ``out``; the paths written."""
    out = Path(out)
    summary = [{k: v for k, v in r.items() if k not in _SERIES_KEYS} for r in results]
    ranking = rank_ion_sets(results)
    atomic_write(out / "results.json", json.dumps({"results": summary, "ion_set_ranking": ranking},
                                                  indent=1))
    atomic_write(out / "results.md", markdown(results))
    written = [out / "results.json", out / "results.md"]
    if plots and results:
        written += plot_results(results, out)
    return written


def plot_results(results: list[dict[str, Any]], out: Path) -> list[Path]:
    """density_traces.png (every run's density vs time) and rdfs.png (every shell run's g(r))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        if r["kind"] == "density":
            series = r["density_series_g_cm3"]
            times = [r["sample_ps"] * (k + 1) for k in range(len(series))]
            ax.plot(times, series, label=r["run_id"])
    if ax.lines:
        ax.set(xlabel="time / ps", ylabel="density / g cm$^{-3}$", title="NPT density")
        ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(out / "density_traces.png", dpi=120)
        written.append(out / "density_traces.png")
    plt.close(fig)
    shells = [r for r in results if r["kind"] == "shell"]
    if shells:
        fig, ax = plt.subplots(figsize=(7, 4))
        for r in shells:
            ax.plot([10 * x for x in r["rdf"]["r_nm"]], r["rdf"]["g"], label=r["run_id"], lw=1)
        ax.set(xlabel="r / A", ylabel="g(r), cation-O", xlim=(1.5, 6.0), title="first shells")
        ax.legend(fontsize=5)
        fig.tight_layout()
        fig.savefig(out / "rdfs.png", dpi=120)
        written.append(out / "rdfs.png")
        plt.close(fig)
    return written
