"""`solvflow validate`: check definitions, scoring, pre-assembled shells, a tiny real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from solvflow.errors import InputError, SpecError
from solvflow.spec import ION_PARAMETER_SETS, load_system
from solvflow.validate import (
    Check,
    RunSettings,
    check_settings,
    deviation_pct,
    load_checks,
    parse_checks,
    rank_ion_sets,
    replace_check,
    resolve_checks,
    run_check,
    run_id,
    score,
)

REPO = Path(__file__).resolve().parent.parent


def test_help_lists_checks_and_options():
    out = subprocess.run([sys.executable, "-m", "solvflow.cli", "validate", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for word in ("--ns", "--platform", "--ion-parameters", "--reference", "density:dme",
                 "shell:mg_dmac"):
        assert word in out


def test_shipped_checks_are_complete_and_point_at_shipped_systems():
    checks = load_checks()
    assert {"density:dme", "density:dmac", "density:emim_r1.0", "density:emim_r1.5",
            "density:emim_r2.0", "shell:mg_dmac", "shell:mg_dme", "shell:ca_dme"} <= set(checks)
    for check in checks.values():
        spec = load_system(check.system)
        if check.kind == "shell":
            assert spec.get(check.cation).role == "cation"
            assert check.complex["ligand"] in {sp.name for sp in spec.species}
            assert check.tolerance["peak_nm"] > 0 and check.tolerance["cn"] > 0
        else:
            assert 0 < check.tolerance["relative"] <= 0.05
        assert check.source


def test_unknown_check_names_the_known_ones():
    with pytest.raises(InputError, match="unknown check 'density:dmee'.*did you mean "
                                         "'density:dme'.*known checks: density:dme"):
        resolve_checks(["density:dmee"], load_checks())


def test_new_liquid_in_one_line():
    (check,) = resolve_checks(["density:dme"], {}, reference=0.95, tolerance=0.02)
    assert check.system == "dme" and check.reference["density_g_cm3"] == [0.95, 0.95]
    assert check.tolerance == {"relative": 0.02}
    (by_path,) = resolve_checks(["density:/data/my_liquid.yaml"], {}, reference=1.1)
    assert by_path.name == "density:my_liquid" and by_path.system == "/data/my_liquid.yaml"
    assert run_id(by_path, None, "random", None) == "density-my_liquid"  # one folder, no slashes


@pytest.mark.parametrize("text, message", [
    ("checks: {x: {kind: density, system: dme, reference: {density_g_cm3: 1}, "
     "tolerance: {relative: 0.03}, source: s, colour: red}}", "unknown key 'colour'"),
    ("checks: {x: {kind: viscosity, system: dme}}", "allowed: density, shell"),
    ("checks: {x: {kind: density, system: dme, reference: {density_g_cm3: 1}, "
     "tolerance: {peak_nm: 0.1}, source: s}}", "tolerance must give relative"),
    ("checks: [1, 2]", "top-level 'checks' mapping"),
    ("checks: {x: {kind: density, system: dme, reference: {density_g_cm3: 1}, "
     "tolerance: {relative: 0.03}, source: s, min_equilibration_ns: -1}}",
     r"min_equilibration_ns must be a number in \(0, 100\] ns, got -1"),
])
def test_bad_check_files_are_clear_errors(text, message):
    with pytest.raises(SpecError, match=message):
        parse_checks(text, "my.yaml")


def test_melt_checks_raise_a_short_equilibration_to_their_floor():
    # the melts' Packmol start transient lasts 10-30 ps (docs/validation.md): their checks
    # carry min_equilibration_ns 0.03; the neat solvents have none
    checks = load_checks()
    short = RunSettings(production_ns=0.015, equilibration=0.005)
    for name in ("density:emim_r1.0", "density:emim_r1.5", "density:emim_r2.0"):
        assert check_settings(checks[name], short).equilibration_ns == 0.03
        longer = RunSettings(production_ns=0.1, equilibration=0.05)
        assert check_settings(checks[name], longer) is longer
    assert check_settings(checks["density:dme"], short) is short


def test_unknown_ion_parameters_on_the_command_line():
    proc = subprocess.run([sys.executable, "-m", "solvflow.cli", "validate", "shell:mg_dmac",
                           "--ion-parameters", "charmm", "-o", "/tmp/never-made"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "unknown ion parameter set 'charmm'" in proc.stderr
    assert all(name in proc.stderr for name in ION_PARAMETER_SETS)


def test_deviation_and_score_exact():
    assert deviation_pct(1.0, [0.9, 1.1]) == 0.0
    assert deviation_pct(0.8, [1.0, 1.0]) == pytest.approx(-20.0)
    assert deviation_pct(1.32, [1.1, 1.2]) == pytest.approx(10.0)
    dens = Check("d", "density", "dme", {"density_g_cm3": [1.0, 1.0]}, {"relative": 0.05}, "s")
    assert score(dens, {"density_g_cm3": 0.951})["passed"]
    assert not score(dens, {"density_g_cm3": 0.949})["passed"]
    shell = Check("s", "shell", "mg_tfsi2_dmac", {"peak_nm": [0.205, 0.21], "cn": [6, 6]},
                  {"peak_nm": 0.01, "cn": 0.5}, "s", cation="Mg")
    got = score(shell, {"peak_nm": 0.199, "cn": 6.4})
    assert got["peak_nm_passed"] and got["cn_passed"] and got["peak_nm_deviation"] == -0.006
    got = score(shell, {"peak_nm": 0.194, "cn": 5.4})
    assert not got["peak_nm_passed"] and not got["cn_passed"] and not got["passed"]


def test_rank_ion_sets_by_passes_then_peak_deviation():
    def row(ion_set, peak_ok, cn_ok, dev):
        return {"kind": "shell", "cation": "Mg", "ion_parameters": ion_set,
                "peak_nm_passed": peak_ok, "cn_passed": cn_ok, "peak_nm_deviation": dev}
    results = [row("a", True, True, -0.008), row("b", True, True, 0.002), row("c", False, True, 0),
               row("a", True, False, 0.0), row("b", True, False, 0.0), row("c", True, False, 0.0),
               {"kind": "shell", "cation": "Li", "ion_parameters": "c", "peak_nm_passed": True,
                "cn_passed": True, "peak_nm_deviation": 0.0}]
    ranked = rank_ion_sets(results)
    assert [r["ion_parameters"] for r in ranked] == ["b", "a", "c"]
    assert ranked[0]["passes"] == 3 and ranked[0]["runs"] == 2


def test_polyhedra_have_unit_vertices_and_equal_edges():
    from solvflow.complexes import polyhedron

    for geometry, n, edges in (("octahedron", 6, 12), ("tetrahedron", 4, 6),
                               ("square_antiprism", 8, 16)):
        v = polyhedron(geometry)
        assert v.shape == (n, 3)
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0)
        d = np.linalg.norm(v[:, None] - v[None], axis=2)[np.triu_indices(n, 1)]
        shortest = np.sort(d)[:edges]
        np.testing.assert_allclose(shortest, shortest[0], rtol=1e-9)


@pytest.mark.parametrize("system, ligand, n, geometry, distance", [
    ("mg_tfsi2_dmac", "DMAc", 6, "octahedron", 0.207),
    ("ca_bhfip4_dme", "DME", 4, "square_antiprism", 0.240),
])
def test_complex_puts_every_donor_at_the_distance(system, ligand, n, geometry, distance):
    from solvflow.complexes import complex_coordinates
    from solvflow.species import molecule

    mol = molecule(load_system(system).get(ligand), seed=3)
    ligands = complex_coordinates(mol, n, geometry, distance, seed=3)
    oxygens = [a.GetIdx() for a in mol.GetAtoms() if a.GetSymbol() == "O"]
    donors = np.vstack([xyz[oxygens] for xyz in ligands])
    assert len(donors) == 2 * n if ligand == "DME" else n
    # rigid fit of a real conformer: each O within 0.15 A of the target distance
    np.testing.assert_allclose(np.linalg.norm(donors, axis=1), 10 * distance, atol=0.15)
    heavy = [a.GetIdx() for a in mol.GetAtoms() if a.GetSymbol() != "H"]
    for k, xyz in enumerate(ligands):  # ligand bodies point away: heavy atoms outside the O
        assert np.linalg.norm(xyz[heavy], axis=1).min() >= 10 * distance - 0.2, k
    every = np.vstack(ligands)
    d = np.linalg.norm(every[:, None] - every[None], axis=2)
    owner = np.repeat(np.arange(len(ligands)), mol.GetNumAtoms())
    assert d[owner[:, None] != owner[None]].min() > 1.0  # no two ligands overlap (A)


TINY = """
checks:
  density:tiny_dme:
    kind: density
    system: dme
    n_salt: 20
    cutoff_nm: 0.7
    reference: {density_g_cm3: [0.862, 0.867]}
    tolerance: {relative: 0.03}
    source: "test: tiny box, 1 + 2 ps"
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("validate")
    check = parse_checks(TINY, "tiny")["density:tiny_dme"]
    settings = RunSettings(production_ns=0.002, equilibration=0.001, platform="CPU", seed=7)
    return out, check, settings, run_check(check, out, settings)


