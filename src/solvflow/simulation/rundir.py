"""Run-directory files of the simulation step: inputs, status.json, truncation on resume.

Every file is replaced atomically (written beside its target, then
``os.replace``), except ``traj.dcd``, which is only ever appended to or cut
back in place (one ``truncate`` call) so that a long trajectory is never
copied.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from solvflow.atomic import atomic_write
from solvflow.dcd import read_dcd_header
from solvflow.errors import InputError, SimulationError

SPEC = "spec.yaml"
TOPOLOGY = "topology.pdb"
TOPOLOGY_CIF = "topology.cif"
SYSTEM = "system.xml"
CHECKPOINT = "checkpoint.chk"
STATE = "state.xml"
LOG = "log.csv"
TRAJECTORY = "traj.dcd"
STATUS = "status.json"
PROTOCOL_COPY = "protocol.yaml"

LOG_COLUMNS = (
    "stage", "step", "time_ps", "potential_energy_kJ_mol", "kinetic_energy_kJ_mol",
    "total_energy_kJ_mol", "temperature_K", "volume_nm3", "density_g_cm3", "speed_ns_day",
)


@dataclass(frozen=True)
class RunInputs:
    """What ``solvflow run`` reads from a run directory."""

    rundir: Path
    spec: dict[str, Any]
    topology: Any  # openmm.app.Topology
    positions_nm: Any  # (n_atoms, 3) float64 array, nm
    system_xml: str

    @property
    def temperature_K(self) -> float:
        return float(self.spec["temperature_K"])

    @property
    def seed(self) -> int:
        return int(self.spec.get("seed", 1))


def read_inputs(rundir: str | Path) -> RunInputs:
    """Read ``spec.yaml``, ``topology.pdb`` (or ``.cif``) and ``system.xml``.

    Raises
    ------
    InputError
        The directory or one of the files is missing or unreadable; the message
        names the file and what writes it.
    """
    import numpy as np
    from openmm import app, unit

    root = Path(rundir)
    if not root.is_dir():
        raise InputError(f"run directory {str(root)!r} does not exist; create it with "
                         "`solvflow build SYSTEM -o RUNDIR` or `solvflow run SYSTEM -o RUNDIR`")
    topo_path = root / TOPOLOGY if (root / TOPOLOGY).is_file() else root / TOPOLOGY_CIF
    for path in (root / SPEC, topo_path, root / SYSTEM):
        if not path.is_file():
            raise InputError(f"{root}: missing {path.name} (written by `solvflow build`); "
                             f"a run directory needs {SPEC}, {TOPOLOGY} and {SYSTEM}")
    try:
        spec = yaml.safe_load((root / SPEC).read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{root / SPEC}: not valid YAML: {exc}") from None
    if not isinstance(spec, dict) or "temperature_K" not in spec:
        raise InputError(f"{root / SPEC}: no temperature_K (is this a solvflow run directory?)")
    reader = app.PDBFile if topo_path.suffix == ".pdb" else app.PDBxFile
    structure = reader(str(topo_path))
    positions = np.array(structure.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    return RunInputs(root, spec, structure.topology, positions, (root / SYSTEM).read_text())


def read_status(rundir: Path) -> dict[str, Any] | None:
    """``status.json`` as a dict, or None when the run never started."""
    path = rundir / STATUS
    if not path.is_file():
        return None
    try:
        status = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SimulationError(f"{path}: corrupt status file ({exc}); remove the run outputs "
                              "(log.csv, traj.dcd, checkpoint.chk, state.xml, status.json) "
                              "to start over") from None
    return status if isinstance(status, dict) else None


def write_status(rundir: Path, status: dict[str, Any]) -> None:
    atomic_write(rundir / STATUS, json.dumps(status, indent=1, sort_keys=False) + "\n")


def truncate_log(path: Path, n_rows: int) -> None:
    """Keep the header and the first ``n_rows`` data rows of ``log.csv`` (atomic rewrite)."""
    if not path.is_file():
        if n_rows:
            raise SimulationError(f"{path} is missing but the checkpoint covers {n_rows} rows")
        return
    with open(path) as fh:
        lines = fh.readlines()
    if len(lines) - 1 < n_rows:
        raise SimulationError(f"{path} has {len(lines) - 1} rows but the checkpoint covers "
                              f"{n_rows}; the run directory was modified")
    atomic_write(path, "".join(lines[: n_rows + 1]))


def log_rows(path: Path) -> list[dict[str, str]]:
    """``log.csv`` as a list of rows (column name -> text)."""
    import csv

    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def truncate_dcd(path: Path, n_frames: int) -> None:
    """Cut ``traj.dcd`` back to its first ``n_frames`` frames (header counts patched)."""
    if not path.is_file():
        if n_frames:
            raise SimulationError(f"{path} is missing but the checkpoint covers {n_frames} "
                                  "frames")
        return
    if n_frames == 0:
        path.unlink()
        return
    h = read_dcd_header(path)
    size = h.header_bytes + n_frames * h.frame_bytes
    if path.stat().st_size < size:
        raise SimulationError(f"{path} holds fewer than the {n_frames} frames the checkpoint "
                              "covers; the run directory was modified")
    with open(path, "r+b") as fh:
        fh.truncate(size)
        fh.seek(8)
        fh.write(struct.pack("<i", n_frames))
        fh.seek(20)
        fh.write(struct.pack("<i", h.first_step + (n_frames - 1) * h.interval))
        fh.flush()
        os.fsync(fh.fileno())
