"""Protocol files: shipped presets, strict validation, stage plans (no MD here)."""

from __future__ import annotations

import pytest
import yaml

from solvflow.errors import InputError, SpecError
from solvflow.simulation.protocols import (
    STAGE_NAMES,
    available_protocols,
    load_protocol,
    parse_protocol,
)
from solvflow.simulation.stages import plan_stages


def _minimal() -> dict:
    return {"name": "t", "stages": {"npt": {"duration_ps": 1.0},
                                    "production": {"duration_ns": 0.001,
                                                   "frame_interval_ps": 0.1}}}


def test_presets_ship_and_load() -> None:
    assert available_protocols() == ["production", "quick", "smoke", "smoke_hmr", "standard"]
    for name in available_protocols():
        protocol = load_protocol(name)
        assert protocol.stages() == list(STAGE_NAMES)
        assert protocol.friction_per_ps == 1.0
        # 4 fs only with hydrogen mass repartitioning (H 3 amu), 2 fs without
        assert (protocol.timestep_fs, protocol.hydrogen_mass_amu) in ((2.0, None), (4.0, 3.0))


@pytest.mark.parametrize(("name", "production_ns", "total_ns"), [
    # the figures stated in the preset files and in docs/simulation.md
    ("smoke", 0.0002, 0.00046), ("smoke_hmr", 0.0004, 0.00092), ("quick", 0.02, 0.050),
    ("standard", 20.0, 23.5), ("production", 100.0, 111.2),
])
def test_preset_lengths_match_docs(name: str, production_ns: float, total_ns: float) -> None:
    protocol = load_protocol(name)
    plan = plan_stages(protocol, 298.15)
    assert plan[-1].steps * protocol.timestep_ps / 1000 == pytest.approx(production_ns)
    assert plan[-1].end * protocol.timestep_ps / 1000 == pytest.approx(total_ns)


def test_unknown_key_names_allowed_keys() -> None:
    raw = _minimal()
    raw["timestep"] = 2.0
    with pytest.raises(SpecError, match=r"unknown key 'timestep'.*timestep_fs"):
        parse_protocol(raw)
    raw = _minimal()
    raw["stages"]["npt"]["length_ps"] = 3
    with pytest.raises(SpecError, match=r"stages: npt: unknown key 'length_ps'.*duration_ps"):
        parse_protocol(raw)


def test_bad_values_are_errors() -> None:
    raw = _minimal()
    raw["stages"]["production"]["duration_ns"] = -1
    with pytest.raises(SpecError, match="duration_ns"):
        parse_protocol(raw)
    raw = _minimal()
    raw["stages"]["production"]["ensemble"] = "NVE"
    with pytest.raises(SpecError, match="NVT, NPT"):
        parse_protocol(raw)
    raw = _minimal()
    raw["timestep_fs"] = "2"
    with pytest.raises(SpecError, match="finite number"):
        parse_protocol(raw)


def test_stage_order_and_required_stages() -> None:
    raw = _minimal()
    raw["stages"] = {"production": raw["stages"]["production"], "npt": raw["stages"]["npt"]}
    assert parse_protocol(raw).stages() == ["npt", "production"]  # run order, not file order
    raw = _minimal()
    del raw["stages"]["npt"]
    with pytest.raises(SpecError, match="NVT production takes its volume"):
        parse_protocol(raw)
    raw["stages"]["production"]["ensemble"] = "NPT"
    assert parse_protocol(raw).stages() == ["production"]


def test_unknown_protocol_lists_presets() -> None:
    with pytest.raises(InputError, match="smoke, smoke_hmr, standard"):
        load_protocol("no_such_protocol")


def test_user_file_and_round_trip(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(load_protocol("quick").to_dict()))
    assert load_protocol(path) == load_protocol("quick")
    with pytest.raises(InputError, match="positive number of ns"):
        load_protocol("quick").with_production_ns(0)


def test_plan_schedules() -> None:
    protocol = load_protocol("quick")
    plan = {s.name: s for s in plan_stages(protocol, 300.0)}
    heat, anneal = plan["heat"], plan["anneal"]
    assert heat.schedule[0][1] == 50.0 and heat.schedule[-1] == (heat.end, 300.0)
    assert max(t for _, t in anneal.schedule) == 400.0
    assert anneal.schedule[-1] == (anneal.end, 300.0)
    assert plan["production"].ensemble == "NVT" and plan["npt"].ensemble == "NPT"
    # stages tile the run without gaps
    stages = list(plan.values())
    assert all(a.end == b.start for a, b in zip(stages, stages[1:], strict=False))
