"""Reference implementations (oracles) of the analysis hot loops, for the tests only.

The production code has one implementation of each hot loop, the numba
kernels of ``solvflow.analysis.kernels``. These are independent, simple
numpy / scipy versions that the tests compare the kernels with:

* :func:`all_pairs_within`: every (frame, centre, site) pair by brute-force
  float64 minimum-image distances (the same formula as the kernels, so contacts
  and RDF counts must be identical, not merely close);
* :func:`kdtree_pairs_within` / :func:`kdtree_contacts`: a periodic k-d tree
  (``scipy.spatial.cKDTree(boxsize=...)``), a different algorithm;
* :func:`rdf_histogram`, :func:`unwrapped_centres`, :func:`msd_sums`,
  :func:`contact_overlaps`: the numpy formulations the kernels replaced
  (unwrapping by a ``scipy.sparse`` centre-of-mass product in float32, MSD by
  ``numpy.einsum``, residence overlaps by ``searchsorted``).

Nothing here is fast; keep the inputs small.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.spatial import cKDTree

IntArray = NDArray[np.int64]


def minimum_image_distances(centres: ArrayLike, sites: ArrayLike, box: ArrayLike,
                            ) -> NDArray[np.float64]:
    """(n_centres, n_sites) float64 minimum-image distances of one frame, nm."""
    c = np.asarray(centres, dtype=np.float64)
    s = np.asarray(sites, dtype=np.float64)
    b = np.asarray(box, dtype=np.float64)
    d = s[None, :, :] - c[:, None, :]
    d -= b * np.rint(d / b)
    r2 = d[..., 0] * d[..., 0]
    r2 += d[..., 1] * d[..., 1]
    r2 += d[..., 2] * d[..., 2]
    return np.sqrt(r2)


def all_pairs_within(centre_xyz: ArrayLike, site_xyz: ArrayLike, boxes: ArrayLike,
                     r_max_nm: float | ArrayLike,
                     ) -> tuple[IntArray, IntArray, IntArray, NDArray[np.float64]]:
    """(frame, centre, site, distance) with distance <= r_max (per site), sorted.

    ``centre_xyz`` (n_frames, n_centres, 3), ``site_xyz`` (n_frames, n_sites, 3), ``boxes``
    (n_frames, 3) nm; ``r_max_nm`` a float or one value per site.
    """
    c, s = np.asarray(centre_xyz), np.asarray(site_xyz)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 3)
    cut = np.broadcast_to(np.asarray(r_max_nm, dtype=np.float64), (s.shape[1],))
    parts = []
    for f in range(c.shape[0]):
        dist = minimum_image_distances(c[f], s[f], b[f])
        i, j = np.nonzero(dist <= cut[None, :])  # row-major: sorted by centre, then site
        parts.append((np.full(i.size, f), i, j, dist[i, j]))
    return (np.concatenate([p[0] for p in parts]).astype(np.int64),
            np.concatenate([p[1] for p in parts]).astype(np.int64),
            np.concatenate([p[2] for p in parts]).astype(np.int64),
            np.concatenate([p[3] for p in parts]))


def wrap(xyz: ArrayLike, box: ArrayLike) -> NDArray[np.float64]:
    """Coordinates (n, 3) wrapped into ``[0, box)`` (float64, nm)."""
    b = np.asarray(box, dtype=np.float64)
    out = np.mod(np.asarray(xyz, dtype=np.float64), b)
    out[out >= b] = 0.0  # np.mod can round up to exactly box for tiny negatives
    return out


def kdtree_pairs_within(centre_xyz: ArrayLike, site_xyz: ArrayLike, box: ArrayLike,
                        r_max_nm: float) -> tuple[IntArray, IntArray, NDArray[np.float64]]:
    """All (centre, site, distance) within ``r_max_nm`` of one frame by a periodic k-d tree.

    The k nearest sites of every centre within ``r_max_nm`` (k doubled until no centre
    has k neighbours inside); unsorted.
    """
    b = np.asarray(box, dtype=np.float64)
    centres = wrap(centre_xyz, b)
    tree = cKDTree(wrap(site_xyz, b), boxsize=b, balanced_tree=False, compact_nodes=False)
    n_sites = tree.n
    k = int(min(n_sites, 16))
    bound = float(np.nextafter(r_max_nm, np.inf))  # query() is strict; include d == r_max
    while True:
        dist, site = tree.query(centres, k=k, distance_upper_bound=bound)
        dist, site = dist.reshape(len(centres), k), site.reshape(len(centres), k)
        if k >= n_sites or not np.any(site[:, -1] < n_sites):
            break
        k = min(n_sites, 2 * k)
    found = site < n_sites
    return (np.nonzero(found)[0].astype(np.int64), site[found].astype(np.int64),
            dist[found])


def kdtree_contacts(cation_xyz: ArrayLike, site_xyz: ArrayLike, site_molecule: ArrayLike,
                    box: ArrayLike, cutoff_nm: float | ArrayLike,
                    cation_molecule: ArrayLike | None = None) -> tuple[IntArray, IntArray]:
    """(cation, site) contacts of one frame, sorted, by the k-d tree (cf. compute_contacts)."""
    sites = np.asarray(site_xyz)
    cut = np.broadcast_to(np.asarray(cutoff_nm, dtype=np.float64), (sites.shape[0],))
    if sites.shape[0] == 0 or np.asarray(cation_xyz).shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    i, j, d = kdtree_pairs_within(cation_xyz, sites, box, float(cut.max()))
    keep = d <= cut[j]
    if cation_molecule is not None:
        keep &= np.asarray(cation_molecule)[i] != np.asarray(site_molecule)[j]
    i, j = i[keep], j[keep]
    order = np.lexsort((j, i))
    return i[order], j[order]


def rdf_histogram(cation_xyz: ArrayLike, site_xyz: ArrayLike, boxes: ArrayLike, width: float,
                  n_bins: int, site_partner: IntArray, cation_residue: IntArray,
                  site_residue: IntArray, n_partners: int) -> NDArray[np.float64]:
    """Counts (n_partners, n_bins) of cation-site distances ``<= n_bins * width``.

    Bin ``min(int(d / width), n_bins - 1)``; pairs within one residue are skipped.
    """
    _, i, j, d = all_pairs_within(cation_xyz, site_xyz, boxes, n_bins * width)
    keep = cation_residue[i] != site_residue[j]
    b = np.minimum((d[keep] / width).astype(np.int64), n_bins - 1)
    flat = site_partner[j[keep]] * n_bins + b
    return np.bincount(flat, minlength=n_partners * n_bins).reshape(
        n_partners, n_bins).astype(np.float64)


def _minimum_image_steps(steps: NDArray[np.float32], b: NDArray[np.float32]) -> None:
    """In place, float32: ``steps -= b * rint(steps / b)`` where ``|step| > 0.49 min(b)``."""
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


def unwrapped_centres(chunks: list[NDArray[np.floating]], boxes: list[NDArray[np.float64]],
                      atom_molecule: IntArray, atoms: IntArray,
                      masses: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unwrapped centres of mass (n_frames, n_molecules, 3) of consecutive chunks, nm.

    First frame: molecules made whole at the minimum image of their first atom; then each
    centre moves by the float32 ``scipy.sparse`` product of mass fractions and the atoms'
    float32 minimum-image steps, accumulated in float64 by ``np.cumsum``.
    """
    n_mol = int(atom_molecule.max()) + 1
    total = np.bincount(atom_molecule, weights=masses, minlength=n_mol)
    com = sparse.csr_matrix((masses / total[atom_molecule],
                             (atom_molecule, np.arange(atoms.size))), shape=(n_mol, atoms.size))
    com32 = com.astype(np.float32)
    first = np.full(n_mol, atoms.size, dtype=np.int64)
    np.minimum.at(first, atom_molecule, np.arange(atoms.size))
    p0 = np.asarray(chunks[0][0][atoms], dtype=np.float32)
    b0 = boxes[0][0].astype(np.float32)
    whole = p0 - b0 * np.rint((p0 - p0[first[atom_molecule]]) / b0)
    last_unwrapped, last_wrapped = com @ whole.astype(np.float64), p0
    out = []
    for xyz, box in zip(chunks, boxes, strict=True):
        pos = np.asarray(xyz[:, atoms], dtype=np.float32)
        steps = np.empty(pos.shape, dtype=np.float32)
        np.subtract(pos[0], last_wrapped, out=steps[0])
        np.subtract(pos[1:], pos[:-1], out=steps[1:])
        _minimum_image_steps(steps, box[:, None, :].astype(np.float32))
        moves = np.stack([(com32 @ steps[f].astype(np.float32)).astype(np.float64)
                          for f in range(pos.shape[0])])
        unwrapped = last_unwrapped + np.cumsum(moves, axis=0)
        last_wrapped, last_unwrapped = pos[-1], unwrapped[-1]
        out.append(unwrapped)
    return np.concatenate(out)


