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
error comes from fitting 5 disjoint subsets of the molecules separately
(``std(ddof=1)/sqrt(5)``). No finite-size (Yeh-Hummer) correction and no
removal of centre-of-mass drift are applied.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from solvflow.analysis import kernels

FIT_START, FIT_END = 0.2, 1.0
N_SUBSETS = 5
NM2_PS_TO_M2_S = 1e-6
_XYZ32 = np.dtype((np.void, 12))  # one (x, y, z) float32 record


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
        self.com = sparse.csr_matrix((weights, (atom_molecule, np.arange(atoms.size))),
                                     shape=(n_mol, atoms.size))
        self.com32 = self.com.astype(np.float32)  # for per-frame displacements
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
            self._last_unwrapped = self.com @ first.astype(np.float64)
            self._last_wrapped = p0
        if kernels.enabled():
            return self._add_compiled(xyz, box, all_atoms)
        pos = np.asarray(xyz if all_atoms else xyz[:, self.atoms], dtype=np.float32)
        b = box[:, None, :].astype(np.float32)
        n_frames = pos.shape[0]
        steps = np.empty(pos.shape, dtype=np.float32)  # frame-major, contiguous subtractions
        np.subtract(pos[0], self._last_wrapped, out=steps[0])
        np.subtract(pos[1:], pos[:-1], out=steps[1:])
        _minimum_image(steps, b)
        # atom-major (n_atoms, n_frames, 3) for the sparse product: one transposing copy of
        # 12-byte (x, y, z) records
        steps = np.ascontiguousarray(steps.view(_XYZ32).reshape(n_frames, -1).T)
        moves = (self.com32 @ steps.view(np.float32).reshape(self.atoms.size, -1)
                 ).astype(np.float64)
        unwrapped = self._last_unwrapped + np.cumsum(
            moves.reshape(-1, n_frames, 3).transpose(1, 0, 2), axis=0)
        self._last_wrapped = pos[-1]
        self._last_unwrapped = unwrapped[-1]
        return unwrapped

    def _add_compiled(self, xyz: NDArray[np.floating], box: NDArray[np.float64],
                      all_atoms: bool) -> NDArray[np.float64]:
        """:meth:`add_chunk` after the first frame by the numba kernel (identical centres)."""
        pos = np.ascontiguousarray(xyz, dtype=np.float32)
        b = np.ascontiguousarray(box, dtype=np.float32).reshape(-1, 3)
        last = np.array(self._last_wrapped, dtype=np.float32, order="C")  # updated in place
        com = self.com32
        unwrapped = kernels.unwrap_kernel(
            pos, self.atoms, all_atoms, last, b, np.float32(0.49) * b.min(), com.indptr,
            com.indices, com.data, np.ascontiguousarray(self._last_unwrapped, dtype=np.float64))
        self._last_wrapped = last
        self._last_unwrapped = unwrapped[-1]
        return unwrapped


def _minimum_image(steps: NDArray[np.float32], b: NDArray[np.float32]) -> None:
    """In place: ``steps -= b * rint(steps / b)`` (the minimum-image correction).

    ``steps`` (n_frames, n_atoms, 3) float32 nm, ``b`` (n_frames, 1, 3) float32 nm. Only
    entries with ``|step| > 0.49 * min(b)`` can change (elsewhere ``rint`` gives 0), so the
    correction is applied to those alone, with the same float32 operations.
    """
    limit = np.float32(0.49) * b.min()
    flat = steps.reshape(-1)
    idx = np.flatnonzero((flat > limit) | (flat < -limit))
    if idx.size == 0:
        return
    per_frame = steps.shape[1] * 3
    edge = b.reshape(-1, 3)[idx // per_frame, idx % 3]
    value = flat[idx]
    shift = value / edge
    np.rint(shift, out=shift)
    shift *= edge
    value -= shift
    flat[idx] = value


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
        if kernels.enabled():
            kernels.msd_kernel(pool, h, self.lags, self.sq_sum, self.origins)
            self._ring = pool[-int(self.lags[-1]):] if self.lags[-1] > 0 else pool[:0]
            return
        for li, lag in enumerate(self.lags):
            if lag == 0:
                continue
            first = max(h, int(lag))
            if first >= pool.shape[0]:
                continue
            disp = pool[first:] - pool[first - lag: pool.shape[0] - lag]
            self.sq_sum[li] += np.einsum("fmk,fmk->m", disp, disp)
            self.origins[li] += pool.shape[0] - first
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


def diffusion_with_error(acc: MSDAccumulator, molecules: NDArray[np.int64], dt_ps: float,
                         ) -> dict[str, object]:
    """D (nm^2/ps and m^2/s), its subset standard error, the fit window and the MSD curve."""
    lags_ps = acc.lags.astype(np.float64) * dt_ps
    max_lag_ps = float(lags_ps[-1])
    window = (FIT_START * max_lag_ps, FIT_END * max_lag_ps)
    curve = acc.msd(molecules)
    d = fit_diffusion(lags_ps, curve, window)
    subsets = [s for s in np.array_split(molecules, N_SUBSETS) if s.size]
    ds = [fit_diffusion(lags_ps, acc.msd(s), window) for s in subsets]
    finite = [x for x in ds if x is not None]
    err = (float(np.std(finite, ddof=1) / np.sqrt(len(finite)))
           if len(finite) >= 2 else None)
    return {
        "D_nm2_ps": d,
        "D_m2_s": None if d is None else d * NM2_PS_TO_M2_S,
        "stderr_nm2_ps": err,
        "fit_window_ps": [window[0], window[1]],
        "lag_ps": lags_ps.tolist(),
        "msd_nm2": [None if not np.isfinite(v) else float(v) for v in curve],
    }
