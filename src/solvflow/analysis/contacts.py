"""Periodic neighbour search: which partner sites and molecules are in each cation's shell.

Plain functions on numpy arrays (MDTraj style). Coordinates are in nm,
boxes are orthorhombic edge lengths in nm. Distances are minimum-image
distances; a site is in the shell when its distance is ``<=`` its cutoff.

* :func:`chunk_contacts` (used by the engine) works on a whole chunk of
  frames at once with the numba cell-list kernel of
  :mod:`solvflow.analysis.kernels`.
* :func:`chunk_contacts_of` is the same search on atoms selected from whole
  frames (the engine's call: the kernel reads the selected atoms in place);
* :func:`compute_contacts` is the same search for one frame (with an optional
  exclusion of pairs within one molecule), for callers and tests that have
  one frame of hand-placed atoms.

The reference implementations the tests compare these with (all-pairs
minimum image in numpy, and a periodic k-d tree) live in ``tests/oracles.py``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from solvflow.analysis import kernels
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


def compute_contacts(
    cation_xyz: ArrayLike,
    site_xyz: ArrayLike,
    site_molecule: ArrayLike,
    box: ArrayLike,
    cutoff_nm: float | ArrayLike,
    cation_molecule: ArrayLike | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Atom-level shell contacts of every cation in one frame (:func:`chunk_contacts`).

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
    centres = np.asarray(cation_xyz).reshape(1, -1, 3)
    sites = np.asarray(site_xyz).reshape(1, -1, 3)
    _, i, j = chunk_contacts(centres, sites, np.asarray(box, dtype=np.float64).reshape(1, 3),
                             cutoff_nm)
    if cation_molecule is not None and i.size:
        keep = np.asarray(cation_molecule)[i] != np.asarray(site_molecule)[j]
        i, j = i[keep], j[keep]
    return i, j


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
        Shell radius, per site; the largest must be below half the shortest box edge.

    Returns
    -------
    frame, cation, site : ndarray of int64, shape (n_contacts,)
        Contacts with minimum-image distance ``<= cutoff`` (sorted by frame, cation, site).
    """
    cations, sites = np.asarray(cation_xyz), np.asarray(site_xyz)
    return _contacts(cations, np.arange(cations.shape[1]), sites, np.arange(sites.shape[1]),
                     boxes, cutoff_nm)


def chunk_contacts_of(
    xyz: ArrayLike, cation_atoms: ArrayLike, site_atoms: ArrayLike, boxes: ArrayLike,
    cutoff_nm: float | ArrayLike,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """:func:`chunk_contacts` of atoms selected from whole frames (no copy of the selection).

    Parameters
    ----------
    xyz : array_like, shape (n_frames, n_atoms, 3), nm
        A chunk of the trajectory.
    cation_atoms : array_like of int, shape (n_cations,)
        Atom index of each cation's centre.
    site_atoms : array_like of int, shape (n_sites,)
        Atom index of each coordinating site.
    boxes, cutoff_nm
        As in :func:`chunk_contacts`.

    Returns
    -------
    frame, cation, site : ndarray of int64, shape (n_contacts,)
        ``cation`` and ``site`` index ``cation_atoms`` and ``site_atoms``.
    """
    frames = np.asarray(xyz)
    return _contacts(frames, np.asarray(cation_atoms, dtype=np.int64), frames,
                     np.asarray(site_atoms, dtype=np.int64), boxes, cutoff_nm)


def _contacts(cx: NDArray[np.floating], catoms: NDArray[np.int64], sx: NDArray[np.floating],
              satoms: NDArray[np.int64], boxes: ArrayLike, cutoff_nm: float | ArrayLike,
              ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    cut = np.ascontiguousarray(
        np.broadcast_to(np.asarray(cutoff_nm, dtype=np.float64), (satoms.size,)))
    empty = np.zeros(0, dtype=np.int64)
    if satoms.size == 0 or catoms.size == 0 or cx.shape[0] == 0:
        return empty, empty, empty
    b = np.ascontiguousarray(np.asarray(boxes, dtype=np.float64).reshape(-1, 3))
    r_max = float(cut.max())
    kernels.check_below_half_box(r_max, b, "cutoff")
    n = kernels.cells_per_edge(b, r_max, 1)
    f, i, j = kernels.contacts_kernel(np.ascontiguousarray(cx), np.ascontiguousarray(catoms),
                                      np.ascontiguousarray(sx), np.ascontiguousarray(satoms),
                                      b, cut, n)
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
