"""Exact toy geometries for the analysis core: hand-placed ions at known distances.

Every expected value below is worked out by hand from the coordinates in the
test (no regression numbers).
"""

from __future__ import annotations

import numpy as np
import pytest

from solvflow.analysis.contacts import compute_contacts, orthorhombic_box, shell_molecules
from solvflow.analysis.coordination import ShellCompositions, shell_counts
from solvflow.analysis.pairing import (
    AGG,
    CIP,
    SSIP,
    classify_anions,
    classify_cations,
    cluster_sizes,
)
from solvflow.analysis.rdf import first_minimum
from solvflow.analysis.residence import ContactCorrelation, lag_grid, residence_time
from solvflow.analysis.stats import block_of_frames, block_stderr, mean_and_stderr
from solvflow.analysis.transport import CentreTracker, MSDAccumulator, fit_diffusion
from solvflow.errors import AnalysisInputError

BOX = np.array([3.0, 3.0, 3.0])


def contacts_of(cations, sites, site_mol, cutoff):
    ci, sj = compute_contacts(np.array(cations, float), np.array(sites, float),
                              np.array(site_mol), BOX, cutoff)
    return list(zip(ci.tolist(), sj.tolist(), strict=True))


def test_cip_at_025_and_ssip_at_06_nm():
    # One Li+ at the origin, one FSI- site at 0.25 nm (CIP) or 0.6 nm (SSIP); cutoff 0.3 nm.
    assert contacts_of([[1, 1, 1]], [[1.25, 1, 1]], [0], 0.3) == [(0, 0)]
    assert contacts_of([[1, 1, 1]], [[1.6, 1, 1]], [0], 0.3) == []
    for geometry, expected in (([[1.25, 1, 1]], CIP), ([[1.6, 1, 1]], SSIP)):
        ci, sj = compute_contacts(np.array([[1.0, 1, 1]]), np.array(geometry), np.array([0]),
                                  BOX, 0.3)
        cat, mol = shell_molecules(ci, sj, np.array([0]), 1)
        assert classify_cations(cat, mol, 1, 1).tolist() == [expected]


def test_contacts_across_periodic_boundary():
    # Li at x = 0.05 nm, site at x = 2.85 nm: minimum-image distance 0.20 nm through the wall;
    # a site at 2.70 nm is 0.35 nm away (outside 0.3); corners: (0.02,0.02,0.02) and
    # (2.98,2.98,2.98) are sqrt(3)*0.04 = 0.069 nm apart.
    found = contacts_of([[0.05, 1, 1], [0.02, 0.02, 0.02]],
                        [[2.85, 1, 1], [2.70, 1, 1], [2.98, 2.98, 2.98]], [0, 1, 2], 0.3)
    assert found == [(0, 0), (1, 2)]
    # Unwrapped input (outside the box, negative) gives the same answer.
    found = contacts_of([[3.05, 1, 1], [-2.98, 3.02, 0.02]],
                        [[-0.15, 1, 1], [5.70, 1, 1], [-0.02, 2.98, -0.02]], [0, 1, 2], 0.3)
    assert found == [(0, 0), (1, 2)]


def test_per_site_cutoffs_and_molecule_counts_once():
    # Two O sites of one DME at 0.21 and 0.22 nm, one FSI O at 0.28 nm; cutoffs DME 0.25, FSI 0.27.
    cation = np.array([[1.5, 1.5, 1.5]])
    sites = np.array([[1.71, 1.5, 1.5], [1.5, 1.72, 1.5], [1.5, 1.5, 1.78]])
    site_mol = np.array([0, 0, 1])
    site_partner = np.array([0, 0, 1])
    ci, sj = compute_contacts(cation, sites, site_mol, BOX, np.array([0.25, 0.25, 0.27]))
    assert sj.tolist() == [0, 1]  # FSI at 0.28 > 0.27 is out
    cat, mol = shell_molecules(ci, sj, site_mol, 2)
    assert mol.tolist() == [0]  # the DME counts once
    assert shell_counts(cat, site_partner[mol], 1, 2).tolist() == [[1, 0]]
    assert shell_counts(ci, site_partner[sj], 1, 2).tolist() == [[2, 0]]  # atoms


