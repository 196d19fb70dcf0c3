"""The production kernels (numba) against the reference implementations in tests/oracles.py.

Every test calls the production path (``chunk_contacts``, ``compute_contacts``,
``RDFAccumulator``, ``CentreTracker``, ``MSDAccumulator``, ``ContactCorrelation``
or a kernel directly) on seeded random or real MD coordinates and compares with
an oracle. Contacts and RDF counts must be identical to the all-pairs numpy
oracle (same float64 minimum-image formula) and equal to the periodic k-d
tree's pairs; unwrapped centres identical to the scipy.sparse float32 oracle;
MSD sums within 1e-12 relative of ``numpy.einsum`` (order of a float64 sum);
residence overlaps identical to set intersections.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from oracles import (
    _minimum_image_steps,
    all_pairs_within,
    contact_overlaps,
    kdtree_contacts,
    kdtree_pairs_within,
    msd_sums,
    rdf_histogram,
    scipy_components,
    unwrapped_centres,
)
from solvflow.analysis import kernels
from solvflow.analysis.contacts import chunk_contacts, chunk_contacts_of, compute_contacts
from solvflow.analysis.pairing import chunk_cluster_sizes
from solvflow.analysis.rdf import RDFAccumulator
from solvflow.analysis.residence import ContactCorrelation, lag_grid
from solvflow.analysis.transport import CentreTracker, MSDAccumulator
from solvflow.errors import AnalysisInputError

REAL_MD = Path(__file__).parent / "data" / "lifsi_dme_1M_md"


def random_chunk(seed: int, n_frames: int, n_centres: int, n_sites: int, edges, dtype,
                 spread: float = 1.0, shift_nm: float = 0.0):  # type: ignore[no-untyped-def]
    """Coordinates partly outside the box (any image) and a box that changes per frame."""
    rng = np.random.default_rng(seed)
    boxes = np.asarray(edges, float) * rng.uniform(0.97, 1.0, size=(n_frames, 3))
    c = (rng.random((n_frames, n_centres, 3)) * spread - 0.1) * boxes[:, None, :] + shift_nm
    s = (rng.random((n_frames, n_sites, 3)) * spread - 0.1) * boxes[:, None, :] - shift_nm
    return c.astype(dtype), s.astype(dtype), boxes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("edges", "cut", "shift_nm"), [
    ((4.0, 4.0, 4.0), 0.35, 0.0),  # many cells per edge
    ((2.0, 3.1, 1.3), 0.6, 0.0),  # fewer than 3 cells on some axes: all cells visited
    ((2.0, 2.1, 1.9), 0.9, 0.0),  # 2 cells per edge: offsets must not repeat
    ((1.5, 1.5, 1.5), 0.72, 0.0),  # cutoff just below half the box
    ((3.0, 3.1, 2.9), 0.45, 250.0),  # far from the origin (unwrapped input)
])
def test_contacts_equal_all_pairs_and_kd_tree(dtype, edges, cut, shift_nm) -> None:
    c, s, boxes = random_chunk(1, 6, 30, 400, edges, dtype, spread=1.3, shift_nm=shift_nm)
    per_site = np.where(np.arange(400) % 3 == 0, cut, 0.8 * cut)
    got = chunk_contacts(c, s, boxes, per_site)
    f, i, j, _ = all_pairs_within(c, s, boxes, per_site)
    assert f.size > 50  # the geometry has contacts to compare
    for a, b in zip(got, (f, i, j), strict=True):
        np.testing.assert_array_equal(a, b)
    for k in range(6):  # a different algorithm: same pairs frame by frame
        ci, sj = kdtree_contacts(c[k], s[k], np.arange(400), boxes[k], per_site)
        mine = got[0] == k
        assert (got[1][mine].tolist(), got[2][mine].tolist()) == (ci.tolist(), sj.tolist())


def test_one_frame_contacts_skip_the_cations_own_molecule() -> None:
    c, s, boxes = random_chunk(8, 1, 12, 200, (2.5, 2.5, 2.5), np.float64)
    site_mol = np.arange(200) // 4
    cat_mol = np.arange(12) * 3  # cation k shares a molecule label with sites 12k..12k+3
    got = compute_contacts(c[0], s[0], site_mol, boxes[0], 0.6, cation_molecule=cat_mol)
    want = kdtree_contacts(c[0], s[0], site_mol, boxes[0], 0.6, cation_molecule=cat_mol)
    assert want[0].size > 20 and np.any(cat_mol[want[0]] != site_mol[want[1]])
    assert [a.tolist() for a in got] == [a.tolist() for a in want]
    unfiltered = compute_contacts(c[0], s[0], site_mol, boxes[0], 0.6)
    assert unfiltered[0].size > got[0].size  # some pairs were within one molecule


def test_contacts_exactly_at_the_cutoff_and_across_the_wall() -> None:
    # Site 0 at exactly 0.3 nm across the periodic wall (0.1 + 2.8 -> 0.3 under minimum image,
    # binary-exact numbers), site 1 just beyond: only site 0 is in, as in the oracle.
    c = np.array([[[0.1, 1.0, 1.0]]])
    s = np.array([[[2.8, 1.0, 1.0], [2.7999, 1.0, 1.0]]])
    boxes = np.array([[3.0, 3.0, 3.0]])
    dist = abs(2.8 - 0.1 - 3.0)
    assert chunk_contacts(c, s, boxes, dist)[2].tolist() == [0]
    assert all_pairs_within(c, s, boxes, dist)[2].tolist() == [0]


def test_cutoff_beyond_half_box_is_rejected() -> None:
    c, s, boxes = random_chunk(2, 2, 3, 5, (2.0, 2.0, 2.0), np.float64)
    with pytest.raises(AnalysisInputError, match="cutoff 1.5 nm must be below half"):
        chunk_contacts(c, s, boxes, 1.5)


def test_contacts_on_real_md_frames_equal_the_kd_tree() -> None:
    md = pytest.importorskip("mdtraj")
    traj = md.load(str(REAL_MD / "traj.dcd"), top=str(REAL_MD / "topology.pdb"))[:10]
    li = traj.topology.select("resname LI")
    sites = traj.topology.select("(resname FSI and (element O or element N)) or "
                                 "(resname DME and element O)")
    boxes = traj.unitcell_lengths.astype(np.float64)
    f, i, j = chunk_contacts_of(traj.xyz, li, sites, boxes, 0.3)  # the engine's call
    assert f.size > 10 * li.size  # Li+ are coordinated
    gathered = chunk_contacts(traj.xyz[:, li], traj.xyz[:, sites], boxes, 0.3)
    for a, b in zip((f, i, j), gathered, strict=True):
        np.testing.assert_array_equal(a, b)
    for k in range(traj.n_frames):
        ci, sj = kdtree_contacts(traj.xyz[k, li], traj.xyz[k, sites], np.arange(sites.size),
                                 boxes[k], 0.3)
        assert (i[f == k].tolist(), j[f == k].tolist()) == (ci.tolist(), sj.tolist())


@pytest.mark.parametrize(("edges", "reach", "r_max"), [
    ((3.3, 3.0, 3.6), 2, 1.2),  # the RDF setting, >= 5 cells: unreachable cells skipped
    ((2.0, 2.0, 2.0), 2, 0.95),  # 4 cells per edge: every cell visited
    ((1.0, 1.5, 1.2), 3, 0.45),  # reach 3 with a few cells per edge
])
def test_rdf_histograms_equal_the_oracle(edges, reach, r_max) -> None:
    c, s, boxes = random_chunk(3, 5, 20, 600, edges, np.float32, spread=1.2)
    site_partner = np.arange(600, dtype=np.int64) % 2
    cat_res = np.arange(20, dtype=np.int64)
    site_res = np.arange(600, dtype=np.int64) // 3
    site_res[:3] = 0  # sites of the residue of cation 0 are excluded
    width = 0.005
    n_bins = int(r_max / width)
    want = rdf_histogram(c, s, boxes, width, n_bins, site_partner, cat_res, site_res, 2)
    got = np.zeros((2, n_bins))
    b = np.ascontiguousarray(boxes)
    kernels.rdf_kernel(c, s, b, kernels.cells_per_edge(b, n_bins * width, reach), reach, width,
                       n_bins, site_partner, cat_res, site_res, got)
    assert want.sum() > 1000
    np.testing.assert_array_equal(got, want)


def test_rdf_accumulator_in_two_chunks_equals_the_oracle() -> None:
    c, s, boxes = random_chunk(4, 5, 20, 600, (3.3, 3.0, 3.6), np.float32, spread=1.2)
    site_partner = np.arange(600, dtype=np.int64) % 2
    cat_res, site_res = np.arange(20, dtype=np.int64), np.arange(600, dtype=np.int64) // 3
    acc = RDFAccumulator(site_partner, 2)
    acc.add_chunk(c[:2], s[:2], boxes[:2], cat_res, site_res)
    acc.add_chunk(c[2:], s[2:], boxes[2:], cat_res, site_res)
    n_bins = acc.hist.shape[1]
    want = rdf_histogram(c, s, boxes, acc.width, n_bins, site_partner, cat_res, site_res, 2)
    np.testing.assert_array_equal(acc.hist, want)


def test_kd_tree_oracle_pairs_equal_all_pairs_oracle() -> None:
    # The two oracles agree with each other (distances to rounding: the tree wraps first).
    c, s, boxes = random_chunk(9, 1, 40, 300, (2.9, 3.2, 3.0), np.float64, spread=1.4)
    ci, sj, d = kdtree_pairs_within(c[0], s[0], boxes[0], 0.9)
    order = np.lexsort((sj, ci))
    _, i, j, dist = all_pairs_within(c, s, boxes, 0.9)
    assert i.size > 100
    assert (ci[order].tolist(), sj[order].tolist()) == (i.tolist(), j.tolist())
    np.testing.assert_allclose(d[order], dist, rtol=0, atol=1e-12)


@pytest.mark.parametrize("subset", [False, True])
def test_unwrapped_centres_identical_and_msd_within_1e12(subset: bool) -> None:
    # 40 three-atom molecules random-walking with steps up to 0.45 nm, some crossing the wall
    # every frame; with ``subset`` only every other molecule's atoms are tracked (a gather).
    rng = np.random.default_rng(5)
    n_mol, n_frames, edge = 40, 30, 2.0
    start = rng.random((n_mol, 1, 3)) * edge + rng.normal(0, 0.05, (n_mol, 3, 3))
    walk = np.cumsum(rng.uniform(-0.45, 0.45, (n_frames, n_mol, 1, 3)), axis=0)
    xyz = np.mod(start[None] + walk, edge).reshape(n_frames, -1, 3).astype(np.float32)
    boxes = np.full((n_frames, 3), edge) * rng.uniform(0.99, 1.01, size=(n_frames, 1))
    mols = np.arange(0, n_mol, 2) if subset else np.arange(n_mol)
    atoms = (mols[:, None] * 3 + np.arange(3)).ravel()
    atom_mol = np.repeat(np.arange(mols.size), 3)
    masses = np.tile([12.0, 1.0, 16.0], mols.size)
    lags = lag_grid(12)
    tracker = CentreTracker(atom_mol, atoms, masses)
    msd = MSDAccumulator(mols.size, lags)
    centres = []
    for lo in range(0, n_frames, 7):
        centres.append(tracker.add_chunk(xyz[lo:lo + 7], boxes[lo:lo + 7]))
        msd.add_chunk(centres[-1])
    got = np.concatenate(centres)
    want = unwrapped_centres([xyz[lo:lo + 7] for lo in range(0, n_frames, 7)],
                             [boxes[lo:lo + 7] for lo in range(0, n_frames, 7)],
                             atom_mol, atoms, masses)
    np.testing.assert_array_equal(got, want)
    assert np.ptp(got[:, :, 0]) > 2 * edge  # the centres did leave the box
    sq, origins = msd_sums(got, lags)
    np.testing.assert_array_equal(msd.origins, origins)
    np.testing.assert_allclose(msd.sq_sum[1:], sq[1:], rtol=1e-12, atol=0)


def test_residence_overlaps_equal_set_intersections() -> None:
    rng = np.random.default_rng(6)
    n_pairs, lags = 50, lag_grid(20)
    frames = [np.flatnonzero(rng.random(n_pairs) < 0.3) for _ in range(45)]
    corr = ContactCorrelation(n_pairs, lags)
    for lo in range(0, 45, 8):
        corr.add_chunk(frames[lo:lo + 8])
    want = contact_overlaps(frames, lags)
    assert want[1] > 0
    np.testing.assert_array_equal(corr.overlap, want)


def test_oracle_sparse_minimum_image_equals_the_dense_formula() -> None:
    # The oracle corrects only |step| > 0.49 min(edge) (as the unwrap kernel does); that must
    # equal steps - b * rint(steps / b) everywhere, including at 0.49 and 0.5 edges.
    rng = np.random.default_rng(3)
    b = (np.array([2.0, 2.6, 3.1]) * rng.uniform(0.98, 1.02, size=(5, 3))).astype(np.float32)
    b = b[:, None, :]
    steps = (rng.uniform(-0.8, 0.8, size=(5, 400, 3)) * b).astype(np.float32)
    steps[:, :4] = np.array([0.49, -0.5, 0.5]) * b  # near and at the rounding threshold
    steps[:, 4] = 0.0
    dense = steps - b * np.rint(steps / b)
    fixed = steps.copy()
    _minimum_image_steps(fixed, b)
    assert np.any(dense != steps)  # crossings present
    np.testing.assert_array_equal(fixed, dense)


@pytest.mark.parametrize(("n_nodes", "n_edges"), [(1, 0), (30, 0), (200, 120), (500, 900)])
def test_connected_components_equal_scipy(n_nodes: int, n_edges: int) -> None:
    # Random graphs from no edges (every node alone) to one giant component, with repeated
    # edges and self-loops: the same labels (numbered by smallest node) as scipy's.
    rng = np.random.default_rng(n_nodes + n_edges)
    a = rng.integers(0, n_nodes, n_edges).astype(np.int64)
    b = rng.integers(0, n_nodes, n_edges).astype(np.int64)
    want = scipy_components(n_nodes, a, b)
    np.testing.assert_array_equal(kernels.components_kernel(n_nodes, a, b), want)


def test_chunk_cluster_sizes_equal_scipy_components() -> None:
    rng = np.random.default_rng(12)
    n_cat, n_an, n_frames = 15, 12, 4
    cat = rng.integers(0, n_frames * n_cat, 40)
    an = (cat // n_cat) * n_an + rng.integers(0, n_an, 40)  # contacts within a frame
    sizes, frame = chunk_cluster_sizes(cat, an, n_cat, n_an, n_frames)
    labels = scipy_components(n_frames * (n_cat + n_an), cat, n_frames * n_cat + an)
    np.testing.assert_array_equal(sizes, np.bincount(labels))
    assert np.bincount(frame, weights=sizes).tolist() == [n_cat + n_an] * n_frames


@pytest.mark.parametrize("sigma_bins", [0.4, 2.0, 3.7])
def test_rdf_smoothing_and_extrema_equal_scipy(sigma_bins: float) -> None:
    # rdf.py's numpy smoothing / extrema against scipy's gaussian_filter1d(mode="nearest") and
    # argrelextrema (the functions they replace), on a noisy RDF-like curve with plateaus.
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import argrelextrema

    from solvflow.analysis.rdf import gaussian_smooth, strict_extrema

    rng = np.random.default_rng(13)
    r = np.arange(200) * 0.005 + 0.0025
    g = 6 * np.exp(-((r - 0.2) / 0.02) ** 2) + 1 - np.exp(-r / 0.3) + rng.normal(0, 0.2, r.size)
    g[:30] = 0.0  # flat start, as an RDF below contact distance
    smooth = gaussian_smooth(g, sigma_bins)
    np.testing.assert_allclose(smooth, gaussian_filter1d(g, sigma_bins, mode="nearest"),
                               rtol=1e-12, atol=1e-12)
    for compare in (np.greater, np.less):
        want = argrelextrema(smooth, compare)[0]
        assert want.size > 0
        assert strict_extrema(smooth, compare).tolist() == want.tolist()


def test_missing_numba_is_a_one_line_error_naming_the_fix() -> None:
    # numba is required (no slow fallback): hide it from a fresh process and run the CLI.
    import os
    import subprocess
    import sys

    code = (
        "import sys, importlib.abc\n"
        "class NoNumba(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'numba' or name.startswith('numba.'):\n"
        "            raise ImportError('No module named numba (hidden by the test)')\n"
        "sys.meta_path.insert(0, NoNumba())\n"
        "from solvflow.cli import main\n"
        f"sys.exit(main(['analyze', {str(REAL_MD)!r}, '--dt-ps', '0.4', '--no-plots',\n"
        "                '-o', sys.argv[1]]))\n")
    out = Path(__file__).parent / "does-not-get-written.json"
    proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True,
                          text=True, env=dict(os.environ), timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert "need numba" in proc.stderr and "pip install 'numba>=0.68'" in proc.stderr
    assert not out.exists()
