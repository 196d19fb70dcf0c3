"""Workflow files: a campaign as data, strictly validated, expanded into tasks.

A workflow (``workflows/<name>.yaml``, or any YAML file) lists the axes of a
campaign; every combination is one *task* (build -> simulate -> analyze on
one run directory)::

    name: smoke
    description: seconds per task, for tests
    protocol: smoke                  # preset name, YAML path (relative to this file) or mapping
    production_ns: 0.0002            # optional: overrides the protocol's production length
    walltime: 2h                     # optional: wall-time budget of a whole sweep
    tasks_per_gpu: 1                 # optional: tasks sharing one GPU (LocalCluster only)
    charge_scales: [0.8, 1.0]        # optional; null = the system file's own (the default)
    starts: [random]                 # optional; random, dissociated, paired
    replicas: 2                      # optional: a count (seeds 1..N) or {seeds: [11, 12]}
    systems:
      - system: lifsi_dme            # shipped name or path of a system file
        concentrations_M: [1.0, 2.0] # or ratios / molalities_mol_kg; default: the system's own
        n_salt: 3                    # or target_atoms: 10000
        cutoff_nm: 0.6               # optional per-system overrides: cutoff_nm, charge_scales,
                                     # starts, replicas, production_ns, label

Unknown keys, unknown systems, empty axes, non-positive replicas, unknown
starts and protocols are :class:`~solvflow.errors.SpecError` naming the key
and what is allowed, raised before anything runs.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from solvflow.errors import SolvflowError, SpecError
from solvflow.resources import data_dir
from solvflow.spec import check_keys

STARTS = ("random", "dissociated", "paired")  # solvflow.start_states.START_STATES wins
MEASURES = {  # workflow key -> (build() keyword, task-parameter key, task-id format)
    "concentrations_M": ("concentration", "concentration_M", "{:g}M"),
    "ratios": ("ratio", "ratio", "r{:g}"),
    "molalities_mol_kg": ("molality", "molality", "{:g}molkg"),
}
MAX_SEED = 2**31

_TOP_KEYS = {"name", "description", "protocol", "production_ns", "walltime", "tasks_per_gpu",
             "charge_scales", "starts", "replicas", "systems"}
_TOP_REQUIRED = {"name", "protocol", "systems"}
_SYSTEM_KEYS = {"system", "label", "n_salt", "target_atoms", "cutoff_nm", "charge_scales",
                "starts", "replicas", "production_ns", *MEASURES}
_REPLICA_KEYS = {"count", "seeds"}


@dataclass(frozen=True)
class Task:
    """One run of a campaign: a system at one composition, charge scale, start and replica.

    ``value`` is in the unit of ``measure`` (mol/L, mol/kg or a molar ratio);
    ``production_ns`` in ns; ``cutoff_nm`` None means the force field's default.
    """

    id: str
    system: str
    system_ref: str
    measure: str
    value: float
    n_salt: int
    n_atoms: int
    charge_scale: float
    replica: int
    seed: int
    start: str
    protocol: str
    production_ns: float
    cutoff_nm: float | None = None

    @property
    def rundir(self) -> str:
        """Run directory, relative to the campaign directory."""
        return f"runs/{self.id}"

    def params(self) -> dict[str, Any]:
        """The parameters recorded in ``campaign.json``."""
        out: dict[str, Any] = {"system": self.system, self.measure: self.value,
                               "n_salt": self.n_salt, "charge_scale": self.charge_scale,
                               "replica": self.replica, "seed": self.seed, "start": self.start,
                               "protocol": self.protocol, "production_ns": self.production_ns}
        if self.cutoff_nm is not None:
            out["cutoff_nm"] = self.cutoff_nm
        return out

    def build_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`solvflow.build.build` (``start`` only if not random)."""
        keyword = next(k for k, p, _ in MEASURES.values() if p == self.measure)
        kwargs: dict[str, Any] = {keyword: self.value, "n_salt": self.n_salt, "seed": self.seed,
                                  "charge_scale": self.charge_scale}
        if self.cutoff_nm is not None:
            kwargs["cutoff_nm"] = self.cutoff_nm
        if self.start != "random":
            kwargs["start"] = self.start
        return kwargs


