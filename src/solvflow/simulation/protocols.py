"""MD protocols as data: shipped presets and user YAML files, strictly validated.

A protocol names the settings shared by every stage (time step, friction,
pressure, report intervals) and up to five stages (``production`` required),
always run in this order whatever their order in the file:

``minimize``    local energy minimisation
``heat``        NVT, temperature ramped linearly from ``start_K`` to the target
``anneal``      ramp to ``high_K``, hold, ramp back to the target; NVT by default
                (an ether above its boiling point may cavitate at 1 bar), or NPT
``npt``         NPT at the target temperature (its mean volume feeds production)
``production``  NVT at the mean ``npt`` volume (or NPT); the only stage whose
                frames go to ``traj.dcd``

The target temperature is the run directory's (``spec.yaml``); durations are
in ps (``production``: ns), temperatures in K, pressure in bar. Unknown keys
are errors that name the allowed keys.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from solvflow.errors import SpecError
from solvflow.spec import check_keys

STAGE_NAMES = ("minimize", "heat", "anneal", "npt", "production")

_TOP_KEYS = {
    "name", "description", "timestep_fs", "friction_per_ps", "pressure_bar",
    "barostat_interval_steps", "report_interval_ps", "checkpoint_interval_min",
    "blowup_temperature_factor", "hydrogen_mass_amu", "stages",
}
_TOP_REQUIRED = {"name", "stages"}
_STAGE_KEYS = {
    "minimize": {"tolerance_kJ_mol_nm", "max_iterations"},
    "heat": {"start_K", "duration_ps"},
    "anneal": {"high_K", "ramp_ps", "hold_ps", "ensemble"},
    "npt": {"duration_ps", "average_last_fraction"},
    "production": {"duration_ns", "ensemble", "frame_interval_ps"},
}
_STAGE_REQUIRED = {
    "minimize": set(),
    "heat": {"duration_ps"},
    "anneal": {"high_K", "ramp_ps", "hold_ps"},
    "npt": {"duration_ps"},
    "production": {"duration_ns", "frame_interval_ps"},
}
ENSEMBLES = ("NVT", "NPT")
MAX_TIMESTEP_WITHOUT_HMR_FS = 2.5  # above: only with hydrogen_mass_amu >= 2


@dataclass(frozen=True)
class Minimize:
    tolerance_kJ_mol_nm: float = 10.0
    max_iterations: int = 0  # 0: until converged


@dataclass(frozen=True)
class Heat:
    duration_ps: float
    start_K: float = 50.0


@dataclass(frozen=True)
class Anneal:
    high_K: float
    ramp_ps: float
    hold_ps: float
    ensemble: str = "NVT"


@dataclass(frozen=True)
class Npt:
    duration_ps: float
    average_last_fraction: float = 0.5


@dataclass(frozen=True)
class Production:
    duration_ns: float
    frame_interval_ps: float
    ensemble: str = "NVT"


@dataclass(frozen=True)
class Protocol:
    """A validated protocol (see the module docstring for the meaning of each field)."""

    name: str
    production: Production
    description: str = ""
    timestep_fs: float = 2.0
    friction_per_ps: float = 1.0
    pressure_bar: float = 1.0
    barostat_interval_steps: int = 25
    report_interval_ps: float = 1.0
    checkpoint_interval_min: float = 10.0
    blowup_temperature_factor: float = 5.0
    hydrogen_mass_amu: float | None = None  # None: masses as in system.xml (no HMR)
    minimize: Minimize | None = None
    heat: Heat | None = None
    anneal: Anneal | None = None
    npt: Npt | None = None
    source: str = field(default="", compare=False)

    @property
    def timestep_ps(self) -> float:
        return self.timestep_fs / 1000.0

    def steps(self, duration_ps: float) -> int:
        """Number of time steps covering ``duration_ps`` (rounded to the nearest step)."""
        return int(round(duration_ps / self.timestep_ps))

    @property
    def report_interval_steps(self) -> int:
        return max(1, self.steps(self.report_interval_ps))

    @property
    def frame_interval_steps(self) -> int:
        return max(1, self.steps(self.production.frame_interval_ps))

    @property
    def production_steps(self) -> int:
        """Production steps, rounded up to a whole number of frame intervals."""
        every = self.frame_interval_steps
        return every * math.ceil(self.steps(self.production.duration_ns * 1000.0) / every)

    def stages(self) -> list[str]:
        """Names of the stages present, in run order."""
        return [name for name in STAGE_NAMES if getattr(self, name) is not None]

    def with_production_ns(self, duration_ns: float) -> Protocol:
        """Copy with another production length (ns > 0)."""
        if not _is_number(duration_ns) or duration_ns <= 0:
            raise SpecError(f"production length must be a positive number of ns, "
                            f"got {duration_ns!r}")
        return replace(self, production=replace(self.production, duration_ns=float(duration_ns)))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, loadable again with :func:`parse_protocol` (``protocol.yaml``)."""
        data = asdict(self)
        out = {k: v for k, v in data.items()
               if k not in STAGE_NAMES and k != "source" and not (k == "description" and not v)
               and not (k == "hydrogen_mass_amu" and v is None)}
        stages = {name: data[name] for name in STAGE_NAMES if data[name] is not None}
        out["stages"] = stages
        return out