def test_tiny_density_run_is_real_and_recorded(tiny_run):
    out, _check, _settings, res = tiny_run
    # 20 DME from Packmol at 0.867 g/cm3, minimised, 2 ps NPT: a liquid, not a blown-up box
    assert 0.6 < res["density_g_cm3"] < 1.1
    assert res["n_atoms"] == 320 and res["platform"] == "CPU" and res["charge_scale"] == 1.0
    assert len(res["density_series_g_cm3"]) == 15  # 1 + 2 ps every 0.2 ps
    saved = json.loads((out / res["run_id"] / "result.json").read_text())
    assert saved["density_g_cm3"] == res["density_g_cm3"]


def test_finished_run_is_not_repeated(tiny_run):
    out, check, settings, res = tiny_run
    system_xml = out / res["run_id"] / "run" / "system.xml"
    before = system_xml.stat().st_mtime_ns
    again = run_check(check, out, settings)
    assert again == res and system_xml.stat().st_mtime_ns == before
    other = replace_check(check, n_salt=21)  # another definition: a new run id is not implied,
    assert run_id(other, None, "random", 0.9) == "density-tiny_dme~q0.9"  # but a new scale is


def test_report_only_writes_tables_and_plots(tiny_run):
    out = tiny_run[0]
    proc = subprocess.run([sys.executable, "-m", "solvflow.cli", "validate", "--report-only",
                           "-o", str(out)], capture_output=True, text=True, check=True)
    assert "density-tiny_dme" in proc.stdout
    table = (out / "results.md").read_text()
    assert "| density-tiny_dme |" in table and ("pass" in table or "miss" in table)
    assert (out / "density_traces.png").stat().st_size > 1000
    summary = json.loads((out / "results.json").read_text())
    assert "density_series_g_cm3" not in summary["results"][0]