@dataclass(frozen=True)
class SystemEntry:
    """One entry of ``systems:`` after validation (per-system overrides applied)."""

    ref: str
    label: str | None
    measure_key: str | None
    values: tuple[float, ...]
    n_salt: int | None
    target_atoms: int | None
    cutoff_nm: float | None
    charge_scales: tuple[float | None, ...]
    starts: tuple[str, ...]
    seeds: tuple[int, ...]
    production_ns: float | None


@dataclass(frozen=True)
class Workflow:
    """A validated workflow file (see the module docstring)."""

    name: str
    protocol: Any  # solvflow.simulation.protocols.Protocol
    systems: tuple[SystemEntry, ...]
    description: str = ""
    production_ns: float | None = None
    walltime_s: float | None = None
    tasks_per_gpu: int = 1
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


def workflows_dir() -> Path:
    """Folder of the shipped workflow files."""
    return data_dir("workflows")


def available_workflows() -> list[str]:
    """Short names of the shipped workflows."""
    return sorted(p.stem for p in workflows_dir().glob("*.yaml"))


def locate_workflow(workflow: str | Path) -> Path:
    """Path of a workflow given by short name (``"smoke"``) or path."""
    candidate = Path(workflow)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise SpecError(f"workflow file {str(candidate)!r} does not exist")
        return candidate
    shipped = workflows_dir() / f"{workflow}.yaml"
    if shipped.is_file():
        return shipped
    names = available_workflows()
    hint = difflib.get_close_matches(str(workflow), names, n=1)
    extra = f"; did you mean {hint[0]!r}?" if hint else ""
    raise SpecError(f"unknown workflow {str(workflow)!r}{extra} Shipped workflows: "
                    f"{', '.join(names)} (or give the path of a .yaml file)")


def load_workflow(workflow: str | Path) -> Workflow:
    """Load and validate a workflow by short name or path (nothing is built or run)."""
    path = locate_workflow(workflow)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_workflow(raw, where=str(path), base_dir=path.parent)


def parse_workflow(raw: Any, where: str = "workflow", base_dir: Path | None = None) -> Workflow:
    """Validate a workflow mapping (the YAML content) into a :class:`Workflow`."""
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping of keys at the top level")
    check_keys(raw, _TOP_KEYS, where)
    missing = sorted(_TOP_REQUIRED - set(raw))
    if missing:
        raise SpecError(f"{where}: missing required key(s): {', '.join(missing)}")
    base = base_dir or Path.cwd()
    defaults: dict[str, Any] = {
        "charge_scales": _charge_scales(raw.get("charge_scales", [None]),
                                        f"{where}: charge_scales"),
        "starts": _starts(raw.get("starts", ["random"]), f"{where}: starts"),
        "seeds": _seeds(raw.get("replicas", 1), f"{where}: replicas"),
        "production_ns": _optional_positive(raw.get("production_ns"), f"{where}: production_ns"),
    }
    entries = raw["systems"]
    if not isinstance(entries, list) or not entries:
        raise SpecError(f"{where}: systems: must be a non-empty list of systems "
                        "(each a mapping with 'system' and 'n_salt' or 'target_atoms')")
    systems = tuple(_system_entry(entry, f"{where}: systems[{i}]", base, defaults)
                    for i, entry in enumerate(entries))
    walltime = raw.get("walltime")
    return Workflow(
        name=_text(raw["name"], f"{where}: name"),
        description=str(raw.get("description") or ""),
        protocol=_protocol(raw["protocol"], f"{where}: protocol", base),
        systems=systems,
        production_ns=defaults["production_ns"],
        walltime_s=None if walltime is None else _duration(walltime, f"{where}: walltime"),
        tasks_per_gpu=_positive_int(raw.get("tasks_per_gpu", 1), f"{where}: tasks_per_gpu"),
        source=where, raw=dict(raw))


