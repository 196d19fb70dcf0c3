"""The engine: prepare -> chunk -> conclude (MDAnalysis style, vectorised over frames).

:class:`SolvationAccumulator` holds everything that grows while frames
stream past: one row of per-frame averages (coordination numbers, paired
fractions, SSIP/CIP/AGG, anion states, cluster sizes), per-block shell and
cluster-size counts, the contact-correlation history (residence times) and
the MSD ring (diffusion). Each chunk of frames is analysed at once (one
neighbour search, frame-offset bincounts, one ``connected_components``), so
the number of numpy calls per chunk does not grow with its frames. Memory
depends on the number of frames only through the per-frame rows (a few
dozen floats each).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvflow.analysis.contacts import chunk_contacts
from solvflow.analysis.coordination import ShellCompositions, shell_counts
from solvflow.analysis.groups import Group
from solvflow.analysis.pairing import (
    ANION_STATES,
    CATION_STATES,
    chunk_cluster_sizes,
    classify_anions,
    classify_cations,
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
        self.rows: list[NDArray[np.float64]] = []  # one (n_frames_of_chunk, n_values) per chunk
        self.n_seen = 0
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

    def add_chunk(self, xyz: NDArray[np.floating], box: NDArray[np.float64]) -> None:
        """Add consecutive frames: xyz (n_frames, n_atoms, 3) nm, box (n_frames, 3) nm.

        All frames of the chunk are analysed together: one neighbour search,
        and bincounts / one ``np.unique`` / one ``connected_components`` on
        frame-offset indices (``frame * n + i``), so the number of numpy calls
        does not grow with the number of frames.
        """
        n_f = xyz.shape[0]
        if n_f == 0:
            return
        blocks = self.blocks[np.minimum(self.n_seen + np.arange(n_f), self.n_frames - 1)]
        f, ci, sj = chunk_contacts(xyz[:, self.cation.atoms], xyz[:, self.site_atoms], box,
                                   self.site_cutoff)
        n_cat, n_p = self.cation.n_molecules, self.n_partners
        fc = f * n_cat + ci  # frame-cation index
        key = np.unique(fc * self.n_mol_total + self.site_molecule[sj])  # a molecule counts once
        fcm, mol = np.divmod(key, self.n_mol_total)
        part = self.mol_partner[mol]
        counts = shell_counts(fcm, part, n_f * n_cat, n_p).reshape(n_f, n_cat, n_p)
        atom_counts = shell_counts(fc, self.site_partner[sj], n_f * n_cat, n_p)
        self.shells.add_frames(counts, blocks)
        self.rows.append(np.hstack([
            counts.mean(axis=1), atom_counts.reshape(n_f, n_cat, n_p).mean(axis=1),
            (counts > 0).mean(axis=1), self._pairing_rows(fcm, mol, n_f, blocks),
        ]))
        for k, (p, corr) in enumerate(zip(self.partners, self.correlations, strict=True)):
            mine = part == k
            local = mol[mine] - self.mol_offset[k]
            corr.add_frames(fcm[mine] // n_cat, fcm[mine] % n_cat * p.n_molecules + local, n_f)
        if self.tracker is not None and self.msd is not None:
            self.msd.add_chunk(self.tracker.add_chunk(xyz, box))
        self.n_seen += n_f

    def _pairing_rows(self, fcm: NDArray[np.int64], mol: NDArray[np.int64], n_f: int,
                      blocks: NDArray[np.int64]) -> NDArray[np.float64]:
        """Per frame: SSIP/CIP/AGG, free/CIP/AGG fractions, mean and largest cluster size."""
        n_cat, n_an = self.cation.n_molecules, self.n_anions
        anion = self.anion_index[mol]
        is_anion = anion >= 0
        ca = fcm[is_anion]
        fa = ca // n_cat * n_an + anion[is_anion]  # frame-anion index
        cat_frac = _per_frame_fractions(classify_cations(ca, fa, n_f * n_cat, n_f * n_an),
                                        n_f, n_cat)
        an_frac = _per_frame_fractions(classify_anions(ca, fa, n_f * n_an), n_f, n_an)
        sizes, frame = chunk_cluster_sizes(ca, fa, n_cat, n_an, n_f)
        n_clusters = np.bincount(frame, minlength=n_f)
        largest = np.zeros(n_f, dtype=np.int64)
        np.maximum.at(largest, frame, sizes)
        width = self.cluster_hist.shape[1]
        self.cluster_hist += np.bincount(blocks[frame] * width + sizes,
                                         minlength=self.cluster_hist.size,
                                         ).reshape(self.cluster_hist.shape)
        mean_size = (n_cat + n_an) / n_clusters
        return np.hstack([cat_frac, an_frac, mean_size[:, None], largest[:, None]])

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


def _per_frame_fractions(states: NDArray[np.int64], n_frames: int, n_items: int,
                         n_states: int = 3) -> NDArray[np.float64]:
    """Fraction of items in each state per frame, shape (n_frames, n_states).

    ``states`` has shape (n_frames * n_items,), frame-major; zeros when ``n_items`` is 0.
    """
    if n_items == 0:
        return np.zeros((n_frames, n_states))
    frame = np.arange(n_frames * n_items) // n_items
    hist = np.bincount(frame * n_states + states, minlength=n_frames * n_states)
    return hist.reshape(n_frames, n_states) / n_items
