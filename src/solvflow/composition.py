"""From a requested concentration to integer molecule counts and a box size.

Salt solutions take one of three measures:

molarity (mol/L of solution)
    needs a volume: the initial box uses additive molar volumes (solvents:
    M/rho of the pure liquid; ions: the species' estimate). The molarity
    actually reached is measured later from the equilibrated volume.
molality (mol/kg of solvent)
    exact: n_solvent = n_salt / (m * M_solvent).
salt:solvent molar ratio
    exact: n_solvent = n_salt / R.

Chloroaluminate melts take r = n(AlCl3)/n(cation Cl) and the stoichiometric
speciation: r <= 1 gives Cl- (1 - r) and AlCl4- (r) per cation;
1 <= r <= 2 gives AlCl4- (2 - r) and Al2Cl7- (r - 1).

Neat liquids (kind ``liquid``) take a molecule count only.

Counts are integers, so every result carries the nominal (requested) and
the achieved (from the integer counts) composition.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from solvflow.constants import AVOGADRO
from solvflow.errors import CompositionError
from solvflow.spec import SystemSpec
from solvflow.species import molar_mass, molar_volume, n_atoms

MAX_MOLARITY_M = 20.0
MAX_MOLALITY_MOL_KG = 50.0
MAX_ATOMS = 3_000_000
DEFAULT_TARGET_ATOMS = 5000
CM3_PER_NM3 = 1e-21


@dataclass(frozen=True)
class Composition:
    """Integer counts of every species and the initial cubic box.

    Attributes
    ----------
    mode : str
        ``"molarity"``, ``"molality"``, ``"ratio"`` or ``"lewis_ratio"``.
    requested : float
        The value asked for, in the mode's unit (M, mol/kg, -, -).
    n_salt : int
        Salt formula units (chloroaluminates: cations).
    counts : dict[str, int]
        Molecules of each species, in system order (zero counts omitted).
    nominal, achieved : dict[str, float]
        The composition measures asked for and reached with integer counts.
    box_nm : float
        Edge of the initial cubic box (nm), from the estimated volume.
    """

    system: str
    mode: str
    requested: float
    n_salt: int
    counts: dict[str, int]
    nominal: dict[str, float]
    achieved: dict[str, float]
    box_nm: float
    volume_nm3: float
    mass_g_mol: float = field(repr=False)
    n_atoms: int = 0

    @property
    def estimated_density_g_cm3(self) -> float:
        return self.mass_g_mol / AVOGADRO / (self.volume_nm3 * CM3_PER_NM3)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for spec.yaml."""
        return {
            "mode": self.mode,
            "requested": self.requested,
            "n_salt": self.n_salt,
            "counts": dict(self.counts),
            "nominal": dict(self.nominal),
            "achieved": dict(self.achieved),
            "box_nm": round(self.box_nm, 6),
            "estimated_density_g_cm3": round(self.estimated_density_g_cm3, 4),
            "n_atoms": self.n_atoms,
        }


def compose(
    spec: SystemSpec,
    *,
    concentration: float | None = None,
    molality: float | None = None,
    ratio: float | None = None,
    n_salt: int | None = None,
    target_atoms: int = DEFAULT_TARGET_ATOMS,
) -> Composition:
    """Counts and box for ``spec`` at one composition.

    Exactly one of ``concentration`` (mol/L), ``molality`` (mol/kg) and
    ``ratio`` may be given; for a salt solution ``ratio`` is the salt:solvent
    molar ratio, for a chloroaluminate it is r = n(AlCl3)/n(cation Cl). With
    none, the system's first listed concentration or ratio is used.
    ``n_salt`` (salt formula units; chloroaluminate cations) defaults to the
    number that gives about ``target_atoms`` atoms.
    """
    mode, value = _choose_mode(spec, concentration, molality, ratio)
    if n_salt is not None:
        if isinstance(n_salt, bool) or not isinstance(n_salt, int) or n_salt < 1:
            raise CompositionError(f"n_salt must be a positive integer, got {n_salt!r}")
    def counts_at(units: int) -> dict[str, int]:
        if mode == "neat":
            return _split_solvent(spec, units)
        if mode == "lewis_ratio":
            return _chloroaluminate_counts(spec, value, units)
        return _salt_solution_counts(spec, mode, value, units)

    n = n_salt or _default_n(spec, counts_at(1000), 1000, target_atoms)
    counts = counts_at(n)
    _check_nothing_rounds_away(spec, mode, value, n, counts, counts_at)
    return _finish(spec, mode, value, n, counts)


