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
history by a merge per lag (numba kernel). Memory grows with ``max_lag`` and
the number of contacts, not with trajectory length.
"""

from __future__ import annotations

import math

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
        kernels.overlap_kernel(pool, chunk, self.lags, self.n_pairs, self.overlap)
        oldest = len(self.sizes) - int(self.lags[-1])
        self._history = pool[pool >= oldest * self.n_pairs]

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
    threshold = 1.0 / math.e
    below = np.nonzero(corr < threshold)[0]
    if below.size == 0 or below[0] == 0:
        return None
    k = below[0]
    x0, x1, y0, y1 = lags[k - 1], lags[k], corr[k - 1], corr[k]
    return float((x0 + (y0 - threshold) / (y0 - y1) * (x1 - x0)) * dt_ps)


class ContinuousContacts:
    """Run lengths of unbroken contacts, chunk by chunk (continuous residence).

    Parameters
    ----------
    n_pairs : int
        Number of possible (cation, molecule) pairs.
    n_frames : int
        Analysed frames that will be added (longest possible run).
    """

    def __init__(self, n_pairs: int, n_frames: int) -> None:
        self.n_pairs = int(n_pairs)
        self.run_hist = np.zeros(n_frames + 1, dtype=np.int64)  # closed runs by length
        self.sizes = np.zeros(n_frames, dtype=np.int64)  # contacts per frame
        self._open_start = np.full(self.n_pairs, -1, dtype=np.int64)
        self._open_keys = np.zeros(0, dtype=np.int64)
        self.n_seen = 0

    def add_frames(self, frame: NDArray[np.int64], keys: NDArray[np.int64],
                   n_frames: int) -> None:
        """Add ``n_frames`` consecutive frames (same flat arrays as ContactCorrelation)."""
        t0, t1 = self.n_seen, self.n_seen + n_frames
        g = t0 + np.asarray(frame, dtype=np.int64)
        k = np.asarray(keys, dtype=np.int64)
        self.sizes[t0:t1] = np.bincount(frame, minlength=n_frames)[:n_frames]
        order = np.lexsort((g, k))
        k, g = k[order], g[order]
        new = np.ones(k.size, dtype=bool)
        new[1:] = (k[1:] != k[:-1]) | (g[1:] != g[:-1] + 1)
        last = np.append(new[1:], True) if k.size else new
        seg_key, seg_start, seg_end = k[new], g[new], g[last]
        carried = (seg_start == t0) & (self._open_start[seg_key] >= 0)
        seg_start[carried] = self._open_start[seg_key[carried]]
        stopped = self._open_keys[~np.isin(self._open_keys, seg_key[carried])]
        self._close(t0 - self._open_start[stopped])
        self._open_start[self._open_keys] = -1
        still = seg_end == t1 - 1
        self._close(seg_end[~still] - seg_start[~still] + 1)
        self._open_keys = seg_key[still]
        self._open_start[self._open_keys] = seg_start[still]
        self.n_seen = t1

    def _close(self, lengths: NDArray[np.int64]) -> None:
        if lengths.size:
            self.run_hist += np.bincount(lengths, minlength=self.run_hist.size)

    def correlation(self, lags: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Lags (frames, those below the frames seen) and C_c(lag); NaN without contacts."""
        n = self.n_seen
        hist = self.run_hist[: n + 1].copy()
        open_len = n - self._open_start[self._open_keys]
        hist += np.bincount(open_len, minlength=hist.size)[: hist.size]
        lags = np.asarray(lags, dtype=np.int64)
        lags = lags[lags < n]
        length = np.arange(hist.size)
        # sum_{L > lag} hist[L] * (L - lag) from suffix sums
        count_above = np.concatenate([np.cumsum(hist[::-1])[::-1], [0]])
        weight_above = np.concatenate([np.cumsum((hist * length)[::-1])[::-1], [0]])
        pairs = weight_above[lags + 1] - lags * count_above[lags + 1]
        cum = np.concatenate([[0], np.cumsum(self.sizes[:n])])
        denom = cum[n - lags].astype(np.float64)
        return lags, np.divide(pairs.astype(np.float64), denom,
                               out=np.full(lags.size, np.nan), where=denom > 0)
