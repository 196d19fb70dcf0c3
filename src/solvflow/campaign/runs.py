"""Run directories as data: find them, read their files, and measure the closed list of quantities.

A *run* is a folder with ``spec.yaml`` and ``analysis.json`` (``status.json``
optional). It is found either through a campaign's ``campaign.json`` (every
task's ``rundir``, relative to the campaign) or by walking a folder.

Quantities (the closed list; ``QUANTITY_HELP`` documents each one):

* ``ssip_fraction``, ``cip_fraction``, ``agg_fraction``: cation-centred states
  (analysis.json ``ion_pairing``); ``cip_plus_agg_fraction`` = 1 - SSIP (same error).
* ``anion_free_fraction``, ``anion_cip_fraction``, ``anion_agg_fraction``:
  anion-centred states (``anion_states``, the Raman-comparable view).
* ``cn:P``, ``cn_atoms:P``, ``paired_fraction:P``: per partner species ``P``
  (``coordination_numbers``, ``coordination_numbers_atoms``, ``paired_fractions``).
* ``achieved_molarity_M``: salt formula units / (N_A x mean NPT volume), mol/L.
* ``alcl4_fraction``, ``al2cl7_fraction``: share of the chloroaluminate anions
  (AlCl4- + Al2Cl7-) in the built box (``spec.yaml`` counts; exact, an input).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solvflow.constants import AVOGADRO
from solvflow.errors import InputError

TIME_FACTOR = 10.0  # production must last >= 10 x the longest correlation / residence time
MIN_EFFECTIVE_SAMPLES = 10.0

_PAIRING = {"ssip_fraction": "SSIP", "cip_fraction": "CIP", "agg_fraction": "AGG"}
_ANION = {"anion_free_fraction": "free", "anion_cip_fraction": "CIP", "anion_agg_fraction": "AGG"}
_PER_PARTNER = {"cn": "coordination_numbers", "cn_atoms": "coordination_numbers_atoms",
                "paired_fraction": "paired_fractions", "residence_ps": "residence_times_ps",
                "residence_continuous_ps": "residence_times_continuous_ps"}
_CONDUCTIVITY = {"conductivity_ne_S_m": "nernst_einstein", "conductivity_eh_S_m":
                 "einstein_helfand"}
_COMPOSITION = ("alcl4_fraction", "al2cl7_fraction")

QUANTITY_HELP = {
    "ssip_fraction": "cations with no anion in the first shell (analysis.json ion_pairing.SSIP)",
    "cip_fraction": "cations with exactly one anion that touches no other cation (CIP)",
    "agg_fraction": "cations sharing an anion with another cation or holding >= 2 anions (AGG)",
    "cip_plus_agg_fraction": "1 - SSIP: cations with at least one anion in the shell",
    "anion_free_fraction": "anions in no cation shell (anion_states.free; Raman 'free')",
    "anion_cip_fraction": "anions in exactly one cation shell (anion_states.CIP)",
    "anion_agg_fraction": "anions in two or more cation shells (anion_states.AGG)",
    "cn:P": "distinct molecules of partner P per cation shell (coordination_numbers.P)",
    "cn_atoms:P": "coordinating sites of partner P per cation shell",
    "paired_fraction:P": "cations with at least one molecule of P in the shell",
    "residence_ps:P": "intermittent residence time of P in the cation shell, ps (none when "
                      "longer than the longest lag analysed)",
    "residence_continuous_ps:P": "continuous residence time of P in the cation shell, ps",
    "conductivity_ne_S_m": "Nernst-Einstein conductivity with the simulated (scaled) charges, S/m",
    "conductivity_eh_S_m": "Einstein-Helfand (collective) conductivity, scaled charges, S/m",
    "achieved_molarity_M": "salt units / (N_A x mean NPT volume) in mol/L (status.json)",
    "alcl4_fraction": "AlCl4- / (AlCl4- + Al2Cl7-) in the built box (spec.yaml counts; input)",
    "al2cl7_fraction": "Al2Cl7- / (AlCl4- + Al2Cl7-) in the built box (spec.yaml counts; input)",
}


@dataclass(frozen=True)
class Quantity:
    """A parsed quantity name: ``kind`` (the closed list's key) and the partner for ``cn:P``."""

    name: str
    kind: str
    partner: str | None = None

    @property
    def source(self) -> str:
        """``analysis``, ``composition`` (exact, from spec.yaml) or ``npt`` (status.json)."""
        if self.kind in _COMPOSITION:
            return "composition"
        return "npt" if self.kind == "achieved_molarity_M" else "analysis"

    def path(self) -> tuple[str, str] | None:
        """The (section, key) of analysis.json holding it (SSIP for cip_plus_agg), or None."""
        if self.kind in _PAIRING:
            return ("ion_pairing", _PAIRING[self.kind])
        if self.kind == "cip_plus_agg_fraction":
            return ("ion_pairing", "SSIP")
        if self.kind in _ANION:
            return ("anion_states", _ANION[self.kind])
        if self.kind in _PER_PARTNER and self.partner:
            return (_PER_PARTNER[self.kind], self.partner)
        return None


def parse_quantity(name: Any) -> Quantity:
    """Parse a quantity name of the closed list; raise InputError naming the allowed ones."""
    if isinstance(name, str):
        kind, sep, partner = name.partition(":")
        if sep and kind in _PER_PARTNER and partner.strip():
            return Quantity(name, kind, partner.strip())
        if not sep and name in QUANTITY_HELP and ":" not in name:
            return Quantity(name, name)
    raise InputError(f"unknown quantity {name!r}; allowed: {', '.join(QUANTITY_HELP)} "
                     "(P = a partner species, e.g. cn:DME)")


@dataclass(frozen=True)
class Measurement:
    """One run's value of a quantity, its within-run standard error, and its time scales.

    ``tau_ps``: longest relevant correlation or residence time (ps); ``unresolved``
    says a residence time was longer than the longest lag analysed; ``few``: the
    analysis flagged fewer than 10 effective samples.
    """

    value: float | None
    error: float | None
    tau_ps: float | None = None
    unresolved: bool = False
    few: bool = False
    effective_samples: float | None = None


@dataclass
class Run:
    """One run directory: its spec.yaml, status.json and analysis.json as dicts."""

    path: Path
    spec: dict[str, Any]
    status: dict[str, Any]
    analysis: dict[str, Any]
    task_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def system(self) -> str:
        return str((self.spec.get("system") or {}).get("name") or "unknown")

    @property
    def kind(self) -> str:
        return str((self.spec.get("system") or {}).get("kind") or "salt_solution")

    @property
    def cation(self) -> str:
        return str(self.analysis.get("cation") or (self.spec.get("analysis") or {}).get("cation"))

    @property
    def mode(self) -> str:
        return str((self.spec.get("composition") or {}).get("mode") or "unknown")

    @property
    def requested(self) -> float:
        value = (self.spec.get("composition") or {}).get("requested")
        return float(value) if isinstance(value, (int, float)) else math.nan

    @property
    def charge_scale(self) -> float:
        return float(self.spec.get("charge_scale", math.nan))

    @property
    def start(self) -> str:
        start = self.spec.get("start")
        state = start.get("state") if isinstance(start, dict) else start
        return str(state or "random")

    @property
    def seed(self) -> Any:
        return self.spec.get("seed")

    @property
    def platform(self) -> str:
        return str(self.status.get("platform") or "unknown")

    @property
    def simulated_ns(self) -> float | None:
        """All MD simulated in this run (every stage), from status.json."""
        value = self.status.get("simulated_ns")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def wall_time_s(self) -> float | None:
        """Wall time of the MD stages (minimise included; build and analysis not), status.json."""
        stages = self.status.get("stages")
        if not isinstance(stages, dict):
            return None
        times = [float(s["wall_time_s"]) for s in stages.values()
                 if isinstance(s, dict) and isinstance(s.get("wall_time_s"), (int, float))]
        return sum(times) if times else None

    @property
    def production_ps(self) -> float | None:
        """Trajectory time analysed (analysis.json simulated_time_ps)."""
        value = self.analysis.get("simulated_time_ps")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def partners(self) -> dict[str, str]:
        """Partner species -> role (analysis.json; older files: the CN keys, role unknown)."""
        found = self.analysis.get("partners")
        if isinstance(found, dict) and found:
            return dict(found)
        return {name: "unknown" for name in self.analysis.get("coordination_numbers") or {}}

    def measure(self, quantity: Quantity) -> Measurement:
        """This run's value of ``quantity`` (value None when the run lacks it)."""
        if quantity.source == "composition":
            return Measurement(_alcl_fraction(self.spec, quantity.kind), 0.0)
        if quantity.source == "npt":
            return Measurement(achieved_molarity(self.spec, self.status), None)
        return _measure_analysis(self.analysis, quantity)


def achieved_molarity(spec: dict[str, Any], status: dict[str, Any]) -> float | None:
    """Salt molarity after NPT (mol/L): n_salt / (N_A x mean NPT volume); None if unknown."""
    comp = spec.get("composition") or {}
    volume = status.get("npt_mean_volume_nm3")
    if (spec.get("system") or {}).get("kind", "salt_solution") != "salt_solution":
        return None
    if not isinstance(volume, (int, float)) or volume <= 0 or not comp.get("n_salt"):
        return None
    return float(comp["n_salt"]) / AVOGADRO / (float(volume) * 1e-24)


def _alcl_fraction(spec: dict[str, Any], kind: str) -> float | None:
    ions = (spec.get("system") or {}).get("ions") or {}
    counts = (spec.get("composition") or {}).get("counts") or {}
    mono = counts.get(ions.get("monomer", "AlCl4"), 0)
    dimer = counts.get(ions.get("dimer", "Al2Cl7"), 0)
    if mono + dimer == 0:
        return None
    return (mono if kind == "alcl4_fraction" else dimer) / (mono + dimer)


def _measure_analysis(data: dict[str, Any], quantity: Quantity) -> Measurement:
    if quantity.kind in _CONDUCTIVITY:
        block = (data.get("conductivity") or {}).get(_CONDUCTIVITY[quantity.kind]) or {}
        value, error = block.get("scaled_charges_S_m"), block.get("stderr_scaled_charges_S_m")
        return Measurement(float(value) if isinstance(value, (int, float)) else None,
                           float(error) if isinstance(error, (int, float)) else None)
    if quantity.kind.startswith("residence"):
        path = quantity.path()
        value = _nested(data, *path) if path else None
        return Measurement(float(value) if isinstance(value, (int, float)) else None, None)
    path = quantity.path()
    if path is None:
        return Measurement(None, None)
    section, key = path
    value = _nested(data, section, key)
    if not isinstance(value, (int, float)):
        return Measurement(None, None)
    error = _nested(data.get("stderr") or {}, section, key)
    if quantity.kind == "cip_plus_agg_fraction":
        value = 1.0 - value
    tau, unresolved = _time_scale(data, section, key, quantity)
    neff = _nested(data.get("effective_samples") or {}, section, key)
    few = _is_few(data, section, key) or (isinstance(neff, (int, float))
                                          and neff < MIN_EFFECTIVE_SAMPLES)
    return Measurement(float(value), float(error) if isinstance(error, (int, float)) else None,
                       tau, unresolved, few, neff if isinstance(neff, (int, float)) else None)


def _nested(data: Any, section: str, key: str) -> Any:
    part = data.get(section) if isinstance(data, dict) else None
    return part.get(key) if isinstance(part, dict) else None


def _is_few(data: dict[str, Any], section: str, key: str) -> bool:
    for item in data.get("few_samples") or []:
        parts = list(item) if isinstance(item, (list, tuple)) else str(item).replace("/", ".") \
            .split(".")
        if parts[:2] == [section, key] or parts == [section]:
            return True
    return False


def _time_scale(data: dict[str, Any], section: str, key: str,
                quantity: Quantity) -> tuple[float | None, bool]:
    """Longest correlation/residence time relevant to the quantity (ps), and 'unresolved'."""
    taus: list[float] = []
    corr = _nested(data.get("correlation_time_ps") or {}, section, key)
    if isinstance(corr, (int, float)):
        taus.append(float(corr))
    partners = data.get("partners") or {}
    if quantity.partner:
        relevant = [quantity.partner]
    else:  # pairing and anion states change when an anion enters or leaves a shell
        relevant = [p for p, role in partners.items() if role == "anion"]
    unresolved = False
    residence = data.get("residence_times_ps") or data.get("residence_times_continuous_ps")
    if isinstance(residence, dict):
        for partner in relevant:
            if partner not in residence:
                continue
            leaves = list(_leaves(residence[partner]))
            unresolved |= any(v is None for v in leaves)
            taus += [float(v) for v in leaves if isinstance(v, (int, float))]
    return (max(taus) if taus else None), unresolved


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    else:
        yield value


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a JSON object")
    return data


def read_run(path: Path, task_id: str | None = None) -> Run:
    """Read one run directory (spec.yaml + analysis.json; status.json if present)."""
    import yaml

    try:
        spec = yaml.safe_load((path / "spec.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read {path / 'spec.yaml'}: {exc}") from None
    status_file = path / "status.json"
    status = _read_json(status_file) if status_file.is_file() else {}
    return Run(path, spec, status, _read_json(path / "analysis.json"), task_id)


@dataclass
class RunSet:
    """The analysed runs found, and the tasks or folders that had no analysis (missing)."""

    runs: list[Run]
    missing: list[dict[str, Any]]
    sources: list[Path]
    campaign: dict[str, Any] | None = None
    built: list[Run] = field(default_factory=list)  # spec.yaml but no analysis.json yet


def find_runs(paths: Sequence[str | Path]) -> RunSet:
    """Every analysed run under ``paths`` (campaign folders, run directories or any folders)."""
    runs: list[Run] = []
    missing: list[dict[str, Any]] = []
    campaign = None
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError(f"{path} does not exist: give a campaign folder or run directories")
        if (path / "campaign.json").is_file():
            campaign = _read_json(path / "campaign.json")
            _from_campaign(path, campaign, runs, missing)
        else:
            _walk(path, runs, missing)
    by_path = {r.path.resolve(): r for r in reversed(runs)}  # a run found twice counts once
    unique = [r for r in runs if by_path.get(r.path.resolve()) is r]
    if not unique:
        where = ", ".join(str(p) for p in paths)
        raise InputError(f"no analysed run directories (spec.yaml + analysis.json) under {where}"
                         + (f"; {len(missing)} without analysis.json" if missing else ""))
    built = [_built(Path(m["rundir"])) for m in missing
             if (Path(m["rundir"]) / "spec.yaml").is_file()]
    return RunSet(unique, missing, [Path(p) for p in paths], campaign,
                  [b for b in built if b is not None])


def _built(rundir: Path) -> Run | None:
    """A built run directory without analysis (its composition is still data)."""
    import yaml

    try:
        spec = yaml.safe_load((rundir / "spec.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    return Run(rundir, spec, {}, {}) if isinstance(spec, dict) else None


def _from_campaign(root: Path, campaign: dict[str, Any], runs: list[Run],
                   missing: list[dict[str, Any]]) -> None:
    for task in campaign.get("tasks") or []:
        rundir = root / str(task.get("rundir") or f"runs/{task.get('id')}")
        if (rundir / "spec.yaml").is_file() and (rundir / "analysis.json").is_file():
            runs.append(read_run(rundir, str(task.get("id"))))
        else:
            missing.append(_missing(rundir, task))


def _walk(path: Path, runs: list[Run], missing: list[dict[str, Any]]) -> None:
    for spec in sorted(path.rglob("spec.yaml")):
        folder = spec.parent
        if (folder / "analysis.json").is_file():
            runs.append(read_run(folder))
        else:
            missing.append(_missing(folder, {"state": "not analysed"}))


def _missing(rundir: Path, task: dict[str, Any]) -> dict[str, Any]:
    """What is known of a task or run directory that has no analysis.json."""
    import yaml

    params = dict(task.get("params") or {})
    try:
        spec = yaml.safe_load((rundir / "spec.yaml").read_text(encoding="utf-8")) or {}
        run = Run(rundir, spec, {}, {})
        params.setdefault("system", run.system)
        params.setdefault("concentration", run.requested)
        params.setdefault("charge_scale", run.charge_scale)
        params.setdefault("start", run.start)
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        pass  # not built yet: the task's own parameters are all there is
    return {"task": task.get("id"), "rundir": str(rundir), "params": params,
            "state": task.get("state"), "error": task.get("error")}