def _expected_species(spec: SystemSpec, value: float) -> list[str]:
    """Species the composition asks for (a positive share), whatever the box size."""
    if spec.kind == "chloroaluminate":
        shares = speciation(value)
        present = [spec.ions[role] for role in ("chloride", "monomer", "dimer") if shares[role] > 0]
        return [spec.ions["cation"], *present]
    return [*spec.salt, *spec.solvent]


def _check_nothing_rounds_away(
    spec: SystemSpec, mode: str, value: float, n: int, counts: dict[str, int],
    counts_at: Callable[[int], dict[str, int]],
) -> None:
    """Raise if a species the composition asks for rounds to zero molecules at ``n`` units."""
    expected = _expected_species(spec, value)
    missing = [name for name in expected if counts.get(name, 0) < 1]
    if not missing:
        return
    unit = "molecules" if mode == "neat" else "salt units"
    if spec.kind == "chloroaluminate":
        unit = f"{spec.ions['cation']} cations"
    found = None
    for units in range(1, MAX_ATOMS + 1):
        trial = counts_at(units)
        atoms = sum(c * n_atoms(spec.get(s)) for s, c in trial.items())
        if atoms > MAX_ATOMS:
            break
        if all(trial.get(name, 0) >= 1 for name in expected):
            found = _finish(spec, mode, value, units, trial)
            break
    names = ", ".join(missing)
    where = f"{mode.replace('_', ' ')} {value:g} with {n} {unit}"
    if found is None:
        raise CompositionError(
            f"{names} rounds to 0 molecules at {where}, and no box under {MAX_ATOMS:,} atoms "
            "includes it: raise its share in the system file or leave it out"
        )
    raise CompositionError(
        f"{names} rounds to 0 molecules at {where} (it would be silently dropped); the "
        f"smallest box that includes it has {found.n_salt} {unit} ({found.n_atoms:,} atoms, "
        f"box {found.box_nm:.2f} nm): use --n-salt {found.n_salt} or more"
    )


def _choose_mode(
    spec: SystemSpec, concentration: float | None, molality: float | None, ratio: float | None
) -> tuple[str, float]:
    given = {k: v for k, v in
             (("concentration", concentration), ("molality", molality), ("ratio", ratio))
             if v is not None}
    if len(given) > 1:
        raise CompositionError(
            f"give only one of concentration, molality and ratio (got {', '.join(given)})"
        )
    if spec.kind == "liquid":
        if given:
            raise CompositionError(
                f"{spec.name} is a neat liquid: give only the number of molecules (n_salt)"
            )
        return "neat", 1.0
    if spec.kind == "chloroaluminate":
        if concentration is not None or molality is not None:
            raise CompositionError(
                f"{spec.name} is a chloroaluminate melt: give ratio r = n(AlCl3)/n("
                f"{spec.ions['cation']}Cl) with 0 <= r <= 2, not a concentration or molality"
            )
        value = ratio if ratio is not None else _first(spec.ratios, spec, "ratios")
        return "lewis_ratio", _check_lewis_ratio(value)
    if concentration is not None:
        return "molarity", _check_range(concentration, "concentration", "M", MAX_MOLARITY_M)
    if molality is not None:
        return "molality", _check_range(molality, "molality", "mol/kg", MAX_MOLALITY_MOL_KG)
    if ratio is not None:
        return "ratio", _check_range(ratio, "salt:solvent ratio", "", 10.0)
    return "molarity", _first(spec.concentrations_M, spec, "concentrations_M")


