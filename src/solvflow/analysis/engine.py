"""The engine: prepare -> chunk -> conclude (MDAnalysis style, vectorised over frames).

:class:`SolvationAccumulator` holds everything that grows while frames
stream past: one row of per-frame averages (coordination numbers, paired
fractions, SSIP/CIP/AGG, anion states, cluster sizes), per-block shell and
cluster-size counts per time bin (at most ``MAX_BINS`` bins of consecutive
frames; one frame per bin for shorter runs), the contact-correlation history
(residence times), the MSD ring (diffusion, whole run and per time block)
and the translational dipole of the ions (conductivity). Each chunk of
frames is analysed at once (one neighbour search, frame-offset bincounts,
one ``connected_components``), so the number of numpy calls per chunk does
not grow with its frames. Memory depends on the number of frames only
through per-frame scalars (a few dozen floats per frame, the run-length
histogram and the dipole: about 0.4 kB per frame).

Errors of time averages come from the statistical inefficiency of the
per-frame (or per-bin) series (:mod:`solvflow.analysis.stats`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvflow.analysis.contacts import chunk_contacts_of
from solvflow.analysis.coordination import ShellCompositions, shell_counts
from solvflow.analysis.groups import Group
from solvflow.analysis.pairing import (
    ANION_STATES,
    CATION_STATES,
    chunk_cluster_sizes,
    classify_anions,
    classify_cations,
)
from solvflow.analysis.residence import (
    ContactCorrelation,
    ContinuousContacts,
    lag_grid,
    residence_time,
)
from solvflow.analysis.stats import (
    TimeAverage,
    block_of_frames,
    columns_average,
    error_trees,
    map_averages,
    ratio_average,
    with_min_inefficiency,
)
from solvflow.analysis.transport import (
    BlockMSD,
    CentreTracker,
    MSDAccumulator,
    diffusion_with_error,
)

MAX_BINS = 1000  # time bins for shell-composition and cluster-size counts


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
        Number of frames that will be added (fixes the bins, blocks and the lag grid).
    n_blocks : int
        Time blocks for the diffusion and conductivity errors.
    max_lag : int, optional
        Longest lag (analysed frames) for residence and MSD; default half the frames, at most 1000.
    tracker : CentreTracker, optional
        Unwrapped molecular centres for diffusion (molecules ordered cation, then partners).
    n_top_shells : int
    residence : bool
        Accumulate the contact correlations (residence times).
    charges : ndarray, shape (n_tracked_molecules,), optional
        Formal charge (e) of every tracked molecule: the translational dipole is kept
        for the Einstein-Helfand conductivity (needs ``tracker``).
    """

    def __init__(self, cation: Group, partners: Sequence[Group], cutoffs_nm: Mapping[str, float],
                 n_frames: int, n_blocks: int = 5, max_lag: int | None = None,
                 tracker: CentreTracker | None = None, n_top_shells: int = 10,
                 residence: bool = True, charges: NDArray[np.float64] | None = None) -> None:
        self.cation, self.partners = cation, list(partners)
        self.cutoffs = {p.name: float(cutoffs_nm[p.name]) for p in self.partners}
        self.n_frames = n_frames
        self.n_blocks = n_blocks
        self.blocks = block_of_frames(n_frames, min(n_frames, MAX_BINS))  # time bins
        self.n_top = n_top_shells
        self._prepare_sites()
        n_cat, n_anion = cation.n_molecules, self.n_anions
        self.shells = ShellCompositions([p.name for p in self.partners], int(self.blocks.max()) + 1)
        self.cluster_hist = np.zeros((int(self.blocks.max()) + 1, n_cat + n_anion + 1))
        self.rows: list[NDArray[np.float64]] = []  # one (n_frames_of_chunk, n_values) per chunk
        self.n_seen = 0
        self.volume_sum = 0.0
        lag_max = max_lag if max_lag is not None else min(1000, n_frames // 2)
        self.lags = lag_grid(max(0, min(lag_max, n_frames - 1)))
        pairs = [n_cat * p.n_molecules for p in self.partners]
        self.correlations = ([ContactCorrelation(n, self.lags) for n in pairs] if residence
                             else [])
        self.continuous = [ContinuousContacts(n, n_frames) for n in pairs] if residence else []
        self.tracker = tracker
        n_tracked = n_cat + sum(p.n_molecules for p in self.partners)
        self.msd = MSDAccumulator(n_tracked, self.lags) if tracker is not None else None
        self.block_msd = (BlockMSD(n_tracked, n_frames, n_blocks, int(self.lags[-1]))
                          if tracker is not None else None)
        self.charges = charges if tracker is not None else None
        self.dipoles: list[NDArray[np.float64]] = []

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
        f, ci, sj = chunk_contacts_of(xyz, self.cation.atoms, self.site_atoms, box,
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
        for k, (p, corr) in enumerate(zip(self.partners, self.correlations, strict=False)):
            mine = part == k
            keys = fcm[mine] % n_cat * p.n_molecules + (mol[mine] - self.mol_offset[k])
            corr.add_frames(fcm[mine] // n_cat, keys, n_f)
            self.continuous[k].add_frames(fcm[mine] // n_cat, keys, n_f)
        self.volume_sum += float(np.prod(np.asarray(box, dtype=np.float64), axis=1).sum())
        if self.tracker is not None and self.msd is not None:
            centres = self.tracker.add_chunk(xyz, box)
            self.msd.add_chunk(centres)
            if self.block_msd is not None:
                self.block_msd.add_chunk(centres)
            if self.charges is not None:
                self.dipoles.append(np.einsum("fmk,m->fk", centres, self.charges))
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
        """Averages with errors, shells, clusters, residence and diffusion as plain data.

        The error keys (``stderr``, ``effective_samples``, ``correlation_time_ps``,
        ``few_samples``) come from :func:`~solvflow.analysis.stats.error_trees`;
        residence and diffusion only when ``dt_ps`` is known and they were accumulated.
        """
        if not self.rows:
            return {}
        avg = columns_average(np.vstack(self.rows))
        names = [p.name for p in self.partners]
        n_p = self.n_partners
        tree: dict[str, Any] = {}
        for key, start, labels in (
            ("coordination_numbers", 0, names), ("coordination_numbers_atoms", n_p, names),
            ("paired_fractions", 2 * n_p, names), ("ion_pairing", 3 * n_p, CATION_STATES),
            ("anion_states", 3 * n_p + 3, ANION_STATES),
        ):
            tree[key] = dict(zip(labels, avg[start:start + len(labels)], strict=True))
        if not self.has_anions:
            tree["anion_states"] = {}
        out: dict[str, Any] = {k: {n: a.mean for n, a in v.items()} for k, v in tree.items()}
        per_bin = self.n_seen / max(len(self.shells.counts), 1)
        shells, tree["shells"] = self.shells.top(self.n_top)
        tree["shells"] = [replace(a, frames_per_sample=per_bin) for a in tree["shells"]]
        out["shells"] = shells
        out["clusters"], tree["clusters"] = self._clusters(avg[-2:], per_bin)
        if self.correlations:
            g_min = self.exchange_inefficiency()
            tree = map_averages(tree, lambda a: with_min_inefficiency(a, g_min))
            out["inefficiency_floor_frames"] = g_min
        if dt_ps is not None and self.correlations:
            (out["residence_times_ps"], out["residence_correlation"],
             out["residence_times_continuous_ps"],
             out["residence_correlation_continuous"]) = self._residence(dt_ps)
        if dt_ps is not None:
            out["diffusion"] = self._diffusion(dt_ps)  # {} when not accumulated
        out.update(error_trees(tree, dt_ps))
        return out

    def exchange_inefficiency(self) -> float:
        """``1 + 2 tau`` (frames) of the slowest shell exchange (intermittent 1/e time).

        A partner whose correlation stays above 1/e up to the longest lag counts as
        that lag (a lower bound); a partner never in any shell does not count.
        """
        taus = []
        for corr in self.correlations:
            lags, c = corr.correlation()
            if lags.size < 2 or not np.all(np.isfinite(c)):
                continue
            tau = residence_time(lags, c, 1.0)
            taus.append(float(lags[-1]) if tau is None else tau)
        return 1.0 + 2.0 * max(taus, default=0.0)

    def _clusters(self, avg: Sequence[TimeAverage], per_bin: float,
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
        hist = self.cluster_hist
        total = hist.sum(axis=0)
        sizes = np.nonzero(total)[0]
        used = hist.sum(axis=1) > 0
        clusters = hist[used]
        ions = clusters * np.arange(hist.shape[1])
        n_clusters, n_ions = clusters.sum(axis=1), ions.sum(axis=1)
        all_ions = total * np.arange(hist.shape[1])
        data = {
            "size_distribution": {str(s): float(total[s] / total.sum()) for s in sizes},
            "ion_fraction_by_size": {str(s): float(all_ions[s] / all_ions.sum()) for s in sizes},
            "mean_size": float(avg[0].mean),
            "mean_largest_size": float(avg[1].mean),
        }

        def binned(a: NDArray[np.float64], b: NDArray[np.float64]) -> TimeAverage:
            return replace(ratio_average(a, b), frames_per_sample=per_bin)

        errors = {
            "size_distribution": {str(s): binned(clusters[:, s], n_clusters) for s in sizes},
            "ion_fraction_by_size": {str(s): binned(ions[:, s], n_ions) for s in sizes},
            "mean_size": avg[0], "mean_largest_size": avg[1],
        }
        return data, errors

    def _residence(self, dt_ps: float) -> tuple[dict[str, float | None], dict[str, Any],
                                                dict[str, float | None], dict[str, Any]]:
        """Intermittent and continuous residence times (ps) and their correlation curves."""
        times: dict[str, float | None] = {}
        curves: dict[str, Any] = {}
        times_c: dict[str, float | None] = {}
        curves_c: dict[str, Any] = {}
        for p, corr, cont in zip(self.partners, self.correlations, self.continuous, strict=True):
            for (lags, c), t, cv in ((corr.correlation(), times, curves),
                                     (cont.correlation(self.lags), times_c, curves_c)):
                t[p.name] = residence_time(lags, c, dt_ps) if lags.size > 1 else None
                cv[p.name] = {"lag_ps": (lags * dt_ps).tolist(),
                              "C": [None if not np.isfinite(v) else float(v) for v in c]}
        return times, curves, times_c, curves_c

    def _diffusion(self, dt_ps: float) -> dict[str, Any]:
        if self.msd is None or self.lags[-1] < 2:
            return {}
        groups = [self.cation, *self.partners]
        offsets = np.cumsum([0] + [g.n_molecules for g in groups])
        return {g.name: diffusion_with_error(self.msd, np.arange(offsets[k], offsets[k + 1]),
                                             dt_ps, self.block_msd)
                for k, g in enumerate(groups)}

    def dipole(self) -> NDArray[np.float64]:
        """Translational dipole ``sum_i z_i r_i(t)`` per frame, shape (n_frames, 3), e nm."""
        return np.vstack(self.dipoles) if self.dipoles else np.zeros((0, 3))

    @property
    def mean_volume_nm3(self) -> float:
        """Mean box volume of the frames added, nm^3."""
        return self.volume_sum / max(self.n_seen, 1)


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