def protocols_dir() -> Path:
    """Folder of the shipped protocol presets (inside the package)."""
    return Path(str(resources.files("solvflow") / "protocols"))


def available_protocols() -> list[str]:
    """Names of the shipped protocol presets."""
    return sorted(p.stem for p in protocols_dir().glob("*.yaml"))


def load_protocol(protocol: str | Path | Protocol) -> Protocol:
    """A shipped preset by name (``"quick"``), or a protocol YAML file by path.

    Raises
    ------
    SpecError
        Unknown name or missing file (the message lists the presets), or an
        invalid file (unknown key, wrong type, out-of-range value).
    """
    if isinstance(protocol, Protocol):
        return protocol
    path = Path(protocol)
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        path = protocols_dir() / f"{protocol}.yaml"
    if not path.is_file():
        raise SpecError(
            f"unknown protocol {str(protocol)!r}: not a shipped preset "
            f"({', '.join(available_protocols())}) and no such file"
        )
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    return replace(parse_protocol(raw, where=str(path)), source=str(path))


def parse_protocol(raw: Any, where: str = "protocol") -> Protocol:
    """Validate a protocol mapping (the YAML content) and return a :class:`Protocol`."""
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping of keys at the top level")
    check_keys(raw, _TOP_KEYS, where)
    _check_required(raw, _TOP_REQUIRED, where)
    stages = raw["stages"]
    if not isinstance(stages, dict) or not stages:
        raise SpecError(f"{where}: 'stages' must be a mapping of stage names to settings")
    check_keys(stages, set(STAGE_NAMES), f"{where}: stages")
    if "production" not in stages:
        raise SpecError(f"{where}: stages: 'production' is required")
    top = {k: v for k, v in raw.items() if k != "stages"}
    kwargs: dict[str, Any] = {"name": _text(top.pop("name"), "name", where)}
    if "description" in top:
        kwargs["description"] = _text(top.pop("description"), "description", where)
    for key, value in top.items():
        kwargs[key] = _number(value, key, where)
    kwargs["barostat_interval_steps"] = _integer(
        kwargs.get("barostat_interval_steps", 25), "barostat_interval_steps", where)
    for name, settings in stages.items():
        kwargs[name] = _parse_stage(name, settings, f"{where}: stages: {name}")
    protocol = Protocol(**kwargs)
    _check_ranges(protocol, where)
    return protocol


def _parse_stage(name: str, settings: Any, where: str) -> Any:
    settings = {} if settings is None else settings
    if not isinstance(settings, dict):
        raise SpecError(f"{where}: expected a mapping of settings")
    check_keys(settings, _STAGE_KEYS[name], where)
    _check_required(settings, _STAGE_REQUIRED[name], where)
    values: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "ensemble":
            if value not in ENSEMBLES:
                raise SpecError(f"{where}: ensemble must be one of {', '.join(ENSEMBLES)}, "
                                f"got {value!r}")
            values[key] = value
        elif key == "max_iterations":
            values[key] = _integer(value, key, where)
        else:
            values[key] = _number(value, key, where)
    cls = {"minimize": Minimize, "heat": Heat, "anneal": Anneal, "npt": Npt,
           "production": Production}[name]
    return cls(**values)


