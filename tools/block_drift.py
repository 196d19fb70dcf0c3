"""Does a run's solvation answer drift? SSIP/CIP/AGG, free anions and CN per time block.

For each analysed run directory of a campaign (with its traj.dcd still on disk), analyse
consecutive blocks of production frames separately with the run's own campaign shell radii
(the ``cutoffs_nm`` its analysis.json records), and print one Markdown table per system and
composition: each block's replica mean and the spread across replicas. A trend across the
blocks, larger than the spread, means the shells are still relaxing from the start state and
a block average over the whole run is not an equilibrium number.

Used for docs/results/long/drift.md (``workflows/cpu_lifsi_long.yaml``, 100 ps production):

    PYTHONPATH=src python tools/block_drift.py campaigns/cpu_long --block-ps 10 \\
        --reference docs/results/campaign --json docs/results/long/drift.json \\
        > docs/results/long/drift.md

Trajectories are not published, so this reruns only where the campaign ran.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

# column -> campaign quantity (solvflow.campaign.runs: its analysis.json path)
QUANTITIES = (("SSIP", "ssip_fraction"), ("CIP", "cip_fraction"), ("AGG", "agg_fraction"),
              ("free anion", "anion_free_fraction"))


def _values(analysis: dict[str, Any]) -> dict[str, float]:
    """The tabulated quantities of one analysis (analysis.json layout)."""
    from solvflow.campaign.runs import parse_quantity

    columns = [*QUANTITIES, *((f"CN {p}", f"cn:{p}") for p in analysis["coordination_numbers"])]
    values = {}
    for column, quantity in columns:
        path = parse_quantity(quantity).path()
        assert path is not None, quantity  # every column is an analysis.json section/key
        values[column] = float(analysis[path[0]][path[1]])
    return values


def block_values(rundir: Path, block_ps: float) -> dict[str, Any]:
    """Per-block analysis of one run: times (ps) and each quantity's value per block."""
    import yaml

    from solvflow import analyze

    whole = json.loads((rundir / "analysis.json").read_text(encoding="utf-8"))
    spec = yaml.safe_load((rundir / "spec.yaml").read_text(encoding="utf-8"))
    dt = float(whole["timestep_ps"])
    n_frames = int(whole["n_frames_in_file"])
    per_block = int(round(block_ps / dt))
    if per_block < 2 or per_block > n_frames:
        raise SystemExit(f"{rundir}: a {block_ps:g} ps block is {per_block} frames of "
                         f"{dt:g} ps; the run has {n_frames} frames")
    cutoffs = {k: float(v) for k, v in whole["cutoffs_nm"].items()}
    out: dict[str, Any] = {"run": rundir.name, "system": spec["system"]["name"],
                           "composition": spec["composition"]["requested"],
                           "seed": spec["seed"], "cutoffs_nm": cutoffs, "blocks": []}
    for start in range(0, n_frames - per_block + 1, per_block):
        result = analyze(rundir, cutoffs_nm=cutoffs, cutoff_source="as analysis.json",
                         start=start, stop=start + per_block, diffusion=False,
                         residence=False).to_dict()
        out["blocks"].append({"t0_ps": start * dt, "t1_ps": (start + per_block) * dt,
                              **_values(result)})
    return out


def _mean_sd(values: list[float]) -> str:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return f"{mean:.2f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.2f} ({sd:.2f})"


def whole_run_values(rundir: Path) -> dict[str, float]:
    """The same quantities from a run's own analysis.json (the whole production)."""
    data = json.loads((rundir / "analysis.json").read_text(encoding="utf-8"))
    return _values(data) | {"t1_ps": float(data["simulated_time_ps"])}


def markdown(runs: list[dict[str, Any]], block_ps: float,
             reference: Path | None = None) -> str:
    groups: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        groups[(run["system"], run["composition"])].append(run)
    lines = [f"# Drift per {block_ps:g} ps block of production", "",
             "Each cell: the mean over replicas (in brackets: their standard deviation) of one "
             "block analysed on its own, with the runs' campaign shell radii. Written by "
             "`tools/block_drift.py`.", ""]
    for (system, comp), members in sorted(groups.items()):
        names = [k for k in members[0]["blocks"][0] if k not in ("t0_ps", "t1_ps")]
        n_blocks = min(len(r["blocks"]) for r in members)
        seeds = ", ".join(str(r["seed"]) for r in members)
        lines += [f"## {system} {comp:g} (seeds {seeds})", "",
                  "| block (ps) | " + " | ".join(names) + " |",
                  "|---" * (len(names) + 1) + "|"]
        for i in range(n_blocks):
            block = members[0]["blocks"][i]
            cells = [_mean_sd([r["blocks"][i][n] for r in members]) for n in names]
            lines.append(f"| {block['t0_ps']:g}-{block['t1_ps']:g} | " + " | ".join(cells)
                         + " |")
        refs = [reference / "runs" / r["run"] for r in members] if reference else []
        if reference and refs and all((p / "analysis.json").is_file() for p in refs):
            ref = [whole_run_values(p) for p in refs]
            cells = [_mean_sd([v[n] for v in ref]) for n in names]
            lines.append(f"| {reference.name}: whole run, 0-{ref[0]['t1_ps']:g} | "
                         + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("campaign", type=Path, help="campaign folder (runs/*/traj.dcd)")
    parser.add_argument("--block-ps", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--reference", type=Path,
                        help="another campaign with runs of the same names (e.g. the shorter "
                             "runs these continue): their whole-run values as a last row")
    args = parser.parse_args(argv)
    rundirs = sorted(p for p in (args.campaign / "runs").glob("*")
                     if (p / "analysis.json").is_file() and (p / "traj.dcd").is_file())
    if not rundirs:
        print(f"{args.campaign}: no analysed run directory with traj.dcd under runs/",
              file=sys.stderr)
        return 2
    runs = [block_values(r, args.block_ps) for r in rundirs]
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1) + "\n", encoding="utf-8")
    print(markdown(runs, args.block_ps, args.reference))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