def _system_entry(entry: Any, where: str, base: Path, defaults: dict[str, Any]) -> SystemEntry:
    if isinstance(entry, str):
        raise SpecError(f"{where}: {entry!r} needs a box size: write "
                        f"{{system: {entry}, n_salt: N}} or {{system: {entry}, target_atoms: N}}")
    if not isinstance(entry, dict):
        raise SpecError(f"{where}: expected a mapping with 'system', got {entry!r}")
    check_keys(entry, _SYSTEM_KEYS, where)
    if "system" not in entry:
        raise SpecError(f"{where}: missing required key 'system' (a shipped system name or "
                        "the path of a system file)")
    ref = _system_ref(entry["system"], where, base)
    measures = [k for k in MEASURES if k in entry]
    if len(measures) > 1:
        raise SpecError(f"{where}: give one of {', '.join(MEASURES)}, not {' and '.join(measures)}")
    measure = measures[0] if measures else None
    values = () if measure is None else _values(entry[measure], f"{where}: {measure}")
    sizes = [k for k in ("n_salt", "target_atoms") if k in entry]
    if len(sizes) != 1:
        raise SpecError(f"{where}: give exactly one box size, n_salt (salt formula units; "
                        "chloroaluminates: organic cations) or target_atoms (about that many "
                        f"atoms){'; got both' if sizes else ''}")
    return SystemEntry(
        ref=ref, label=_label(entry.get("label"), f"{where}: label"),
        measure_key=measure, values=values,
        n_salt=_positive_int(entry["n_salt"], f"{where}: n_salt") if "n_salt" in entry else None,
        target_atoms=(_positive_int(entry["target_atoms"], f"{where}: target_atoms")
                      if "target_atoms" in entry else None),
        cutoff_nm=_optional_positive(entry.get("cutoff_nm"), f"{where}: cutoff_nm"),
        charge_scales=(_charge_scales(entry["charge_scales"], f"{where}: charge_scales")
                       if "charge_scales" in entry else defaults["charge_scales"]),
        starts=(_starts(entry["starts"], f"{where}: starts") if "starts" in entry
                else defaults["starts"]),
        seeds=(_seeds(entry["replicas"], f"{where}: replicas") if "replicas" in entry
               else defaults["seeds"]),
        production_ns=(_optional_positive(entry["production_ns"], f"{where}: production_ns")
                       if "production_ns" in entry else defaults["production_ns"]))


def _system_ref(value: Any, where: str, base: Path) -> str:
    from solvflow.spec import load_system

    if not isinstance(value, str) or not value:
        raise SpecError(f"{where}: system must be a shipped system name or a file path, "
                        f"got {value!r}")
    ref = value
    if value.endswith((".yaml", ".yml")) and not Path(value).is_absolute():
        ref = str((base / value).resolve())
    try:
        load_system(ref)
    except SolvflowError as exc:
        raise SpecError(f"{where}: system: {exc}") from None
    return ref


def _protocol(value: Any, where: str, base: Path) -> Any:
    from solvflow.simulation.protocols import available_protocols, load_protocol, parse_protocol

    try:
        if isinstance(value, dict):
            return parse_protocol(value, where)
        if not isinstance(value, str) or not value:
            raise SpecError(f"{where}: expected a preset name ({', '.join(available_protocols())}),"
                            f" a protocol YAML path or a mapping, got {value!r}")
        path = Path(value)
        if value.endswith((".yaml", ".yml")) and not path.is_absolute():
            value = str((base / path).resolve())
        return load_protocol(value)
    except SolvflowError as exc:
        message = str(exc)
        raise SpecError(message if message.startswith(where) else f"{where}: {message}") from None