def _first(values: tuple[float, ...], spec: SystemSpec, key: str) -> float:
    if not values:
        raise CompositionError(f"{spec.name} lists no {key}: give the composition explicitly")
    return values[0]


def _check_range(value: Any, what: str, unit: str, maximum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CompositionError(f"{what} must be a finite number, got {value!r}")
    if value <= 0:
        raise CompositionError(f"{what} must be positive, got {value:g} {unit}".rstrip())
    if value > maximum:
        raise CompositionError(
            f"{what} {value:g} {unit} is beyond the allowed maximum {maximum:g} {unit}".rstrip()
        )
    return float(value)


def _check_lewis_ratio(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CompositionError(f"ratio r must be a finite number, got {value!r}")
    if not 0.0 <= value <= 2.0:
        raise CompositionError(
            f"ratio r = n(AlCl3)/n(cation Cl) must be in [0, 2] (r > 2 would need "
            f"Al3Cl10- and higher species, not modelled); got {value:g}"
        )
    return float(value)


def _salt_solution_counts(spec: SystemSpec, mode: str, value: float, n: int) -> dict[str, int]:
    counts = {name: k * n for name, k in spec.salt.items()}
    solvents = {name: spec.get(name) for name in spec.solvent}
    mean_mass = sum(x * molar_mass(solvents[s]) for s, x in spec.solvent.items())
    if mode == "molarity":
        volume_cm3 = n * 1000.0 / value  # cm^3 per mole of boxes, like the molar volumes
        ion_volume = sum(c * molar_volume(spec.get(s)) for s, c in counts.items())
        solvent_volume = volume_cm3 - ion_volume
        if solvent_volume <= 0:
            limit = n * 1000.0 / ion_volume
            raise CompositionError(
                f"{value:g} M {spec.name} leaves no room for solvent: the ions alone "
                f"(estimated molar volumes) fill the box above about {limit:.1f} M"
            )
        mean_volume = sum(x * molar_volume(solvents[s]) for s, x in spec.solvent.items())
        total_solvent = solvent_volume / mean_volume
    elif mode == "molality":
        total_solvent = n / (value * mean_mass / 1000.0)
    else:
        total_solvent = n / value
    return counts | _split_solvent(spec, total_solvent)


def _split_solvent(spec: SystemSpec, total: float) -> dict[str, int]:
    """Integer solvent counts summing to round(total), by largest remainder (never negative)."""
    n_total = max(0, round(total))
    exact = {name: n_total * x for name, x in spec.solvent.items()}
    out = {name: int(v) for name, v in exact.items()}
    by_remainder = sorted(exact, key=lambda name: exact[name] - out[name], reverse=True)
    for name in by_remainder[: n_total - sum(out.values())]:
        out[name] += 1
    return out


def _chloroaluminate_counts(spec: SystemSpec, r: float, n: int) -> dict[str, int]:
    ions = spec.ions
    if r <= 1.0:
        n_mono = round(r * n)
        by_role = {"cation": n, "chloride": n - n_mono, "monomer": n_mono, "dimer": 0}
    else:
        n_dimer = round((r - 1.0) * n)
        by_role = {"cation": n, "chloride": 0, "monomer": n - n_dimer, "dimer": n_dimer}
    return {ions[role]: by_role[role] for role in ("cation", "chloride", "monomer", "dimer")}


def _default_n(spec: SystemSpec, per_unit: dict[str, int], units: int, target: int) -> int:
    atoms = sum(c * n_atoms(spec.get(s)) for s, c in per_unit.items())
    return max(1, round(target * units / atoms)) if atoms else 1


def _finish(
    spec: SystemSpec, mode: str, value: float, n: int, counts: dict[str, int]
) -> Composition:
    if spec.kind == "salt_solution" and sum(counts[s] for s in spec.solvent) < 1:
        raise CompositionError(
            f"{mode} {value:g} with {n} salt units gives no solvent molecule: "
            "use more salt units (--n-salt) or a lower concentration"
        )
    counts = {sp.name: counts[sp.name] for sp in spec.species if counts.get(sp.name, 0) > 0}
    net = sum(spec.get(s).charge * c for s, c in counts.items())
    if net != 0:  # guarded by spec validation; a failure here is a bug in the counts
        raise CompositionError(f"the composition {counts} has net charge {net:+d}")
    total_atoms = sum(c * n_atoms(spec.get(s)) for s, c in counts.items())
    if total_atoms > MAX_ATOMS:
        raise CompositionError(
            f"the box would hold {total_atoms:,} atoms (limit {MAX_ATOMS:,}): "
            "use fewer salt units (--n-salt) or a higher concentration"
        )
    volume_cm3_mol = sum(c * molar_volume(spec.get(s)) for s, c in counts.items())
    volume_nm3 = volume_cm3_mol / AVOGADRO / CM3_PER_NM3
    mass = sum(c * molar_mass(spec.get(s)) for s, c in counts.items())
    nominal, achieved = _measures(spec, mode, value, n, counts, volume_nm3)
    return Composition(
        system=spec.name, mode=mode, requested=value, n_salt=n, counts=counts,
        nominal=nominal, achieved=achieved, box_nm=volume_nm3 ** (1.0 / 3.0),
        volume_nm3=volume_nm3, mass_g_mol=mass, n_atoms=total_atoms,
    )


def _measures(
    spec: SystemSpec, mode: str, value: float, n: int, counts: dict[str, int], volume_nm3: float
) -> tuple[dict[str, float], dict[str, float]]:
    if spec.kind == "chloroaluminate":
        return _lewis_measures(spec, value, counts)
    if spec.kind == "liquid":
        total = sum(counts.values())
        fractions = {f"x_{name}": round(c / total, 6) for name, c in counts.items()}
        return {f"x_{name}": x for name, x in spec.solvent.items()}, fractions
    n_solvent = sum(counts.get(s, 0) for s in spec.solvent)
    solvent_kg = sum(counts.get(s, 0) * molar_mass(spec.get(s)) for s in spec.solvent) / 1000.0
    achieved = {
        "molarity_M": n / AVOGADRO / (volume_nm3 * 1e-24),
        "molality_mol_kg": n / solvent_kg,
        "salt_solvent_ratio": n / n_solvent,
    }
    achieved |= {f"x_{s}": counts.get(s, 0) / n_solvent for s in spec.solvent}
    key = {"molarity": "molarity_M", "molality": "molality_mol_kg", "ratio": "salt_solvent_ratio"}
    nominal = {key[mode]: value} | {f"x_{s}": x for s, x in spec.solvent.items()}
    return nominal, {k: round(v, 6) for k, v in achieved.items()}


def _lewis_measures(
    spec: SystemSpec, r: float, counts: dict[str, int]
) -> tuple[dict[str, float], dict[str, float]]:
    ions = spec.ions
    n_cat = counts[ions["cation"]]
    n_al = counts.get(ions["monomer"], 0) + 2 * counts.get(ions["dimer"], 0)
    r_achieved = n_al / n_cat
    nominal = {"r": r, "x_AlCl3": r / (1.0 + r)}
    achieved = {"r": round(r_achieved, 6), "x_AlCl3": round(r_achieved / (1.0 + r_achieved), 6)}
    for role in ("chloride", "monomer", "dimer"):
        achieved[f"{ions[role]}_per_cation"] = round(counts.get(ions[role], 0) / n_cat, 6)
    return nominal, achieved


def speciation(r: float) -> dict[str, float]:
    """Stoichiometric anions per cation at r = n(AlCl3)/n(cation Cl), 0 <= r <= 2.

    Returns ``{"chloride": ..., "monomer": ..., "dimer": ...}`` (AlCl4- is the
    monomer, Al2Cl7- the dimer); the three sum to 1.
    """
    r = _check_lewis_ratio(r)
    if r <= 1.0:
        return {"chloride": 1.0 - r, "monomer": r, "dimer": 0.0}
    return {"chloride": 0.0, "monomer": 2.0 - r, "dimer": r - 1.0}
