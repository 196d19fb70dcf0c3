"""Analysis of a short real MD trajectory (tests/data/lifsi_dme_1M_md, see its README).

Regression values: computed with `solvflow analyze` (solvflow 0.1.0, commit 71e8c81,
2026-11-25) on this very file with dt_ps=0.4 and cutoffs from the RDF first minima;
the coordination numbers and paired fractions are also checked against
solvation-analysis below, so they are not merely self-consistent.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from solvflow.analysis import analyze

DATA = Path(__file__).parent / "data" / "lifsi_dme_1M_md"
DT_PS = 0.4


@pytest.fixture(scope="module")
def result() -> dict:
    return analyze(DATA, dt_ps=DT_PS).to_dict()


def test_regression_values(result):
    assert result["n_frames"] == 50
    assert result["cutoffs_nm"] == pytest.approx({"FSI": 0.3175, "DME": 0.3775}, abs=1e-9)
    assert result["coordination_numbers"] == pytest.approx(
        {"FSI": 0.99333333333, "DME": 2.17833333333}, abs=1e-9)
    assert result["coordination_numbers_atoms"] == pytest.approx(
        {"FSI": 1.51, "DME": 4.24666666667}, abs=1e-9)
    assert result["ion_pairing"] == pytest.approx(
        {"SSIP": 0.25166666667, "CIP": 0.33666666667, "AGG": 0.41166666667}, abs=1e-9)
    assert result["anion_states"] == pytest.approx(
        {"free": 0.25333333333, "CIP": 0.5, "AGG": 0.24666666667}, abs=1e-9)
    top = result["shells"][0]
    assert top["composition"] == {"FSI": 1, "DME": 2}
    assert top["fraction"] == pytest.approx(0.425, abs=1e-9)


def test_fractions_are_complete_and_errors_present(result):
    assert sum(result["ion_pairing"].values()) == pytest.approx(1.0, abs=1e-12)
    assert sum(result["anion_states"].values()) == pytest.approx(1.0, abs=1e-12)
    for key in ("ion_pairing", "anion_states", "coordination_numbers"):
        assert set(result["stderr"][key]) == set(result[key])
    # Real structure: every Li has DME in its shell; the DME oxygens chelate (about 2 O per DME).
    assert result["paired_fractions"]["DME"] == 1.0
    ratio = result["coordination_numbers_atoms"]["DME"] / result["coordination_numbers"]["DME"]
    assert 1.8 < ratio <= 2.0
    assert result["provenance"]["charge_scale"] == 0.8


def test_matches_solvation_analysis_on_real_md(result, tmp_path):
    pytest.importorskip("solvation_analysis")
    import MDAnalysis as mda
    from solvation_analysis.solute import Solute

    selections = {"FSI": "resname FSI and (element O or element N)",
                  "DME": "resname DME and element O"}
    cutoffs = result["cutoffs_nm"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shutil.copytree(DATA, tmp_path / "d")
        u = mda.Universe(str(tmp_path / "d" / "topology.pdb"), str(tmp_path / "d" / "traj.dcd"))
        solute = Solute.from_atoms(
            u.select_atoms("resname LI"),
            {name: u.select_atoms(sel) for name, sel in selections.items()},
            solute_name="Li", radii={name: 10.0 * cutoffs[name] for name in selections},
            skip_rdf=True, analysis_classes=["coordination", "pairing"])
        solute.run()
    assert solute.n_frames == result["n_frames"]
    for name in selections:
        assert result["coordination_numbers"][name] == pytest.approx(
            solute.coordination.coordination_numbers[name], abs=1e-6)
        assert result["paired_fractions"][name] == pytest.approx(
            solute.pairing.solvent_pairing[name], abs=1e-6)


def test_errors_have_the_value_keys_and_flag_the_short_run(result):
    # 20 ps of a 1 M electrolyte: no shell exchanges within the run (the contact correlations
    # stay above 1/e), so every shell quantity is one independent sample, and says so.
    assert result["timestep_source"] == "dt_ps"
    for key in ("coordination_numbers", "ion_pairing", "anion_states", "paired_fractions"):
        for err_key in ("stderr", "effective_samples", "correlation_time_ps"):
            assert set(result[err_key][key]) == set(result[key]), (err_key, key)
    assert len(result["stderr"]["shells"]) == len(result["shells"])
    assert result["residence_times_ps"] == {"FSI": None, "DME": None}
    assert result["inefficiency_floor_frames"] == pytest.approx(1 + 2 * 25)  # longest lag 25
    assert "coordination_numbers.DME" in result["few_samples"]
    assert "shells.0" in result["few_samples"]
    assert all(n <= 1.0 for n in result["effective_samples"]["ion_pairing"].values())
