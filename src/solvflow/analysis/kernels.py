"""Compiled (numba) kernels: the one implementation of each per-frame hot loop.

* contacts (and everything counted from them) and RDF histograms use float64
  minimum-image distances ``d = s - c; d -= L * rint(d / L); r2 = dx^2 + dy^2 + dz^2``
  compared with the cutoffs (``<=``);
* unwrapped centres repeat the float32 steps and float32 mass-weighted sums of
  a sparse centre-of-mass product, in atom order;
* MSD sums are float64 sums over the three axes, per lag and molecule;
* residence overlaps count common keys of two sorted lists.

The reference implementations that the tests compare these with (numpy
all-pairs distances, a periodic k-d tree, the numpy/scipy.sparse unwrapping,
``numpy.einsum`` MSD, ``searchsorted`` overlaps) live in ``tests/oracles.py``.

Neighbour search: per frame, a cell list (counting sort of the sites into
cells at least ``(r_max + CELL_MARGIN_NM) / reach`` wide; cells along an axis
with fewer than ``2 reach + 1`` cells are all visited), then a loop over the
candidate sites of each centre. Exact, not an approximation: a site within
``r_max`` of a centre lies at most ``reach`` cells away along every axis
because cells are wider than ``r_max / reach`` (the margin absorbs rounding
of the cell assignment), so no pair is missed.

numba is a required dependency: without it importing this module raises
:class:`~solvflow.errors.AnalysisError` saying how to install it. Compiled
code is cached on disk (``cache=True``); the first call in a fresh
environment compiles (~6 s), later processes load the cache (~0.3 s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvflow.errors import AnalysisError, AnalysisInputError

try:
    import numba
except ImportError as exc:  # pragma: no cover - numba is a declared dependency
    raise AnalysisError(
        f"the analysis kernels need numba, which is not importable ({exc}); it is a "
        "dependency of solvflow: reinstall solvflow or run `pip install 'numba>=0.68'`"
    ) from None

CELL_MARGIN_NM = 1e-3  # cells this much wider than r_max / reach: absorbs rounding
MAX_CELLS_PER_EDGE = 64


def _njit(func: Callable[..., Any]) -> Callable[..., Any]:
    compiled: Callable[..., Any] = numba.njit(cache=True, nogil=True, error_model="numpy")(func)
    return compiled


def check_below_half_box(r_max_nm: float, boxes: NDArray[np.float64], what: str) -> None:
    """Raise :class:`AnalysisInputError` unless ``r_max_nm`` < half the shortest edge.

    ``boxes`` (n_frames, 3) nm; ``what`` names the quantity ("cutoff", "RDF range").
    The minimum-image search is only exact below half the box.
    """
    half = 0.5 * float(np.min(boxes))
    if not r_max_nm < half:
        raise AnalysisInputError(
            f"{what} {r_max_nm:.4g} nm must be below half the shortest box edge ({half:.4g} nm)"
        )


def cells_per_edge(boxes: NDArray[np.float64], r_max_nm: float, reach: int) -> NDArray[np.int64]:
    """Cells per box edge for a chunk: (3,) int64, each cell >= (r_max + margin) / reach wide."""
    n = np.floor(boxes.min(axis=0) * reach / (r_max_nm + CELL_MARGIN_NM)).astype(np.int64)
    return np.clip(n, 1, MAX_CELLS_PER_EDGE)


@_njit
def _bin_sites(s: Any, b: Any, n: Any, cell_of: Any, order: Any, start: Any) -> None:
    """Counting sort of the sites ``s`` (n_sites, 3) of one frame into cells.

    Fills ``cell_of`` (n_sites,), ``order`` (n_sites,: sites sorted by cell) and
    ``start`` (n_cells + 1,: first position of each cell in ``order``).
    """
    n_cells = n[0] * n[1] * n[2]
    start[:] = 0
    for j in range(s.shape[0]):
        flat = 0
        for d in range(3):
            frac = s[j, d] / b[d]
            frac -= np.floor(frac)
            k = int(frac * n[d])
            if k >= n[d]:
                k = n[d] - 1
            elif k < 0:
                k = 0
            flat = flat * n[d] + k
        cell_of[j] = flat
        start[flat + 1] += 1
    for c in range(n_cells):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    for j in range(s.shape[0]):
        order[fill[cell_of[j]]] = j
        fill[cell_of[j]] += 1


@_njit
def _centre_cell(x: float, edge: float, n: int) -> int:
    frac = x / edge
    frac -= np.floor(frac)
    k = int(frac * n)
    if k >= n:
        k = n - 1
    elif k < 0:
        k = 0
    return k


@_njit
def _cell_scratch(n_sites: int, n: Any) -> Any:
    """Work arrays of a cell-list search over ``n_sites`` sites in ``n`` (3,) cells."""
    return (np.empty(n_sites, np.int64), np.empty(n_sites, np.int64),
            np.empty(n[0] * n[1] * n[2] + 1, np.int64), np.empty((n_sites, 3)),
            np.empty(n_sites, np.int64), np.empty(n_sites))


@_njit
def _image(x: float, edge: float, limit: float) -> float:
    """``x - edge * rint(x / edge)`` (float64), skipping the division where ``rint`` is 0.

    ``limit`` = 0.49 ``edge``: for ``|x| <= limit`` the quotient rounds to 0, so the
    result is ``x`` exactly as in the numpy formula.
    """
    if x > limit or x < -limit:
        return x - edge * np.rint(x / edge)
    return x


@_njit
def _sorted_sites(s: Any, b: Any, n: Any, cell_of: Any, order: Any, start: Any,
                  xyz: Any) -> None:
    """Bin the sites of one frame and copy them, as float64, in cell order into ``xyz``."""
    _bin_sites(s, b, n, cell_of, order, start)
    for p in range(order.size):
        j = order[p]
        for d in range(3):
            xyz[p, d] = np.float64(s[j, d])


@_njit
def _cell_range(k: int, n: int, reach: int, a: int) -> int:
    """The ``a``-th cell visited along an axis from cell ``k`` (all cells when n < 2 reach + 1)."""
    if n >= 2 * reach + 1:
        return (k - reach + a) % n
    return a


@_njit
def _n_visited(n: int, reach: int) -> int:
    return 2 * reach + 1 if n >= 2 * reach + 1 else n


@_njit
def _scan_centre(cx: float, cy: float, cz: float, b: Any, lim: Any, n: Any, reach: int,
                 start: Any, xyz: Any, r_max: float, hit_p: Any, hit_d: Any) -> int:
    """Positions ``p`` (in cell order) and distances of the sites within ``r_max`` of a centre.

    Along the last axis the visited cells are contiguous in the flat cell index, so they are
    scanned as one or two ranges of sites.
    """
    k0 = _centre_cell(cx, b[0], n[0])
    k1 = _centre_cell(cy, b[1], n[1])
    k2 = _centre_cell(cz, b[2], n[2])
    n2 = n[2]
    if n2 >= 2 * reach + 1:
        lo, hi = k2 - reach, k2 + reach  # cells lo..hi, modulo n2
    else:
        lo, hi = 0, n2 - 1
    cut2 = r_max * r_max * (1.0 + 1e-9)  # pre-filter; the test below is on sqrt(r2)
    h = 0
    for a0 in range(_n_visited(n[0], reach)):
        c0 = _cell_range(k0, n[0], reach, a0)
        for a1 in range(_n_visited(n[1], reach)):
            base = (c0 * n[1] + _cell_range(k1, n[1], reach, a1)) * n2
            for part in range(2):
                if part == 0:
                    first, last = max(lo, 0), min(hi, n2 - 1)
                elif lo < 0:
                    first, last = lo + n2, n2 - 1
                elif hi >= n2:
                    first, last = 0, hi - n2
                else:
                    break
                for p in range(start[base + first], start[base + last + 1]):
                    x = _image(xyz[p, 0] - cx, b[0], lim[0])
                    y = _image(xyz[p, 1] - cy, b[1], lim[1])
                    z = _image(xyz[p, 2] - cz, b[2], lim[2])
                    r2 = 0.0
                    r2 += x * x
                    r2 += y * y
                    r2 += z * z
                    if r2 <= cut2:
                        d = np.sqrt(r2)
                        if d <= r_max:
                            hit_p[h] = p
                            hit_d[h] = d
                            h += 1
    return h


@_njit
def contacts_kernel(cx: Any, catoms: Any, sx: Any, satoms: Any, boxes: Any, cut: Any,
                    n: Any) -> Any:
    """(frame, centre, site) with distance <= cut[site], sorted by frame, centre, site.

    Centre ``i`` of frame ``f`` is ``cx[f, catoms[i]]``, site ``j`` is ``sx[f, satoms[j]]``:
    ``cx``, ``sx`` (n_frames, n_atoms, 3) nm (float32 or float64; the same array, e.g. a
    chunk of the trajectory, or already gathered coordinates with ``arange`` indices), so
    the caller never copies the selected atoms. ``boxes`` (n_frames, 3) float64, ``cut``
    (n_sites,) float64 nm, ``n`` (3,) int64 cells.
    """
    n_frames, n_centres, n_sites = cx.shape[0], catoms.size, satoms.size
    cell_of, order, start, xyz, hit_p, hit_d = _cell_scratch(n_sites, n)
    sites = np.empty((n_sites, 3))
    r_max = cut.max()
    out_f = np.empty(max(16, n_frames * n_centres * 8), np.int64)
    out_i = np.empty(out_f.size, np.int64)
    out_j = np.empty(out_f.size, np.int64)
    m = 0
    for f in range(n_frames):
        b = boxes[f]
        lim = 0.49 * b
        for j in range(n_sites):
            for d in range(3):
                sites[j, d] = np.float64(sx[f, satoms[j], d])
        _sorted_sites(sites, b, n, cell_of, order, start, xyz)
        for i in range(n_centres):
            a = catoms[i]
            h = _scan_centre(np.float64(cx[f, a, 0]), np.float64(cx[f, a, 1]),
                             np.float64(cx[f, a, 2]), b, lim, n, 1, start, xyz, r_max, hit_p,
                             hit_d)
            if m + h > out_f.size:
                cap = 2 * (m + h)
                new_f, new_i, new_j = (np.empty(cap, np.int64), np.empty(cap, np.int64),
                                       np.empty(cap, np.int64))
                new_f[:m], new_i[:m], new_j[:m] = out_f[:m], out_i[:m], out_j[:m]
                out_f, out_i, out_j = new_f, new_i, new_j
            first = m
            for q in range(h):
                j = order[hit_p[q]]
                if hit_d[q] <= cut[j]:
                    k = m  # insertion sort by site (a handful per centre)
                    while k > first and out_j[k - 1] > j:
                        out_j[k] = out_j[k - 1]
                        k -= 1
                    out_j[k] = j
                    m += 1
            out_f[first:m] = f
            out_i[first:m] = i
    return out_f[:m].copy(), out_i[:m].copy(), out_j[:m].copy()


@_njit
def rdf_kernel(c: Any, s: Any, boxes: Any, n: Any, reach: int, width: float, n_bins: int,
               site_partner: Any, cation_residue: Any, site_residue: Any, hist: Any) -> None:
    """Add cation-site distances ``<= n_bins * width`` to ``hist`` (n_partners, n_bins).

    Bin ``min(int(d / width), n_bins - 1)``; pairs within one residue are skipped.
    """
    n_frames, n_centres, n_sites = c.shape[0], c.shape[1], s.shape[1]
    cell_of, order, start, xyz, hit_p, hit_d = _cell_scratch(n_sites, n)
    r_max = n_bins * width
    for f in range(n_frames):
        b = boxes[f]
        lim = 0.49 * b
        _sorted_sites(s[f], b, n, cell_of, order, start, xyz)
        for i in range(n_centres):
            h = _scan_centre(np.float64(c[f, i, 0]), np.float64(c[f, i, 1]),
                             np.float64(c[f, i, 2]), b, lim, n, reach, start, xyz, r_max,
                             hit_p, hit_d)
            for q in range(h):
                j = order[hit_p[q]]
                if cation_residue[i] != site_residue[j]:
                    k = int(hit_d[q] / width)
                    hist[site_partner[j], min(k, n_bins - 1)] += 1.0


@_njit
def unwrap_kernel(pos: Any, atoms: Any, all_atoms: bool, last_wrapped: Any, b: Any,
                  limit: Any, indptr: Any, indices: Any, weights: Any,
                  last_unwrapped: Any) -> Any:
    """Unwrapped centres (n_frames, n_molecules, 3) float64 of one chunk.

    ``pos`` (n_frames, n_atoms_total, 3) float32; ``atoms`` the topology index of each used
    atom (all atoms, in order, when ``all_atoms``); the CSR ``indptr`` (n_molecules + 1),
    ``indices`` (used atoms of each molecule) and ``weights`` (float32 mass fractions);
    ``last_wrapped`` (n_used, 3) float32 is updated in place; ``b`` (n_frames, 3) float32;
    ``limit`` float32 (0.49 * shortest edge).
    Per frame and molecule the float32 sum of ``weight * minimum-image step`` in atom order
    (as ``scipy.sparse`` forms it), cast to float64, summed over frames (as ``np.cumsum``)
    and added to ``last_unwrapped``.
    """
    n_frames = pos.shape[0]
    n_mol = indptr.size - 1
    out = np.empty((n_frames, n_mol, 3))
    running = np.zeros((n_mol, 3))
    acc = np.zeros(3, np.float32)  # float32 sums, as scipy forms them for float32 operands
    for f in range(n_frames):
        for mol in range(n_mol):
            acc[:] = 0.0
            for q in range(indptr[mol], indptr[mol + 1]):
                p = indices[q]
                a = p if all_atoms else atoms[p]
                for d in range(3):
                    x = pos[f, a, d]
                    step = x - last_wrapped[p, d]
                    last_wrapped[p, d] = x
                    if step > limit or step < -limit:
                        shift = np.float32(np.rint(np.float32(step / b[f, d]))) * b[f, d]
                        step = np.float32(step - shift)
                    acc[d] += weights[q] * step
            for d in range(3):
                if f == 0:
                    running[mol, d] = np.float64(acc[d])
                else:
                    running[mol, d] += np.float64(acc[d])
                out[f, mol, d] = last_unwrapped[mol, d] + running[mol, d]
    return out


@_njit
def msd_kernel(pool: Any, h: int, lags: Any, sq_sum: Any, origins: Any) -> None:
    """Add squared displacements of ``pool`` (n_frames, n_molecules, 3) float64 to ``sq_sum``.

    For each lag, origins ``t - lag`` with ``t >= max(h, lag)`` (``h`` frames of ``pool``
    were counted before); ``sq_sum`` (n_lags, n_molecules), ``origins`` (n_lags,).
    """
    n_pool, n_mol = pool.shape[0], pool.shape[1]
    for li in range(lags.size):
        lag = lags[li]
        if lag == 0:
            continue
        first = max(h, lag)
        if first >= n_pool:
            continue
        for t in range(first, n_pool):
            for mol in range(n_mol):
                acc = 0.0
                for d in range(3):
                    x = pool[t, mol, d] - pool[t - lag, mol, d]
                    acc += x * x
                sq_sum[li, mol] += acc
        origins[li] += n_pool - first


@_njit
def overlap_kernel(pool: Any, chunk: Any, lags: Any, n_pairs: int, overlap: Any) -> None:
    """Add, for each lag, the number of keys ``chunk - lag * n_pairs`` present in ``pool``.

    ``pool`` and ``chunk`` are ascending int64 keys ``frame * n_pairs + pair`` (``chunk``
    is the tail of ``pool``); ``overlap`` (n_lags,) float64. A merge of two sorted lists
    per lag, started at the binary-search position of the first query.
    """
    if chunk.size == 0:
        return
    for li in range(lags.size):
        shift = lags[li] * n_pairs
        j = np.searchsorted(pool, chunk[0] - shift)
        count = 0
        for q in range(chunk.size):
            target = chunk[q] - shift
            while j < pool.size and pool[j] < target:
                j += 1
            if j == pool.size:
                break
            if pool[j] == target:
                count += 1
        overlap[li] += count


@_njit
def _root(parent: Any, x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]  # path halving
        x = parent[x]
    return x


@_njit
def components_kernel(n_nodes: int, a: Any, b: Any) -> Any:
    """Connected components of an undirected graph with edges ``(a[k], b[k])``.

    Returns ``labels`` (n_nodes,) int64: components numbered 0, 1, ... in the order of
    their smallest node (the numbering of ``scipy.sparse.csgraph.connected_components``).
    Union-find with path halving and union by smaller root.
    """
    parent = np.arange(n_nodes)
    for k in range(a.size):
        ra, rb = _root(parent, a[k]), _root(parent, b[k])
        if ra < rb:
            parent[rb] = ra
        elif rb < ra:
            parent[ra] = rb
    labels = np.empty(n_nodes, np.int64)
    n_labels = 0
    for x in range(n_nodes):
        r = _root(parent, x)
        if r == x:  # roots are the smallest node of their component
            labels[x] = n_labels
            n_labels += 1
        else:
            labels[x] = labels[r]
    return labels


@_njit
def csr_matvec_kernel(indptr: Any, indices: Any, data: Any, x: Any) -> Any:
    """``A @ x`` for a CSR matrix (``indptr``, ``indices``, ``data``) and ``x`` (n_cols, 3).

    Float64 sums in stored order per row (as ``scipy.sparse`` forms them); shape (n_rows, 3).
    """
    n_rows = indptr.size - 1
    out = np.zeros((n_rows, 3))
    for r in range(n_rows):
        for q in range(indptr[r], indptr[r + 1]):
            for d in range(3):
                out[r, d] += data[q] * x[indices[q], d]
    return out
