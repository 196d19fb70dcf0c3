"""Periodic neighbour search: which partner sites and molecules are in each cation's shell.

Plain functions on numpy arrays (MDTraj style). Coordinates are in nm,
boxes are orthorhombic edge lengths in nm. Distances are minimum-image
distances; a site is in the shell when its distance is ``<=`` its cutoff.

* :func:`chunk_contacts` (used by the engine) works on a whole chunk of
  frames at once with the vectorised cell list of :mod:`solvflow.analysis.cells`.
* :func:`compute_contacts` / :func:`pairs_within` do one frame with a
  periodic k-d tree (``scipy.spatial.cKDTree(boxsize=...)``) of the sites,
  queried for the k nearest sites of every cation within the cutoff (k grown
  until no cation has k neighbours inside). They are an independent
  implementation that the tests compare the chunked search with.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from solvflow.analysis import kernels
from solvflow.analysis.cells import chunk_pairs_within
from solvflow.errors import AnalysisInputError

TRICLINIC_TOLERANCE_NM = 1e-5


def orthorhombic_box(unitcell_vectors: ArrayLike) -> NDArray[np.float64]:
    """Edge lengths of orthorhombic boxes.

    Parameters
    ----------
    unitcell_vectors : array_like, shape (n_frames, 3, 3) or (3, 3), nm

    Returns
    -------
    ndarray of float64, shape (n_frames, 3) (or (3,)), nm

    Raises
    ------
    AnalysisInputError
        For a triclinic or empty box.
    """
    vec = np.asarray(unitcell_vectors, dtype=np.float64)
    diag = np.diagonal(vec, axis1=-2, axis2=-1)
    off = vec - diag[..., None] * np.eye(3)
    if np.any(np.abs(off) > TRICLINIC_TOLERANCE_NM):
        raise AnalysisInputError(
            "triclinic box: only orthorhombic boxes (all angles 90 degrees) are supported; "
            "convert the trajectory or pass an orthorhombic --box-nm"
        )
    if not np.all(np.isfinite(diag)) or np.any(diag <= 0):
        raise AnalysisInputError(
            "the trajectory's box has zero or invalid edges; pass --box-nm L or --box-nm a,b,c"
        )
    return diag


def wrap(xyz: ArrayLike, box: ArrayLike) -> NDArray[np.float64]:
    """Coordinates wrapped into ``[0, box)``.

    Parameters
    ----------
    xyz : array_like, shape (n, 3), nm
    box : array_like, shape (3,), nm

    Returns
    -------
    ndarray of float64, shape (n, 3), nm
    """
    b = np.asarray(box, dtype=np.float64)
    out = np.mod(np.asarray(xyz, dtype=np.float64), b)
    out[out >= b] = 0.0  # np.mod can round up to exactly box for tiny negatives
    return out


def pairs_within(
    centre_xyz: ArrayLike, site_xyz: ArrayLike, box: ArrayLike, r_max_nm: float
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """All (centre, site) pairs closer than ``r_max_nm`` under periodic boundaries.

    Parameters
    ----------
    centre_xyz : array_like, shape (n_centres, 3), nm
    site_xyz : array_like, shape (n_sites, 3), nm
    box : array_like, shape (3,), nm (orthorhombic edges)
    r_max_nm : float
        Must be below half the shortest edge.

    Returns
    -------
    centre, site : ndarray of int64, shape (n_pairs,)
    distance : ndarray of float64, shape (n_pairs,), nm
    """
    b = np.asarray(box, dtype=np.float64)
    if not r_max_nm < 0.5 * b.min():
        raise AnalysisInputError(
            f"cutoff {r_max_nm:.4g} nm must be below half the shortest box edge "
            f"({0.5 * b.min():.4g} nm)"
        )
    centres = wrap(centre_xyz, b)
    tree = cKDTree(wrap(site_xyz, b), boxsize=b, balanced_tree=False, compact_nodes=False)
    n_sites = tree.n
    expected = n_sites / float(np.prod(b)) * 4.0 / 3.0 * np.pi * r_max_nm**3
    k = int(min(n_sites, max(8, 2 * expected + 8)))
    bound = float(np.nextafter(r_max_nm, np.inf))  # query() is strict; include d == r_max
    while True:  # k nearest within r_max; grow k until no centre has k neighbours within r_max
        dist, site = tree.query(centres, k=k, distance_upper_bound=bound)
        dist, site = dist.reshape(len(centres), k), site.reshape(len(centres), k)
        if k >= n_sites or not np.any(site[:, -1] < n_sites):
            break
        k = min(n_sites, 2 * k)
    found = site < n_sites
    centre = np.nonzero(found)[0].astype(np.int64)
    return centre, site[found].astype(np.int64), dist[found]


def compute_contacts(
    cation_xyz: ArrayLike,
    site_xyz: ArrayLike,
    site_molecule: ArrayLike,
    box: ArrayLike,
    cutoff_nm: float | ArrayLike,
    cation_molecule: ArrayLike | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Atom-level shell contacts of every cation.

    Parameters
    ----------
    cation_xyz : array_like, shape (n_cations, 3), nm
        One centre atom per cation.
    site_xyz : array_like, shape (n_sites, 3), nm
        Coordinating sites of all partners.
    site_molecule : array_like of int, shape (n_sites,)
        Molecule (any integer label) of each site; used to skip intramolecular pairs.
    box : array_like, shape (3,), nm
    cutoff_nm : float or array_like, shape (n_sites,)
        Shell radius, per site (each site carries its partner's cutoff).
    cation_molecule : array_like of int, shape (n_cations,), optional
        Molecule label of each cation; pairs within one molecule are dropped.

    Returns
    -------
    cation, site : ndarray of int64, shape (n_contacts,)
        Index pairs with minimum-image distance ``<= cutoff`` (sorted by cation, then site).
    """
    sites = np.asarray(site_xyz)
    cut = np.broadcast_to(np.asarray(cutoff_nm, dtype=np.float64), (sites.shape[0],))
    if sites.shape[0] == 0 or np.asarray(cation_xyz).shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    i, j, d = pairs_within(cation_xyz, sites, box, float(cut.max()))
    keep = d <= cut[j]
    if cation_molecule is not None:
        keep &= np.asarray(cation_molecule)[i] != np.asarray(site_molecule)[j]
    i, j = i[keep], j[keep]
    order = np.lexsort((j, i))
    return i[order], j[order]


