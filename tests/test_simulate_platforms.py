"""Platform choice by probing the run's own System, cached per machine (real OpenMM)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import openmm
import pytest

from solvflow.errors import PlatformError
from solvflow.simulation.platforms import (
    cache_path,
    choose_platform,
    choose_platform_for_run,
    probe_system,
    system_class,
)
from solvflow.simulation.testsystems import water_box


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOLVFLOW_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "platforms.json"


def test_cache_location_and_system_class(cache: Path, monkeypatch) -> None:
    assert cache_path() == cache
    monkeypatch.delenv("SOLVFLOW_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert cache_path() == Path("/somewhere/solvflow/platforms.json")
    _, system, _ = water_box()
    label = system_class(system)  # 780 atoms -> the nearest power of two, 1,024
    assert label.startswith("~1024 atoms; ") and "NonbondedForce" in label
    custom = openmm.CustomNonbondedForce("r")
    system.addForce(custom)
    assert system_class(system) != label  # a custom force is another kind of System


def test_asked_for_and_resumed_platforms_are_not_probed(cache: Path) -> None:
    topology, system, positions = water_box()
    box = topology.getPeriodicBoxVectors()
    platform, _, how = choose_platform_for_run("cpu", system, positions, box)
    assert platform.getName() == "CPU" and how == {"how": "asked for"}
    platform, _, how = choose_platform_for_run(None, system, positions, box, recorded="CPU")
    assert platform.getName() == "CPU" and how["how"] == "the platform this run started on"
    assert not cache.exists()
    assert probe_system("CPU", system, positions, box, seconds=0.2) > 0


def test_cpu_side_choice_is_measured_once_then_cached(cache: Path) -> None:
    try:
        choose_platform("OpenCL")
    except PlatformError as exc:
        pytest.skip(f"OpenCL does not load here: {exc}")
    topology, system, positions = water_box()
    box = topology.getPeriodicBoxVectors()
    platform, _, first = choose_platform_for_run(None, system, positions, box,
                                                 probe_seconds=0.3)
    if "measured" not in first["how"]:
        pytest.skip(f"a GPU is present: {first['how']}")
    speeds = first["force_evaluations_per_s"]
    assert set(speeds) == {"CPU", "OpenCL"} and min(speeds.values()) > 0
    assert platform.getName() == max(speeds, key=lambda p: speeds[p])
    stored = json.loads(cache.read_text())
    (key, entry), = stored.items()
    assert key.startswith(socket.gethostname()) and entry["platform"] == platform.getName()
    again, _, second = choose_platform_for_run(None, system, positions, box)
    assert second["how"].startswith("cached measurement") and again.getName() == \
        platform.getName()