def test_pairing_states_and_clusters_by_hand():
    # Cations 0..5, anions 0..4. Contacts (cation, anion):
    #   cation 0: none                     -> SSIP
    #   cation 1: anion 0 (only cation 1)  -> CIP
    #   cation 2: anions 1, 2              -> AGG (two anions)
    #   cation 3: anion 3, shared with 4   -> AGG
    #   cation 4: anion 3                  -> AGG
    #   cation 5: anion 2 (also cation 2)  -> AGG
    # Anion 4 touches nobody (free); anion 0, 1 one cation (CIP); anions 2, 3 two (AGG).
    cat = np.array([1, 2, 2, 3, 4, 5])
    an = np.array([0, 1, 2, 3, 3, 2])
    assert classify_cations(cat, an, 6, 5).tolist() == [SSIP, CIP, AGG, AGG, AGG, AGG]
    assert classify_anions(cat, an, 5).tolist() == [1, 1, 2, 2, 0]  # 0 free, 1 CIP, 2 AGG
    # Components: {c0}, {c1,a0}, {c2,a1,a2,c5}, {c3,c4,a3}, {a4}
    assert sorted(cluster_sizes(cat, an, 6, 5).tolist()) == [1, 1, 2, 3, 4]


def test_geometry_to_states_with_shared_anion_across_boundary():
    # Two Li+ on either side of the x wall share one anion site at x = 0 (0.2 nm from each):
    # both AGG, the anion AGG, one cluster of 3. A third Li far away with its own anion: CIP.
    cations = np.array([[2.8, 1, 1], [0.2, 1, 1], [1.5, 2.0, 2.0]])
    sites = np.array([[0.0, 1, 1], [1.5, 2.25, 2.0]])
    ci, sj = compute_contacts(cations, sites, np.array([0, 1]), BOX, 0.3)
    cat, mol = shell_molecules(ci, sj, np.array([0, 1]), 2)
    assert classify_cations(cat, mol, 3, 2).tolist() == [AGG, AGG, CIP]
    assert classify_anions(cat, mol, 2).tolist() == [2, 1]
    assert sorted(cluster_sizes(cat, mol, 3, 2).tolist()) == [2, 3]


def test_shell_compositions_fractions():
    comp = ShellCompositions(["DME", "FSI"], n_blocks=1)
    comp.add(np.array([[2, 1], [2, 1], [3, 0], [2, 1]]), 0)
    shells, errors = comp.top(5)
    assert shells[0] == {"composition": {"DME": 2, "FSI": 1}, "fraction": 0.75}
    assert shells[1] == {"composition": {"DME": 3}, "fraction": 0.25}
    # one time bin: one sample, so the error bar is flagged as unreliable
    assert [(e.n_eff, e.few_samples) for e in errors] == [(1.0, True), (1.0, True)]


def test_triclinic_and_empty_boxes_are_rejected():
    tric = np.array([[3.0, 0, 0], [1.0, 3.0, 0], [0, 0, 3.0]])
    with pytest.raises(AnalysisInputError, match="triclinic"):
        orthorhombic_box(tric)
    with pytest.raises(AnalysisInputError, match="box-nm"):
        orthorhombic_box(np.zeros((3, 3)))
    assert orthorhombic_box(np.diag([3.0, 4.0, 5.0])).tolist() == [3.0, 4.0, 5.0]


def test_cutoff_beyond_half_box_is_rejected():
    with pytest.raises(AnalysisInputError, match="half the shortest box edge"):
        compute_contacts(np.zeros((1, 3)), np.ones((1, 3)), np.array([0]), BOX, 1.6)


def test_block_average_by_hand():
    # 10 frames, 5 blocks of 2: block means 1, 2, 3, 4, 5 -> std(ddof=1) = sqrt(2.5).
    values = np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], 2)[:, None]
    blocks = block_of_frames(10, 5)
    assert blocks.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    mean, err = mean_and_stderr(values, blocks)
    assert mean[0] == pytest.approx(3.0)
    assert err[0] == pytest.approx(np.sqrt(2.5) / np.sqrt(5))
    assert block_stderr([1.0]) is None


