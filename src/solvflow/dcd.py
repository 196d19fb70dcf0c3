"""The header of a CHARMM/OpenMM DCD file, read directly (one parser for the whole package).

The simulation engine needs the frame count, first step and frame size (to
cut ``traj.dcd`` back to a checkpoint); the analysis needs the time between
frames, which MDTraj does not report for DCD (it gives frame indices).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

from solvflow.errors import InputError

AKMA_TIME_PS = 0.04888821  # CHARMM/DCD time unit in ps


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
    def frame_interval_ps(self) -> float | None:
        """Time between stored frames (NSAVC x DELTA), or None if the header has none."""
        value = self.interval * self.delta_akma * AKMA_TIME_PS
        ok = self.interval > 0 and math.isfinite(self.delta_akma) and self.delta_akma > 0
        return float(value) if ok else None


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
