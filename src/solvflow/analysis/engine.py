"""The per-frame engine: prepare -> frame -> conclude (MDAnalysis style), fed by chunks.

:class:`SolvationAccumulator` holds everything that grows while frames
stream past: one row of per-frame averages (coordination numbers, paired
fractions, SSIP/CIP/AGG, anion states, cluster sizes), per-block shell and
cluster-size counts, the contact-correlation history (residence times) and
the MSD ring (diffusion). Memory depends on the number of frames only
through the per-frame rows (a few dozen floats each).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvflow.analysis.contacts import compute_contacts, shell_molecules
from solvflow.analysis.coordination import ShellCompositions, shell_counts
from solvflow.analysis.groups import Group
from solvflow.analysis.pairing import (
    ANION_STATES,
    CATION_STATES,
    classify_anions,
    classify_cations,
    cluster_sizes,
    state_fractions,
)
from solvflow.analysis.residence import ContactCorrelation, lag_grid, residence_time
from solvflow.analysis.stats import block_of_frames, block_stderr, mean_and_stderr
from solvflow.analysis.transport import CentreTracker, MSDAccumulator, diffusion_with_error


class SolvationAccumulator:
    """Streaming solvation analysis of one cation against its partners.

    Parameters
    ----------
    cation : Group
        One centre atom per cation.
    partners : sequence of Group
        Coordinating sites of each partner (anions and solvents).
    cutoffs_nm : mapping of str to float
        Shell radius per partner name, nm.
    n_frames : int
        Number of frames that will be added (fixes the blocks and the lag grid).
    n_blocks : int
        Blocks for standard errors.
    max_lag : int, optional
        Longest lag (analysed frames) for residence and MSD; default half the frames, at most 1000.
    tracker : CentreTracker, optional
        Unwrapped molecular centres for diffusion (molecules ordered cation, then partners).
    n_top_shells : int
    """

    def __init__(self, cation: Group, partners: Sequence[Group], cutoffs_nm: Mapping[str, float],
                 n_frames: int, n_blocks: int = 5, max_lag: int | None = None,
                 tracker: CentreTracker | None = None, n_top_shells: int = 10) -> None:
        self.cation, self.partners = cation, list(partners)
        self.cutoffs = {p.name: float(cutoffs_nm[p.name]) for p in self.partners}
        self.n_frames = n_frames
        self.blocks = block_of_frames(n_frames, n_blocks)
        self.n_top = n_top_shells
        self._prepare_sites()
        n_cat, n_anion = cation.n_molecules, self.n_anions
        self.shells = ShellCompositions([p.name for p in self.partners], int(self.blocks.max()) + 1)
        self.cluster_hist = np.zeros((int(self.blocks.max()) + 1, n_cat + n_anion + 1))
        self.rows: list[NDArray[np.float64]] = []
        lag_max = max_lag if max_lag is not None else min(1000, n_frames // 2)
        self.lags = lag_grid(max(0, min(lag_max, n_frames - 1)))
        self.correlations = [ContactCorrelation(n_cat * p.n_molecules, self.lags)
                             for p in self.partners]
        self.tracker = tracker
        n_tracked = n_cat + sum(p.n_molecules for p in self.partners)
        self.msd = MSDAccumulator(n_tracked, self.lags) if tracker is not None else None

    def _prepare_sites(self) -> None:
        parts = self.partners
        self.n_partners = len(parts)
        self.site_atoms = np.concatenate([p.atoms for p in parts])
        self.site_partner = np.concatenate(
            [np.full(p.atoms.size, k, dtype=np.int64) for k, p in enumerate(parts)])
        self.mol_offset = np.cumsum([0] + [p.n_molecules for p in parts]).astype(np.int64)
        self.site_molecule = np.concatenate(
            [p.atom_molecule + self.mol_offset[k] for k, p in enumerate(parts)])
        self.site_cutoff = np.array([self.cutoffs[p.name] for p in parts])[self.site_partner]
        self.n_mol_total = int(self.mol_offset[-1])
        self.mol_partner = np.repeat(np.arange(self.n_partners), np.diff(self.mol_offset))
        is_anion = np.array([p.role == "anion" for p in parts])[self.mol_partner]
        self.anion_index = np.where(is_anion, np.cumsum(is_anion) - 1, -1)
        self.n_anions = int(is_anion.sum())
        self.has_anions = self.n_anions > 0

    def frame(self, xyz: NDArray[np.floating], box: NDArray[np.float64], block: int,
              ) -> tuple[NDArray[np.float64], list[NDArray[np.int64]]]:
        """Analyse one frame: xyz (n_atoms, 3) nm, box (3,) nm. Returns (row, contact keys)."""
        n_cat, n_p = self.cation.n_molecules, self.n_partners
        ci, sj = compute_contacts(xyz[self.cation.atoms], xyz[self.site_atoms], self.site_molecule,
                                  box, self.site_cutoff)
        cat, mol = shell_molecules(ci, sj, self.site_molecule, self.n_mol_total)
        part = self.mol_partner[mol]
        counts = shell_counts(cat, part, n_cat, n_p)
        atom_counts = shell_counts(ci, self.site_partner[sj], n_cat, n_p)
        anion = self.anion_index[mol]
        ca, an = cat[anion >= 0], anion[anion >= 0]
        sizes = cluster_sizes(ca, an, n_cat, self.n_anions)
        self.shells.add(counts, block)
        self.cluster_hist[block] += np.bincount(sizes, minlength=self.cluster_hist.shape[1])
        row = np.concatenate([
            counts.mean(axis=0), atom_counts.mean(axis=0), (counts > 0).mean(axis=0),
            state_fractions(classify_cations(ca, an, n_cat, self.n_anions)),
            state_fractions(classify_anions(ca, an, self.n_anions)),
            [sizes.mean(), sizes.max()],
        ])
        local = mol - self.mol_offset[part]
        keys = [cat[part == k] * p.n_molecules + local[part == k]
                for k, p in enumerate(self.partners)]
        return row, keys

    def add_chunk(self, xyz: NDArray[np.floating], box: NDArray[np.float64]) -> None:
        """Add consecutive frames: xyz (n_frames, n_atoms, 3) nm, box (n_frames, 3) nm."""
        keys_by_partner: list[list[NDArray[np.int64]]] = [[] for _ in self.partners]
        for k in range(xyz.shape[0]):
            block = int(self.blocks[min(len(self.rows), self.n_frames - 1)])
            row, keys = self.frame(xyz[k], box[k], block)
            self.rows.append(row)
            for store, key in zip(keys_by_partner, keys, strict=True):
                store.append(key)
        for corr, keys in zip(self.correlations, keys_by_partner, strict=True):
            corr.add_chunk(keys)
        if self.tracker is not None and self.msd is not None:
            self.msd.add_chunk(self.tracker.add_chunk(xyz, box))

    def conclude(self, dt_ps: float | None) -> dict[str, Any]:
        """Averages, block errors, shells, clusters, residence and diffusion as plain data."""
        if not self.rows:
            return {}
        rows = np.vstack(self.rows)
        blocks = self.blocks[: rows.shape[0]]
        mean, err = mean_and_stderr(rows, blocks)
        names = [p.name for p in self.partners]
        n_p = self.n_partners

        def pick(start: int, keys: Sequence[str]) -> tuple[dict[str, float], dict[str, Any]]:
            sl = range(start, start + len(keys))
            return ({k: float(mean[i]) for k, i in zip(keys, sl, strict=True)},
                    {k: err[i] for k, i in zip(keys, sl, strict=True)})

        out: dict[str, Any] = {}
        stderr: dict[str, Any] = {}
        for key, start, labels in (
            ("coordination_numbers", 0, names), ("coordination_numbers_atoms", n_p, names),
            ("paired_fractions", 2 * n_p, names), ("ion_pairing", 3 * n_p, CATION_STATES),
            ("anion_states", 3 * n_p + 3, ANION_STATES),
        ):
            out[key], stderr[key] = pick(start, labels)
        if not self.has_anions:
            out["anion_states"] = stderr["anion_states"] = {}
        shells, shell_err = self.shells.top(self.n_top)
        out["shells"], stderr["shells"] = shells, shell_err
        out["clusters"], stderr["clusters"] = self._clusters(mean[-2:], err[-2:])
        if dt_ps is not None:
            out["residence_times_ps"], out["residence_correlation"] = self._residence(dt_ps)
            out["diffusion"] = self._diffusion(dt_ps)
        out["stderr"] = stderr
        return out

    def _clusters(self, mean: NDArray[np.float64], err: Sequence[float | None],
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
        hist = self.cluster_hist
        total = hist.sum(axis=0)
        sizes = np.nonzero(total)[0]
        used = hist.sum(axis=1) > 0
        frac = hist[used] / hist[used].sum(axis=1, keepdims=True)
        ions = hist[used] * np.arange(hist.shape[1])
        ion_frac = ions / ions.sum(axis=1, keepdims=True)
        all_ions = total * np.arange(hist.shape[1])
        data = {
            "size_distribution": {str(s): float(total[s] / total.sum()) for s in sizes},
            "ion_fraction_by_size": {str(s): float(all_ions[s] / all_ions.sum()) for s in sizes},
            "mean_size": float(mean[0]),
            "mean_largest_size": float(mean[1]),
        }
        errors = {
            "size_distribution": {str(s): block_stderr(frac[:, s]) for s in sizes},
            "ion_fraction_by_size": {str(s): block_stderr(ion_frac[:, s]) for s in sizes},
            "mean_size": err[0], "mean_largest_size": err[1],
        }
        return data, errors

    def _residence(self, dt_ps: float) -> tuple[dict[str, float | None], dict[str, Any]]:
        times: dict[str, float | None] = {}
        curves: dict[str, Any] = {}
        for p, corr in zip(self.partners, self.correlations, strict=True):
            lags, c = corr.correlation()
            times[p.name] = residence_time(lags, c, dt_ps) if lags.size > 1 else None
            curves[p.name] = {"lag_ps": (lags * dt_ps).tolist(),
                              "C": [None if not np.isfinite(v) else float(v) for v in c]}
        return times, curves

    def _diffusion(self, dt_ps: float) -> dict[str, Any]:
        if self.msd is None or self.lags[-1] < 2:
            return {}
        groups = [self.cation, *self.partners]
        offsets = np.cumsum([0] + [g.n_molecules for g in groups])
        return {g.name: diffusion_with_error(self.msd, np.arange(offsets[k], offsets[k + 1]),
                                             dt_ps)
                for k, g in enumerate(groups)}
