"""Synthetic run directories (spec.yaml + status.json + analysis.json) for the campaign tests.

Only the keys compare / claims / report read are written; the values are the
test's inputs, so every expected number is computed from them in the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def write_run(root: Path, name: str, *, system: str = "lifsi_dme", conc: float = 1.0,
              scale: float = 0.8, start: str | None = None, seed: int = 1,
              ssip: float = 0.7, cip: float = 0.2, err: float = 0.01,
              cn: dict[str, float] | None = None, anion: tuple[float, float] = (0.6, 0.3),
              production_ps: float = 20000.0, tau_ps: float | None = 100.0,
              residence_ps: float | None = 50.0, few: list[str] | None = None,
              platform: str = "CPU", cation: str = "Li", mode: str = "molarity",
              counts: dict[str, int] | None = None, kind: str = "salt_solution",
              n_salt: int = 10, npt_volume_nm3: float | None = 16.6,
              time_info: bool = True) -> Path:
    """Write one synthetic run directory ``root/name`` and return it."""
    rundir = root / name
    rundir.mkdir(parents=True)
    cn = cn if cn is not None else {"FSI": 0.3, "DME": 2.5}
    partners = {p: ("anion" if p in {"FSI", "TFSI", "Cl", "AlCl4", "Al2Cl7"} else "solvent")
                for p in cn}
    spec: dict[str, Any] = {
        "solvflow_version": "0.1.0", "seed": seed, "charge_scale": scale,
        "temperature_K": 298.15,
        "system": {"name": system, "kind": kind,
                   **({"ions": {"cation": "EMIm", "chloride": "Cl", "monomer": "AlCl4",
                                "dimer": "Al2Cl7"}} if kind == "chloroaluminate" else {})},
        "composition": {"mode": mode, "requested": conc, "n_salt": n_salt,
                        "counts": counts or {cation: n_salt, "FSI": n_salt, "DME": 60}},
        "analysis": {"cation": cation, "partners": list(cn)},
        "forcefield": {"files": ["ions.xml", "imides.xml", "ethers.xml"], "charge_scale": scale,
                       "mixing": "geometric", "cutoff_nm": 1.0, "electrostatics": "PME"},
    }
    if start is not None:
        spec["start"] = {"state": start}
    (rundir / "spec.yaml").write_text(yaml.safe_dump(spec))
    status = {"platform": platform, "precision": "mixed", "device": "", "state": "finished",
              "simulated_ns": production_ps / 1000.0 + 1.0, "openmm_version": "8.6.1",
              "protocol": "standard"}
    if npt_volume_nm3 is not None:
        status["npt_mean_volume_nm3"] = npt_volume_nm3
    (rundir / "status.json").write_text(json.dumps(status))
    if kind == "chloroaluminate" and not cn:
        return rundir  # built only
    agg = 1.0 - ssip - cip
    free, acip = anion
    sections = {"coordination_numbers": dict(cn),
                "ion_pairing": {"SSIP": ssip, "CIP": cip, "AGG": agg},
                "anion_states": {"free": free, "CIP": acip, "AGG": 1.0 - free - acip}}
    analysis: dict[str, Any] = {
        "cation": cation, "partners": partners, "n_frames": 1000,
        "simulated_time_ps": production_ps, "timestep_ps": production_ps / 1000.0,
        "cutoffs_nm": {p: 0.3 for p in cn}, **sections,
        "shells": [{"composition": {"DME": 2}, "fraction": ssip},
                   {"composition": {"DME": 2, "FSI": 1}, "fraction": 1.0 - ssip}],
        "stderr": {k: {q: err for q in v} for k, v in sections.items()},
        "rdf": {p: {"r_nm": [0.1, 0.2, 0.3, 0.4], "g": [0.0, 5.0, 0.5, 1.0],
                    "running_cn_sites": [0.0, 1.0, 2.0, 2.5], "n_frames": 10} for p in cn},
    }
    if time_info:
        analysis["residence_times_ps"] = {p: residence_ps for p in cn}
        analysis["correlation_time_ps"] = {k: {q: tau_ps for q in v} for k, v in sections.items()}
        n_eff = None if tau_ps is None else production_ps / (2 * tau_ps)
        analysis["effective_samples"] = {k: {q: n_eff for q in v} for k, v in sections.items()}
    if few is not None:
        analysis["few_samples"] = few
    (rundir / "analysis.json").write_text(json.dumps(analysis))
    return rundir


def write_campaign(root: Path, tasks: list[dict[str, Any]]) -> Path:
    """campaign.json listing ``tasks`` (each: id, rundir relative to root, state, error)."""
    root.mkdir(parents=True, exist_ok=True)
    doc = {"workflow": "test", "tasks": [{"params": {}, "platform": "CPU", "error": None,
                                          **t} for t in tasks]}
    (root / "campaign.json").write_text(json.dumps(doc))
    return root