def _single(species_name: str, system):
    from openmm.app import Topology

    from solvflow.forcefield import create_system, load_forcefield
    from solvflow.species import add_residue, molecule

    sp = load_system(system).get(species_name)
    top = Topology()
    add_residue(top, top.addChain(), sp, molecule(sp, seed=1))
    return create_system(top, load_forcefield([sp.forcefield]), periodic=False)


def test_emim_is_opls_2009il_with_its_five_impropers():
    import openmm

    system = _single("EMIm", "alcl3_emimcl")
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    charges = [nb.getParticleParameters(i)[0]._value for i in range(nb.getNumParticles())]
    assert sum(charges) == pytest.approx(1.0, abs=1e-9)
    assert sorted(set(round(q, 2) for q in charges)) == [-0.35, -0.24, -0.17, -0.09, 0.08, 0.18,
                                                         0.21, 0.22, 0.27]  # the itp's charges
    torsions = next(f for f in system.getForces() if isinstance(f, openmm.PeriodicTorsionForce))
    impropers = [torsions.getTorsionParameters(k) for k in range(torsions.getNumTorsions())]
    impropers = [t for t in impropers if t[4] == 2 and round(t[6]._value, 4) in (4.184, 4.6025)
                 and abs(t[5]._value - np.pi) < 1e-6]
    assert len(impropers) == 5  # V2 8.368 (2 ring N) and 9.205 kJ/mol (2 CW, 1 CR), halved


@pytest.mark.parametrize("ion_set, sigma, epsilon", [
    ("aqvist", 0.164447, 3.66118), ("li_merz_hfe", 0.2287828, 0.0165545),
    ("li_merz_iod", 0.2485607, 0.0624127)])  # ions*.xml <Info>: foyer opls_411; Li-Merz 2013
def test_ion_sets_carry_the_published_mg_values(ion_set, sigma, epsilon):
    import openmm

    from solvflow.spec import with_ion_parameters

    system = _single("Mg", with_ion_parameters(load_system("mg_tfsi2_dmac"), ion_set))
    lj = next(f for f in system.getForces() if isinstance(f, openmm.CustomNonbondedForce))
    a, b = lj.getParticleParameters(0)  # geometric mixing: a = 2 sqrt(eps) s^6, b = 2 sqrt(eps) s^3
    assert a / b == pytest.approx(sigma**3, rel=1e-6)
    assert b == pytest.approx(2 * np.sqrt(epsilon) * sigma**3, rel=1e-6)


def test_complex_start_run_directory(tmp_path):
    import mdtraj
    import yaml

    from solvflow.build import system_settings
    from solvflow.complexes import build_complex_rundir
    from solvflow.composition import compose

    spec = load_system("mg_tfsi2_dmac")
    comp = compose(spec, concentration=0.5, n_salt=1)  # 1.49 nm box, 18 DMAc
    cfg = {"ligand": "DMAc", "n_ligands": 6, "geometry": "octahedron", "distance_nm": 0.207}
    rundir = build_complex_rundir(spec, comp, cfg, tmp_path / "run", seed=5,
                                  settings=system_settings(0.8, 0.7))
    written = yaml.safe_load((rundir / "spec.yaml").read_text())
    assert written["start"]["state"] == "complex" and written["start"]["n_ligands"] == 6
    traj = mdtraj.load(str(rundir / "topology.pdb"))
    mg = traj.topology.select("resname MG")
    oxygens = traj.topology.select("resname DMA and element O")
    d = mdtraj.compute_distances(traj, [(m, o) for m in mg for o in oxygens]).reshape(len(mg), -1)
    for row in d:  # six DMAc O at 2.07 A (PDB rounding 0.001 nm), the next O far outside
        close = np.sort(row)[:7]
        np.testing.assert_allclose(close[:6], 0.207, atol=0.003)
        assert close[6] > 0.35
    assert (rundir / "system.xml").is_file()
