"""RESP charges (solvflow.resp): real PySCF HF/6-31G* on small molecules, and the caches.

Literature check: acetic acid at the geometry of the psi4 ``resp`` plug-in's
test ``test_resp_1`` (github.com/cdsgroup/resp, resp/tests/test_resp.py),
whose reference two-stage RESP charges were made with the R.E.D.-III.5 tools
and GAMESS (HF/6-31G*, MK grid 1.4-2.0 x radius in 0.2 steps, 1 point/A^2,
a = 0.0005 / 0.001, b = 0.1).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from solvflow import resp
from solvflow.errors import InputError, ParametrizeError
from solvflow.parametrize import resp_esp

ROOT = Path(__file__).resolve().parents[1]

# Atom order of AddHs(MolFromSmiles("CC(=O)O")): C(H3), C, =O, O(H), H, H, H, H(O).
ACETIC_SMILES = "CC(=O)O"
ACETIC_XYZ = np.array([
    [1.45051389, -0.06628932, 0.00000000],   # C methyl
    [-0.04233122, 0.09849378, 0.00000000],   # C carboxyl
    [-0.62675864, 1.13160510, 0.00000000],   # O carbonyl
    [-0.67064817, -1.07620915, 0.00000000],  # O hydroxyl
    [1.75521613, -0.62865986, -0.87500146],  # H methyl
    [1.75521613, -0.62865986, 0.87500146],   # H methyl
    [1.92173244, 0.90485897, 0.00000000],    # H methyl
    [-1.60837259, -0.91016601, 0.00000000],  # H hydroxyl
])
# R.E.D.-III.5/GAMESS charges from that test, reordered to the atom order above.
ACETIC_STAGE1 = np.array([-0.294974, 0.803999, -0.600039, -0.661279,
                          0.107114, 0.107114, 0.084795, 0.453270])
ACETIC_RESP = np.array([-0.290893, 0.803999, -0.600039, -0.661279,
                        0.098314, 0.098314, 0.098314, 0.453270])


@pytest.fixture(scope="module")
def acetic():
    esp = resp.qm_esp(["C", "C", "O", "O", "H", "H", "H", "H"], ACETIC_XYZ, 0)
    return esp, resp.resp_charges(esp, ACETIC_SMILES)


def test_acetic_acid_matches_published_resp(acetic):
    _, fit = acetic
    assert np.abs(fit.stage1 - ACETIC_STAGE1).max() < 0.02
    assert np.abs(fit.charges - ACETIC_RESP).max() < 0.02
    # Stage 2 refits only the methyl group: the other atoms keep their stage-1 charges.
    assert fit.stage2_atoms == [0, 4, 5, 6]
    np.testing.assert_allclose(fit.charges[[1, 2, 3, 7]], fit.stage1[[1, 2, 3, 7]], atol=1e-9)


def test_fit_reproduces_the_qm_esp(acetic):
    esp, fit = acetic
    # Bound: Bayly et al. 1993 report RRMS ~0.1 for RESP fits of small molecules.
    assert fit.rrms < 0.15 and fit.rms_hartree < 0.003
    # The restraint costs fit quality: the unrestrained fit is better, but not by much.
    assert fit.rms_unrestrained_hartree < fit.rms_hartree < 1.5 * fit.rms_unrestrained_hartree
    assert fit.charges.sum() == pytest.approx(0.0, abs=1e-10)
    assert np.ptp(fit.charges[4:7]) < 1e-10  # methyl H equivalent after stage 2
    assert esp.meta["n_points"] == len(esp.esp_hartree) > 300


def _synthetic_esp(q: np.ndarray) -> resp.EspData:
    """ESP (hartree/e) of point charges ``q`` at the acetic-acid atoms, on the MK grid."""
    symbols = ["C", "C", "O", "O", "H", "H", "H", "H"]
    grid = resp.mk_grid(symbols, ACETIC_XYZ)
    r_bohr = np.linalg.norm(grid[:, None] - ACETIC_XYZ[None], axis=2) * resp.BOHR_PER_ANGSTROM
    return resp.EspData(symbols, ACETIC_XYZ, 0, grid, (q[None, :] / r_bohr).sum(1))


def test_unrestrained_fit_recovers_point_charges_exactly():
    # An oracle independent of the QM: the ESP of known point charges at the nuclei.
    q = np.array([-0.3, 0.8, -0.6, -0.65, 0.1, 0.1, 0.1, 0.45])
    fit = resp.fit_resp(_synthetic_esp(q), resp.equivalence_ranks(ACETIC_SMILES), [])
    np.testing.assert_allclose(fit.unrestrained, q, atol=1e-6)
    assert fit.rms_unrestrained_hartree < 1e-8
    # The restraint pulls the heavy atoms toward zero, never away from it.
    assert np.all(np.abs(fit.charges[:4]) <= np.abs(q[:4]) + 1e-9)


def test_mk_grid_points_lie_outside_every_scaled_radius():
    symbols = ["C", "C", "O", "O", "H", "H", "H", "H"]
    grid = resp.mk_grid(symbols, ACETIC_XYZ, layers=(1.4,))
    d = np.linalg.norm(grid[:, None] - ACETIC_XYZ[None], axis=2)
    assert np.all(d >= 1.4 * resp.mk_radii(symbols)[None, :] - 1e-9)
    n = int(4 * np.pi * (1.4 * 1.5) ** 2)  # 1 point per A^2 on the 1.4 x 1.5 A carbon sphere
    sphere = resp.unit_sphere_points(n)
    np.testing.assert_allclose(np.linalg.norm(sphere, axis=1), 1.0)
    assert 0.8 * n <= len(sphere) <= n  # the latitude rings give slightly fewer than asked


def test_rounded_charges_keep_the_total_and_the_classes():
    ranks = resp.equivalence_ranks("Cl[Al-](Cl)(Cl)Cl")
    q = resp.rounded_charges(np.array([-0.46301, 0.85202, -0.46299, -0.46305, -0.46297]),
                             ranks, -1)
    assert q.sum() == pytest.approx(-1.0, abs=1e-12)
    assert len(set(q[[0, 2, 3, 4]])) == 1 and q[0] == -0.463


def test_basis_without_the_element_is_a_clear_error():
    with pytest.raises(InputError, match=r"6-31g\* has no functions for I"):
        resp_esp("CI", "MeI")


def test_charge_not_matching_the_smiles_is_a_clear_error():
    with pytest.raises(InputError, match=r"charge \+0 does not match the SMILES.*-1"):
        resp_esp("C[O-]", "MeO", charge=0)


def test_geometry_optimisation_that_does_not_converge(tmp_path):
    distorted = tmp_path / "water.xyz"
    distorted.write_text("3\nwater, far from its minimum\nO 0 0 0\nH 1.3 0 0\nH -0.2 0.7 0\n")
    with pytest.raises(ParametrizeError, match="did not converge in 1 steps"):
        resp_esp("O", "WAT", structure=distorted, optimise=True, max_opt_steps=1)


def test_structure_in_the_wrong_atom_order_is_refused(tmp_path):
    wrong = tmp_path / "water.xyz"
    wrong.write_text("3\n\nH 0.96 0 0\nO 0 0 0\nH -0.24 0.93 0\n")
    with pytest.raises(InputError, match="differ first at atom 1"):
        resp_esp("O", "WAT", structure=wrong)


# Species whose HF/6-31G* ESP is cached in tools/qm_cache (tools/make_resp_charges.py).
CACHED = ["AlCl4", "Al2Cl7", "BHFIP4"]


@pytest.mark.parametrize("name", CACHED)
def test_cached_esp_gives_symmetric_exact_charges(name):
    from solvflow.spec import species_library

    smiles = species_library()[name]["smiles"]
    esp = resp.load_esp(ROOT / "tools" / "qm_cache" / name)
    fit = resp.resp_charges(esp, smiles)
    assert fit.charges.sum() == pytest.approx(-1.0, abs=1e-10)
    ranks = resp.equivalence_ranks(smiles)
    for rank in np.unique(ranks):
        assert np.ptp(fit.charges[ranks == rank]) < 1e-10
    assert fit.rrms < 0.1  # the fitted ESP is within 10 % (RRMS) of the QM one


def test_al2cl7_bridging_and_terminal_chlorine_differ():
    esp = resp.load_esp(ROOT / "tools" / "qm_cache" / "Al2Cl7")
    fit = resp.resp_charges(esp, "Cl[Al-](Cl)(Cl)[Cl+][Al-](Cl)(Cl)Cl")
    terminal, bridging = fit.charges[0], fit.charges[4]  # Cl1 terminal, Cl4 bridges
    assert abs(bridging - terminal) > 0.02
    np.testing.assert_allclose(fit.charges[[0, 2, 3, 6, 7, 8]], terminal, atol=1e-10)


def test_tools_rerun_from_cache_gives_the_shipped_charges():
    """tools/make_resp_charges.py --check: the XML charges equal the refit to 1e-3 e."""
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "make_resp_charges.py"),
                           "--check", "--species", *CACHED], capture_output=True, text=True,
                          cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("largest difference from the shipped XML") == len(CACHED)