def _check_ranges(p: Protocol, where: str) -> None:
    rules: list[tuple[str, float, float, float]] = [
        ("timestep_fs", p.timestep_fs, 0.1, 5.0),
        ("friction_per_ps", p.friction_per_ps, 1e-3, 100.0),
        ("pressure_bar", p.pressure_bar, 1e-3, 1e5),
        ("barostat_interval_steps", p.barostat_interval_steps, 1, 1e6),
        ("report_interval_ps", p.report_interval_ps, p.timestep_ps, math.inf),
        ("checkpoint_interval_min", p.checkpoint_interval_min, 0.0, math.inf),
        ("blowup_temperature_factor", p.blowup_temperature_factor, 1.5, math.inf),
        ("production: duration_ns", p.production.duration_ns, 1e-9, math.inf),
        ("production: frame_interval_ps", p.production.frame_interval_ps, p.timestep_ps,
         math.inf),
    ]
    if p.heat:
        rules += [("heat: start_K", p.heat.start_K, 1.0, 5000.0),
                  ("heat: duration_ps", p.heat.duration_ps, p.timestep_ps, math.inf)]
    if p.anneal:
        rules += [("anneal: high_K", p.anneal.high_K, 1.0, 5000.0),
                  ("anneal: ramp_ps", p.anneal.ramp_ps, 0.0, math.inf),
                  ("anneal: hold_ps", p.anneal.hold_ps, 0.0, math.inf)]
    if p.npt:
        rules += [("npt: duration_ps", p.npt.duration_ps, p.timestep_ps, math.inf),
                  ("npt: average_last_fraction", p.npt.average_last_fraction, 0.01, 1.0)]
    if p.minimize:
        rules += [("minimize: tolerance_kJ_mol_nm", p.minimize.tolerance_kJ_mol_nm, 1e-6,
                   math.inf),
                  ("minimize: max_iterations", p.minimize.max_iterations, 0, math.inf)]
    for what, value, low, high in rules:
        if not low <= value <= high:
            raise SpecError(f"{where}: {what} = {value:g} is outside the allowed range "
                            f"[{low:g}, {high:g}]")
    if p.hydrogen_mass_amu is not None and not 1.0 <= p.hydrogen_mass_amu <= 5.0:
        raise SpecError(f"{where}: hydrogen_mass_amu = {p.hydrogen_mass_amu:g} is outside the "
                        "allowed range [1, 5] (3 is usual with timestep_fs: 4)")
    if p.timestep_fs > MAX_TIMESTEP_WITHOUT_HMR_FS and (p.hydrogen_mass_amu or 1.0) < 2.0:
        raise SpecError(f"{where}: timestep_fs = {p.timestep_fs:g} needs hydrogen mass "
                        "repartitioning: set hydrogen_mass_amu (e.g. 3) or use timestep_fs <= "
                        f"{MAX_TIMESTEP_WITHOUT_HMR_FS:g}")
    if p.production.ensemble == "NVT" and p.npt is None:
        raise SpecError(f"{where}: NVT production takes its volume from the 'npt' stage; "
                        "add an 'npt' stage or set production: ensemble: NPT")


def _check_required(mapping: dict[str, Any], required: set[str], where: str) -> None:
    missing = sorted(required - set(mapping))
    if missing:
        raise SpecError(f"{where}: missing required key(s): {', '.join(missing)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


def _number(value: Any, what: str, where: str) -> float:
    if not _is_number(value):
        raise SpecError(f"{where}: {what} must be a finite number, got {value!r}")
    return float(value)


def _integer(value: Any, what: str, where: str) -> int:
    if not _is_number(value) or int(value) != value:
        raise SpecError(f"{where}: {what} must be an integer, got {value!r}")
    return int(value)


def _text(value: Any, what: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where}: {what} must be a non-empty string, got {value!r}")
    return value
