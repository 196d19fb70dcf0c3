"""Composition maths on hand-worked cases.

Hand values: molar masses from standard atomic weights (C 12.011, H 1.008,
O 15.999, N 14.007); densities and ion molar volume estimates from
systems/_species.yaml (DME 0.867 g/cm^3, DMAc 0.937 g/cm^3, Li+ 5, FSI- 95,
Mg2+ 2, TFSI- 140 cm^3/mol).
"""

from __future__ import annotations

import math

import pytest

from solvflow.composition import compose, speciation
from solvflow.errors import CompositionError
from solvflow.spec import load_system

M_DME = 4 * 12.011 + 10 * 1.008 + 2 * 15.999  # C4H10O2 = 90.122 g/mol
M_DMAC = 4 * 12.011 + 9 * 1.008 + 14.007 + 15.999  # C4H9NO = 87.122 g/mol


@pytest.fixture(scope="module")
def lifsi():
    return load_system("lifsi_dme")


def test_molarity_hand_worked(lifsi):
    # 10 LiFSI at 1 M: 10 * 1000 cm^3 = 10000 cm^3 per mole of boxes; ions take
    # 10 * (5 + 95) = 1000; DME: 9000 / (90.122 / 0.867 = 103.947) = 86.58 -> 87.
    comp = compose(lifsi, concentration=1.0, n_salt=10)
    assert comp.counts == {"Li": 10, "FSI": 10, "DME": 87}
    volume = 87 * M_DME / 0.867 + 1000.0  # cm^3 per mole of boxes
    assert comp.achieved["molarity_M"] == pytest.approx(10 * 1000.0 / volume, rel=1e-5)
    assert comp.volume_nm3 == pytest.approx(volume / 6.02214076e23 * 1e21, rel=1e-9)
    assert comp.box_nm == pytest.approx(comp.volume_nm3 ** (1 / 3), rel=1e-12)
    assert comp.n_atoms == 10 * 1 + 10 * 9 + 87 * 16


def test_molality_is_exact_up_to_rounding(lifsi):
    # 10 / (1.0 mol/kg * 0.090122 kg/mol) = 110.96 -> 111 DME.
    comp = compose(lifsi, molality=1.0, n_salt=10)
    assert comp.counts["DME"] == 111
    assert comp.achieved["molality_mol_kg"] == pytest.approx(10 / (111 * M_DME / 1000), rel=1e-4)
    assert comp.nominal == {"molality_mol_kg": 1.0, "x_DME": 1.0}


def test_salt_solvent_ratio(lifsi):
    comp = compose(lifsi, ratio=0.25, n_salt=10)
    assert comp.counts == {"Li": 10, "FSI": 10, "DME": 40}
    assert comp.achieved["salt_solvent_ratio"] == 0.25


def test_divalent_salt_counts():
    # 4 Mg(TFSI)2 at 0.5 M: 8000 cm^3; ions 4 * 2 + 8 * 140 = 1128;
    # DMAc: 6872 / (87.122 / 0.937 = 92.98) = 73.9 -> 74.
    comp = compose(load_system("mg_tfsi2_dmac"), concentration=0.5, n_salt=4)
    assert comp.counts == {"Mg": 4, "TFSI": 8, "DMAc": 74}
    assert round((8000 - 1128) / (M_DMAC / 0.937)) == 74


@pytest.mark.parametrize(
    ("r", "expected"),
    [
        (1.0, {"EMIm": 10, "AlCl4": 10}),
        (1.3, {"EMIm": 10, "AlCl4": 7, "Al2Cl7": 3}),
        (1.5, {"EMIm": 10, "AlCl4": 5, "Al2Cl7": 5}),
        (2.0, {"EMIm": 10, "Al2Cl7": 10}),
        (0.5, {"EMIm": 10, "Cl": 5, "AlCl4": 5}),
    ],
)
def test_chloroaluminate_speciation_counts(r, expected):
    comp = compose(load_system("alcl3_emimcl"), ratio=r, n_salt=10)
    assert comp.counts == expected
    n_al = expected.get("AlCl4", 0) + 2 * expected.get("Al2Cl7", 0)
    assert comp.achieved["r"] == pytest.approx(n_al / 10)
    assert comp.achieved["x_AlCl3"] == pytest.approx(r / (1 + r), abs=1e-6)


@pytest.mark.parametrize(
    ("r", "chloride", "monomer", "dimer"),
    [(1.0, 0.0, 1.0, 0.0), (1.3, 0.0, 0.7, 0.3), (1.5, 0.0, 0.5, 0.5), (2.0, 0.0, 0.0, 1.0),
     (0.4, 0.6, 0.4, 0.0)],
)
def test_speciation_function(r, chloride, monomer, dimer):
    got = speciation(r)
    assert got == pytest.approx({"chloride": chloride, "monomer": monomer, "dimer": dimer})


def test_rounding_reports_nominal_and_achieved():
    # 7 cations at r = 1.3: 0.3 * 7 = 2.1 -> 2 Al2Cl7-, 5 AlCl4-; r achieved = 9/7.
    comp = compose(load_system("alcl3_emimcl"), ratio=1.3, n_salt=7)
    assert comp.counts == {"EMIm": 7, "AlCl4": 5, "Al2Cl7": 2}
    assert comp.nominal["r"] == 1.3
    assert comp.achieved["r"] == pytest.approx(9 / 7, abs=1e-6)


