"""Self-diffusion coefficients from the mean-squared displacement of molecular centres.

Unwrapping (streaming): in the first analysed frame each molecule is made
whole (atoms shifted to the minimum image of its first atom) and its centre
of mass computed; afterwards each atom's minimum-image displacement between
consecutive analysed frames is accumulated and the centre moves by their
mass-weighted mean (valid while atoms move less than half a box edge
between analysed frames).

MSD: ``MSD(tau) = <|r(t+tau) - r(t)|^2>`` over all molecules of a species
and all time origins, for a grid of lags up to ``max_lag`` (kept in a ring of
the last ``max_lag`` frames, so memory does not grow with trajectory length).
``D = slope / 6`` of a least-squares line through MSD(tau) for tau in the
fit window ``[FIT_START, FIT_END] * max_lag`` (default 20 %-100 % of the
longest lag, which itself defaults to half the analysed time). Its standard
error comes from **time blocks** (:class:`BlockMSD`): the analysed frames are
split into ``n_blocks`` (5) contiguous blocks, D is fitted in each block on
its own MSD (lags up to half the shortest block, same 20 %-100 % window) and
``stderr = std(D_blocks, ddof=1) / sqrt(n_blocks)``. Blocks are independent
stretches of time, so the error includes time correlation (molecule subsets
of one run would not). No finite-size (Yeh-Hummer) correction and no removal
of centre-of-mass drift are applied.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from solvflow.analysis import kernels
from solvflow.analysis.residence import lag_grid
from solvflow.analysis.stats import block_of_frames, block_stderr

FIT_START, FIT_END = 0.2, 1.0
NM2_PS_TO_M2_S = 1e-6


class CentreTracker:
    """Unwrapped centres of mass of molecules, chunk by chunk.

    Parameters
    ----------
    atom_molecule : ndarray of int64, shape (n_atoms_used,)
        Molecule (0..n_molecules-1) of each used atom.
    atoms : ndarray of int64, shape (n_atoms_used,)
        Topology index of each used atom (all atoms of the tracked molecules).
    masses : ndarray of float64, shape (n_atoms_used,), dalton
    """

    def __init__(self, atom_molecule: NDArray[np.int64], atoms: NDArray[np.int64],
                 masses: NDArray[np.float64]) -> None:
        self.atoms = atoms
        n_mol = int(atom_molecule.max()) + 1
        total = np.bincount(atom_molecule, weights=masses, minlength=n_mol)
        weights = masses / total[atom_molecule]
        # centre-of-mass weights as a CSR matrix (molecules x used atoms, atoms in order)
        order = np.argsort(atom_molecule, kind="stable")
        self.indptr = np.concatenate(
            [[0], np.cumsum(np.bincount(atom_molecule, minlength=n_mol))]).astype(np.int64)
        self.indices = order.astype(np.int64)
        self.weights = weights[order]
        self.weights32 = self.weights.astype(np.float32)  # for per-frame displacements
        first = np.full(n_mol, atoms.size, dtype=np.int64)
        np.minimum.at(first, atom_molecule, np.arange(atoms.size))
        self.first_atom = first[atom_molecule]
        self._last_wrapped: NDArray[np.float32] | None = None
        self._last_unwrapped: NDArray[np.float64] | None = None

    def add_chunk(self, xyz: NDArray[np.floating], box: NDArray[np.float64]) -> NDArray[np.float64]:
        """Unwrapped centres of a chunk.

        The first frame ever seen is made whole (atoms shifted to the minimum
        image of their molecule's first atom) to give the starting centres;
        afterwards each centre moves by the mass-weighted mean of its atoms'
        minimum-image displacements since the previous frame.

        Parameters
        ----------
        xyz : ndarray, shape (n_frames, n_atoms_total, 3), nm
        box : ndarray, shape (n_frames, 3), nm

        Returns
        -------
        ndarray of float64, shape (n_frames, n_molecules, 3), nm
        """
        all_atoms = self.atoms.size == xyz.shape[1]
        if self._last_wrapped is None:
            p0 = np.asarray(xyz[0] if all_atoms else xyz[0, self.atoms], dtype=np.float32)
            b0 = box[0].astype(np.float32)
            first = p0 - b0 * np.rint((p0 - p0[self.first_atom]) / b0)
            self._last_unwrapped = kernels.csr_matvec_kernel(
                self.indptr, self.indices, self.weights, first.astype(np.float64))
            self._last_wrapped = p0
        return self._add_compiled(xyz, box, all_atoms)

    def _add_compiled(self, xyz: NDArray[np.floating], box: NDArray[np.float64],
                      all_atoms: bool) -> NDArray[np.float64]:
        """:meth:`add_chunk` after the first frame, by the numba kernel."""
        pos = np.ascontiguousarray(xyz, dtype=np.float32)
        b = np.ascontiguousarray(box, dtype=np.float32).reshape(-1, 3)
        last = np.array(self._last_wrapped, dtype=np.float32, order="C")  # updated in place
        unwrapped = kernels.unwrap_kernel(
            pos, self.atoms, all_atoms, last, b, np.float32(0.49) * b.min(), self.indptr,
            self.indices, self.weights32,
            np.ascontiguousarray(self._last_unwrapped, dtype=np.float64))
        self._last_wrapped = last
        self._last_unwrapped = unwrapped[-1]
        return unwrapped


class MSDAccumulator:
    """Sum of squared displacements per molecule for a grid of lags (streaming).

    Parameters
    ----------
    n_molecules : int
    lags : ndarray of int64, shape (n_lags,), ascending, in analysed frames
    """

    def __init__(self, n_molecules: int, lags: NDArray[np.int64]) -> None:
        self.lags = np.asarray(lags, dtype=np.int64)
        self.sq_sum = np.zeros((self.lags.size, n_molecules))
        self.origins = np.zeros(self.lags.size, dtype=np.int64)
        self._ring = np.zeros((0, n_molecules, 3))

    def add_chunk(self, centres: NDArray[np.float64]) -> None:
        """Add unwrapped centres, shape (n_frames, n_molecules, 3), nm."""
        pool = np.concatenate([self._ring, centres])
        h = self._ring.shape[0]
        kernels.msd_kernel(pool, h, self.lags, self.sq_sum, self.origins)
        self._ring = pool[-int(self.lags[-1]):] if self.lags[-1] > 0 else pool[:0]

    def msd(self, molecules: NDArray[np.int64] | slice = slice(None)) -> NDArray[np.float64]:
        """MSD (nm^2) per lag averaged over ``molecules``; NaN for lags without origins."""
        mean = self.sq_sum[:, molecules].mean(axis=1)
        return np.divide(mean, self.origins, out=np.full(mean.shape, np.nan),
                         where=self.origins > 0)


def fit_diffusion(lags_ps: NDArray[np.float64], msd_nm2: NDArray[np.float64],
                  window_ps: tuple[float, float]) -> float | None:
    """D in nm^2/ps from a straight-line fit of MSD over ``window_ps`` (None with < 2 points)."""
    sel = (lags_ps >= window_ps[0]) & (lags_ps <= window_ps[1]) & np.isfinite(msd_nm2)
    if np.count_nonzero(sel) < 2:
        return None
    slope = np.polyfit(lags_ps[sel], msd_nm2[sel], 1)[0]
    return float(slope / 6.0)


class BlockMSD:
    """MSD sums of each contiguous time block, fed by the same chunks as the main MSD.

    Parameters
    ----------
    n_molecules : int
    n_frames : int
        Analysed frames that will be added.
    n_blocks : int
    max_lag : int
        Longest lag of the main MSD; a block uses at most half its own length.
    """

    def __init__(self, n_molecules: int, n_frames: int, n_blocks: int, max_lag: int) -> None:
        self.blocks = block_of_frames(n_frames, n_blocks)
        shortest = int(np.bincount(self.blocks).min()) if n_frames else 0
        self.lags = lag_grid(max(0, min(max_lag, shortest // 2)))
        self.n_molecules = n_molecules
        self.done: list[MSDAccumulator] = []
        self.n_seen = 0

    def add_chunk(self, centres: NDArray[np.float64]) -> None:
        """Add unwrapped centres, shape (n_frames, n_molecules, 3), nm (consecutive frames)."""
        n_f = centres.shape[0]
        which = self.blocks[self.n_seen:self.n_seen + n_f]
        for block in np.unique(which).tolist():
            while len(self.done) <= block:
                if self.done:
                    self.done[-1]._ring = self.done[-1]._ring[:0]  # block over: free the ring
                self.done.append(MSDAccumulator(self.n_molecules, self.lags))
            self.done[block].add_chunk(centres[which == block])
        self.n_seen += n_f

    def block_d(self, molecules: NDArray[np.int64], dt_ps: float) -> list[float | None]:
        """D (nm^2/ps) of ``molecules`` in every block (None where it cannot be fitted)."""
        if self.lags[-1] < 2:
            return []
        lags_ps = self.lags.astype(np.float64) * dt_ps
        window = (FIT_START * lags_ps[-1], FIT_END * lags_ps[-1])
        return [fit_diffusion(lags_ps, acc.msd(molecules), window) for acc in self.done]

    def fit_window_ps(self, dt_ps: float) -> list[float]:
        """The blocks' fit window in ps."""
        top = float(self.lags[-1]) * dt_ps
        return [FIT_START * top, FIT_END * top]


def diffusion_with_error(acc: MSDAccumulator, molecules: NDArray[np.int64], dt_ps: float,
                         blocks: BlockMSD | None = None) -> dict[str, object]:
    """D (nm^2/ps and m^2/s), its time-block standard error, the fit window and the MSD curve."""
    lags_ps = acc.lags.astype(np.float64) * dt_ps
    max_lag_ps = float(lags_ps[-1])
    window = (FIT_START * max_lag_ps, FIT_END * max_lag_ps)
    curve = acc.msd(molecules)
    d = fit_diffusion(lags_ps, curve, window)
    per_block = blocks.block_d(molecules, dt_ps) if blocks is not None else []
    err = block_stderr([np.nan if x is None else x for x in per_block])
    return {
        "D_nm2_ps": d,
        "D_m2_s": None if d is None else d * NM2_PS_TO_M2_S,
        "stderr_nm2_ps": err,
        "stderr_m2_s": None if err is None else err * NM2_PS_TO_M2_S,
        "stderr_method": f"{len(per_block)} time blocks",
        "block_D_nm2_ps": per_block,
        "block_fit_window_ps": blocks.fit_window_ps(dt_ps) if blocks is not None else None,
        "fit_window_ps": [window[0], window[1]],
        "lag_ps": lags_ps.tolist(),
        "msd_nm2": [None if not np.isfinite(v) else float(v) for v in curve],
    }
