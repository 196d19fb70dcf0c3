"""Reading trajectories in chunks: frame ranges, boxes and the frame time step.

Frames are streamed with ``mdtraj.iterload`` (memory flat in trajectory
length). Frame ranges follow Python slicing (``start:stop:step`` over the
file's frames) but must lie inside the file: an out-of-range request is an
error, not an empty result.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import mdtraj as md
import numpy as np
from numpy.typing import NDArray

from solvflow.analysis.contacts import orthorhombic_box
from solvflow.dcd import read_dcd_header
from solvflow.errors import AnalysisInputError, SolvflowError


@dataclass(frozen=True)
class FrameRange:
    """Analysed frames ``range(start, stop, step)`` of a file with ``n_total`` frames."""

    start: int
    stop: int
    step: int
    n_total: int

    @property
    def n_frames(self) -> int:
        return len(range(self.start, self.stop, self.step))

    def as_list(self) -> list[int]:
        return [self.start, self.stop, self.step]


def count_frames(path: Path) -> int:
    """Number of frames in a trajectory file (DCD, XTC, TRR, NetCDF, H5, ...)."""
    try:
        with md.open(str(path)) as handle:
            return len(handle)
    except (OSError, ValueError, TypeError, NotImplementedError) as exc:
        raise AnalysisInputError(f"cannot read trajectory {str(path)!r}: {exc}") from None


def count_atoms(path: Path) -> int:
    """Number of atoms per frame of a trajectory file (reads its first frame only)."""
    try:
        with md.open(str(path)) as handle:
            return int(np.shape(handle.read(n_frames=1)[0])[1])
    except (OSError, ValueError, TypeError, IndexError, NotImplementedError) as exc:
        raise AnalysisInputError(f"cannot read trajectory {str(path)!r}: {exc}") from None


def frame_range(n_total: int, start: int | None, stop: int | None, step: int | None) -> FrameRange:
    """Validate a frame range against the file length (errors name the allowed values)."""
    s0 = 0 if start is None else start
    s1 = n_total if stop is None else stop
    st = 1 if step is None else step
    if n_total == 0:
        raise AnalysisInputError("the trajectory has no frames")
    if st < 1:
        raise AnalysisInputError(f"step must be >= 1, got {st}")
    if not 0 <= s0 < n_total:
        raise AnalysisInputError(f"start {s0} is out of range: the trajectory has frames "
                                 f"0..{n_total - 1}")
    if not s0 < s1 <= n_total:
        raise AnalysisInputError(f"stop {s1} is out of range: it must be in {s0 + 1}..{n_total} "
                                 f"(the trajectory has {n_total} frames)")
    return FrameRange(s0, s1, st, n_total)


def parse_box(text: str | Sequence[float] | float | None) -> NDArray[np.float64] | None:
    """``"3.2"`` or ``"3.2,3.2,4.0"`` (nm) -> orthorhombic edges shape (3,)."""
    if text is None:
        return None
    try:
        if isinstance(text, str):
            values = [float(x) for x in text.split(",")]
        elif isinstance(text, (int, float)):
            values = [float(text)]
        else:
            values = [float(x) for x in text]
    except ValueError:
        raise AnalysisInputError(f"box must be L or a,b,c in nm, got {text!r}") from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3 or min(values) <= 0:
        raise AnalysisInputError(f"box must be L or a,b,c with positive edges in nm, got {text!r}")
    return np.array(values)


def chunk_boxes(chunk: md.Trajectory, box_nm: NDArray[np.float64] | None) -> NDArray[np.float64]:
    """Orthorhombic edges per frame (n_frames, 3) nm: ``box_nm`` if given, else the file's."""
    if box_nm is not None:
        return np.broadcast_to(box_nm, (chunk.n_frames, 3)).copy()
    lengths, angles = chunk.unitcell_lengths, chunk.unitcell_angles
    if (lengths is not None and angles is not None and np.all(angles == 90.0)
            and np.all(np.isfinite(lengths)) and np.all(lengths > 0)):
        # right angles: the edges are the lengths (the diagonal of unitcell_vectors, exactly),
        # without building the vectors and checking their angles (~2 ms per chunk)
        return np.array(lengths, dtype=np.float64, ndmin=2)
    if chunk.unitcell_vectors is None:
        raise AnalysisInputError(
            "the trajectory has no unit cell (box) information; pass --box-nm L or a,b,c (nm)"
        )
    return np.atleast_2d(orthorhombic_box(chunk.unitcell_vectors))


