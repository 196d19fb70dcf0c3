"""Electrolyte system files: loading, strict validation, species resolution.

A system file (``systems/<name>.yaml``) declares what to mix. Two kinds:

``salt_solution``
    ``salt`` maps species to stoichiometric counts per formula unit
    (``{Mg: 1, TFSI: 2}``), ``solvent`` maps solvent species to mole
    fractions; ``concentrations_M`` lists the molarities of interest.
``chloroaluminate``
    AlCl3/[cation]Cl melts; ``ions`` names the organic cation, chloride,
    monomer (AlCl4-) and dimer (Al2Cl7-) species; ``ratios`` lists the
    r = n(AlCl3)/n(cation Cl) of interest.
``liquid``
    a neat liquid or a neutral mixture (force-field validation: densities);
    ``solvent`` maps species to mole fractions; sizes are molecule counts.

``species`` lists species by name (looked up in ``systems/_species.yaml``)
or as full mappings. Unknown keys anywhere are errors: a typo must never be
silently ignored.

``ion_parameters`` (optional) picks the Lennard-Jones set of the metal
cations Li+, Mg2+, Ca2+ (see :data:`ION_PARAMETER_SETS` and
docs/forcefields.md): every species whose force field is one of the ion-set
files gets the chosen set's file. Default :data:`DEFAULT_ION_PARAMETERS`.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from solvflow.errors import SpecError, UnknownSystemError
from solvflow.resources import data_dir
from solvflow.species import Species, validate_species

KINDS = ("salt_solution", "chloroaluminate", "liquid")
LIBRARY_FILE = "_species.yaml"
# Metal-cation LJ sets (same residues LI, MG, CA in each file; provenance in each file's <Info>).
ION_PARAMETER_SETS = {
    "aqvist": "ions.xml",
    "li_merz_hfe": "ions_li_merz_hfe.xml",
    "li_merz_iod": "ions_li_merz_iod.xml",
}
DEFAULT_ION_PARAMETERS = "aqvist"

_COMMON_KEYS = {"name", "title", "kind", "provenance", "temperature_K", "charge_scale", "species",
                "ion_parameters"}
_KIND_KEYS = {
    "salt_solution": {"salt", "solvent", "concentrations_M"},
    "chloroaluminate": {"ions", "ratios"},
    "liquid": {"solvent"},
}
_REQUIRED = {
    "salt_solution": {"name", "kind", "species", "salt", "solvent"},
    "chloroaluminate": {"name", "kind", "species", "ions"},
    "liquid": {"name", "kind", "species", "solvent"},
}
_PROVENANCE_KEYS = {"source", "reference", "notes"}
_SPECIES_KEYS = {
    "name", "smiles", "residue", "charge", "role", "forcefield", "sites",
    "density_g_cm3", "molar_volume_cm3_mol", "source",
}
_SPECIES_REQUIRED = {"smiles", "residue", "charge", "role", "forcefield"}
_ION_ROLES = ("cation", "chloride", "monomer", "dimer")


@dataclass(frozen=True)
class SystemSpec:
    """A validated electrolyte system (see module docstring)."""

    name: str
    kind: str
    species: tuple[Species, ...]
    title: str = ""
    provenance: dict[str, str] = field(default_factory=dict)
    temperature_K: float = 298.15
    charge_scale: float = 1.0
    ion_parameters: str = DEFAULT_ION_PARAMETERS
    salt: dict[str, int] = field(default_factory=dict)
    solvent: dict[str, float] = field(default_factory=dict)
    concentrations_M: tuple[float, ...] = ()
    ions: dict[str, str] = field(default_factory=dict)
    ratios: tuple[float, ...] = ()
    path: Path | None = None

    def get(self, name: str) -> Species:
        """The species called ``name`` (raises :class:`SpecError` naming the known ones)."""
        for sp in self.species:
            if sp.name == name:
                return sp
        known = [s.name for s in self.species]
        raise SpecError(f"system {self.name!r} has no species {name!r}; it has {known}")

    @property
    def cation(self) -> Species | None:
        """The species whose solvation shells are analysed (None for a neat liquid)."""
        if self.kind == "chloroaluminate":
            return self.get(self.ions["cation"])
        if self.kind == "liquid":
            return None
        return next(self.get(n) for n in self.salt if self.get(n).role == "cation")

    def to_dict(self) -> dict[str, Any]:
        """Fully resolved plain-data form (species expanded), for spec.yaml."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "title": self.title}
        out["provenance"] = dict(self.provenance)
        out["temperature_K"] = self.temperature_K
        out["charge_scale"] = self.charge_scale
        out["ion_parameters"] = self.ion_parameters
        if self.kind == "salt_solution":
            out["salt"] = dict(self.salt)
            out["solvent"] = dict(self.solvent)
            out["concentrations_M"] = list(self.concentrations_M)
        elif self.kind == "liquid":
            out["solvent"] = dict(self.solvent)
        else:
            out["ions"] = dict(self.ions)
            out["ratios"] = list(self.ratios)
        out["species"] = [sp.to_dict() for sp in self.species]
        return out


