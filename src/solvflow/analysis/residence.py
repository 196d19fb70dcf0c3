"""Residence times of partner molecules in cation shells (streaming).

For one partner, let ``h_ij(t)`` be 1 when molecule j is in the shell of
cation i at frame t (a molecule counts once). The *intermittent* contact
correlation is the normalised autocovariance

    C(tau) = (<h(t) h(t+tau)> - p^2) / (p - p^2),   p = <h>,

averaged over all cation-molecule pairs and all time origins t with
``t + tau`` analysed (so C(0) = 1 and C -> 0 for uncorrelated contacts;
contacts that break and re-form count as continuing). The residence time
is the lag at which C first falls below 1/e (linear interpolation between
lags); None when it stays above 1/e up to the longest lag (trajectory too
short).

Streaming: the contacts of the last ``max_lag`` frames are kept as sorted
integer keys ``frame * n_pairs + pair``; each chunk is compared with the
history by one ``searchsorted`` per lag. Memory grows with ``max_lag`` and
the number of contacts, not with trajectory length.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from solvflow.analysis import kernels


def lag_grid(max_lag: int, n_log: int = 24) -> NDArray[np.int64]:
    """Lags 0..max_lag: every lag up to 10, then ``n_log`` log-spaced ones. Shape (n_lags,)."""
    if max_lag < 1:
        return np.zeros(1, dtype=np.int64)
    dense = np.arange(0, min(max_lag, 10) + 1)
    sparse = np.geomspace(1, max_lag, n_log).round().astype(np.int64)
    return np.unique(np.concatenate([dense, sparse, [max_lag]])).astype(np.int64)


class ContactCorrelation:
    """Accumulate ``sum_t |S(t) & S(t+lag)|`` for a set of lags, chunk by chunk.

    Parameters
    ----------
    n_pairs : int
        Number of possible (cation, molecule) pairs (``n_cations * n_molecules``).
    lags : ndarray of int64, shape (n_lags,)
        Lags in analysed frames, ascending, starting at 0.
    """

    def __init__(self, n_pairs: int, lags: NDArray[np.int64]) -> None:
        self.n_pairs = int(n_pairs)
        self.lags = np.asarray(lags, dtype=np.int64)
        self.overlap = np.zeros(self.lags.size)
        self.sizes: list[int] = []  # contacts per frame, to normalise per lag
        self._history = np.zeros(0, dtype=np.int64)

    def add_chunk(self, frame_keys: list[NDArray[np.int64]]) -> None:
        """Add consecutive frames; each item holds that frame's sorted unique pair keys."""
        frame = np.repeat(np.arange(len(frame_keys), dtype=np.int64),
                          [k.size for k in frame_keys])
        keys = (np.concatenate(frame_keys).astype(np.int64) if frame_keys
                else np.zeros(0, dtype=np.int64))
        self.add_frames(frame, keys, len(frame_keys))

    def add_frames(self, frame: NDArray[np.int64], keys: NDArray[np.int64],
                   n_frames: int) -> None:
        """Add ``n_frames`` consecutive frames given as flat arrays.

        Parameters
        ----------
        frame : ndarray of int64, shape (n_contacts,)
            Frame within the chunk (0..n_frames-1) of each contact, ascending.
        keys : ndarray of int64, shape (n_contacts,)
            Pair key (0..n_pairs-1) of each contact, unique and ascending within a frame.
        n_frames : int
        """
        t0 = len(self.sizes)
        chunk = (t0 + frame) * self.n_pairs + keys
        self.sizes.extend(np.bincount(frame, minlength=n_frames).tolist())
        pool = np.concatenate([self._history, chunk])
        if kernels.enabled():
            kernels.overlap_kernel(pool, chunk, self.lags, self.n_pairs, self.overlap)
        else:
            self._overlap_numpy(pool, chunk)
        oldest = len(self.sizes) - int(self.lags[-1])
        self._history = pool[pool >= oldest * self.n_pairs]

    def _overlap_numpy(self, pool: NDArray[np.int64], chunk: NDArray[np.int64]) -> None:
        """Add ``|S(t) & S(t+lag)|`` of the new frames (binary searches in ``pool``)."""
        for li, lag in enumerate(self.lags):
            if chunk.size == 0:
                break
            query = chunk - lag * self.n_pairs
            lo, hi = np.searchsorted(pool, [query[0], query[-1]], side="left")
            window = pool[lo:hi + 1]  # the only part of the pool the query can match
            if window.size == 0:
                continue
            idx = np.minimum(np.searchsorted(window, query), window.size - 1)
            self.overlap[li] += np.count_nonzero(window[idx] == query)

    def correlation(self) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Lags (frames) with at least one origin and the normalised C(lag)."""
        sizes = np.asarray(self.sizes, dtype=np.float64)
        n = sizes.size
        ok = self.lags < n
        lags = self.lags[ok]
        if n == 0 or sizes.sum() == 0:
            return lags, np.full(lags.size, np.nan)
        cum = np.concatenate([[0.0], np.cumsum(sizes)])
        origins = (n - lags).astype(np.float64)
        joint = self.overlap[ok] / (origins * self.n_pairs)  # <h(t) h(t+lag)>
        p = cum[-1] / (n * self.n_pairs)
        if p >= 1.0:
            return lags, np.ones(lags.size)
        return lags, (joint - p * p) / (p - p * p)


def residence_time(lags: NDArray[np.int64], corr: NDArray[np.float64],
                   dt_ps: float) -> float | None:
    """Time (ps) at which ``corr`` first drops below 1/e (linear interpolation), or None."""
    threshold = 1.0 / np.e
    below = np.nonzero(corr < threshold)[0]
    if below.size == 0 or below[0] == 0:
        return None
    k = below[0]
    x0, x1, y0, y1 = lags[k - 1], lags[k], corr[k - 1], corr[k]
    return float((x0 + (y0 - threshold) / (y0 - y1) * (x1 - x0)) * dt_ps)
