"""Standard errors of time averages from correlated frames, and across replicas.

Time averages (fractions, coordination numbers, shells, anion states)
-------------------------------------------------------------------
For a per-frame series ``x_t`` (t = 0..N-1) the **statistical inefficiency**
``g = 1 + 2 sum_t C(t) (1 - t/N)`` is summed over the normalised
autocorrelation ``C(t)`` from lag 1 until C first drops to <= 0 after
``MIN_LAG`` lags (Chodera et al., J. Chem. Theory Comput. 3, 26 (2007); the
rule of ``pymbar.timeseries.statistical_inefficiency`` without its ``fast``
option, computed here with one FFT; the tests check it against pymbar).
Then

    n_eff = N / g,     stderr = sqrt(var(x) * g / N) = sqrt(var(x) / n_eff)

with ``var`` the population variance (ddof 0). ``g >= 1``; a series that
never changes has g = 1, n_eff = N and stderr 0 (nothing fluctuates). The
integrated correlation time is ``(g - 1) / 2`` frames. With ``n_eff <
FEW_SAMPLES`` (10) the error bar itself is unreliable and the key is listed
in ``few_samples`` of analysis.json. ``g`` is a lower bound when the run is
not much longer than the slowest relaxation; n_eff flags the worst cases.

Ratio averages (e.g. a cluster-size fraction = clusters of that size /
all clusters, pooled over frames) use the linearised series
``z_t = (a_t - R b_t) / mean(b)`` (delta method) with ``R = sum a / sum b``.

Blocks
------
:func:`block_of_frames` splits frames into contiguous blocks (time blocks
for the diffusion and conductivity errors, and the time bins in which shell
compositions and cluster sizes are counted); :func:`block_stderr` is
``std(block values, ddof=1) / sqrt(n_blocks)``.

Replicas
--------
:func:`replica_mean_stderr`: with two or more independent replicas the
standard error across them is the headline error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

DEFAULT_BLOCKS = 5
FEW_SAMPLES = 10  # effective samples below this: the error bar is unreliable
MIN_LAG = 3  # lags always summed before the first non-positive C(t) stops the sum (pymbar)


@dataclass(frozen=True)
class TimeAverage:
    """Mean of a correlated series with its error.

    Attributes
    ----------
    mean : float
    stderr : float
        Standard error of the mean (units of the series).
    g : float
        Statistical inefficiency (>= 1), in frames (or bins) of the series.
    n_eff : float
        Effective number of independent samples, ``N / g``.
    n : int
        Number of samples N.
    """

    mean: float
    stderr: float
    g: float
    n_eff: float
    n: int
    frames_per_sample: float = 1.0

    @property
    def few_samples(self) -> bool:
        """True when ``n_eff < FEW_SAMPLES``: the error bar is unreliable."""
        return self.n_eff < FEW_SAMPLES

    def correlation_time(self, dt: float | None) -> float | None:
        """Integrated correlation time ``(g_frames - 1) / 2 * dt``; None without ``dt``.

        ``g_frames = n * frames_per_sample / n_eff`` (samples may be time bins of
        ``frames_per_sample`` frames).
        """
        if dt is None or not self.n_eff > 0:
            return None
        g_frames = self.n * self.frames_per_sample / self.n_eff
        return max(0.0, (g_frames - 1.0) / 2.0) * dt


def statistical_inefficiency(x: ArrayLike, min_lag: int = MIN_LAG) -> float:
    """Statistical inefficiency ``g`` (>= 1) of a series, shape (N,).

    ``C(t) = sum_i dx_i dx_{i+t} / ((N - t) var)`` for t = 1..N-2, summed as
    ``g = 1 + 2 sum C(t) (1 - t/N)`` up to (not including) the first t > ``min_lag``
    with ``C(t) <= 0``. A constant series (zero variance) gives 1.
    """
    values = np.asarray(x, dtype=np.float64).ravel()
    n = values.size
    if n < 3:
        return 1.0
    dx = values - values.mean()
    var = float(np.mean(dx * dx))
    if not var > 1e-300 or not math.isfinite(var):
        return 1.0
    size = 1 << int(2 * n - 1).bit_length()
    spec = np.fft.rfft(dx, size)
    acov = np.fft.irfft(spec * np.conj(spec), size)[: n - 1]  # unnormalised, lags 0..n-2
    t = np.arange(1, n - 1)
    corr = acov[1:] / ((n - t) * var)
    stop = np.flatnonzero((corr <= 0.0) & (t > min_lag))
    last = int(stop[0]) if stop.size else corr.size
    g = 1.0 + 2.0 * float(np.sum(corr[:last] * (1.0 - t[:last] / n)))
    return max(1.0, g)


def time_average(x: ArrayLike) -> TimeAverage:
    """Mean, standard error, statistical inefficiency and n_eff of a series, shape (N,)."""
    values = np.asarray(x, dtype=np.float64).ravel()
    n = values.size
    if n == 0:
        return TimeAverage(math.nan, math.nan, 1.0, 0.0, 0)
    g = statistical_inefficiency(values)
    var = float(np.var(values))
    return TimeAverage(float(values.mean()), math.sqrt(var * g / n), g, n / g, n)


def ratio_average(a: ArrayLike, b: ArrayLike) -> TimeAverage:
    """``R = sum(a) / sum(b)`` with the error of the linearised series (delta method).

    Parameters
    ----------
    a, b : array_like, shape (N,)
        Per-sample numerator and denominator (e.g. clusters of one size and all
        clusters, per time bin); ``sum(b) > 0``.
    """
    num = np.asarray(a, dtype=np.float64).ravel()
    den = np.asarray(b, dtype=np.float64).ravel()
    total = float(den.sum())
    if num.size == 0 or total <= 0:
        return TimeAverage(math.nan, math.nan, 1.0, 0.0, int(num.size))
    ratio = float(num.sum()) / total
    spread = time_average((num - ratio * den) / den.mean())
    return TimeAverage(ratio, spread.stderr, spread.g, spread.n_eff, spread.n)


def error_trees(tree: Any, dt: float | None) -> dict[str, Any]:
    """Split a nested dict/list of :class:`TimeAverage` into the analysis.json error keys.

    Returns ``{"stderr": ..., "effective_samples": ..., "correlation_time_ps": ...}``
    (each with the nesting of ``tree``; correlation times None when ``dt`` is None) and
    ``"few_samples"``: dotted paths (``"shells.0"``, ``"ion_pairing.CIP"``) of the
    leaves with ``n_eff < FEW_SAMPLES``.
    """
    few: list[str] = []

    def walk(node: Any, path: tuple[str, ...], pick: Callable[[TimeAverage], Any]) -> Any:
        if isinstance(node, TimeAverage):
            if pick is _stderr and node.few_samples:
                few.append(".".join(path))
            return pick(node)
        if isinstance(node, dict):
            return {k: walk(v, (*path, str(k)), pick) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [walk(v, (*path, str(i)), pick) for i, v in enumerate(node)]
        return node

    return {
        "stderr": walk(tree, (), _stderr),
        "effective_samples": walk(tree, (), lambda a: a.n_eff),
        "correlation_time_ps": walk(tree, (), lambda a: a.correlation_time(dt)),
        "few_samples": few,
    }


def _stderr(a: TimeAverage) -> float:
    return a.stderr


def columns_average(per_frame: ArrayLike) -> list[TimeAverage]:
    """:func:`time_average` of every column of an array of shape (N, n_values).

    The means are ``values.mean(axis=0)`` (the column sums in numpy's order for a 2-D
    array, as the analysis always formed them, so they are unchanged to the last bit).
    """
    values = np.asarray(per_frame, dtype=np.float64)
    means = values.mean(axis=0) if values.shape[0] else np.full(values.shape[1], math.nan)
    return [replace(time_average(values[:, k]), mean=float(means[k]))
            for k in range(values.shape[1])]


def block_of_frames(n_frames: int, n_blocks: int) -> NDArray[np.int64]:
    """Block index of each frame: shape (n_frames,), values 0..min(n_blocks, n_frames)-1."""
    n = max(1, min(n_blocks, n_frames))
    return (np.arange(n_frames) * n) // max(n_frames, 1)


def block_stderr(block_values: ArrayLike) -> float | None:
    """``std(ddof=1) / sqrt(n)`` of per-block values (shape (n_blocks,)); None with < 2."""
    values = np.asarray(block_values, dtype=np.float64)
    values = values[np.isfinite(values)]
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
    """Time average of each column and its block standard error (contiguous blocks).

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