def iter_chunks(path: Path, topology: md.Topology, frames: FrameRange, chunk: int,
                stride_factor: int = 1) -> Iterator[md.Trajectory]:
    """Chunks of the frames ``frames`` (every ``stride_factor``-th of them)."""
    stride = frames.step * stride_factor
    wanted = len(range(frames.start, frames.stop, stride))
    seen = 0
    for part in md.iterload(str(path), top=topology, chunk=chunk, skip=frames.start,
                            stride=stride):
        if seen >= wanted:
            break
        take = min(part.n_frames, wanted - seen)
        seen += take
        yield part if take == part.n_frames else part[:take]


# Formats whose frames carry real times in MDTraj (others give frame indices or nothing).
TIMED_FORMATS = (".xtc", ".trr", ".nc", ".ncdf", ".netcdf", ".h5", ".lh5", ".dtr")
NO_TIME_STEP = "give the time between analysed frames with --dt-ps (dt_ps=...)"


@dataclass(frozen=True)
class TimeStep:
    """Time between analysed frames and where it came from.

    Attributes
    ----------
    dt_ps : float or None
        None when unknown.
    source : str
        ``"dt_ps"`` (given by the caller, ``--dt-ps``), ``"dcd_header"``,
        ``"frame_times"`` or ``"unknown"``.
    reason : str
        Why it is unknown (empty otherwise).
    """

    dt_ps: float | None
    source: str
    reason: str = ""


def dcd_frame_interval_ps(path: Path) -> float | None:
    """Time between stored frames from a DCD header (NSAVC * DELTA), or None if not trusted.

    MDTraj reports DCD frame times as frame indices, so the header is read directly;
    see :mod:`solvflow.dcd` for when its time step is trusted.
    """
    try:
        return read_dcd_header(path).frame_interval_ps
    except (OSError, SolvflowError, struct.error):
        return None


def resolve_time_step(path: Path, topology: md.Topology, frames: FrameRange,
                      dt_ps: float | None = None, n_probe: int = 50) -> TimeStep:
    """The time between analysed frames: given, else DCD header x step, else frame times.

    Parameters
    ----------
    path : Path
        Trajectory file.
    topology : mdtraj.Topology
    frames : FrameRange
        Analysed frames (the step multiplies the file's frame interval).
    dt_ps : float, optional
        Given by the caller: used as it is (must be finite and positive).
    n_probe : int
        Analysed frames read to check that the frame times are evenly spaced.
    """
    if dt_ps is not None:
        if not isinstance(dt_ps, (int, float)) or not math.isfinite(dt_ps) or dt_ps <= 0:
            raise AnalysisInputError(f"dt_ps must be a positive number of ps, got {dt_ps!r}")
        return TimeStep(float(dt_ps), "dt_ps")
    suffix = path.suffix.lower()
    if suffix == ".dcd":
        interval = dcd_frame_interval_ps(path)
        if interval is not None:
            return TimeStep(interval * frames.step, "dcd_header")
        return TimeStep(None, "unknown", "the DCD header has no real time step (NSAVC=1, "
                        "DELTA>=1 AKMA: written by a converter such as MDTraj or VMD)")
    if suffix not in TIMED_FORMATS:
        return TimeStep(None, "unknown", f"{suffix or 'this'} files carry no frame times")
    probe = FrameRange(frames.start, min(frames.stop, frames.start + n_probe * frames.step),
                       frames.step, frames.n_total)
    times = np.concatenate([np.asarray(part.time, dtype=np.float64)
                            for part in iter_chunks(path, topology, probe, n_probe)])
    dt = time_step_ps(times)
    if dt is None:
        return TimeStep(None, "unknown", "the frame times are missing, constant or uneven")
    return TimeStep(dt, "frame_times")


def time_step_ps(times: NDArray[np.floating]) -> float | None:
    """Spacing of analysed frames in ps from their times, or None if not positive and even."""
    if times.size < 2:
        return None
    steps = np.diff(np.asarray(times, dtype=np.float64))
    dt = float(np.median(steps))
    if dt <= 0 or not np.allclose(steps, dt, rtol=1e-3, atol=1e-6):
        return None
    return dt
