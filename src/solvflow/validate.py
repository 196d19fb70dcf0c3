"""Force-field checks against experiment (``solvflow validate``).

A check is data (``validate_checks.yaml`` in the package, or a user's check
file): what to build, what to measure, the experimental reference with its
source, and the tolerance, fixed in the definition. Two kinds:

``density``
    NPT density of a liquid or melt (g/cm^3): total mass / box volume,
    averaged after equilibration; standard error from decorrelated samples
    (statistical inefficiency, :mod:`solvflow.analysis.stats`).
``shell``
    cation-O g(r) (mdtraj) -> first peak and first minimum (nm); coordination
    number CN = O atoms within the first minimum per cation; standard error of
    the CN from its statistical inefficiency, of the peak from 5 blocks.
    ``start: random`` (Packmol) shows whether the shell *forms*,
    ``start: complex`` (:mod:`solvflow.complexes`) whether it is *stable*.

Each run: build (seeded), minimise, Langevin NPT at the system temperature and
1 bar (Monte Carlo barostat), equilibration then sampling. Every result is
written to ``<out>/<run-id>/result.json`` as soon as it is done; a run whose
result exists (same settings, same force-field files) is not repeated.
Nothing here tunes a parameter.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import os
import time
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from solvflow.errors import InputError, SpecError

PRESSURE_BAR = 1.0
TIMESTEP_PS = 0.002
FRICTION_PER_PS = 1.0
SAMPLE_PS = 0.2
AVOGADRO = 6.02214076e23
N_BLOCKS = 5
KINDS = ("density", "shell")
STARTS = ("random", "complex")
CHECKS_FILE = "validate_checks.yaml"
DEFAULT_PRODUCTION_NS = 0.03
MIN_EQUILIBRATION_NS = 0.01
_CHECK_KEYS = {"kind", "system", "composition", "n_salt", "reference", "tolerance", "source",
               "charge_scale", "cation", "partner_element", "complex", "cutoff_nm",
               "min_equilibration_ns"}
_MEASURES = {"ratio", "concentration", "molality"}
_REQUIRED = {"density": {"kind", "system", "reference", "tolerance", "source"},
             "shell": {"kind", "system", "reference", "tolerance", "source", "cation"}}


@dataclass(frozen=True)
class Check:
    """One validation check (see the module docstring and ``validate_checks.yaml``)."""

    name: str
    kind: str
    system: str
    reference: dict[str, list[float]]
    tolerance: dict[str, float]
    source: str
    composition: dict[str, float] = field(default_factory=dict)
    n_salt: int | None = None
    charge_scale: float | None = None
    cation: str = ""
    partner_element: str = "O"
    complex: dict[str, Any] = field(default_factory=dict)
    cutoff_nm: float | None = None
    min_equilibration_ns: float | None = None  # the check's own floor (slow liquids)


@dataclass(frozen=True)
class RunSettings:
    """How long and where: production ns; equilibration ns (default 25 % of it, >= 10 ps)."""

    production_ns: float = DEFAULT_PRODUCTION_NS
    platform: str | None = None
    seed: int = 2024
    size_factor: float = 1.0
    equilibration: float | None = None

    @property
    def equilibration_ns(self) -> float:
        if self.equilibration is not None:
            return self.equilibration
        return max(MIN_EQUILIBRATION_NS, 0.25 * self.production_ns)


def load_checks(extra: str | Path | None = None) -> dict[str, Check]:
    """The shipped checks, plus (overriding) those of the check file ``extra``."""
    text = resources.files("solvflow").joinpath(CHECKS_FILE).read_text()
    checks = parse_checks(text, CHECKS_FILE)
    if extra is not None:
        path = Path(extra)
        if not path.is_file():
            raise InputError(f"check file {str(path)!r} does not exist")
        checks |= parse_checks(path.read_text(), str(path))
    return checks


def parse_checks(text: str, where: str) -> dict[str, Check]:
    """Validate a check file (YAML text with a top-level ``checks`` mapping)."""
    import yaml

    from solvflow.spec import check_keys

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("checks"), dict):
        raise SpecError(f"{where}: expected a top-level 'checks' mapping of check names")
    out: dict[str, Check] = {}
    for name, d in raw["checks"].items():
        here = f"{where}: check {name}"
        if not isinstance(d, dict):
            raise SpecError(f"{here}: expected a mapping")
        check_keys(d, _CHECK_KEYS, here)
        kind = d.get("kind")
        if kind not in KINDS:
            raise SpecError(f"{here}: kind {kind!r}; allowed: {', '.join(KINDS)}")
        missing = sorted(_REQUIRED[kind] - set(d))
        if missing:
            raise SpecError(f"{here}: missing key(s): {', '.join(missing)}")
        out[str(name)] = _make_check(str(name), d, here)
    return out


def _make_check(name: str, d: dict[str, Any], here: str) -> Check:
    ref = {k: _range(v, f"{here}: reference.{k}") for k, v in d["reference"].items()}
    wanted = ["density_g_cm3"] if d["kind"] == "density" else ["peak_nm", "cn"]
    for key in wanted:
        if key not in ref:
            raise SpecError(f"{here}: reference needs {', '.join(wanted)}")
    composition = d.get("composition") or {}
    if not isinstance(composition, dict) or not set(composition) <= _MEASURES:
        raise SpecError(f"{here}: composition must map one of {', '.join(sorted(_MEASURES))} "
                        f"to a number, got {composition!r}")
    tol = {str(k): float(v) for k, v in d["tolerance"].items()}
    need = ["relative"] if d["kind"] == "density" else ["peak_nm", "cn"]
    if sorted(tol) != sorted(need) or any(v < 0 for v in tol.values()):
        raise SpecError(f"{here}: tolerance must give {', '.join(need)} (non-negative numbers)")
    floor = d.get("min_equilibration_ns")
    if floor is not None and (isinstance(floor, bool) or not isinstance(floor, (int, float))
                              or not 0 < floor <= 100):
        raise SpecError(f"{here}: min_equilibration_ns must be a number in (0, 100] ns, "
                        f"got {floor!r}")
    return Check(name=name, kind=d["kind"], system=str(d["system"]), reference=ref,
                 tolerance=tol, source=str(d["source"]),
                 composition=dict(d.get("composition") or {}), n_salt=d.get("n_salt"),
                 charge_scale=d.get("charge_scale"), cation=str(d.get("cation", "")),
                 partner_element=str(d.get("partner_element", "O")),
                 complex=dict(d.get("complex") or {}), cutoff_nm=d.get("cutoff_nm"),
                 min_equilibration_ns=None if floor is None else float(floor))


def check_settings(check: Check, settings: RunSettings) -> RunSettings:
    """``settings`` with the equilibration raised to the check's floor, if it has one."""
    floor = check.min_equilibration_ns
    if floor is None or settings.equilibration_ns >= floor:
        return settings
    return replace(settings, equilibration=floor)


