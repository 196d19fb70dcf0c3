"""The header of a CHARMM/OpenMM DCD file, read directly (one parser for the whole package).

The simulation engine needs the frame count, first step and frame size (to
cut ``traj.dcd`` back to a checkpoint); the analysis needs the time between
frames, which MDTraj does not report for DCD (it gives frame indices).

When the header's time step is trusted
--------------------------------------
An MD engine writes NSAVC = MD steps between frames and DELTA = its
integration step in AKMA units (OpenMM's ``DCDFile``, used by solvflow's own
trajectory reporter: NSAVC = report interval, DELTA = dt / 0.04888821 ps, e.g.
0.0409 for 2 fs; CHARMM and NAMD likewise). Converters that do not know the
time step write NSAVC = 1 and DELTA = 1.0 AKMA (MDTraj, VMD's DCD plugin:
0.0489 ps per frame, a placeholder) or DELTA = 1 ps (MDAnalysis' default).
Rule: the frame interval NSAVC x DELTA is trusted only when NSAVC >= 1,
DELTA is finite and positive, and **not** (NSAVC == 1 and DELTA >= 1.0
AKMA): no MD engine saves every step with a step of 49 fs or more, so such a
header describes a converted file and its time step is unknown. This also
rejects a converted file whose writer was told the true spacing, and an
OpenMM file past 2^31 steps (where OpenMM folds NSAVC into DELTA): both then
need the time step given by hand (``--dt-ps``), never a guess.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

from solvflow.errors import InputError

AKMA_TIME_PS = 0.04888821  # CHARMM/DCD time unit in ps
PLACEHOLDER_DELTA_AKMA = 1.0 - 1e-6  # NSAVC 1 with DELTA >= 1 AKMA: a converter's placeholder


@dataclass(frozen=True)
class DcdHeader:
    """What the header of a CHARMM/OpenMM DCD file says (sizes in bytes)."""

    n_frames: int
    first_step: int
    interval: int
    n_atoms: int
    header_bytes: int
    frame_bytes: int
    delta_akma: float = 0.0

    @property
    def has_time_step(self) -> bool:
        """Whether NSAVC and DELTA describe an MD engine's output (see the module docstring)."""
        delta = self.delta_akma
        if self.interval < 1 or not math.isfinite(delta) or delta <= 0:
            return False
        return not (self.interval == 1 and delta >= PLACEHOLDER_DELTA_AKMA)

    @property
    def frame_interval_ps(self) -> float | None:
        """Time between stored frames (NSAVC x DELTA) in ps, or None if not trusted."""
        if not self.has_time_step:
            return None
        return float(self.interval * self.delta_akma * AKMA_TIME_PS)


def read_dcd_header(path: Path) -> DcdHeader:
    """Parse the header of a little-endian DCD (as written by :class:`openmm.app.DCDFile`)."""
    with open(path, "rb") as fh:
        head = fh.read(100)
        if len(head) < 100 or head[4:8] != b"CORD" or struct.unpack("<i", head[:4])[0] != 84:
            raise InputError(f"{path}: not a DCD file (little-endian CHARMM/OpenMM layout)")
        n_frames, first_step, interval = struct.unpack("<3i", head[8:20])
        delta = struct.unpack("<f", head[44:48])[0]
        has_box = struct.unpack("<i", head[48:52])[0]
        comments = struct.unpack("<i", head[92:96])[0]
        fh.seek(104 + comments)
        n_atoms = struct.unpack("<i", fh.read(4))[0]
    frame = (56 if has_box else 0) + 3 * (8 + 4 * n_atoms)
    return DcdHeader(n_frames, first_step, interval, n_atoms, 112 + comments, frame, delta)


def dcd_frame_count(path: Path) -> int:
    """Frames in a DCD file, from its size (0 when absent)."""
    if not path.is_file():
        return 0
    h = read_dcd_header(path)
    return (path.stat().st_size - h.header_bytes) // h.frame_bytes
