"""Time step, conductivity, continuous residence and the NPT RDF range.

* Time step: DCD headers written by OpenMM (trusted) and by MDTraj (NSAVC=1,
  DELTA=1 AKMA: unknown), XTC frame times; the shipped MDTraj-written DCD
  without dt_ps gives no residence time, diffusion or conductivity.
* Einstein-Helfand vs Nernst-Einstein on independent random walks: with no
  ion-ion correlation the collective and the self terms agree in expectation.
* Self-diffusion MSD against MDAnalysis' EinsteinMSD on the real trajectory.
* Continuous residence: against a brute-force count on random contacts.
* RDF: a shrinking box narrows the range instead of failing.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import mdtraj as md
import numpy as np
import pytest

from solvflow.analysis import analyze
from solvflow.analysis.conductivity import (
    conductivity,
    conductivity_prefactor,
    einstein_helfand_slope,
)
from solvflow.analysis.rdf import RDFAccumulator
from solvflow.analysis.residence import ContinuousContacts
from solvflow.analysis.trajectory import FrameRange, resolve_time_step
from solvflow.analysis.transport import MSDAccumulator, fit_diffusion
from solvflow.dcd import read_dcd_header
from solvflow.errors import AnalysisInputError

DATA = Path(__file__).parent / "data" / "lifsi_dme_1M_md"


@pytest.fixture(scope="module")
def real() -> md.Trajectory:
    return md.load(str(DATA / "traj.dcd"), top=str(DATA / "topology.pdb"))


def _frames(n: int, step: int = 1) -> FrameRange:
    return FrameRange(0, n, step, n)


def test_time_step_from_openmm_mdtraj_and_xtc(real: md.Trajectory, tmp_path: Path) -> None:
    from openmm import unit
    from openmm.app import DCDFile

    # OpenMM (as solvflow's reporter writes it): 2 fs steps, a frame every 500 steps = 1 ps.
    with open(tmp_path / "omm.dcd", "wb") as fh:
        dcd = DCDFile(fh, real.topology.to_openmm(), 0.002 * unit.picoseconds, 0, 500)
        for k in range(3):
            dcd.writeModel(real.xyz[k] * unit.nanometer,
                           periodicBoxVectors=real.unitcell_vectors[k] * unit.nanometer)
    step = resolve_time_step(tmp_path / "omm.dcd", real.topology, _frames(3, 2))
    assert (step.source, step.dt_ps) == ("dcd_header", pytest.approx(2.0, rel=1e-6))
    # MDTraj's writer: NSAVC 1, DELTA 1.0 AKMA (a placeholder) -> unknown.
    real[:3].save_dcd(str(tmp_path / "mdtraj.dcd"))
    header = read_dcd_header(tmp_path / "mdtraj.dcd")
    assert (header.interval, header.delta_akma, header.has_time_step) == (1, 1.0, False)
    step = resolve_time_step(tmp_path / "mdtraj.dcd", real.topology, _frames(3))
    assert step.dt_ps is None and "NSAVC=1" in step.reason
    assert resolve_time_step(tmp_path / "mdtraj.dcd", real.topology, _frames(3), 0.4).dt_ps == 0.4
    with pytest.raises(AnalysisInputError, match="positive"):
        resolve_time_step(tmp_path / "mdtraj.dcd", real.topology, _frames(3), -1.0)
    # XTC: real frame times are used; constant ones mean unknown.
    part = real[:4]
    part.time = 0.4 * np.arange(4)
    part.save_xtc(str(tmp_path / "t.xtc"))
    assert resolve_time_step(tmp_path / "t.xtc", real.topology, _frames(4)).dt_ps == \
        pytest.approx(0.4, abs=1e-6)
    part.time = np.zeros(4)
    part.save_xtc(str(tmp_path / "flat.xtc"))
    assert resolve_time_step(tmp_path / "flat.xtc", real.topology, _frames(4)).dt_ps is None


def test_shipped_dcd_without_dt_has_no_time_quantities() -> None:
    out = analyze(DATA, rdf_frames=50).to_dict()
    assert out["timestep_ps"] is None and out["timestep_source"] == "unknown"
    for key in ("residence_times_ps", "residence_times_continuous_ps", "diffusion",
                "conductivity"):
        assert key not in out, key
    assert "--dt-ps" in out["note"] and "NSAVC=1" in out["note"]
    assert out["correlation_time_ps"]["coordination_numbers"] == {"FSI": None, "DME": None}
    with pytest.raises(AnalysisInputError, match="--dt-ps"):
        analyze(DATA, rdf_frames=50, diffusion=True)
    with pytest.raises(AnalysisInputError, match="--dt-ps"):
        analyze(DATA, rdf_frames=50, residence=True)


def test_einstein_helfand_equals_nernst_einstein_for_independent_walks() -> None:
    # 60 cations (+1) and 60 anions (-1) with independent Gaussian steps (sigma 0.02 nm per
    # axis per 1 ps frame): exact D = sigma^2 / 2 = 2e-4 nm^2/ps for every ion, so
    # sigma_EH = sigma_NE = prefactor * 120 * D in expectation. 4 seeded runs of 4000 frames.
    sigma, n_frames, n_ions, dt = 0.02, 4000, 120, 1.0
    z = np.r_[np.ones(60), -np.ones(60)]
    pre = conductivity_prefactor(27.0, 300.0)
    exact = pre * n_ions * sigma**2 / 2
    eh, ne = [], []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        r = np.cumsum(rng.normal(scale=sigma, size=(n_frames, n_ions, 3)), axis=0)
        slope, _ = einstein_helfand_slope(r.transpose(0, 2, 1) @ z, 20, dt)
        eh.append(pre * slope)
        msd = MSDAccumulator(n_ions, np.arange(21))
        msd.add_chunk(r)
        d = fit_diffusion(np.arange(21) * dt, msd.msd(), (4.0, 20.0))
        ne.append(pre * n_ions * d)
    assert np.mean(ne) == pytest.approx(exact, rel=0.03)
    assert np.mean(eh) == pytest.approx(exact, rel=0.15)
    assert np.mean(eh) == pytest.approx(np.mean(ne), rel=0.15)


def test_conductivity_labels_and_charge_scale() -> None:
    rng = np.random.default_rng(3)
    dipole = np.cumsum(rng.normal(scale=0.1, size=(400, 3)), axis=0)
    out = conductivity(dipole=dipole, diffusion={"Li": 1e-4, "FSI": 2e-4},
                       block_diffusion={"Li": [1e-4] * 5, "FSI": [1.5e-4, 2e-4, 2.5e-4, 2e-4,
                                                                  2e-4]},
                       counts={"Li": 10, "FSI": 10}, charges={"Li": 1.0, "FSI": -1.0},
                       charge_scale=0.8, volume_nm3=20.0, temperature_K=298.15, dt_ps=0.5,
                       max_lag=100, n_blocks=5, block_max_lag=40)
    ne = out["nernst_einstein"]
    pre = conductivity_prefactor(20.0, 298.15)
    assert ne["formal_charges_S_m"] == pytest.approx(pre * (10 * 1e-4 + 10 * 2e-4))
    for key in ("nernst_einstein", "einstein_helfand"):
        c = out[key]
        assert c["scaled_charges_S_m"] == pytest.approx(0.64 * c["formal_charges_S_m"])
        assert c["stderr_formal_charges_S_m"] > 0
    assert set(out["labels"]) == {"scaled_charges_S_m", "formal_charges_S_m"}


def test_self_diffusion_msd_matches_mdanalysis_einstein_msd(real: md.Trajectory) -> None:
    pytest.importorskip("MDAnalysis")
    import MDAnalysis as mda
    from MDAnalysis.analysis.msd import EinsteinMSD
    from MDAnalysis.transformations import NoJump

    out = analyze(DATA, dt_ps=0.4, rdf_frames=50).to_dict()
    ours = out["diffusion"]["Li"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = mda.Universe(str(DATA / "topology.pdb"), str(DATA / "traj.dcd"))
        u.trajectory.add_transformations(NoJump())  # Li+ is one atom: its centre of mass
        theirs = EinsteinMSD(u, select="resname LI", msd_type="xyz", fft=False).run()
    lags = np.rint(np.array(ours["lag_ps"]) / 0.4).astype(int)
    mda_nm2 = theirs.results.timeseries[lags] / 100.0  # Angstrom^2 -> nm^2
    assert lags[0] == 0 and ours["msd_nm2"][0] is None  # lag 0 has no displacement
    np.testing.assert_allclose(ours["msd_nm2"][1:], mda_nm2[1:], rtol=1e-4, atol=1e-8)
    window = ours["fit_window_ps"]
    d_mda = fit_diffusion(lags[1:] * 0.4, mda_nm2[1:], (window[0], window[1]))
    assert ours["D_nm2_ps"] == pytest.approx(d_mda, rel=1e-4)
    assert len(ours["block_D_nm2_ps"]) == 5 and ours["stderr_nm2_ps"] > 0
    c = out["conductivity"]
    assert c["charge_scale"] == 0.8 and c["formal_charges"] == {"Li": 1.0, "FSI": -1.0}
    assert c["nernst_einstein"]["formal_charges_S_m"] > 0


def test_continuous_residence_matches_a_brute_force_count() -> None:
    rng = np.random.default_rng(0)
    n, pairs = 40, 6
    on = rng.random((n, pairs)) < 0.6
    lags = np.array([0, 1, 2, 3, 5, 10, 39])
    expected = []
    for lag in lags:  # contacts at t that stayed unbroken to t + lag, over contacts at t
        unbroken = sum(np.all(on[t:t + lag + 1], axis=0).sum() for t in range(n - lag))
        expected.append(unbroken / on[: n - lag].sum())
    for chunks in ([40], [7, 13, 20], [1] * 40):
        cc, t = ContinuousContacts(pairs, n), 0
        for size in chunks:
            f, k = np.nonzero(on[t:t + size])
            cc.add_frames(f.astype(np.int64), k.astype(np.int64), size)
            t += size
        got_lags, c = cc.correlation(lags)
        assert got_lags.tolist() == lags.tolist()
        np.testing.assert_allclose(c, expected)


def test_rdf_range_follows_a_shrinking_box() -> None:
    # NPT-like: the box shrinks from 2.4 to 1.8 nm edges; 1.0 nm range must narrow to below
    # 0.9 nm without failing, and the result must not depend on the frame order.
    rng = np.random.default_rng(4)
    edges = np.linspace(2.4, 1.8, 6)
    boxes = np.repeat(edges[:, None], 3, 1)
    cat = rng.uniform(0, 1, size=(6, 5, 3)) * boxes[:, None, :]
    sites = rng.uniform(0, 1, size=(6, 80, 3)) * boxes[:, None, :]
    partner = np.zeros(80, dtype=np.int64)
    res_c, res_s = np.arange(5), np.arange(5, 85)
    shrinking, reverse = RDFAccumulator(partner, 1), RDFAccumulator(partner, 1)
    for k in range(6):
        shrinking.add_chunk(cat[k:k + 1], sites[k:k + 1], boxes[k:k + 1], res_c, res_s)
    reverse.add_chunk(cat[::-1], sites[::-1], boxes[::-1], res_c, res_s)
    a, b = shrinking.result()[0], reverse.result()[0]
    assert a.r_nm[-1] < 0.9 < 1.0 and a.r_nm.size == b.r_nm.size
    np.testing.assert_allclose(a.g, b.g, rtol=1e-12)
    assert a.n_frames == 6 and a.running_cn[-1] > 0


def test_analysis_of_a_shrinking_npt_box(real: md.Trajectory, tmp_path: Path) -> None:
    # The real frames scaled from 1.0 to 0.7 (box 2.71 -> 1.90 nm): the first frame allows a
    # 1 nm RDF range, the last only < 0.95 nm; the pass must finish with the narrower range.
    scale = np.linspace(1.0, 0.7, real.n_frames)
    shrunk = md.Trajectory(real.xyz * scale[:, None, None], real.topology,
                           unitcell_lengths=real.unitcell_lengths * scale[:, None],
                           unitcell_angles=real.unitcell_angles)
    shrunk.save_dcd(str(tmp_path / "npt.dcd"))
    out = analyze(tmp_path / "npt.dcd", DATA / "topology.pdb", cation="Li=resname LI",
                  anions={"FSI": "resname FSI and (element O or element N)"},
                  cutoffs_nm={"FSI": 0.3}, rdf_frames=50, diffusion=False).to_dict()
    r_max = out["rdf"]["FSI"]["r_nm"][-1]
    assert r_max < 0.5 * float(shrunk.unitcell_lengths.min()) < 1.0
    assert out["rdf"]["FSI"]["n_frames"] == 50


def test_cli_summary_states_errors_time_step_and_conductivity(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from solvflow.cli import main

    out = tmp_path / "a.json"
    base = ["analyze", str(DATA), "--rdf-frames", "50", "--no-plots", "-o", str(out)]
    assert main([*base, "--diffusion"]) == 2  # required, but the header has no time step
    err = capsys.readouterr().err
    assert "--dt-ps" in err and err.count("\n") == 1
    assert main([*base, "--dt-ps", "0.4"]) == 0
    text = capsys.readouterr().out
    assert "step 0.4 ps (--dt-ps)" in text
    assert "n_eff < 10: error bar unreliable" in text and "+-" in text  # D has block errors
    assert "Nernst-Einstein" in text and "Einstein-Helfand" in text
    assert "with scaled charges (s=0.8, as simulated)" in text and "formal charges" in text
    assert main(base) == 0
    assert "step unknown" in capsys.readouterr().out