def _range(value: Any, where: str) -> list[float]:
    values = value if isinstance(value, list) else [value, value]
    if len(values) != 2 or not all(isinstance(v, (int, float)) for v in values):
        raise SpecError(f"{where}: expected a number or [low, high], got {value!r}")
    low, high = sorted(float(v) for v in values)
    return [low, high]


def resolve_checks(names: list[str], checks: dict[str, Check], *,
                   reference: float | None = None, tolerance: float | None = None,
                   n_molecules: int | None = None) -> list[Check]:
    """The checks called ``names``; ``density:SYSTEM`` with ``reference`` adds a new one.

    Raises :class:`InputError` naming the known checks for an unknown name.
    """
    if not names:
        return list(checks.values())
    out = []
    for name in names:
        if name in checks:
            out.append(checks[name])
        elif name.startswith("density:") and reference is not None:
            system = name.split(":", 1)[1]
            out.append(Check(
                name=f"density:{Path(system).stem}", kind="density", system=system,
                reference={"density_g_cm3": [reference, reference]},
                tolerance={"relative": 0.03 if tolerance is None else tolerance},
                source="given on the command line (--reference)", n_salt=n_molecules or 100))
        else:
            hint = difflib.get_close_matches(name, list(checks), n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise InputError(
                f"unknown check {name!r}{extra}; known checks: {', '.join(checks)}; or "
                "density:SYSTEM --reference G_CM3 for a new liquid, or a --checks-file"
            )
    return out


def run_id(check: Check, ion_parameters: str | None, start: str, charge_scale: float | None,
           ) -> str:
    """Directory name of one run: the check plus the variant settings."""
    parts = [check.name.replace(":", "-")]
    if check.kind == "shell":
        parts += [ion_parameters or "default", start]
    if charge_scale is not None:
        parts.append(f"q{charge_scale:g}")
    return "~".join(parts)


def run_check(check: Check, out: str | Path, settings: RunSettings, *,
              ion_parameters: str | None = None, start: str = "random",
              charge_scale: float | None = None) -> dict[str, Any]:
    """Build, simulate and score one check; the result is also ``<out>/<run-id>/result.json``."""
    from solvflow.validate_md import md_result

    if start not in STARTS:
        raise InputError(f"unknown start {start!r}; allowed: {', '.join(STARTS)}")
    if start == "complex" and check.kind == "shell" and not check.complex:
        raise InputError(f"check {check.name} defines no 'complex' for --start complex")
    folder = Path(out) / run_id(check, ion_parameters, start, charge_scale)
    asked = settings.equilibration_ns
    settings = check_settings(check, settings)
    if settings.equilibration_ns > asked:
        print(f"note     {check.name}: equilibration {asked * 1000:g} ps raised to the "
              f"check's minimum of {settings.equilibration_ns * 1000:g} ps "
              "(min_equilibration_ns in its definition)")
    request = {"check": check.name, "ion_parameters": ion_parameters, "start": start,
               "charge_scale": charge_scale, "production_ns": settings.production_ns,
               "equilibration_ns": settings.equilibration_ns,
               "seed": settings.seed, "size_factor": settings.size_factor,
               "platform": settings.platform,
               "forcefield_sha256": _file_hashes(_forcefield_files(check, ion_parameters))}
    done = folder / "result.json"
    if done.is_file():
        previous = json.loads(done.read_text())
        if previous.get("request") == request:
            return dict(previous)
    t0 = time.perf_counter()
    meta = build_run(check, folder / "run", settings, ion_parameters, start, charge_scale)
    result = md_result(check, folder / "run", settings, meta)
    result |= {"request": request, "run_id": folder.name, "wall_s": round(time.perf_counter() - t0),
               "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "threads": os.environ.get("OPENMM_CPU_THREADS", "all")}
    from solvflow.atomic import atomic_write

    atomic_write(done, json.dumps(result, indent=1))
    return result


def build_run(check: Check, rundir: Path, settings: RunSettings, ion_parameters: str | None,
              start: str, charge_scale: float | None) -> dict[str, Any]:
    """Build the run directory for one check; return what was built (for the result)."""
    from solvflow.build import build, system_settings
    from solvflow.composition import compose
    from solvflow.spec import load_system, with_ion_parameters

    spec = load_system(check.system)
    if ion_parameters is not None:
        spec = with_ion_parameters(spec, ion_parameters)
    base = check.n_salt if check.n_salt is not None else (100 if spec.kind == "liquid" else 4)
    n_salt = max(1, round(base * settings.size_factor))
    measure: dict[str, Any] = dict(check.composition)
    comp = compose(spec, n_salt=n_salt, **measure)
    cutoff = check.cutoff_nm or box_cutoff(comp.box_nm)
    scale = charge_scale if charge_scale is not None else (
        check.charge_scale if check.charge_scale is not None else spec.charge_scale)
    if check.kind == "shell" and start == "complex":
        from solvflow.complexes import build_complex_rundir

        if rundir.exists():
            import shutil

            shutil.rmtree(rundir)
        build_complex_rundir(spec, comp, check.complex, rundir, seed=settings.seed,
                             settings=system_settings(scale, cutoff))
    else:
        build(spec, output=rundir, seed=settings.seed, cutoff_nm=cutoff,
                       charge_scale=scale, overwrite=True, n_salt=n_salt, **measure)
    files = sorted({sp.forcefield for sp in spec.species if sp.name in comp.counts})
    return {"system": spec.name, "composition": dict(check.composition), "n_salt": n_salt,
            "counts": dict(comp.counts), "initial_box_nm": round(comp.box_nm, 4),
            "cutoff_nm": cutoff, "charge_scale": scale, "ion_parameters": spec.ion_parameters,
            "forcefield_files": files, "forcefield_sha256": _file_hashes(files),
            "start": start if check.kind == "shell" else "random",
            "temperature_K": spec.temperature_K}


def _forcefield_files(check: Check, ion_parameters: str | None) -> list[str]:
    """The force-field files of every species of the check's system (with the ion set)."""
    from solvflow.spec import load_system, with_ion_parameters

    spec = load_system(check.system)
    if ion_parameters is not None:
        spec = with_ion_parameters(spec, ion_parameters)
    return sorted({sp.forcefield for sp in spec.species})


def _file_hashes(files: list[str]) -> dict[str, str]:
    """First 12 hex digits of the sha256 of each force-field file (which version was used)."""
    import hashlib

    from solvflow.forcefield import forcefield_path

    return {name: hashlib.sha256(forcefield_path(name).read_bytes()).hexdigest()[:12]
            for name in files}


def box_cutoff(box_nm: float) -> float:
    """Largest of 1.0, 0.9, 0.8, 0.7 nm that leaves the box >= 2.1 x cutoff (barostat margin)."""
    for cutoff in (1.0, 0.9, 0.8, 0.7):
        if box_nm >= 2.1 * cutoff:
            return cutoff
    raise InputError(f"the box ({box_nm:.2f} nm) is too small for a 0.7 nm cutoff; use a larger "
                     "n_salt or --size-factor")


def deviation_pct(value: float, ref: list[float]) -> float:
    """Signed deviation (%) from the nearest end of a reference range (0 inside it)."""
    low, high = ref
    if low <= value <= high:
        return 0.0
    nearest = low if value < low else high
    return 100.0 * (value - nearest) / nearest


def score(check: Check, measured: dict[str, float]) -> dict[str, Any]:
    """Pass/miss of a measurement against the check's reference and tolerance."""
    if check.kind == "density":
        dev = deviation_pct(measured["density_g_cm3"], check.reference["density_g_cm3"])
        return {"deviation_pct": round(dev, 2), "passed": abs(dev) <= 100 * check.tolerance[
            "relative"] + 1e-9}
    out: dict[str, Any] = {}
    for key in ("peak_nm", "cn"):
        low, high = check.reference[key]
        tol = check.tolerance[key]
        value = measured[key]
        out[f"{key}_passed"] = bool(low - tol - 1e-9 <= value <= high + tol + 1e-9)
        out[f"{key}_deviation"] = round(0.0 if low <= value <= high else
                                        (value - (low if value < low else high)), 4)
    out["passed"] = out["peak_nm_passed"] and out["cn_passed"]
    return out


def rank_ion_sets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ion sets ranked by the rule fixed before the runs (docs/validation.md).

    Over every shell result of a Mg or Ca check (both starts): most passes
    (peak and CN count separately) first; ties broken by the smaller sum of
    |peak deviation| from the reference range (nm).
    """
    table: dict[str, dict[str, Any]] = {}
    for res in results:
        if res.get("kind") != "shell" or res.get("cation") not in ("Mg", "Ca"):
            continue
        row = table.setdefault(res["ion_parameters"], {"ion_parameters": res["ion_parameters"],
                                                       "passes": 0, "runs": 0,
                                                       "sum_abs_peak_dev_nm": 0.0})
        row["runs"] += 1
        row["passes"] += int(res["peak_nm_passed"]) + int(res["cn_passed"])
        row["sum_abs_peak_dev_nm"] = round(row["sum_abs_peak_dev_nm"]
                                           + abs(res["peak_nm_deviation"]), 4)
    return sorted(table.values(), key=lambda r: (-r["passes"], r["sum_abs_peak_dev_nm"]))


def collect(out: str | Path) -> list[dict[str, Any]]:
    """Every result.json under ``out`` (sorted by run id)."""
    found = [json.loads(p.read_text()) for p in sorted(Path(out).glob("*/result.json"))]
    return [r for r in found if isinstance(r, dict) and "check" in r]


def replace_check(check: Check, **changes: Any) -> Check:
    """A copy of ``check`` with some fields changed (e.g. a smaller n_salt in tests)."""
    return replace(check, **changes)


def finite(x: float) -> float | None:
    """``x`` rounded to 4 decimals, or None if not finite (JSON has no NaN)."""
    return round(x, 4) if math.isfinite(x) else None