def msd_sums(centres: NDArray[np.float64], lags: IntArray) -> tuple[NDArray[np.float64],
                                                                    IntArray]:
    """Sums of squared displacements (n_lags, n_molecules) and origins (n_lags,) over all
    origins of the whole series ``centres`` (n_frames, n_molecules, 3), by ``numpy.einsum``."""
    n = centres.shape[0]
    sq = np.zeros((lags.size, centres.shape[1]))
    origins = np.zeros(lags.size, dtype=np.int64)
    for li, lag in enumerate(lags):
        if lag == 0 or lag >= n:
            continue
        disp = centres[lag:] - centres[:n - lag]
        sq[li] = np.einsum("fmk,fmk->m", disp, disp)
        origins[li] = n - lag
    return sq, origins


def contact_overlaps(frames: list[IntArray], lags: IntArray) -> NDArray[np.float64]:
    """``sum_t |S(t) & S(t + lag)|`` per lag for per-frame sets of pair indices."""
    sets = [set(np.asarray(f).tolist()) for f in frames]
    out = np.zeros(lags.size)
    for li, lag in enumerate(lags):
        out[li] = sum(len(sets[t] & sets[t + lag]) for t in range(len(sets) - lag))
    return out


def scipy_components(n_nodes: int, a: IntArray, b: IntArray) -> IntArray:
    """Component labels of the undirected graph with edges (a, b) by scipy.sparse.csgraph."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(a.size), (a, b)), shape=(n_nodes, n_nodes))
    return connected_components(graph, directed=False)[1].astype(np.int64)
