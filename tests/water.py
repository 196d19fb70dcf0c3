"""Test fixture: a run directory (spec.yaml, topology.pdb, system.xml) holding the built-in
TIP3P water box of :mod:`solvflow.simulation.testsystems` (the engine's mechanics, tested
independently of solvflow's own force fields)."""

from __future__ import annotations

from pathlib import Path

import yaml

from solvflow.simulation.testsystems import water_box_texts


def write_water_rundir(rundir: str | Path, edge_nm: float = 2.0, temperature_K: float = 300.0,
                       seed: int = 1) -> Path:
    """Write a run directory holding a cubic water box of edge ``edge_nm`` (nm)."""
    root = Path(rundir)
    root.mkdir(parents=True, exist_ok=True)
    pdb_text, system_xml = water_box_texts(float(edge_nm))
    (root / "topology.pdb").write_text(pdb_text)
    (root / "system.xml").write_text(system_xml)
    spec = {"system": {"name": "water", "kind": "liquid"}, "temperature_K": temperature_K,
            "seed": seed, "charge_scale": 1.0}
    (root / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root