def _values(value: Any, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise SpecError(f"{where}: must be a non-empty list of positive numbers "
                        "(an empty axis gives no tasks)")
    out = tuple(_positive(v, where) for v in value)
    if len(set(out)) != len(out):
        raise SpecError(f"{where}: lists a value twice: {list(out)}")
    return out


def _charge_scales(value: Any, where: str) -> tuple[float | None, ...]:
    if value is None:  # `charge_scales: null`: the system file's own, as documented
        return (None,)
    if not isinstance(value, list) or not value:
        raise SpecError(f"{where}: must be a non-empty list of numbers in [0.5, 1.0] "
                        "(null: the system file's charge scale)")
    out: list[float | None] = []
    for v in value:
        if v is not None and (_not_number(v) or not 0.5 <= v <= 1.0):
            raise SpecError(f"{where}: {v!r} is not allowed; a charge scale is a number in "
                            "[0.5, 1.0], or null for the system file's own")
        out.append(None if v is None else float(v))
    if len(set(out)) != len(out):
        raise SpecError(f"{where}: lists a value twice: {value}")
    return tuple(out)


def _start_states() -> tuple[str, ...]:
    try:
        from solvflow.start_states import START_STATES
    except ImportError:  # a build without start states: random only works
        return STARTS
    return tuple(START_STATES)


def _starts(value: Any, where: str) -> tuple[str, ...]:
    allowed = _start_states()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise SpecError(f"{where}: must be a non-empty list of start states "
                        f"({', '.join(allowed)})")
    for v in value:
        if v not in allowed:
            hint = difflib.get_close_matches(str(v), allowed, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise SpecError(f"{where}: unknown start {v!r}{extra}; allowed: {', '.join(allowed)}")
    if len(set(value)) != len(value):
        raise SpecError(f"{where}: lists a start twice: {value}")
    return tuple(value)


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    """Replica seeds: a count N gives seeds 1..N; or {seeds: [...]} / {count: N, seeds: [...]}."""
    if isinstance(value, dict):
        check_keys(value, _REPLICA_KEYS, where)
        if "seeds" not in value:
            return _seeds(value.get("count"), f"{where}: count")
        seeds = value["seeds"]
        if not isinstance(seeds, list) or not seeds:
            raise SpecError(f"{where}: seeds must be a non-empty list of integers")
        for s in seeds:
            if _not_number(s) or int(s) != s or not 0 <= s < MAX_SEED:
                raise SpecError(f"{where}: seed {s!r} is not an integer in [0, 2^31)")
        if len(set(seeds)) != len(seeds):
            raise SpecError(f"{where}: seeds must differ (replicas with one seed are one run)")
        if "count" in value and _positive_int(value["count"], f"{where}: count") != len(seeds):
            raise SpecError(f"{where}: count {value['count']} but {len(seeds)} seeds listed")
        return tuple(int(s) for s in seeds)
    count = _positive_int(value, where, "replicas (a count, or {seeds: [...]})")
    return tuple(range(1, count + 1))


def _label(value: Any, where: str) -> str | None:
    if value is None:
        return None
    text = _text(value, where)
    if not all(c.isalnum() or c in "_." for c in text):
        raise SpecError(f"{where}: {text!r} may hold only letters, digits, '_' and '.' "
                        "(it names run directories)")
    return text


def _duration(value: Any, where: str) -> float:
    from solvflow.durations import parse_duration

    try:
        return parse_duration(value, where)
    except SolvflowError as exc:
        raise SpecError(str(exc)) from None


def _not_number(v: Any) -> bool:
    return isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)


def _positive(v: Any, where: str) -> float:
    if _not_number(v) or v <= 0:
        raise SpecError(f"{where}: {v!r} is not allowed; expected a positive number")
    return float(v)


def _optional_positive(v: Any, where: str) -> float | None:
    return None if v is None else _positive(v, where)


def _positive_int(v: Any, where: str, what: str = "a positive integer") -> int:
    if _not_number(v) or int(v) != v or v < 1:
        raise SpecError(f"{where}: {v!r} is not allowed; expected {what} (1 or more)")
    return int(v)


def _text(v: Any, where: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise SpecError(f"{where}: must be a non-empty string, got {v!r}")
    return v


# ------------------------------------------------------------------------------ expansion
def expand(workflow: Workflow) -> list[Task]:
    """Every task of ``workflow``, in file order (system, value, charge scale, start, replica).

    Compositions are checked here (:func:`solvflow.composition.compose`), so a
    concentration a system cannot take fails before anything runs.
    """
    from solvflow.composition import compose
    from solvflow.spec import load_system

    tasks: list[Task] = []
    for i, entry in enumerate(workflow.systems):
        where = f"{workflow.source}: systems[{i}]"
        spec = load_system(entry.ref)
        measure_key, values = _measure(entry, spec, where)
        keyword, param, fmt = MEASURES[measure_key]
        production = entry.production_ns or workflow.protocol.production.duration_ns
        for value in values:
            size: dict[str, Any] = {keyword: value, "n_salt": entry.n_salt}
            if entry.target_atoms:
                size["target_atoms"] = entry.target_atoms
            try:
                comp = compose(spec, **size)
            except SolvflowError as exc:
                raise SpecError(f"{where}: {measure_key} {value:g}: {exc}") from None
            for start in entry.starts:
                _check_start(start, spec, where)
            for scale in entry.charge_scales:
                cs = spec.charge_scale if scale is None else scale
                for start in entry.starts:
                    for replica, seed in enumerate(entry.seeds, start=1):
                        task_id = "-".join([entry.label or spec.name, fmt.format(value),
                                            f"cs{cs:g}", start, f"r{replica}"])
                        tasks.append(Task(
                            id=task_id, system=spec.name, system_ref=entry.ref, measure=param,
                            value=value, n_salt=comp.n_salt, n_atoms=comp.n_atoms,
                            charge_scale=cs, replica=replica, seed=seed, start=start,
                            protocol=workflow.protocol.name, production_ns=float(production),
                            cutoff_nm=entry.cutoff_nm))
    _check_unique(tasks, workflow.source)
    return tasks


def _check_start(start: str, spec: Any, where: str) -> None:
    """A start state the system can take (e.g. a melt takes only ``random``)."""
    try:
        from solvflow.start_states import resolve_start
    except ImportError:
        return
    try:
        resolve_start(start, None, spec)
    except SolvflowError as exc:
        raise SpecError(f"{where}: starts: {exc}") from None


def _measure(entry: SystemEntry, spec: Any, where: str) -> tuple[str, tuple[float, ...]]:
    """The composition axis: the entry's own, else the system file's list."""
    if entry.measure_key is not None:
        if spec.kind == "chloroaluminate" and entry.measure_key != "ratios":
            raise SpecError(f"{where}: {spec.name} is a chloroaluminate melt: give 'ratios' "
                            "(r = n(AlCl3)/n(cation Cl)), not " + repr(entry.measure_key))
        return entry.measure_key, entry.values
    if spec.kind == "chloroaluminate" and spec.ratios:
        return "ratios", spec.ratios
    if spec.kind == "salt_solution" and spec.concentrations_M:
        return "concentrations_M", spec.concentrations_M
    raise SpecError(f"{where}: {spec.name} lists no compositions of its own: give one of "
                    f"{', '.join(MEASURES)}")


def _check_unique(tasks: list[Task], where: str) -> None:
    seen: set[str] = set()
    for task in tasks:
        if task.id in seen:
            raise SpecError(f"{where}: two tasks would share the id {task.id!r} (the same system "
                            "listed twice?); give the entries different 'label's")
        seen.add(task.id)


def resolved_document(workflow: Workflow, tasks: list[Task]) -> dict[str, Any]:
    """The resolved workflow (every default filled in, protocol inline), for ``workflow.yaml``.

    It is itself a valid workflow file: ``solvflow sweep CAMPAIGN/workflow.yaml`` reruns it.
    """
    from solvflow.durations import format_duration

    systems = []
    for entry in workflow.systems:
        measure_key = entry.measure_key or next(
            k for k, (_, p, _) in MEASURES.items()
            if any(t.system_ref == entry.ref and t.measure == p for t in tasks))
        values = entry.values or tuple(dict.fromkeys(
            t.value for t in tasks if t.system_ref == entry.ref))
        item: dict[str, Any] = {"system": entry.ref, measure_key: list(values)}
        if entry.label:
            item["label"] = entry.label
        item |= {"n_salt": entry.n_salt} if entry.n_salt else {"target_atoms": entry.target_atoms}
        if entry.cutoff_nm is not None:
            item["cutoff_nm"] = entry.cutoff_nm
        item |= {"charge_scales": list(entry.charge_scales), "starts": list(entry.starts),
                 "replicas": {"seeds": list(entry.seeds)}}
        if entry.production_ns is not None:
            item["production_ns"] = entry.production_ns
        systems.append(item)
    doc: dict[str, Any] = {"name": workflow.name, "description": workflow.description,
                           "protocol": workflow.protocol.to_dict()}
    if workflow.production_ns is not None:
        doc["production_ns"] = workflow.production_ns
    if workflow.walltime_s is not None:
        doc["walltime"] = format_duration(workflow.walltime_s)
    doc["tasks_per_gpu"] = workflow.tasks_per_gpu
    doc["systems"] = systems
    return doc