def test_default_n_salt_targets_about_5000_atoms(lifsi):
    comp = compose(lifsi, concentration=2.0)
    assert 4500 < comp.n_atoms < 5500


@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf, 1e6])
def test_bad_concentrations(lifsi, value):
    with pytest.raises(CompositionError, match="concentration"):
        compose(lifsi, concentration=value, n_salt=10)


def test_concentration_leaving_no_room_for_solvent(lifsi):
    # Ions take 100 cm^3/mol, so above ~10 M nothing is left for DME.
    with pytest.raises(CompositionError, match="no room for solvent"):
        compose(lifsi, concentration=12.0, n_salt=10)


def test_chloroaluminate_rejects_molarity_and_bad_ratio():
    spec = load_system("alcl3_emimcl")
    with pytest.raises(CompositionError, match="chloroaluminate melt"):
        compose(spec, concentration=1.0)
    with pytest.raises(CompositionError, match=r"\[0, 2\]"):
        compose(spec, ratio=2.5)


def test_two_measures_at_once_is_an_error(lifsi):
    with pytest.raises(CompositionError, match="only one"):
        compose(lifsi, concentration=1.0, molality=1.0)


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_bad_n_salt(lifsi, n):
    with pytest.raises(CompositionError, match="n_salt"):
        compose(lifsi, concentration=1.0, n_salt=n)


def test_neat_liquid_counts_molecules():
    comp = compose(load_system("dme"), n_salt=300)
    assert comp.counts == {"DME": 300}
    # 300 * 90.122 / 0.867 cm^3 per mole of boxes; density is the input density.
    assert comp.estimated_density_g_cm3 == pytest.approx(0.867, rel=1e-3)
    with pytest.raises(CompositionError, match="neat liquid"):
        compose(load_system("dme"), concentration=1.0)


def test_solvent_mixture_rounds_by_largest_remainder():
    from solvflow.spec import parse_system

    raw = {"name": "mix", "kind": "salt_solution", "salt": {"Li": 1, "FSI": 1},
           "solvent": {"DME": 0.9, "DMAc": 0.1}, "species": ["Li", "FSI", "DME", "DMAc"]}
    spec = parse_system(raw, where="mix")
    # 10 salt units -> 20 solvent: exactly 18 DME and 2 DMAc.
    comp = compose(spec, ratio=0.5, n_salt=10)
    assert comp.counts == {"Li": 10, "FSI": 10, "DME": 18, "DMAc": 2}
    assert comp.achieved["salt_solvent_ratio"] == 0.5
    # 7 salt units -> 14 solvent: 12.6 DME and 1.4 DMAc -> 13 and 1 (largest remainder).
    comp = compose(spec, ratio=0.5, n_salt=7)
    assert comp.counts == {"Li": 7, "FSI": 7, "DME": 13, "DMAc": 1}
    assert comp.nominal["x_DMAc"] == 0.1
    assert comp.achieved["x_DME"] == pytest.approx(13 / 14, abs=1e-6)
    assert comp.achieved["x_DMAc"] == pytest.approx(1 / 14, abs=1e-6)


def test_a_cosolvent_that_rounds_to_zero_is_an_error_naming_the_smallest_box():
    from solvflow.spec import parse_system

    raw = {"name": "mix", "kind": "salt_solution", "salt": {"Li": 1, "FSI": 1},
           "solvent": {"DME": 0.9, "DMAc": 0.1}, "species": ["Li", "FSI", "DME", "DMAc"]}
    spec = parse_system(raw, where="mix")
    # Hand-worked at ratio 1:2 (2 n solvent molecules): n = 1 -> 1.8/0.2 -> 2/0;
    # n = 2 -> 3.6/0.4 -> 4/0; n = 3 -> 5.4/0.6 -> 5/1 (largest remainder): n_salt 3.
    with pytest.raises(CompositionError, match=r"DMAc rounds to 0 .* 3 salt units") as err:
        compose(spec, ratio=0.5, n_salt=2)
    smallest = compose(spec, ratio=0.5, n_salt=3)
    assert f"{smallest.n_atoms:,} atoms" in str(err.value)
    assert f"box {smallest.box_nm:.2f} nm" in str(err.value)
    assert "--n-salt 3" in str(err.value)


def test_a_chloroaluminate_species_that_rounds_to_zero_is_an_error():
    # r = 1.04 with 10 cations: 0.4 Al2Cl7- rounds to 0 (r = 1.0 has none by design);
    # 13 cations give round(0.52) = 1, the first count that includes it.
    spec = load_system("alcl3_emimcl")
    with pytest.raises(CompositionError, match=r"Al2Cl7 rounds to 0 .*--n-salt 13 "):
        compose(spec, ratio=1.04, n_salt=10)
    assert compose(spec, ratio=1.04, n_salt=13).counts["Al2Cl7"] == 1
    assert "Al2Cl7" not in compose(spec, ratio=1.0, n_salt=10).counts


def test_salt_solution_reports_solvent_mole_fractions(lifsi):
    comp = compose(lifsi, concentration=1.0, n_salt=10)
    assert comp.nominal["x_DME"] == 1.0 and comp.achieved["x_DME"] == 1.0
