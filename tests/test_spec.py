"""System files: shipped ones load; every kind of bad input names the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from solvflow.errors import InputError, SpecError, SpeciesError, UnknownSystemError
from solvflow.spec import available_systems, load_system

SHIPPED = [
    "alcl3_emimcl", "ca_bhfip4_dme", "dmac", "dme", "lifsi_dme", "mg_tfsi2_dmac", "mg_tfsi2_dme"
]
ELECTROLYTES = [n for n in SHIPPED if n not in ("dme", "dmac")]


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "system.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {
    "name": "custom",
    "kind": "salt_solution",
    "salt": {"Li": 1, "FSI": 1},
    "solvent": {"DME": 1.0},
    "species": ["Li", "FSI", "DME"],
}


def test_shipped_systems_are_listed_and_load():
    assert available_systems() == SHIPPED
    for name in SHIPPED:
        spec = load_system(name)
        assert spec.provenance["source"] and spec.provenance["reference"]
        assert spec.concentrations_M or spec.ratios or spec.kind == "liquid"
        for sp in spec.species:
            assert sp.forcefield.endswith(".xml")


def test_cations_of_shipped_systems():
    cations = {name: load_system(name).cation.name for name in ELECTROLYTES}
    assert cations == {"alcl3_emimcl": "EMIm", "ca_bhfip4_dme": "Ca", "lifsi_dme": "Li",
                       "mg_tfsi2_dmac": "Mg", "mg_tfsi2_dme": "Mg"}


def test_load_by_path(tmp_path):
    spec = load_system(write(tmp_path, BASE))
    assert [sp.name for sp in spec.species] == ["Li", "FSI", "DME"]


def test_unknown_system_suggests_the_close_name():
    with pytest.raises(UnknownSystemError, match="did you mean 'lifsi_dme'") as info:
        load_system("lifsi_dm")
    assert isinstance(info.value, ValueError)


def test_library_file_is_not_a_system():
    with pytest.raises(UnknownSystemError):
        load_system("_species")


def test_unknown_top_level_key_is_an_error(tmp_path):
    data = BASE | {"concentration_M": [1.0]}
    with pytest.raises(SpecError, match="unknown key 'concentration_M'.*concentrations_M"):
        load_system(write(tmp_path, data))


def test_unknown_species_key_is_an_error(tmp_path):
    custom = {"name": "THF", "smile": "C1CCOC1", "residue": "THF", "charge": 0,
              "role": "solvent", "forcefield": "thf.xml", "density_g_cm3": 0.889}
    data = BASE | {"solvent": {"THF": 1.0}, "species": ["Li", "FSI", custom]}
    with pytest.raises(SpecError, match="unknown key 'smile'"):
        load_system(write(tmp_path, data))


def test_invalid_smiles(tmp_path):
    custom = {"name": "THF", "smiles": "C1CCOC", "residue": "THF", "charge": 0,
              "role": "solvent", "forcefield": "thf.xml", "density_g_cm3": 0.889}
    data = BASE | {"solvent": {"THF": 1.0}, "species": ["Li", "FSI", custom]}
    with pytest.raises(SpeciesError, match="invalid SMILES 'C1CCOC'"):
        load_system(write(tmp_path, data))


def test_declared_charge_must_match_smiles(tmp_path):
    custom = {"name": "X", "smiles": "[Na+]", "residue": "NA", "charge": 2, "role": "cation",
              "forcefield": "ions.xml"}
    data = BASE | {"salt": {"X": 1, "FSI": 1}, "species": [custom, "FSI", "DME"]}
    with pytest.raises(SpeciesError, match=r"declares charge \+2 .* formal charge \+1"):
        load_system(write(tmp_path, data))


def test_salt_must_be_charge_neutral(tmp_path):
    data = BASE | {"salt": {"Li": 1, "FSI": 2}}
    with pytest.raises(SpecError, match="not charge-neutral.*= -1"):
        load_system(write(tmp_path, data))


def test_unknown_species_name(tmp_path):
    data = BASE | {"species": ["Li", "FSl", "DME"]}
    with pytest.raises(SpecError, match="unknown species 'FSl'.*did you mean 'FSI'"):
        load_system(write(tmp_path, data))


def test_species_listed_but_unused(tmp_path):
    data = BASE | {"species": ["Li", "FSI", "DME", "DMAc"]}
    with pytest.raises(SpecError, match="neither in 'salt' nor 'solvent'"):
        load_system(write(tmp_path, data))


def test_solvent_fractions_must_sum_to_one(tmp_path):
    data = BASE | {"solvent": {"DME": 0.5, "DMAc": 0.3}, "species": ["Li", "FSI", "DME", "DMAc"]}
    with pytest.raises(SpecError, match="sum to 0.8"):
        load_system(write(tmp_path, data))


def test_mixed_solvent_is_accepted(tmp_path):
    data = BASE | {"solvent": {"DME": 0.5, "DMAc": 0.5}, "species": ["Li", "FSI", "DME", "DMAc"]}
    assert load_system(write(tmp_path, data)).solvent == {"DME": 0.5, "DMAc": 0.5}


@pytest.mark.parametrize("value", [0, -0.1, 1.5, "high"])
def test_charge_scale_range(tmp_path, value):
    with pytest.raises(SpecError, match="charge_scale"):
        load_system(write(tmp_path, BASE | {"charge_scale": value}))


@pytest.mark.parametrize("bad", [[0.0], [-1.0], ["one"]])
def test_bad_concentration_list(tmp_path, bad):
    with pytest.raises(SpecError, match="concentrations_M"):
        load_system(write(tmp_path, BASE | {"concentrations_M": bad}))


def test_not_yaml_and_not_a_mapping(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_system(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="mapping"):
        load_system(path)


def test_missing_file():
    with pytest.raises(UnknownSystemError, match="does not exist"):
        load_system("no/such/system.yaml")


def test_bad_sites_smarts(tmp_path):
    custom = {"name": "THF", "smiles": "C1CCOC1", "residue": "THF", "charge": 0,
              "role": "solvent", "forcefield": "thf.xml", "density_g_cm3": 0.889,
              "sites": "[N]"}
    data = BASE | {"solvent": {"THF": 1.0}, "species": ["Li", "FSI", custom]}
    with pytest.raises(SpeciesError, match="matches no atom"):
        load_system(write(tmp_path, data))


def test_neat_liquid_has_no_cation():
    spec = load_system("dme")
    assert spec.kind == "liquid" and spec.cation is None and spec.solvent == {"DME": 1.0}


def test_every_error_here_is_an_input_error():
    assert issubclass(SpecError, InputError) and issubclass(SpeciesError, ValueError)


def test_ion_parameters_switch_the_metal_cation_file(tmp_path):
    from solvflow.spec import ION_PARAMETER_SETS

    default = load_system(write(tmp_path, BASE))
    assert default.ion_parameters == "aqvist" and default.get("Li").forcefield == "ions.xml"
    for name, xml in ION_PARAMETER_SETS.items():
        spec = load_system(write(tmp_path, {**BASE, "ion_parameters": name}))
        assert spec.get("Li").forcefield == xml
        assert spec.get("FSI").forcefield == "imides.xml"  # only the ion-set files change
        assert spec.to_dict()["ion_parameters"] == name
        assert (Path(__file__).parent.parent / "forcefields" / xml).is_file()


def test_unknown_ion_parameters_lists_the_sets(tmp_path):
    with pytest.raises(SpecError, match="ion_parameters 'li_merz' is not a known ion set; "
                                        "allowed: aqvist, li_merz_hfe, li_merz_iod"):
        load_system(write(tmp_path, {**BASE, "ion_parameters": "li_merz"}))


def test_with_ion_parameters_on_a_loaded_spec():
    from solvflow.spec import with_ion_parameters

    spec = with_ion_parameters(load_system("mg_tfsi2_dmac"), "li_merz_iod")
    assert spec.get("Mg").forcefield == "ions_li_merz_iod.xml"
    assert spec.get("DMAc").forcefield == "amides.xml"
    with pytest.raises(SpecError, match="allowed: aqvist"):
        with_ion_parameters(spec, "opls")


def test_shipped_mg_ca_systems_use_the_chosen_ion_set():
    # docs/validation.md: li_merz_iod matched the Mg-O/Ca-O references best (12/12 passes)
    for name in ("mg_tfsi2_dmac", "mg_tfsi2_dme", "ca_bhfip4_dme"):
        spec = load_system(name)
        assert spec.ion_parameters == "li_merz_iod"
        assert spec.cation.forcefield == "ions_li_merz_iod.xml"
    assert load_system("lifsi_dme").ion_parameters == "aqvist"
    assert load_system("alcl3_emimcl").charge_scale == 1.0
