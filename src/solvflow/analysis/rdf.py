"""Cation-site radial distribution functions and the first-minimum cutoff.

``g(r)`` of partner p is the histogram of cation-site minimum-image
distances normalised by the ideal-gas expectation
``n_cations * n_sites_p / V * 4/3 pi (r_hi^3 - r_lo^3)`` summed over frames
(pairs within one residue are excluded). The running coordination number
``n(r)`` is the mean number of sites within ``r`` of a cation. The range is
``R_MAX_NM`` (1 nm) or just below half the shortest edge of the smallest box
among the frames added, whichever is less (a shrinking NPT box narrows it
during the pass instead of failing).

Cutoff: the RDF is smoothed with a Gaussian (sigma ``SMOOTH_SIGMA_NM``); the
first peak is the first local maximum with ``g >= MIN_PEAK`` (2); the
cutoff is the first local minimum after it whose value is below
``MIN_DEPTH`` (0.85) times the peak, and it must lie in ``SEARCH_NM``
(0.15-0.8 nm).
If there is none (no shell structure, or too few frames) the cutoff is
None and the caller must ask the user for one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from solvflow.analysis import kernels

BIN_WIDTH_NM = 0.005
R_MAX_NM = 1.0
SMOOTH_SIGMA_NM = 0.01
MIN_DEPTH = 0.85  # minimum must be below this fraction of the first peak
MIN_PEAK = 2.0  # a first-shell peak must reach this height of the smoothed g(r)
SEARCH_NM = (0.15, 0.8)  # the minimum must lie in this range
RDF_CELL_REACH = 2  # cell lists with cells >= R_MAX_NM / 2 wide (fewer candidate pairs)


@dataclass
class RDF:
    """One cation-partner RDF.

    Attributes
    ----------
    r_nm : ndarray, shape (n_bins,)
        Bin centres, nm.
    g : ndarray, shape (n_bins,)
    running_cn : ndarray, shape (n_bins,)
        Mean number of sites within the bin's upper edge of a cation.
    n_frames : int
        Frames sampled.
    """

    r_nm: NDArray[np.float64]
    g: NDArray[np.float64]
    running_cn: NDArray[np.float64]
    n_frames: int


class RDFAccumulator:
    """Histogram cation-site distances of several partners over frames.

    Parameters
    ----------
    site_partner : ndarray of int64, shape (n_sites,)
        Partner index of each site.
    n_partners : int
    r_max_nm : float
        Upper edge of the histogram (clipped to just below half the smallest box of the
        frames added, see :meth:`_fit_range`).
    """

    def __init__(self, site_partner: NDArray[np.int64], n_partners: int,
                 r_max_nm: float = R_MAX_NM, bin_width_nm: float = BIN_WIDTH_NM) -> None:
        self.site_partner = site_partner
        self.n_partners = n_partners
        self.n_sites = np.bincount(site_partner, minlength=n_partners).astype(np.float64)
        self.r_max = r_max_nm
        self.width = bin_width_nm
        self.hist = np.zeros((n_partners, 0))
        self.inv_volume = 0.0
        self.n_frames = 0
        self.n_cations = 0

    def add(self, cation_xyz: NDArray[np.floating], site_xyz: NDArray[np.floating],
            box: NDArray[np.float64], cation_residue: NDArray[np.int64],
            site_residue: NDArray[np.int64]) -> None:
        """Add one frame (coordinates nm, shapes (n_cations, 3), (n_sites, 3); box (3,))."""
        self.add_chunk(cation_xyz[None], site_xyz[None], np.asarray(box)[None], cation_residue,
                       site_residue)

    def add_chunk(self, cation_xyz: NDArray[np.floating], site_xyz: NDArray[np.floating],
                  boxes: NDArray[np.float64], cation_residue: NDArray[np.int64],
                  site_residue: NDArray[np.int64]) -> None:
        """Add several frames at once.

        Parameters
        ----------
        cation_xyz : ndarray, shape (n_frames, n_cations, 3), nm
        site_xyz : ndarray, shape (n_frames, n_sites, 3), nm
        boxes : ndarray, shape (n_frames, 3), nm
        cation_residue, site_residue : ndarray of int64, shapes (n_cations,), (n_sites,)
            Pairs within one residue are not counted.
        """
        if cation_xyz.shape[0] == 0:
            return
        self._fit_range(float(np.min(boxes)))
        self._add_compiled(cation_xyz, site_xyz, boxes, cation_residue, site_residue)
        for volume in np.prod(np.asarray(boxes, dtype=np.float64), axis=1).tolist():
            self.inv_volume += 1.0 / volume  # frame by frame, as the sum was always formed
        self.n_frames += cation_xyz.shape[0]
        self.n_cations = cation_xyz.shape[1]

    def _fit_range(self, shortest_edge_nm: float) -> None:
        """Keep the range below half the smallest box seen so far (NPT boxes shrink).

        The first frames fix ``r_max = min(r_max_nm, 0.4995 * shortest edge)``; a later,
        smaller box drops the bins beyond its own limit. Every frame added so far
        counted its pairs in the bins that remain, so the RDF stays exact: its range is
        that of the smallest box of the frames added.
        """
        limit = min(self.r_max, 0.5 * shortest_edge_nm * 0.999)
        if self.hist.shape[1] == 0:
            self.r_max = limit
            self.hist = np.zeros((self.n_partners, int(self.r_max / self.width)))
        elif limit < self.hist.shape[1] * self.width:
            self.r_max = limit
            self.hist = self.hist[:, :int(limit / self.width)].copy()

    def _add_compiled(self, cation_xyz: NDArray[np.floating], site_xyz: NDArray[np.floating],
                      boxes: NDArray[np.float64], cation_residue: NDArray[np.int64],
                      site_residue: NDArray[np.int64]) -> None:
        """Histogram by the numba cell-list kernel."""
        n_bins = self.hist.shape[1]
        b = np.ascontiguousarray(np.asarray(boxes, dtype=np.float64).reshape(-1, 3))
        r_max = n_bins * self.width
        kernels.check_below_half_box(r_max, b, "RDF range")
        n = kernels.cells_per_edge(b, r_max, RDF_CELL_REACH)
        kernels.rdf_kernel(np.ascontiguousarray(cation_xyz), np.ascontiguousarray(site_xyz), b,
                           n, RDF_CELL_REACH, self.width, n_bins,
                           np.ascontiguousarray(self.site_partner, dtype=np.int64),
                           np.ascontiguousarray(cation_residue, dtype=np.int64),
                           np.ascontiguousarray(site_residue, dtype=np.int64), self.hist)

    def result(self) -> list[RDF]:
        """One :class:`RDF` per partner (empty arrays when no frame was added)."""
        n_bins = self.hist.shape[1]
        edges = np.arange(n_bins + 1) * self.width
        shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
        out = []
        for p in range(self.n_partners):
            ideal = self.n_cations * self.n_sites[p] * self.inv_volume * shell
            g = np.divide(self.hist[p], ideal, out=np.zeros(n_bins), where=ideal > 0)
            cn = np.cumsum(self.hist[p]) / max(self.n_frames * self.n_cations, 1)
            out.append(RDF(0.5 * (edges[1:] + edges[:-1]), g, cn, self.n_frames))
        return out


def first_minimum(r_nm: NDArray[np.float64], g: NDArray[np.float64],
                  sigma_nm: float = SMOOTH_SIGMA_NM) -> float | None:
    """Position (nm) of the first minimum after the first peak of the smoothed RDF, or None.

    Parameters
    ----------
    r_nm : ndarray, shape (n_bins,), evenly spaced bin centres, nm
    g : ndarray, shape (n_bins,)
    sigma_nm : float
        Width of the Gaussian smoothing, nm.
    """
    if r_nm.size < 5:
        return None
    smooth = gaussian_smooth(g, sigma_nm / (r_nm[1] - r_nm[0]))
    maxima = strict_extrema(smooth, np.greater)
    peaks = maxima[smooth[maxima] >= MIN_PEAK]
    if peaks.size == 0:
        return None
    peak = peaks[0]
    minima = strict_extrema(smooth, np.less)
    after = minima[(minima > peak) & (smooth[minima] < MIN_DEPTH * smooth[peak])]
    if after.size == 0 or not SEARCH_NM[0] <= r_nm[after[0]] <= SEARCH_NM[1]:
        return None
    return float(r_nm[after[0]])


# numpy forms of scipy.ndimage.gaussian_filter1d(mode="nearest") and scipy.signal.argrelextrema
# (importing scipy.signal costs more than the whole analysis of a short trajectory)
def gaussian_smooth(values: NDArray[np.float64], sigma_bins: float) -> NDArray[np.float64]:
    """Gaussian smoothing (sigma in bins, truncated at 4 sigma, edge values repeated).

    The kernel and the padding of ``scipy.ndimage.gaussian_filter1d(mode="nearest")``;
    equal to it up to the order of the float64 sums (tests: 1e-12).
    """
    radius = int(4.0 * float(sigma_bins) + 0.5)
    x = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / (float(sigma_bins) ** 2) * x ** 2)
    weights /= weights.sum()
    padded = np.pad(np.asarray(values, dtype=np.float64), radius, mode="edge")
    return np.correlate(padded, weights, mode="valid")


def strict_extrema(values: NDArray[np.float64], compare: np.ufunc) -> NDArray[np.int64]:
    """Indices i (1..n-2) with ``compare(v[i], v[i-1])`` and ``compare(v[i], v[i+1])``.

    As ``scipy.signal.argrelextrema(values, compare)[0]`` (order 1; the end points,
    compared with themselves there, never qualify).
    """
    v = np.asarray(values)
    inner = compare(v[1:-1], v[:-2]) & compare(v[1:-1], v[2:])
    return (np.flatnonzero(inner) + 1).astype(np.int64)
