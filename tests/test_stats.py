"""Errors of time averages: statistical inefficiency, AR(1) validation, replicas, few samples.

The AR(1) process x_t = phi x_{t-1} + e_t (unit Gaussian e) has a known
autocorrelation phi^t, so the exact variance of the mean of N samples is
    var(mean) = s2 / N * [(1 + phi)/(1 - phi) - 2 phi (1 - phi^N) / (N (1 - phi)^2)],
s2 = 1/(1 - phi^2) (standard result for a stationary AR(1) series).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import mdtraj as md
import numpy as np
import pytest

from solvflow.analysis import analyze
from solvflow.analysis.stats import (
    FEW_SAMPLES,
    error_trees,
    ratio_average,
    replica_mean_stderr,
    statistical_inefficiency,
    time_average,
    with_min_inefficiency,
)

DATA = Path(__file__).parent / "data" / "lifsi_dme_1M_md"


def ar1(rng: np.random.Generator, phi: float, n: int) -> np.ndarray:
    """A stationary AR(1) series (first value drawn from the stationary distribution)."""
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0] / math.sqrt(1 - phi * phi)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


def true_stderr(phi: float, n: int) -> float:
    s2 = 1.0 / (1.0 - phi * phi)
    g_n = (1 + phi) / (1 - phi) - 2 * phi * (1 - phi**n) / (n * (1 - phi) ** 2)
    return math.sqrt(s2 / n * g_n)


@pytest.mark.parametrize("phi", [0.0, 0.8, 0.95])
def test_ar1_stderr_within_20_percent_of_the_exact_one(phi: float) -> None:
    # tau = phi/(1-phi) frames (0, 4, 19); 60 seeded realisations of 4000 samples; the mean
    # reported stderr must be within 20 % of the exact standard error of the mean.
    rng = np.random.default_rng(2026)
    n = 4000
    reported = [time_average(ar1(rng, phi, n)).stderr for _ in range(60)]
    assert np.mean(reported) == pytest.approx(true_stderr(phi, n), rel=0.20)
    g = statistical_inefficiency(ar1(rng, phi, 20000))
    assert g == pytest.approx((1 + phi) / (1 - phi), rel=0.25)  # g = 1 + 2 tau


def test_statistical_inefficiency_equals_pymbar() -> None:
    # Same estimator as pymbar.timeseries.statistical_inefficiency (fast=False), by FFT here.
    timeseries = pytest.importorskip("pymbar.timeseries")
    logging.getLogger("pymbar").setLevel(logging.ERROR)
    rng = np.random.default_rng(5)
    for phi, n in ((0.0, 300), (0.6, 1000), (0.97, 2000), (0.5, 7)):
        x = ar1(rng, phi, n)
        assert statistical_inefficiency(x) == pytest.approx(
            timeseries.statistical_inefficiency(x), rel=1e-9)


def test_constant_and_short_series() -> None:
    flat = time_average(np.full(50, 0.25))
    assert (flat.mean, flat.stderr, flat.g, flat.n_eff) == (0.25, 0.0, 1.0, 50.0)
    five = time_average([1.0, 1.0, 1.0, 1.0, 1.1])
    assert five.n_eff <= 5 and five.few_samples
    assert FEW_SAMPLES == 10


def test_ratio_average_is_the_pooled_ratio() -> None:
    # clusters of one size / all clusters, per bin: R = 6 / 20; z_t = (a - R b) / mean(b).
    a, b = np.array([1.0, 2.0, 3.0, 0.0]), np.array([5.0, 5.0, 6.0, 4.0])
    avg = ratio_average(a, b)
    assert avg.mean == pytest.approx(0.3)
    z = (a - 0.3 * b) / b.mean()
    assert avg.stderr == pytest.approx(math.sqrt(np.var(z) * avg.g / 4))


def test_exchange_floor_and_error_trees() -> None:
    avg = time_average(np.r_[np.zeros(45), np.ones(5)])
    floored = with_min_inefficiency(avg, 51.0)  # a shell lasting the whole run: one sample
    assert floored.n_eff == pytest.approx(50 / 51) and floored.few_samples
    assert floored.stderr == pytest.approx(avg.stderr * math.sqrt(51.0 / avg.g))
    assert with_min_inefficiency(avg, 0.5) == avg
    trees = error_trees({"cn": {"DME": avg}, "shells": [floored]}, dt=0.4)
    assert trees["few_samples"] == ["shells.0"]
    assert trees["effective_samples"]["cn"]["DME"] == avg.n_eff
    assert trees["correlation_time_ps"]["shells"][0] == pytest.approx((51 - 1) / 2 * 0.4)
    assert error_trees({"x": avg}, dt=None)["correlation_time_ps"] == {"x": None}


def test_replica_mean_stderr() -> None:
    mean, err, how = replica_mean_stderr([1.0, 2.0, 3.0], [0.01, 0.01, 0.01])
    assert (mean, how) == (2.0, "across_replicas") and err == pytest.approx(1.0 / math.sqrt(3))
    assert replica_mean_stderr([1.5], [0.2]) == (1.5, 0.2, "within_run")
    assert replica_mean_stderr([None, float("nan")]) == (None, None, "none")


def test_five_nearly_identical_frames_are_flagged(tmp_path: Path) -> None:
    # Frame 0 of the real trajectory repeated 5 times with 1e-4 nm seeded noise.
    traj = md.load(str(DATA / "traj.dcd"), top=str(DATA / "topology.pdb"))[0]
    rng = np.random.default_rng(1)
    five = md.Trajectory(traj.xyz + rng.normal(scale=1e-4, size=(5, *traj.xyz.shape[1:])),
                         traj.topology, unitcell_lengths=np.repeat(traj.unitcell_lengths, 5, 0),
                         unitcell_angles=np.repeat(traj.unitcell_angles, 5, 0))
    five.save_dcd(str(tmp_path / "five.dcd"))
    out = analyze(tmp_path / "five.dcd", DATA / "topology.pdb", cation="Li=resname LI",
                  anions={"FSI": "resname FSI and (element O or element N)"},
                  solvents={"DME": "resname DME and element O"},
                  cutoffs_nm={"FSI": 0.3175, "DME": 0.3775}, rdf_frames=0).to_dict()
    for key in ("coordination_numbers.FSI", "coordination_numbers.DME", "ion_pairing.SSIP",
                "anion_states.free", "shells.0"):
        assert key in out["few_samples"], key
    assert all(v <= 5 for v in out["effective_samples"]["ion_pairing"].values())
