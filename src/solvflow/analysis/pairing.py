"""Ion pairing: cation-centred SSIP/CIP/AGG, anion-centred free/CIP/AGG, clusters.

Definitions (shared DESIGN.md), all from the distinct cation-anion molecule
contacts of one frame (every anion species pooled):

* cation-centred: **SSIP** = no anion in the shell; **CIP** = exactly one
  anion in the shell and that anion touches no other cation; **AGG** =
  otherwise (two or more anions, or an anion shared with another cation);
* anion-centred (what Raman measures): **free** = in no cation's shell,
  **CIP** = in exactly one, **AGG** = in two or more;
* clusters: connected components of the graph whose nodes are all cations
  and anions and whose edges are the contacts (a free ion is a cluster of size 1).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from solvflow.analysis import kernels

SSIP, CIP, AGG = 0, 1, 2
FREE = 0
CATION_STATES = ("SSIP", "CIP", "AGG")
ANION_STATES = ("free", "CIP", "AGG")


def classify_cations(
    cation: NDArray[np.int64], anion: NDArray[np.int64], n_cations: int, n_anions: int
) -> NDArray[np.int64]:
    """Cation-centred state of every cation.

    Parameters
    ----------
    cation, anion : ndarray of int64, shape (n_pairs,)
        Distinct cation-anion contacts (indices 0..n_cations-1, 0..n_anions-1).
    n_cations, n_anions : int

    Returns
    -------
    ndarray of int64, shape (n_cations,)
        ``SSIP`` (0), ``CIP`` (1) or ``AGG`` (2).
    """
    anions_per_cation = np.bincount(cation, minlength=n_cations)
    cations_per_anion = np.bincount(anion, minlength=n_anions)
    shared = (cations_per_anion[anion] > 1).astype(np.float64)
    holds_shared = np.bincount(cation, weights=shared, minlength=n_cations) > 0
    state = np.full(n_cations, AGG, dtype=np.int64)
    state[anions_per_cation == 0] = SSIP
    state[(anions_per_cation == 1) & ~holds_shared] = CIP
    return state


def classify_anions(
    cation: NDArray[np.int64], anion: NDArray[np.int64], n_anions: int
) -> NDArray[np.int64]:
    """Anion-centred state: 0 free, 1 CIP (one cation), 2 AGG (two or more).

    Parameters
    ----------
    cation, anion : ndarray of int64, shape (n_pairs,)
        Distinct cation-anion contacts.
    n_anions : int

    Returns
    -------
    ndarray of int64, shape (n_anions,)
    """
    del cation  # the state depends on the number of distinct cations per anion only
    return np.minimum(np.bincount(anion, minlength=n_anions), 2).astype(np.int64)


def cluster_sizes(
    cation: NDArray[np.int64], anion: NDArray[np.int64], n_cations: int, n_anions: int
) -> NDArray[np.int64]:
    """Sizes (number of ions) of the connected components of the contact graph.

    Parameters
    ----------
    cation, anion : ndarray of int64, shape (n_pairs,)
    n_cations, n_anions : int

    Returns
    -------
    ndarray of int64, shape (n_clusters,)
        One entry per cluster; ``sum == n_cations + n_anions``.
    """
    labels = kernels.components_kernel(n_cations + n_anions,
                                       np.ascontiguousarray(cation, dtype=np.int64),
                                       np.ascontiguousarray(n_cations + anion, dtype=np.int64))
    return np.bincount(labels).astype(np.int64)


def state_fractions(states: NDArray[np.int64], n_states: int = 3) -> NDArray[np.float64]:
    """Fraction of entries in each state; shape (n_states,) (zeros when ``states`` is empty)."""
    if states.size == 0:
        return np.zeros(n_states)
    return np.bincount(states, minlength=n_states)[:n_states] / states.size


def chunk_cluster_sizes(
    cation: NDArray[np.int64], anion: NDArray[np.int64], n_cations: int, n_anions: int,
    n_frames: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Cluster sizes of every frame of a chunk with one connected-components pass.

    Parameters
    ----------
    cation, anion : ndarray of int64, shape (n_pairs,)
        Distinct contacts with frame-offset indices ``frame * n_cations + cation`` and
        ``frame * n_anions + anion`` (frames never share a cluster).
    n_cations, n_anions, n_frames : int

    Returns
    -------
    sizes : ndarray of int64, shape (n_clusters,)
        Number of ions of each cluster of the chunk.
    frame : ndarray of int64, shape (n_clusters,)
        Frame (0..n_frames-1) of each cluster; per frame the sizes sum to
        ``n_cations + n_anions`` and equal :func:`cluster_sizes` of that frame.
    """
    n_cat, n_an = n_frames * n_cations, n_frames * n_anions
    n = n_cat + n_an
    labels = kernels.components_kernel(n, np.ascontiguousarray(cation, dtype=np.int64),
                                       np.ascontiguousarray(n_cat + anion, dtype=np.int64))
    n_clusters = int(labels.max()) + 1 if n else 0
    node_frame = np.concatenate([np.arange(n_cat) // max(n_cations, 1),
                                 np.arange(n_an) // max(n_anions, 1)])
    frame = np.zeros(n_clusters, dtype=np.int64)
    frame[labels] = node_frame
    return np.bincount(labels, minlength=n_clusters).astype(np.int64), frame
