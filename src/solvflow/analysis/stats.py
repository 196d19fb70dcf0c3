"""Block averages: standard errors of time averages from correlated frames.

The analysed frames are split, in order, into ``n_blocks`` contiguous blocks
of (nearly) equal length; a quantity is averaged within each block and its
standard error is ``std(block_means, ddof=1) / sqrt(n_blocks)``. Blocks must
be longer than the correlation time for this to be honest; with fewer than
two blocks no error is given (None).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

DEFAULT_BLOCKS = 5


def block_of_frames(n_frames: int, n_blocks: int) -> NDArray[np.int64]:
    """Block index of each frame: shape (n_frames,), values 0..min(n_blocks, n_frames)-1."""
    n = max(1, min(n_blocks, n_frames))
    return (np.arange(n_frames) * n) // max(n_frames, 1)


def block_stderr(block_means: ArrayLike) -> float | None:
    """Standard error from block means (shape (n_blocks,)); None with fewer than 2 blocks."""
    values = np.asarray(block_means, dtype=np.float64)
    if values.size < 2:
        return None
    return float(np.std(values, ddof=1) / np.sqrt(values.size))


def block_means(per_frame: ArrayLike, blocks: NDArray[np.int64]) -> NDArray[np.float64]:
    """Mean of each column within each block.

    Parameters
    ----------
    per_frame : array_like, shape (n_frames, n_values)
    blocks : ndarray of int64, shape (n_frames,)
        From :func:`block_of_frames`.

    Returns
    -------
    ndarray of float64, shape (n_blocks, n_values)
    """
    values = np.asarray(per_frame, dtype=np.float64)
    n_blocks = int(blocks.max()) + 1 if blocks.size else 0
    sums = np.zeros((n_blocks, values.shape[1]))
    np.add.at(sums, blocks, values)
    return sums / np.bincount(blocks, minlength=n_blocks)[:, None]


def mean_and_stderr(
    per_frame: ArrayLike, blocks: NDArray[np.int64]
) -> tuple[NDArray[np.float64], list[float | None]]:
    """Time average of each column and its block standard error.

    Parameters
    ----------
    per_frame : array_like, shape (n_frames, n_values)
    blocks : ndarray of int64, shape (n_frames,)

    Returns
    -------
    mean : ndarray of float64, shape (n_values,)
    stderr : list of float or None, length n_values
    """
    values = np.asarray(per_frame, dtype=np.float64)
    means = block_means(values, blocks)
    return values.mean(axis=0), [block_stderr(means[:, k]) for k in range(values.shape[1])]
