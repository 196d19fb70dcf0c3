"""Copy the small results of a campaign (no trajectories, no checkpoints) to a new folder.

What is copied: ``campaign.json`` and ``workflow.yaml`` of the campaign, and from
each task's run directory ``spec.yaml``, ``status.json``, ``analysis.json`` and
``log.csv`` (the thermodynamic log, a few kB). That is everything ``solvflow
compare / claims / report`` read, so they give the same numbers and verdicts
from the copy; it is how a campaign is published (docs/results/campaign/) or
brought back from a GPU or cluster machine. Trajectories (``*.dcd``),
checkpoints, ``system.xml``, ``topology.pdb`` and the plots stay behind.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from solvflow.errors import InputError

CAMPAIGN_FILES = ("campaign.json", "workflow.yaml")
RUN_FILES = ("spec.yaml", "status.json", "analysis.json", "log.csv")


@dataclass
class ExportSummary:
    """What :func:`export_campaign` copied: files, bytes, and tasks without a run directory."""

    destination: Path
    files: list[Path] = field(default_factory=list)
    n_bytes: int = 0
    runs: int = 0
    not_analysed: list[str] = field(default_factory=list)
    not_built: list[str] = field(default_factory=list)


def export_campaign(source: str | Path, destination: str | Path) -> ExportSummary:
    """Copy the campaign ``source``'s small files to ``destination`` (created or updated).

    Raises InputError when ``source`` is not a campaign folder (no campaign.json),
    when ``destination`` is ``source`` or inside it, or when ``destination``
    exists and holds something other than an earlier export.
    """
    src, dest = Path(source).resolve(), Path(destination).resolve()
    if not (src / "campaign.json").is_file():
        raise InputError(f"{source} is not a campaign folder (no campaign.json); give the "
                         "folder written by `solvflow sweep -o`")
    if dest == src or src in dest.parents:
        raise InputError(f"the export folder {destination} must be outside the campaign "
                         f"{source}")
    if dest.exists() and any(dest.iterdir()) and not (dest / "campaign.json").is_file():
        raise InputError(f"{destination} exists and is not an earlier export (no "
                         "campaign.json); give a new or empty folder")
    try:
        doc = json.loads((src / "campaign.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {src / 'campaign.json'}: {exc}") from None
    summary = ExportSummary(Path(destination))
    for name in CAMPAIGN_FILES:
        _copy(src / name, dest / name, summary)
    for task in doc.get("tasks") or []:
        rel = Path(str(task.get("rundir") or f"runs/{task.get('id')}"))
        if rel.is_absolute() or ".." in rel.parts:
            raise InputError(f"task {task.get('id')}: run directory {rel} is not inside the "
                             "campaign; only campaigns written by `solvflow sweep` export")
        rundir = src / rel
        if not (rundir / "spec.yaml").is_file():
            summary.not_built.append(str(task.get("id")))
            continue
        if not (rundir / "analysis.json").is_file():
            summary.not_analysed.append(str(task.get("id")))
        for name in RUN_FILES:
            _copy(rundir / name, dest / rel / name, summary)
        summary.runs += 1
    return summary


def _copy(source: Path, target: Path, summary: ExportSummary) -> None:
    if not source.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    shutil.copyfile(source, tmp)
    tmp.replace(target)  # a killed export never leaves a half-written file under its name
    summary.files.append(target)
    summary.n_bytes += target.stat().st_size


__all__ = ["CAMPAIGN_FILES", "RUN_FILES", "ExportSummary", "export_campaign"]
