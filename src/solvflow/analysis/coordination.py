"""Coordination numbers and shell compositions from shell contacts.

The coordination number of a partner is the number of its distinct
molecules in a cation's shell (averaged over cations and frames); the atom
coordination number counts coordinating sites instead. A shell composition
is the tuple of molecule counts per partner, e.g. ``{"DME": 2, "FSI": 1}``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from solvflow.analysis.stats import TimeAverage


def shell_counts(
    cation: NDArray[np.int64], partner: NDArray[np.int64], n_cations: int, n_partners: int
) -> NDArray[np.int64]:
    """How many contacts of each partner every cation has.

    Parameters
    ----------
    cation : ndarray of int64, shape (n_contacts,)
        Cation index of each contact (molecule- or atom-level contacts).
    partner : ndarray of int64, shape (n_contacts,)
        Partner species index (0..n_partners-1) of each contact.
    n_cations, n_partners : int

    Returns
    -------
    ndarray of int64, shape (n_cations, n_partners)
    """
    flat = np.bincount(cation * n_partners + partner, minlength=n_cations * n_partners)
    return flat.reshape(n_cations, n_partners)


class ShellCompositions:
    """Counts of shell compositions, kept per time bin for standard errors.

    Parameters
    ----------
    partner_names : sequence of str
        Partner order of the columns of the count matrices.
    n_blocks : int
        Time bins (consecutive frames; one frame each when there are few frames).
    """

    def __init__(self, partner_names: Sequence[str], n_blocks: int) -> None:
        self.partner_names = list(partner_names)
        self.n_blocks = n_blocks
        self.counts: list[Counter[tuple[int, ...]]] = [Counter() for _ in range(n_blocks)]
        self.samples = np.zeros(n_blocks, dtype=np.int64)  # cation-frames per block

    def add(self, counts: NDArray[np.int64], block: int) -> None:
        """Add one frame's (n_cations, n_partners) molecule counts to ``block``."""
        self.add_frames(counts[None], np.array([block]))

    def add_frames(self, counts: NDArray[np.int64], blocks: NDArray[np.int64]) -> None:
        """Add consecutive frames at once.

        Parameters
        ----------
        counts : ndarray of int64, shape (n_frames, n_cations, n_partners)
            Molecule counts of every cation shell in every frame.
        blocks : ndarray of int64, shape (n_frames,)
            Block of each frame.

        New compositions enter the counters in the order of their first frame
        and, within a frame, in ascending code order (as frame-by-frame adding
        would), so ties in :meth:`top` are broken identically.
        """
        n_frames, n_cations, n_partners = counts.shape
        if n_frames == 0 or n_cations == 0:
            return
        radix = int(counts.max(initial=0)) + 1  # encode each row as one integer
        n_codes = radix**n_partners
        if n_codes * (int(blocks.max()) + 1) >= 2**62:
            for k in range(n_frames):  # too many partners/large counts for one int64 code
                self.add_frames(counts[k:k + 1], blocks[k:k + 1])
            return
        weights = radix ** np.arange(n_partners, dtype=np.int64)
        codes = (counts @ weights).ravel() + np.repeat(blocks * n_codes, n_cations)
        keys, first, number = np.unique(codes, return_index=True, return_counts=True)
        block, code = np.divmod(keys, n_codes)
        order = np.lexsort((code, first // n_cations))  # first frame, then code
        rows = (code[order, None] // weights) % radix
        for b, row, n in zip(block[order].tolist(), rows.tolist(), number[order].tolist(),
                             strict=True):
            self.counts[b][tuple(row)] += n
        np.add.at(self.samples, blocks, n_cations)

    def top(self, n_top: int) -> tuple[list[dict[str, object]], list[TimeAverage]]:
        """The ``n_top`` most frequent compositions and the time average of each fraction.

        Returns
        -------
        shells : list of ``{"composition": {name: count}, "fraction": float}``
            Only partners present in the shell are listed; an empty shell is ``{}``.
        averages : list of TimeAverage
            Fraction with its standard error and effective samples, from the
            per-bin counts (:func:`~solvflow.analysis.stats.ratio_average`; samples
            are time bins).
        """
        from solvflow.analysis.stats import ratio_average

        total: Counter[tuple[int, ...]] = Counter()
        for c in self.counts:
            total.update(c)
        n_samples = int(self.samples.sum())
        used = self.samples > 0
        shells, averages = [], []
        for key, count in total.most_common(n_top):
            comp = {name: int(k) for name, k in zip(self.partner_names, key, strict=True) if k}
            shells.append({"composition": comp, "fraction": count / n_samples})
            per_block = np.array([c[key] for c in self.counts], dtype=np.float64)
            averages.append(ratio_average(per_block[used], self.samples[used]))
        return shells, averages