def test_contact_correlation_by_hand():
    # One pair (n_pairs = 2, pair 1 never forms): on for frames 0-3, off 4-7, fed in two chunks.
    # p = 4/16 = 0.25; <h h(lag)> over pairs and origins, lag 1: 3 of 7 origins -> 3/14.
    # C(1) = (3/14 - 1/16) / (1/4 - 1/16) = 0.8095...
    corr = ContactCorrelation(2, np.array([0, 1, 2, 4]))
    on, off = np.array([0]), np.zeros(0, dtype=np.int64)
    corr.add_chunk([on, on, on])
    corr.add_chunk([on, off, off, off, off])
    lags, c = corr.correlation()
    p = 0.25
    expected = [(n / (2 * (8 - lag)) - p * p) / (p - p * p)
                for lag, n in zip([0, 1, 2, 4], [4, 3, 2, 0], strict=True)]
    np.testing.assert_allclose(c, expected)
    assert c[0] == pytest.approx(1.0)
    tau = residence_time(lags, c, dt_ps=2.0)
    # C crosses 1/e between lag 2 (0.4286) and lag 4 (-0.333): linear interpolation.
    x = 2 + (expected[2] - 1 / np.e) / (expected[2] - expected[3]) * 2
    assert tau == pytest.approx(2.0 * x)


def test_lag_grid_is_dense_then_log():
    grid = lag_grid(500)
    assert grid[:11].tolist() == list(range(11))
    assert grid[-1] == 500 and np.all(np.diff(grid) > 0)


def test_unwrapping_and_msd_of_a_broken_molecule():
    # A diatomic (masses 1 and 3) whose atoms are wrapped on opposite sides of the wall and whose
    # centre moves +0.4 nm in x per frame for 10 frames across the periodic boundary.
    box = np.array([2.0, 2.0, 2.0])
    n = 10
    centre = np.stack([0.1 + 0.4 * np.arange(n), np.ones(n), np.ones(n)], 1)
    a = centre + [-0.15, 0, 0]  # mass 1 at -0.15, mass 3 at +0.05 -> COM at centre
    b = centre + [0.05, 0, 0]
    xyz = np.mod(np.stack([a, b], 1), box)
    tracker = CentreTracker(np.array([0, 0]), np.array([0, 1]), np.array([1.0, 3.0]))
    msd = MSDAccumulator(1, np.array([0, 1, 2, 5]))
    boxes = np.tile(box, (n, 1))
    for s in (slice(0, 4), slice(4, 10)):  # two chunks
        msd.add_chunk(tracker.add_chunk(xyz[s], boxes[s]))
    curve = msd.msd()
    np.testing.assert_allclose(curve[1:], [0.16, 0.64, 4.0])  # (0.4 * lag)^2
    assert fit_diffusion(np.array([1.0, 2.0, 3.0]), np.array([6.0, 12.0, 18.0]),
                         (0.0, 5.0)) == pytest.approx(1.0)


def test_first_minimum_of_a_model_rdf():
    # Gaussian peak at 0.2 nm on a background of 1, dip to 0.3 at 0.3 nm.
    r = np.arange(0.0025, 1.0, 0.005)
    g = (1 + 4 * np.exp(-((r - 0.2) / 0.02) ** 2) - 0.7 * np.exp(-((r - 0.3) / 0.03) ** 2))
    g[r < 0.15] = 0.0
    assert first_minimum(r, g) == pytest.approx(0.30, abs=0.01)
    assert first_minimum(r, np.ones_like(r)) is None  # ideal gas: no shell


# --- chunked (vectorised over frames) paths against the per-frame reference implementations ---


def test_chunk_contacts_across_the_boundary_by_hand():
    from solvflow.analysis.contacts import chunk_contacts

    # Frame 0: Li at x = 0.05 and a site at x = 2.85 (0.20 nm through the wall: contact);
    # frame 1: the site moved to x = 2.70 (0.35 nm: no contact) and a second Li sits at 2.60.
    cations = np.array([[[0.05, 1, 1], [1.5, 1.5, 1.5]], [[0.05, 1, 1], [2.60, 1, 1]]])
    sites = np.array([[[2.85, 1, 1]], [[2.70, 1, 1]]])
    f, ci, sj = chunk_contacts(cations, sites, np.tile(BOX, (2, 1)), 0.3)
    assert list(zip(f.tolist(), ci.tolist(), sj.tolist(), strict=True)) == [(0, 0, 0), (1, 1, 0)]