def available_systems() -> list[str]:
    """Short names of the shipped systems."""
    return sorted(
        p.stem for p in data_dir("systems").glob("*.yaml") if not p.name.startswith("_")
    )


def load_system(system: str | Path | SystemSpec, *, chemistry: bool = True) -> SystemSpec:
    """Load and validate a system by short name (``"lifsi_dme"``) or path.

    ``chemistry=False`` skips the RDKit checks of each species (SMILES, formal charge,
    site SMARTS) and so the RDKit import: for listings (``solvflow systems``) only.
    """
    if isinstance(system, SystemSpec):
        return system
    path = _locate(system)
    raw = _read_yaml(path)
    return parse_system(raw, where=str(path), base_dir=path.parent, chemistry=chemistry)


def _locate(system: str | Path) -> Path:
    candidate = Path(system)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise UnknownSystemError(f"system file {str(candidate)!r} does not exist")
        return candidate
    shipped = data_dir("systems") / f"{system}.yaml"
    if shipped.is_file() and not str(system).startswith("_"):
        return shipped
    names = available_systems()
    hint = difflib.get_close_matches(str(system), names, n=1)
    extra = f"; did you mean {hint[0]!r}?" if hint else ""
    raise UnknownSystemError(
        f"unknown system {str(system)!r}{extra} Shipped systems: {', '.join(names)} "
        "(or give the path of a .yaml file)"
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        # libyaml's loader when built (same safe subset, ~20x faster than pure Python)
        raw = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping of keys at the top level")
    return raw


def check_keys(mapping: dict[str, Any], allowed: set[str], where: str) -> None:
    """Raise :class:`SpecError` for keys outside ``allowed`` (with a suggestion)."""
    for key in mapping:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise SpecError(
                f"{where}: unknown key {key!r}{extra}; allowed keys: {', '.join(sorted(allowed))}"
            )


def species_library() -> dict[str, dict[str, Any]]:
    """The shipped species definitions by name."""
    raw = _read_yaml(data_dir("systems") / LIBRARY_FILE)
    lib = raw.get("species")
    if not isinstance(lib, dict):
        raise SpecError(f"{LIBRARY_FILE}: expected a 'species' mapping")
    return lib


def parse_system(raw: dict[str, Any], where: str, base_dir: Path | None = None, *,
                 chemistry: bool = True) -> SystemSpec:
    """Validate a system mapping (as read from YAML) into a :class:`SystemSpec`."""
    kind = raw.get("kind")
    if kind not in KINDS:
        raise SpecError(f"{where}: 'kind' is {kind!r}; allowed: {', '.join(KINDS)}")
    check_keys(raw, _COMMON_KEYS | _KIND_KEYS[kind], where)
    missing = sorted(_REQUIRED[kind] - set(raw))
    if missing:
        raise SpecError(f"{where}: missing required key(s): {', '.join(missing)}")
    provenance = raw.get("provenance") or {}
    if not isinstance(provenance, dict):
        raise SpecError(f"{where}: 'provenance' must be a mapping (source, reference, notes)")
    check_keys(provenance, _PROVENANCE_KEYS, f"{where}: provenance")
    ion_set = _ion_parameters(raw.get("ion_parameters", DEFAULT_ION_PARAMETERS), where)
    species = _apply_ion_parameters(_parse_species_list(raw["species"], where, base_dir,
                                                         chemistry), ion_set)
    spec = SystemSpec(
        name=_string(raw["name"], "name", where),
        kind=kind,
        title=str(raw.get("title", "")),
        provenance={k: str(v) for k, v in provenance.items()},
        temperature_K=_positive(raw.get("temperature_K", 298.15), "temperature_K", where),
        charge_scale=_charge_scale(raw.get("charge_scale", 1.0), where),
        ion_parameters=ion_set,
        species=species,
        path=Path(where) if base_dir else None,
    )
    if kind == "salt_solution":
        return _parse_salt_solution(raw, spec, where)
    if kind == "liquid":
        return _parse_liquid(raw, spec, where)
    return _parse_chloroaluminate(raw, spec, where)


def _parse_liquid(raw: dict[str, Any], spec: SystemSpec, where: str) -> SystemSpec:
    solvent = _solvent_fractions(raw["solvent"], spec, where)
    unused = [sp.name for sp in spec.species if sp.name not in solvent]
    if unused:
        raise SpecError(f"{where}: species {unused} are listed but not in 'solvent'")
    return _replace(spec, solvent=solvent)


def _parse_species_list(entries: Any, where: str, base_dir: Path | None,
                        chemistry: bool = True) -> tuple[Species, ...]:
    if not isinstance(entries, list) or not entries:
        raise SpecError(f"{where}: 'species' must be a non-empty list")
    library: dict[str, dict[str, Any]] | None = None
    out: list[Species] = []
    for entry in entries:
        if isinstance(entry, str):
            library = library if library is not None else species_library()
            if entry not in library:
                hint = difflib.get_close_matches(entry, sorted(library), n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise SpecError(
                    f"{where}: unknown species {entry!r}{extra}; the library has "
                    f"{', '.join(sorted(library))}, or define it in full (keys: smiles, "
                    "residue, charge, role, forcefield, ...)"
                )
            out.append(_make_species(entry, library[entry], f"{LIBRARY_FILE}: {entry}", None,
                                     chemistry))
        elif isinstance(entry, dict):
            name = _string(entry.get("name"), "species name", where)
            out.append(_make_species(name, entry, f"{where}: species {name}", base_dir,
                                     chemistry))
        else:
            raise SpecError(f"{where}: each species is a name or a mapping, got {entry!r}")
    _check_unique(out, where)
    return tuple(out)


def _make_species(name: str, d: dict[str, Any], where: str, base_dir: Path | None,
                  chemistry: bool = True) -> Species:
    check_keys(d, _SPECIES_KEYS, where)
    missing = sorted(_SPECIES_REQUIRED - set(d))
    if missing:
        raise SpecError(f"{where}: missing required key(s): {', '.join(missing)}")
    charge = d["charge"]
    if not isinstance(charge, int) or isinstance(charge, bool):
        raise SpecError(f"{where}: charge must be an integer, got {charge!r}")
    forcefield = str(d["forcefield"])
    if base_dir is not None and ("/" in forcefield or (base_dir / forcefield).is_file()):
        local = (base_dir / forcefield).resolve()
        forcefield = str(local) if local.is_file() else forcefield
    sp = Species(
        name=name,
        smiles=str(d["smiles"]),
        residue=str(d["residue"]),
        charge=charge,
        role=str(d["role"]),
        forcefield=forcefield,
        sites=d.get("sites"),
        density_g_cm3=d.get("density_g_cm3"),
        molar_volume_cm3_mol=d.get("molar_volume_cm3_mol"),
        source=str(d.get("source", "")),
    )
    validate_species(sp, where, chemistry=chemistry)
    return sp


def _check_unique(species: list[Species], where: str) -> None:
    for attr in ("name", "residue"):
        seen: set[str] = set()
        for sp in species:
            value = getattr(sp, attr)
            if value in seen:
                raise SpecError(f"{where}: two species share the {attr} {value!r}")
            seen.add(value)


def _parse_salt_solution(raw: dict[str, Any], spec: SystemSpec, where: str) -> SystemSpec:
    salt = raw["salt"]
    if not isinstance(salt, dict) or not salt:
        raise SpecError(f"{where}: 'salt' must map species to counts, e.g. {{Mg: 1, TFSI: 2}}")
    for name, n in salt.items():
        sp = spec.get(str(name))
        if sp.role == "solvent":
            raise SpecError(f"{where}: salt species {name!r} has role 'solvent'")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise SpecError(f"{where}: salt count of {name!r} must be a positive integer")
    net = sum(spec.get(n).charge * k for n, k in salt.items())
    if net != 0:
        detail = " + ".join(f"{k} x {n} ({spec.get(n).charge:+d})" for n, k in salt.items())
        raise SpecError(f"{where}: the salt is not charge-neutral: {detail} = {net:+d}")
    if not any(spec.get(n).role == "cation" for n in salt):
        raise SpecError(f"{where}: the salt has no species with role 'cation'")
    solvent = _solvent_fractions(raw["solvent"], spec, where)
    used = set(salt) | set(solvent)
    unused = [sp.name for sp in spec.species if sp.name not in used]
    if unused:
        raise SpecError(f"{where}: species {unused} are listed but neither in 'salt' nor 'solvent'")
    concentrations = tuple(
        _positive(c, "concentrations_M", where) for c in raw.get("concentrations_M", [])
    )
    return _replace(spec, salt=dict(salt), solvent=solvent, concentrations_M=concentrations)


def _solvent_fractions(solvent: Any, spec: SystemSpec, where: str) -> dict[str, float]:
    if isinstance(solvent, str):
        solvent = {solvent: 1.0}
    if not isinstance(solvent, dict) or not solvent:
        raise SpecError(f"{where}: 'solvent' must map solvent species to mole fractions")
    for name, x in solvent.items():
        if spec.get(str(name)).role != "solvent":
            raise SpecError(f"{where}: solvent {name!r} does not have role 'solvent'")
        _positive(x, f"solvent mole fraction of {name}", where)
    total = float(sum(solvent.values()))
    if abs(total - 1.0) > 1e-6:
        raise SpecError(f"{where}: solvent mole fractions sum to {total:g}, not 1")
    return {str(k): float(v) for k, v in solvent.items()}


def _parse_chloroaluminate(raw: dict[str, Any], spec: SystemSpec, where: str) -> SystemSpec:
    ions = raw["ions"]
    if not isinstance(ions, dict):
        raise SpecError(f"{where}: 'ions' must map {', '.join(_ION_ROLES)} to species names")
    check_keys(ions, set(_ION_ROLES), f"{where}: ions")
    missing = [r for r in _ION_ROLES if r not in ions]
    if missing:
        raise SpecError(f"{where}: 'ions' lacks {', '.join(missing)}")
    expected = {"cation": 1, "chloride": -1, "monomer": -1, "dimer": -1}
    for role, name in ions.items():
        sp = spec.get(str(name))
        if sp.charge != expected[role]:
            raise SpecError(
                f"{where}: ions.{role} {name!r} has charge {sp.charge:+d}; "
                f"expected {expected[role]:+d}"
            )
    ratios = tuple(_positive(r, "ratios", where) for r in raw.get("ratios", []))
    return _replace(spec, ions={k: str(v) for k, v in ions.items()}, ratios=ratios)


def _replace(spec: SystemSpec, **changes: Any) -> SystemSpec:
    from dataclasses import replace

    return replace(spec, **changes)


def _string(value: Any, what: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where}: {what} must be a non-empty string, got {value!r}")
    return value


def _positive(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{where}: {what} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise SpecError(f"{where}: {what} must be positive and finite, got {value!r}")
    return float(value)


def _ion_parameters(value: Any, where: str) -> str:
    if value not in ION_PARAMETER_SETS:
        raise SpecError(
            f"{where}: ion_parameters {value!r} is not a known ion set; allowed: "
            f"{', '.join(ION_PARAMETER_SETS)} (see docs/forcefields.md)"
        )
    return str(value)


def _apply_ion_parameters(species: tuple[Species, ...], ion_set: str) -> tuple[Species, ...]:
    from dataclasses import replace

    files = set(ION_PARAMETER_SETS.values())
    chosen = ION_PARAMETER_SETS[ion_set]
    return tuple(replace(sp, forcefield=chosen) if sp.forcefield in files else sp
                 for sp in species)


def with_ion_parameters(spec: SystemSpec, ion_set: str) -> SystemSpec:
    """``spec`` with its metal cations switched to the ion set ``ion_set``.

    Raises :class:`SpecError` naming the allowed sets for an unknown name.
    """
    ion_set = _ion_parameters(ion_set, f"system {spec.name!r}")
    return _replace(spec, ion_parameters=ion_set,
                    species=_apply_ion_parameters(spec.species, ion_set))


def _charge_scale(value: Any, where: str) -> float:
    scale = _positive(value, "charge_scale", where)
    if scale > 1.0 or scale < 0.5:
        raise SpecError(f"{where}: charge_scale {scale:g} is outside the allowed 0.5-1.0")
    return scale
