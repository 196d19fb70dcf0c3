"""The numba kernels against the numpy path they replace (same inputs, both paths).

Counts (contacts, RDF histograms, residence overlaps) and unwrapped centres must
be bit-identical; MSD sums may differ only in the order of a float64 sum (<= 1e-12
relative). The numpy path is selected by setting ``kernels.ENABLED = False``, as
happens automatically when numba is not installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import solvflow
from solvflow.analysis import analyze, kernels
from solvflow.analysis.contacts import chunk_contacts
from solvflow.analysis.rdf import RDFAccumulator
from solvflow.analysis.residence import ContactCorrelation, lag_grid
from solvflow.analysis.synthetic import write_random_walk
from solvflow.analysis.transport import CentreTracker, MSDAccumulator
from solvflow.errors import AnalysisInputError

pytest.importorskip("numba")


def both_paths(monkeypatch: pytest.MonkeyPatch, func):  # type: ignore[no-untyped-def]
    """``func()`` with the numpy path, then with the numba kernels."""
    out = []
    for flag in (False, True):
        monkeypatch.setattr(kernels, "ENABLED", flag)
        out.append(func())
    return out


def random_chunk(seed: int, n_frames: int, n_centres: int, n_sites: int, edges, dtype,
                 spread: float = 1.0):  # type: ignore[no-untyped-def]
    """Coordinates partly outside the box (any image) and a box that changes per frame."""
    rng = np.random.default_rng(seed)
    boxes = np.asarray(edges, float) * (1.0 + 0.01 * rng.random((n_frames, 1)))
    c = (rng.random((n_frames, n_centres, 3)) * spread - 0.1) * boxes[:, None, :]
    s = (rng.random((n_frames, n_sites, 3)) * spread - 0.1) * boxes[:, None, :]
    return c.astype(dtype), s.astype(dtype), boxes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("edges", "cut"), [
    ((4.0, 4.0, 4.0), 0.35),  # many cells per edge
    ((2.0, 3.1, 1.3), 0.6),  # fewer than 3 cells on some axes: all cells visited
    ((1.5, 1.5, 1.5), 0.74),  # cutoff just below half the box
])
def test_contacts_identical(monkeypatch: pytest.MonkeyPatch, dtype, edges, cut) -> None:
    c, s, boxes = random_chunk(1, 6, 30, 400, edges, dtype, spread=1.3)
    boxes = boxes / 1.01  # keep the cutoff below half of every frame's box
    per_site = np.where(np.arange(400) % 3 == 0, cut, 0.8 * cut)
    numpy_out, numba_out = both_paths(monkeypatch,
                                      lambda: chunk_contacts(c, s, boxes, per_site))
    assert numpy_out[0].size > 50  # the geometry has contacts to compare
    for a, b in zip(numpy_out, numba_out, strict=True):
        np.testing.assert_array_equal(a, b)


def test_contacts_exactly_at_the_cutoff_and_across_the_wall(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Site 0 at exactly 0.3 nm across the periodic wall (0.1 + 2.8 -> 0.3 under minimum image,
    # binary-exact numbers), site 1 just beyond: both paths keep site 0 only.
    c = np.array([[[0.1, 1.0, 1.0]]])
    s = np.array([[[2.8, 1.0, 1.0], [2.7999, 1.0, 1.0]]])
    boxes = np.array([[3.0, 3.0, 3.0]])
    dist = abs(2.8 - 0.1 - 3.0)
    numpy_out, numba_out = both_paths(monkeypatch, lambda: chunk_contacts(c, s, boxes, dist))
    assert numpy_out[2].tolist() == numba_out[2].tolist() == [0]


def test_cutoff_beyond_half_box_is_rejected_by_the_kernel_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernels, "ENABLED", True)
    c, s, boxes = random_chunk(2, 2, 3, 5, (2.0, 2.0, 2.0), np.float64)
    with pytest.raises(AnalysisInputError, match="half the shortest box edge"):
        chunk_contacts(c, s, boxes, 1.5)


def test_rdf_histograms_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    c, s, boxes = random_chunk(3, 5, 20, 600, (3.3, 3.0, 3.6), np.float32, spread=1.2)
    site_partner = np.arange(600, dtype=np.int64) % 2
    cat_res = np.arange(20, dtype=np.int64)
    site_res = np.arange(600, dtype=np.int64) // 3
    site_res[:3] = 0  # sites of the residue of cation 0 are excluded

    def run() -> np.ndarray:
        acc = RDFAccumulator(site_partner, 2)
        acc.add_chunk(c[:2], s[:2], boxes[:2], cat_res, site_res)
        acc.add_chunk(c[2:], s[2:], boxes[2:], cat_res, site_res)
        return acc.hist

    numpy_hist, numba_hist = both_paths(monkeypatch, run)
    assert numpy_hist.sum() > 1000
    np.testing.assert_array_equal(numpy_hist, numba_hist)


@pytest.mark.parametrize("subset", [False, True])
def test_unwrapped_centres_identical_and_msd_within_1e12(monkeypatch: pytest.MonkeyPatch,
                                                         subset: bool) -> None:
    # 40 three-atom molecules random-walking with steps up to 0.45 nm, some crossing the wall
    # every frame; with ``subset`` only every other molecule's atoms are tracked (a gather).
    rng = np.random.default_rng(5)
    n_mol, n_frames, edge = 40, 30, 2.0
    start = rng.random((n_mol, 1, 3)) * edge + rng.normal(0, 0.05, (n_mol, 3, 3))
    walk = np.cumsum(rng.uniform(-0.45, 0.45, (n_frames, n_mol, 1, 3)), axis=0)
    xyz = np.mod(start[None] + walk, edge).reshape(n_frames, -1, 3).astype(np.float32)
    boxes = np.full((n_frames, 3), edge)
    mols = np.arange(0, n_mol, 2) if subset else np.arange(n_mol)
    atoms = (mols[:, None] * 3 + np.arange(3)).ravel()
    atom_mol = np.repeat(np.arange(mols.size), 3)
    masses = np.tile([12.0, 1.0, 16.0], mols.size)
    lags = lag_grid(12)

    def run() -> tuple[np.ndarray, np.ndarray]:
        tracker = CentreTracker(atom_mol, atoms, masses)
        msd = MSDAccumulator(mols.size, lags)
        centres = []
        for lo in range(0, n_frames, 7):
            centres.append(tracker.add_chunk(xyz[lo:lo + 7], boxes[lo:lo + 7]))
            msd.add_chunk(centres[-1])
        return np.concatenate(centres), msd.msd()

    (numpy_c, numpy_msd), (numba_c, numba_msd) = both_paths(monkeypatch, run)
    np.testing.assert_array_equal(numpy_c, numba_c)
    assert np.ptp(numpy_c[:, :, 0]) > 2 * edge  # the centres did leave the box
    np.testing.assert_allclose(numba_msd[1:], numpy_msd[1:], rtol=1e-12, atol=0)


def test_residence_overlaps_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    n_pairs, lags = 50, lag_grid(20)
    frames = [np.flatnonzero(rng.random(n_pairs) < 0.3) for _ in range(45)]

    def run() -> np.ndarray:
        corr = ContactCorrelation(n_pairs, lags)
        for lo in range(0, 45, 8):
            corr.add_chunk(frames[lo:lo + 8])
        return corr.overlap

    numpy_overlap, numba_overlap = both_paths(monkeypatch, run)
    assert numpy_overlap[1] > 0
    np.testing.assert_array_equal(numpy_overlap, numba_overlap)


@pytest.fixture(scope="module")
def rundir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kernels") / "lifsi"
    solvflow.build("lifsi_dme", concentration=2.0, n_salt=16, output=out, write_system=False,
                   seed=3)
    write_random_walk(out / "topology.pdb", out / "traj.dcd", 40, sigma_nm=0.03, seed=4)
    return out


def test_whole_analysis_identical_on_both_paths(monkeypatch: pytest.MonkeyPatch,
                                                rundir: Path) -> None:
    def run():  # type: ignore[no-untyped-def]
        res = analyze(rundir, cutoffs_nm={"FSI": 0.3, "DME": 0.3}, dt_ps=1.0, chunk=15)
        return res.to_dict(), {k: (r.g, r.running_cn) for k, r in res.rdfs.items()}

    (numpy_res, numpy_rdf), (numba_res, numba_rdf) = both_paths(monkeypatch, run)
    numpy_diff, numba_diff = numpy_res.pop("diffusion"), numba_res.pop("diffusion")
    assert numpy_res == numba_res  # every count, fraction, shell, cluster, residence time
    for name, (g, cn) in numpy_rdf.items():
        np.testing.assert_array_equal(g, numba_rdf[name][0])
        np.testing.assert_array_equal(cn, numba_rdf[name][1])
    assert set(numpy_diff) == {"Li", "FSI", "DME"}
    for name, d in numpy_diff.items():
        assert numba_diff[name]["D_nm2_ps"] == pytest.approx(d["D_nm2_ps"], rel=1e-12)
        np.testing.assert_allclose(numba_diff[name]["msd_nm2"][1:], d["msd_nm2"][1:],
                                   rtol=1e-12)