def chunk_contacts(
    cation_xyz: ArrayLike, site_xyz: ArrayLike, boxes: ArrayLike, cutoff_nm: float | ArrayLike,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Atom-level shell contacts of every cation in every frame of a chunk.

    Parameters
    ----------
    cation_xyz : array_like, shape (n_frames, n_cations, 3), nm
        One centre atom per cation.
    site_xyz : array_like, shape (n_frames, n_sites, 3), nm
        Coordinating sites of all partners.
    boxes : array_like, shape (n_frames, 3), nm
    cutoff_nm : float or array_like, shape (n_sites,)
        Shell radius, per site.

    Returns
    -------
    frame, cation, site : ndarray of int64, shape (n_contacts,)
        Contacts with minimum-image distance ``<= cutoff`` (sorted by frame, cation, site).
    """
    sites = np.asarray(site_xyz)
    cut = np.broadcast_to(np.asarray(cutoff_nm, dtype=np.float64), (sites.shape[1],))
    if sites.shape[1] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    if kernels.enabled():
        return _chunk_contacts_compiled(np.asarray(cation_xyz), sites, boxes, cut)
    f, i, j, d = chunk_pairs_within(cation_xyz, sites, boxes, float(cut.max()))
    keep = d <= cut[j]
    return f[keep], i[keep], j[keep]


def _chunk_contacts_compiled(
    cations: NDArray[np.floating], sites: NDArray[np.floating], boxes: ArrayLike,
    cut: NDArray[np.float64],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """:func:`chunk_contacts` by the numba cell-list kernel (identical contacts)."""
    b = np.ascontiguousarray(np.asarray(boxes, dtype=np.float64).reshape(-1, 3))
    empty = np.zeros(0, dtype=np.int64)
    if cations.shape[0] == 0 or cations.shape[1] == 0:
        return empty, empty, empty
    r_max = float(cut.max())
    if not r_max < 0.5 * b.min():
        raise AnalysisInputError(
            f"cutoff {r_max:.4g} nm must be below half the shortest box edge "
            f"({0.5 * b.min():.4g} nm)"
        )
    n = kernels.cells_per_edge(b, r_max, 1)
    f, i, j = kernels.contacts_kernel(np.ascontiguousarray(cations), np.ascontiguousarray(sites),
                                      b, np.ascontiguousarray(cut), n)
    return f, i, j


def shell_molecules(
    cation: NDArray[np.int64], site: NDArray[np.int64], site_molecule: NDArray[np.int64],
    n_molecules: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Distinct (cation, molecule) pairs from atom-level contacts (a molecule counts once).

    Parameters
    ----------
    cation, site : ndarray of int64, shape (n_contacts,)
        From :func:`compute_contacts`.
    site_molecule : ndarray of int64, shape (n_sites,)
        Molecule index (0..n_molecules-1) of each site.
    n_molecules : int

    Returns
    -------
    cation, molecule : ndarray of int64, shape (n_pairs,), sorted by cation then molecule
    """
    key = np.unique(cation * n_molecules + site_molecule[site])
    return key // n_molecules, key % n_molecules
