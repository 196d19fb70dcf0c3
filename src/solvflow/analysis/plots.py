"""PNG plots of an analysis, readable without the JSON (matplotlib, Agg backend).

* ``rdf.png``: per partner, g(r) and the running site coordination number with
  the shell cutoff marked;
* ``ion_pairing.png``: cation-centred SSIP/CIP/AGG and anion-centred
  free/CIP/AGG fractions with their standard errors (none drawn, and the label
  starred, where n_eff < 10);
* ``shells.png``: the most frequent shell compositions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from solvflow.analysis.api import AnalysisResult


def write_plots(result: AnalysisResult, outdir: Path) -> list[Path]:
    """Write the plots into ``outdir``; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    outdir.mkdir(parents=True, exist_ok=True)
    data = result.to_dict()
    files = []
    if data.get("rdf"):
        files.append(_rdf_plot(data, outdir / "rdf.png"))
    files.append(_pairing_plot(data, outdir / "ion_pairing.png"))
    if data.get("shells"):
        files.append(_shell_plot(data, outdir / "shells.png"))
    return files


def _title(data: dict[str, Any]) -> str:
    system = (data.get("provenance") or {}).get("system")
    where = f"{system}, " if system else ""
    return f"{where}{data['n_frames']} frames"


def _rdf_plot(data: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    names = list(data["rdf"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.8 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        rdf = data["rdf"][name]
        ax.plot(rdf["r_nm"], rdf["g"], color="C0", label="g(r)")
        ax.set_xlabel("r (nm)")
        ax.set_ylabel("g(r)", color="C0")
        cutoff = data["cutoffs_nm"][name]
        ax.axvline(cutoff, color="k", ls="--",
                   label=f"cutoff {cutoff:.3f} nm ({data['cutoff_source'][name]})")
        twin = ax.twinx()
        twin.plot(rdf["r_nm"], rdf["running_cn_sites"], color="C3", label="running CN (sites)")
        twin.set_ylabel("running coordination number (sites)", color="C3")
        ax.set_title(f"{data['cation']}-{name} ({rdf['n_frames']} frames sampled)")
        lines = ax.get_legend_handles_labels()
        more = twin.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper right")
    fig.suptitle(f"{data['cation']}-site RDFs: {_title(data)}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _pairing_plot(data: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    groups = [("cation-centred", data["ion_pairing"], data["stderr"]["ion_pairing"], "C0")]
    if data.get("anion_states"):
        groups.append(("anion-centred", data["anion_states"], data["stderr"]["anion_states"],
                       "C1"))
    x0 = 0
    ticks, labels = [], []
    few = set(data.get("few_samples") or [])
    for (title, values, errors, color), group in zip(groups, ("ion_pairing", "anion_states"),
                                                     strict=False):
        keys = list(values)
        xs = [x0 + k for k in range(len(keys))]
        errs = [0.0 if f"{group}.{k}" in few else errors.get(k) or 0.0 for k in keys]
        ax.bar(xs, [values[k] for k in keys], yerr=errs, capsize=4, color=color, label=title)
        ticks += xs
        labels += [f"{k}*" if f"{group}.{k}" in few else k for k in keys]
        x0 += len(keys) + 1
    ax.set_xticks(ticks, labels)
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction")
    ax.set_title(f"Ion pairing of {data['cation']} ({_title(data)}; error bars: stderr from "
                 "n_eff; * n_eff < 10, no bar)", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _shell_plot(data: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    shells = data["shells"]
    few = set(data.get("few_samples") or [])
    errors = [None if f"shells.{k}" in few else e for k, e in enumerate(data["stderr"]["shells"])]
    labels = [(" ".join(f"{n}{name}" for name, n in s["composition"].items()) or "(empty)")
              + ("*" if f"shells.{k}" in few else "") for k, s in enumerate(shells)]
    fig, ax = plt.subplots(figsize=(6.4, 0.4 * len(shells) + 1.6))
    ys = list(range(len(shells)))[::-1]
    ax.barh(ys, [s["fraction"] for s in shells], xerr=[e or 0.0 for e in errors], capsize=3,
            color="C2", label="fraction of cation shells")
    ax.set_yticks(ys, labels)
    ax.set_xlabel("fraction of cation shells")
    cut = ", ".join(f"{k} {v:.3f} nm" for k, v in data["cutoffs_nm"].items())
    ax.set_title(f"{data['cation']} shell compositions (cutoffs: {cut}; * n_eff < 10, no bar)",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
