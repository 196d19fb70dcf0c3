"""Deterministic synthetic trajectories for tests and benchmarks (not physical dynamics).

A test fixture, not part of the installed package (benchmarks put tests/ on sys.path).

Starting from a built box (``topology.pdb``), every molecule performs a
seeded Gaussian random walk of its centre plus small random rotations about
its centre; atoms are written wrapped into the box (so molecules are broken
across the boundary, as in real trajectories). Because the centre steps are
independent Gaussians with standard deviation ``sigma_nm`` per axis, the
exact self-diffusion coefficient is ``sigma_nm**2 / (2 * dt_ps)``.

Only for exercising analysis code: two implementations analysing the same
file must agree, whatever its physics.
"""

from __future__ import annotations

from pathlib import Path

import mdtraj as md
import numpy as np
from numpy.typing import NDArray


def _rotations(rng: np.random.Generator, n: int, sigma_rad: float) -> NDArray[np.float64]:
    """n random rotation matrices (Rodrigues) with angle ~ N(0, sigma_rad), shape (n, 3, 3)."""
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    angle = rng.normal(scale=sigma_rad, size=n)
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k -= k.transpose(0, 2, 1)
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def write_random_walk(topology_file: str | Path, output: str | Path, n_frames: int, *,
                      sigma_nm: float = 0.03, sigma_deg: float = 5.0, seed: int = 0,
                      chunk: int = 100) -> Path:
    """Write a DCD of rigid-body random walks of all molecules of ``topology_file``.

    Parameters
    ----------
    topology_file : path
        PDB with a box (CRYST1) and residues = molecules (e.g. a solvflow build).
    output : path
        DCD to write.
    n_frames : int
    sigma_nm : float
        Standard deviation of each centre step per axis per frame, nm.
    sigma_deg : float
        Standard deviation of the rotation angle per frame, degrees.
    seed : int

    Returns
    -------
    Path of the DCD.
    """
    start = md.load(str(topology_file))
    top = start.topology
    box = start.unitcell_lengths[0].astype(np.float64)
    residue = np.array([a.residue.index for a in top.atoms])
    xyz0 = start.xyz[0].astype(np.float64)
    first = np.array([r.atom(0).index for r in top.residues])[residue]
    rel = xyz0 - xyz0[first]
    xyz0 = xyz0 - box * np.round(rel / box)  # whole molecules
    counts = np.bincount(residue).astype(np.float64)
    centre: NDArray[np.float64] = np.stack(
        [np.bincount(residue, weights=xyz0[:, k]) for k in range(3)], 1)
    centre /= counts[:, None]
    body = xyz0 - centre[residue]
    rot = np.broadcast_to(np.eye(3), (top.n_residues, 3, 3)).copy()
    rng = np.random.default_rng(seed)
    out = Path(output)
    with md.formats.DCDTrajectoryFile(str(out), "w") as handle:
        for f0 in range(0, n_frames, chunk):
            frames = []
            for _ in range(min(chunk, n_frames - f0)):
                frames.append(np.mod(centre[residue] + np.einsum("aij,aj->ai", rot[residue], body),
                                     box))
                centre = centre + rng.normal(scale=sigma_nm, size=centre.shape)
                rot = _rotations(rng, top.n_residues, np.radians(sigma_deg)) @ rot
            block = np.asarray(frames, dtype=np.float32) * 10.0  # DCD is in Angstrom
            lengths = np.broadcast_to(box * 10.0, (block.shape[0], 3))
            angles = np.full((block.shape[0], 3), 90.0)
            handle.write(block, cell_lengths=lengths, cell_angles=angles)
    return out