def test_chunk_clusters_equal_per_frame_clusters():
    from solvflow.analysis.pairing import chunk_cluster_sizes

    # Two frames of 3 cations and 2 anions; frame 0 contacts as in the boundary test above,
    # frame 1: cation 0 with anions 0 and 1, cation 2 with anion 1 -> one cluster of 4 + {c1}.
    frames = [(np.array([0, 1, 2]), np.array([0, 0, 1])),
              (np.array([0, 0, 2]), np.array([0, 1, 1]))]
    cat = np.concatenate([c + 3 * k for k, (c, _) in enumerate(frames)])
    an = np.concatenate([a + 2 * k for k, (_, a) in enumerate(frames)])
    sizes, frame = chunk_cluster_sizes(cat, an, 3, 2, 2)
    for k, (c, a) in enumerate(frames):
        assert sorted(sizes[frame == k].tolist()) == sorted(cluster_sizes(c, a, 3, 2).tolist())
    assert sorted(sizes[frame == 1].tolist()) == [1, 4]


def test_shell_compositions_chunked_equal_frame_by_frame_including_ties():
    # Random counts (seeded) with many ties; adding a whole chunk must give the same counters in
    # the same insertion order (ties in most_common are broken by it) as adding frame by frame.
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 3, size=(12, 5, 2))
    blocks = np.repeat([0, 1, 2], 4)
    one, many = ShellCompositions(["A", "B"], 3), ShellCompositions(["A", "B"], 3)
    for k in range(12):
        one.add(counts[k], int(blocks[k]))
    many.add_frames(counts[:5], blocks[:5])
    many.add_frames(counts[5:], blocks[5:])
    assert [list(c.items()) for c in one.counts] == [list(c.items()) for c in many.counts]
    assert one.top(20) == many.top(20)
    assert one.samples.tolist() == many.samples.tolist() == [20, 20, 20]


def test_rdf_chunk_equals_frame_by_frame():
    from solvflow.analysis.rdf import RDFAccumulator

    rng = np.random.default_rng(11)
    boxes = np.tile(BOX, (4, 1))
    cations = rng.uniform(0, 3, size=(4, 10, 3))
    sites = rng.uniform(0, 3, size=(4, 200, 3))
    partner = np.repeat([0, 1], 100)
    one, many = RDFAccumulator(partner, 2), RDFAccumulator(partner, 2)
    res_c, res_s = np.arange(10), np.arange(10, 210)
    for k in range(4):
        one.add(cations[k], sites[k], boxes[k], res_c, res_s)
    many.add_chunk(cations, sites, boxes, res_c, res_s)
    assert one.hist.sum() > 0
    for a, b in zip(one.result(), many.result(), strict=True):
        np.testing.assert_array_equal(a.g, b.g)
        np.testing.assert_array_equal(a.running_cn, b.running_cn)


def test_box_edges_from_lengths_equal_the_unit_cell_diagonal():
    import mdtraj as md

    from solvflow.analysis.trajectory import chunk_boxes

    # Right angles: edges taken from the lengths must equal orthorhombic_box(unitcell_vectors)
    # exactly; other angles go through the vectors (and a triclinic box is rejected).
    top = md.Topology()
    top.add_atom("LI", md.element.lithium, top.add_residue("LI", top.add_chain()))
    rng = np.random.default_rng(5)
    lengths = rng.uniform(0.5, 20.0, size=(200, 3)).astype(np.float32)
    traj = md.Trajectory(np.zeros((200, 1, 3), np.float32), top, unitcell_lengths=lengths,
                         unitcell_angles=np.full((200, 3), 90.0, np.float32))
    fast = chunk_boxes(traj, None)
    assert fast.dtype == np.float64
    np.testing.assert_array_equal(fast, orthorhombic_box(traj.unitcell_vectors))
    traj.unitcell_angles = np.full((200, 3), 80.0, np.float32)
    with pytest.raises(AnalysisInputError, match="triclinic"):
        chunk_boxes(traj, None)
