"""Periodic cell lists vectorised over all frames of a chunk (exact neighbour search).

One call finds every (frame, centre, site) pair within ``r_max`` for a whole
chunk of frames with a fixed number of numpy operations, independent of the
number of frames, atoms or ions (no Python loop over frames or atoms):

1. Each edge of the orthorhombic box is divided into ``n`` cells of width
   ``>= (r_max + CELL_MARGIN_NM) / reach`` (the same ``n`` for every frame of the
   chunk; the cells of a frame scale with its box). Sites are binned by the
   cell id ``frame * n_cells + cell`` and sorted by it (one ``argsort``).
2. Every centre looks at the ``(2 reach + 1)^3`` cells around its own (fewer
   when the box has fewer cells per edge, so no cell is visited twice); the
   sites of those cells are its candidates (a range expansion with
   ``np.repeat``).
3. Candidate minimum-image distances are computed in float64 and pairs with
   ``distance <= r_max`` are kept.

The search is **exact**, not an approximation: a site within ``r_max`` of a
centre lies at most ``reach`` cells away along every axis because cells are
wider than ``r_max / reach`` (the margin of 1e-3 nm absorbs rounding of the
cell assignment), so no pair is missed; distances are the same minimum-image
distances as the per-frame k-d tree of :func:`solvflow.analysis.contacts.pairs_within`.
Frames are processed in batches of at most ``MAX_CANDIDATES`` candidate pairs
to bound memory.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from solvflow.errors import AnalysisInputError

CELL_MARGIN_NM = 1e-3
MAX_CELLS_PER_EDGE = 64
MAX_CANDIDATES = 3_000_000
FLOAT32_CELLS_NM = 100.0  # cell assignment in float32 for coordinates within this

IntArray = NDArray[np.int64]


def chunk_pairs_within(
    centre_xyz: ArrayLike, site_xyz: ArrayLike, boxes: ArrayLike, r_max_nm: float,
    reach: int = 1, ordered: bool = True,
) -> tuple[IntArray, IntArray, IntArray, NDArray[np.float64]]:
    """All (frame, centre, site) pairs closer than ``r_max_nm`` in every frame of a chunk.

    Parameters
    ----------
    centre_xyz : array_like, shape (n_frames, n_centres, 3), nm
    site_xyz : array_like, shape (n_frames, n_sites, 3), nm
    boxes : array_like, shape (n_frames, 3), nm
        Orthorhombic edges of every frame.
    r_max_nm : float
        Must be below half the shortest edge of every frame.
    reach : int
        Cells searched on each side (1: cells >= r_max wide; 2 or 3 shrink the
        searched volume for large ``r_max``, e.g. RDFs).
    ordered : bool
        Sort the pairs (below); ``False`` skips that sort when only the set of
        pairs matters (e.g. a histogram): same pairs and distances, in an
        unspecified order.

    Returns
    -------
    frame, centre, site : ndarray of int64, shape (n_pairs,)
        Sorted by frame, then centre, then site (if ``ordered``).
    distance : ndarray of float64, shape (n_pairs,), nm
        Minimum-image distance (``<= r_max_nm``).
    """
    c = np.asarray(centre_xyz)
    s = np.asarray(site_xyz)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 3)
    n_frames = c.shape[0]
    if c.ndim != 3 or s.ndim != 3 or s.shape[0] != n_frames or b.shape[0] != n_frames:
        raise ValueError("centre_xyz, site_xyz and boxes must cover the same frames")
    empty = np.zeros(0, dtype=np.int64)
    if n_frames == 0 or c.shape[1] == 0 or s.shape[1] == 0:
        return empty, empty, empty, np.zeros(0)
    if not r_max_nm < 0.5 * b.min():
        raise AnalysisInputError(
            f"cutoff {r_max_nm:.4g} nm must be below half the shortest box edge "
            f"({0.5 * b.min():.4g} nm)"
        )
    n = np.floor(b.min(axis=0) * reach / (r_max_nm + CELL_MARGIN_NM)).astype(np.int64)
    n = np.clip(n, 1, MAX_CELLS_PER_EDGE)
    per_frame = c.shape[1] * s.shape[1] * min(1.0, float(np.prod(
        (2 * reach + 1) / n.astype(np.float64))))
    batch = max(1, int(MAX_CANDIDATES // max(per_frame, 1.0)))
    parts = []
    for f0 in range(0, n_frames, batch):
        f, i, j, d = _cell_pairs(c[f0:f0 + batch], s[f0:f0 + batch], b[f0:f0 + batch],
                                 r_max_nm, n, reach, ordered)
        parts.append((f + f0, i, j, d))
    if len(parts) == 1:
        return parts[0]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]))


def _cell_pairs(c: NDArray[np.floating], s: NDArray[np.floating], b: NDArray[np.float64],
                r_max: float, n: IntArray, reach: int, ordered: bool = True,
                ) -> tuple[IntArray, IntArray, IntArray, NDArray[np.float64]]:
    n_frames, n_centres, n_sites = c.shape[0], c.shape[1], s.shape[1]
    n_cells = int(np.prod(n))
    scale = n / b  # cells per nm, (n_frames, 3)
    big = _abs_max(c, s)
    small = big <= FLOAT32_CELLS_NM
    site_cell = _flat_cell(_cell_index(s, scale, n, small), n)
    site_cell += (np.arange(n_frames, dtype=np.int64) * n_cells)[:, None]
    site_cell = site_cell.ravel()
    order = np.argsort(site_cell)
    counts = np.bincount(site_cell, minlength=n_frames * n_cells)
    starts = np.cumsum(counts) - counts
    centre_cell, inside = _cell_position(c, scale, n, small)
    query = _neighbour_cells(centre_cell.reshape(-1, 3), n, reach)
    query += np.repeat(np.arange(n_frames, dtype=np.int64) * n_cells, n_centres)[:, None]
    query_per_centre = query.shape[1]
    count = counts[query]
    if reach > 1 and np.all(n >= 2 * reach + 1):  # skip cells beyond r_max (exact)
        count *= _reachable(inside.reshape(-1, 3), np.repeat(b / n, n_centres, axis=0), n,
                            reach, r_max)
    query, count = query.ravel(), count.ravel()
    hit = np.flatnonzero(count)
    count = count[hit]
    stop = np.cumsum(count)  # candidates of hit h: sorted sites starts[cell] .. + count[h]
    n_cand = int(stop[-1]) if stop.size else 0
    which = np.zeros(n_cand, dtype=np.int64)  # hit of every candidate (cheaper than np.repeat)
    which[stop[:-1]] = 1
    np.cumsum(which, out=which)
    pos = np.arange(n_cand) - (stop - count - starts[query[hit]])[which]
    owner = (hit // query_per_centre)[which]  # frame * n_centres + centre
    centre_t = c.reshape(-1, 3).T  # (3, n) view
    sorted_t = s.reshape(-1, 3)[order].T
    # float32 pre-filter with a safe margin, then exact float64 distances of the survivors
    margin = 1e-4 + 1e-6 * (float(np.abs(b).max()) + big)
    r2 = _squared_distances(sorted_t.astype(np.float32, copy=False),
                            centre_t.astype(np.float32, copy=False),
                            b.astype(np.float32), pos, owner, n_centres)
    near = np.flatnonzero(r2 <= np.float32((r_max + margin) ** 2))
    pos, owner = pos[near], owner[near]
    dist = np.sqrt(_squared_distances(sorted_t.astype(np.float64), centre_t.astype(np.float64),
                                      b, pos, owner, n_centres))
    keep = np.flatnonzero(dist <= r_max)
    owner, site, dist = owner[keep], order[pos[keep]] % n_sites, dist[keep]
    if ordered:
        key = np.argsort(owner * n_sites + site)
        owner, site, dist = owner[key], site[key], dist[key]
    return owner // n_centres, owner % n_centres, site, dist


def _squared_distances(sites: NDArray[np.floating], centres: NDArray[np.floating],
                       b: NDArray[np.floating], pos: IntArray, owner: IntArray, n_centres: int,
                       ) -> NDArray[np.floating]:
    """Squared minimum-image distances of candidates, in the dtype of the inputs.

    ``sites`` (3, n_sites_total) sorted by cell, ``centres`` (3, n_centres_total); candidate
    ``m`` pairs site ``pos[m]`` with centre ``owner[m]`` (``frame * n_centres + centre``).
    """
    uniform = bool(np.all(b == b[0]))
    box_of = None if uniform else b[owner // n_centres]
    r2 = np.zeros(pos.size, dtype=sites.dtype)
    for k in range(3):
        d = sites[k][pos]
        d -= centres[k][owner]
        edge = b[0, k] if box_of is None else box_of[:, k]
        d -= edge * np.rint(d / edge)
        r2 += d * d
    return r2


def _abs_max(*arrays: NDArray[np.floating]) -> float:
    """Largest absolute value in any of ``arrays`` (no temporary array)."""
    return max(max(float(a.max()), -float(a.min())) for a in arrays)


def _cell_index(xyz: NDArray[np.floating], scale: NDArray[np.float64], n: IntArray,
                small: bool = False) -> IntArray:
    """Cell of every point along each axis, shape (..., 3), values 0..n-1 (any image)."""
    return _cell_position(xyz, scale, n, small)[0]


def _cell_position(xyz: NDArray[np.floating], scale: NDArray[np.float64], n: IntArray,
                   small: bool = False) -> tuple[IntArray, NDArray[np.floating]]:
    """Cell (..., 3) of every point and its position inside the cell (0..1, cell units).

    Computed in float32 for float32 coordinates that are ``small`` (all
    within ``FLOAT32_CELLS_NM`` of the origin): the rounding error of the cell
    assignment (< 2e-5 nm) is absorbed by ``CELL_MARGIN_NM``, and the cell
    only decides which pairs are candidates, never a distance.
    """
    dtype = np.float32 if xyz.dtype == np.float32 and small else np.float64
    inverse_edge: NDArray[np.floating] = (scale / n).astype(dtype)
    frac = xyz * inverse_edge[:, None, :]  # fractional coordinates
    frac -= np.floor(frac)
    frac *= n
    k = frac.astype(np.int64)
    np.minimum(k, n - 1, out=k)  # frac can round up to exactly 1
    frac -= k
    return k, frac


def _reachable(inside: NDArray[np.floating], width: NDArray[np.float64], n: IntArray,
               reach: int, r_max: float) -> NDArray[np.bool_]:
    """Which neighbour cells (as ordered by :func:`_neighbour_cells`) can hold a site within
    ``r_max`` of each centre, shape (n_points, n_cells_searched).

    ``inside`` (n_points, 3): position of the centre in its cell (cell units); ``width``
    (n_points, 3): cell edges, nm. The gap between the centre and a cell at signed offset
    ``o`` is ``max(0, o - inside, inside - 1 - o)`` cells along each axis; a cell whose gap
    exceeds ``r_max`` (+ ``CELL_MARGIN_NM``) holds no site within ``r_max``. Only valid with
    ``n >= 2 reach + 1`` on every axis (each offset is then a distinct cell and image).
    """
    gaps = []
    for d in range(3):
        mods = np.unique(np.arange(-reach, reach + 1) % n[d])
        signed = np.where(mods > reach, mods - n[d], mods).astype(np.float64)
        u = inside[:, d, None].astype(np.float64)
        gap = np.maximum(np.maximum(signed - u, u - 1.0 - signed), 0.0) * width[:, d, None]
        gaps.append(gap * gap)
    gap2 = gaps[0][:, :, None, None] + gaps[1][:, None, :, None] + gaps[2][:, None, None, :]
    return (gap2 <= (r_max + CELL_MARGIN_NM) ** 2).reshape(inside.shape[0], -1)


def _flat_cell(k: IntArray, n: IntArray) -> IntArray:
    return (k[..., 0] * n[1] + k[..., 1]) * n[2] + k[..., 2]


def _neighbour_cells(k: IntArray, n: IntArray, reach: int) -> IntArray:
    """Flat ids of the distinct cells within ``reach`` of each cell k (n_points, 3)."""
    strides = (n[1] * n[2], n[2], 1)
    axes = []
    for d in range(3):
        offsets = np.unique(np.arange(-reach, reach + 1) % n[d])
        axes.append(((k[:, d, None] + offsets) % n[d]) * strides[d])
    ids = axes[0][:, :, None, None] + axes[1][:, None, :, None] + axes[2][:, None, None, :]
    return ids.reshape(k.shape[0], -1)