def replica_mean_stderr(
    values: Sequence[float | None], within_errors: Sequence[float | None] | None = None,
) -> tuple[float | None, float | None, str]:
    """Mean over independent replicas and its headline standard error.

    Parameters
    ----------
    values : sequence of float or None
        One value per replica (None / NaN entries are ignored).
    within_errors : sequence of float or None, optional
        Each replica's own (time-correlation) standard error, same order.

    Returns
    -------
    mean : float or None
        Mean of the usable values (None when there are none).
    stderr : float or None
        With >= 2 replicas: ``std(values, ddof=1) / sqrt(n)`` (the spread between
        independent runs, the headline error). With one replica: its own within-run
        error (None if not given).
    method : str
        ``"across_replicas"``, ``"within_run"`` or ``"none"``.
    """
    pairs = [(float(v), e) for v, e in zip(values, within_errors or [None] * len(values),
                                           strict=True)
             if v is not None and math.isfinite(float(v))]
    if not pairs:
        return None, None, "none"
    vals = np.array([v for v, _ in pairs])
    if vals.size >= 2:
        return float(vals.mean()), float(np.std(vals, ddof=1) / np.sqrt(vals.size)), \
            "across_replicas"
    err = pairs[0][1]
    return float(vals[0]), (None if err is None else float(err)), \
        ("within_run" if err is not None else "none")


def with_min_inefficiency(avg: TimeAverage, g_min_frames: float) -> TimeAverage:
    """``avg`` with its statistical inefficiency raised to at least ``g_min_frames`` frames.

    For quantities that can only change when a shell exchanges a molecule, the
    slowest exchange time tau (frames) implies ``g >= 1 + 2 tau``, also when the
    series itself happened not to move (a shell that lasts the whole run is one
    sample, not N). Samples that are time bins use ``g_min_frames / frames_per_sample``.
    """
    floor = max(1.0, g_min_frames / avg.frames_per_sample)
    if not floor > avg.g or avg.n == 0:
        return avg
    return TimeAverage(avg.mean, avg.stderr * math.sqrt(floor / avg.g), floor, avg.n / floor,
                       avg.n, avg.frames_per_sample)


def map_averages(tree: Any, fn: Callable[[TimeAverage], TimeAverage]) -> Any:
    """Apply ``fn`` to every :class:`TimeAverage` leaf of a nested dict/list."""
    if isinstance(tree, TimeAverage):
        return fn(tree)
    if isinstance(tree, dict):
        return {k: map_averages(v, fn) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [map_averages(v, fn) for v in tree]
    return tree
