"""The command line: exit status, messages, no tracebacks for user mistakes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import solvflow
from solvflow.cli import main
from solvflow.resources import data_dir


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_acceptance_build_command(tmp_path, capsys):
    # Issue 2: `solvflow build lifsi_dme --concentration 1.0 --n-salt 10 -o R` gives 10 Li+,
    # 10 FSI- and the DME count 1 M implies (87: see test_composition.py).
    code, out, err = run_cli(["build", "lifsi_dme", "--concentration", "1.0", "--n-salt", "10",
                              "-o", tmp_path / "R"], capsys)
    assert code == 0, err
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["Li"][3] == "10" and rows["FSI"][3] == "10" and rows["DME"][3] == "87"
    assert "molarity_M" in out and "box" in out and "atoms    1492" in out
    assert (tmp_path / "R" / "topology.pdb").is_file()
    assert (tmp_path / "R" / "system.xml").is_file()


def test_box_smaller_than_twice_the_cutoff_is_refused(tmp_path, capsys):
    code, _, err = run_cli(["build", "lifsi_dme", "-r", "1:4", "-n", "3", "-o", tmp_path / "s"],
                           capsys)
    assert code == 2 and "shorter than twice the cutoff" in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "nosuch", "-o", "{tmp}/x"], "unknown system 'nosuch'"),
        (["build", "lifsi_dme", "-c", "0", "-o", "{tmp}/x"], "concentration must be positive"),
        (["build", "lifsi_dme", "-c", "-2", "-o", "{tmp}/x"], "concentration must be positive"),
        (["build", "lifsi_dme", "-c", "500", "-o", "{tmp}/x"], "beyond the allowed maximum"),
        (["build", "lifsi_dme", "-c", "1", "-n", "0", "-o", "{tmp}/x"], "n_salt"),
        (["build", "alcl3_emimcl", "-c", "1", "-o", "{tmp}/x"], "chloroaluminate melt"),
        (["build", "alcl3_emimcl", "-r", "3", "-o", "{tmp}/x"], "must be in [0, 2]"),
        (["build", "lifsi_dme", "--seed", "-1", "-o", "{tmp}/x"], "seed"),
        (["build", "lifsi_dme", "--charge-scale", "2", "-o", "{tmp}/x"], "charge scale"),
        (["build", "{tmp}/missing.yaml", "-o", "{tmp}/x"], "does not exist"),
    ],
)
def test_user_mistakes_exit_2_with_a_message(tmp_path, capsys, args, message):
    args = [a.format(tmp=tmp_path) for a in args]
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_non_empty_output_needs_overwrite(tmp_path, capsys):
    target = tmp_path / "run"
    target.mkdir()
    (target / "notes.txt").write_text("x")
    code, _, err = run_cli(["build", "lifsi_dme", "-n", "2", "-o", target], capsys)
    assert code == 2 and "--overwrite" in err


def test_argparse_rejects_two_measures_and_bad_ratio(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["build", "lifsi_dme", "-c", "1", "-m", "1", "-o", str(tmp_path / "x")])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["build", "lifsi_dme", "-r", "1:0", "-o", str(tmp_path / "x")])
    assert "invalid ratio" in capsys.readouterr().err


def test_ratio_accepts_a_colon(tmp_path, capsys):
    # 3 LiFSI + 12 DME is a 1.37 nm box: only a cutoff below half of it fits.
    code, out, err = run_cli(["build", "lifsi_dme", "-r", "1:4", "-n", "3", "--cutoff-nm", "0.65",
                              "-o", tmp_path / "r"], capsys)
    assert code == 0, err
    assert [line.split()[3] for line in out.splitlines() if line.startswith("DME")] == ["12"]


def test_systems_lists_every_shipped_system(capsys):
    code, out, _ = run_cli(["systems"], capsys)
    assert code == 0
    for name in ("lifsi_dme", "mg_tfsi2_dmac", "mg_tfsi2_dme", "ca_bhfip4_dme", "alcl3_emimcl"):
        assert name in out


def test_module_entry_point_runs_outside_the_source_tree(tmp_path):
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "solvflow", "--version"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"solvflow {solvflow.__version__}"


def test_installed_package_carries_its_data():
    package = Path(solvflow.__file__).parent
    if "site-packages" not in str(package):
        pytest.skip("solvflow runs from a source tree here, not from an installed wheel")
    for kind in ("systems", "forcefields"):
        assert package in data_dir(kind).parents, f"{kind} not shipped inside the wheel"
    assert (data_dir("systems") / "lifsi_dme.yaml").is_file()


HEAVY_MODULES = ("numpy", "scipy", "mdtraj", "numba", "rdkit", "openmm", "dask", "distributed",
                 "matplotlib", "pandas", "MDAnalysis", "pyscf", "pymbar")


def _heavy_modules_after(code: str) -> list[str]:
    """Top-level heavy packages in ``sys.modules`` after running ``code`` in a fresh process."""
    probe = (code + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules} "
             f"& set({HEAVY_MODULES!r}))))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_building_the_parser_imports_no_heavy_module():
    # Every command module is imported by `solvflow --help`: their top level must stay light
    # (stdlib, argparse, solvflow.errors); heavy imports belong inside the command's function.
    loaded = _heavy_modules_after("from solvflow.cli import make_parser\nmake_parser()")
    assert loaded == [], f"`solvflow --help` imports {loaded}: move them into the command"


def test_importing_solvflow_is_lazy_and_every_public_name_resolves():
    assert _heavy_modules_after("import solvflow") == []
    for name in solvflow.__all__:
        assert getattr(solvflow, name) is not None, name
    assert set(solvflow.__all__) <= set(dir(solvflow))
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        _ = solvflow.nosuch


def test_systems_command_imports_no_heavy_module():
    # `solvflow systems` is a listing: YAML only (the species' chemistry is checked by
    # load_system's default and by tests/test_spec.py, not here).
    code = ("import contextlib, io\nfrom solvflow.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['systems']) == 0")
    assert _heavy_modules_after(code) == []


def test_name_value_items_are_parsed_once_with_messages_naming_the_option():
    from solvflow.errors import AnalysisInputError, InputError
    from solvflow.namevalue import parse_numbers, parse_pairs

    assert parse_pairs(["FSI=resname FSI and element O", " Li = resname LI "], "--anion") == [
        ("FSI", "resname FSI and element O"), ("Li", "resname LI")]
    assert parse_numbers(["DME=0.28", "FSI = -1"], "--cutoff") == {"DME": 0.28, "FSI": -1.0}
    for bad in ("DME", "=0.3", "DME=", "DME=abc"):
        with pytest.raises(InputError, match=f"--cutoff must be NAME=NM, got '{bad}'"):
            parse_numbers([bad], "--cutoff", "NAME=NM")
    with pytest.raises(AnalysisInputError):
        parse_pairs(["x"], "--solvent", error=AnalysisInputError)


def test_bad_cutoff_on_the_command_line_is_one_line(capsys):
    rundir = Path(__file__).parent / "data" / "lifsi_dme_1M_md"
    code, _, err = run_cli(["analyze", rundir, "--cutoff", "DME=abc"], capsys)
    assert code == 2 and "--cutoff must be NAME=NM (e.g. DME=0.28), got 'DME=abc'" in err
    assert "Traceback" not in err


def test_run_directory_with_recorded_elements_is_analysed_without_rdkit(tmp_path):
    # build writes each species' elements beside its atom_names; with them the analysis of a
    # run directory imports no RDKit, and gives the same numbers as deriving the elements from
    # the SMILES (the path older run directories, like tests/data's, take).
    import json
    import shutil

    import yaml

    from solvflow.species import element_symbols

    source = Path(__file__).parent / "data" / "lifsi_dme_1M_md"
    rundir = tmp_path / "run"
    shutil.copytree(source, rundir)
    spec = yaml.safe_load((rundir / "spec.yaml").read_text())
    for sp in spec["species"]:
        assert "elements" not in sp  # the shipped run directory predates the key
        sp["elements"] = list(element_symbols(sp["smiles"], sp["name"]))
    (rundir / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    outputs = {}
    for name, folder in (("recorded", rundir), ("smiles", source)):
        out = tmp_path / f"{name}.json"
        code = ("import sys\nfrom solvflow.cli import main\n"
                f"assert main(['analyze', {str(folder)!r}, '--dt-ps', '0.4', '--no-plots', "
                f"'--rdf-frames', '10', '-o', {str(out)!r}]) == 0\n"
                "print('rdkit' in {m.split('.')[0] for m in sys.modules})")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=dict(os.environ), timeout=300)
        assert proc.returncode == 0, proc.stderr
        outputs[name] = (proc.stdout.split()[-1], json.loads(out.read_text()))
    assert outputs["recorded"][0] == "False" and outputs["smiles"][0] == "True"
    recorded, smiles = outputs["recorded"][1], outputs["smiles"][1]
    for key in ("coordination_numbers", "ion_pairing", "anion_states", "shells"):
        assert recorded[key] == smiles[key], key


def test_build_and_simulate_stay_functions_after_their_submodules_are_imported():
    # Importing a submodule sets it on its package; solvflow.build / solvflow.simulate must
    # still be the functions of __all__ (as they were when the API was imported eagerly).
    code = ("import solvflow.build, solvflow.simulate\nimport solvflow\n"
            "print(callable(solvflow.build), callable(solvflow.simulate), "
            "type(solvflow.build).__name__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "function"]
