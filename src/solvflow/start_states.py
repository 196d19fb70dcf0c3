"""Starting states of a salt-solution box: ``random``, ``dissociated`` or ``paired``.

Divalent cations exchange ligands far more slowly than a run lasts, so the
start can decide the answer; building the same system from two opposite
starts is the convergence check.

random
    Every molecule placed independently by Packmol (the default).
dissociated
    At t = 0 no anion coordinating site (the species' ``sites``) lies within
    ``distance_nm`` (default 0.5 nm) of any cation centre, minimum image.
    Two Packmol passes: (1) the ions alone, each cation centre given the
    Packmol radius ``distance + 0.01 nm - tolerance/2`` so that every anion
    atom (sites included) stays ``distance + 0.01 nm`` away; a side effect is
    that cation centres start at least ``2 x radius`` apart (0.82 nm at
    0.5 nm); (2) the ions fixed, the solvent packed around them with the
    usual 0.2 nm tolerance, filling the space next to the cations.
paired
    Every cation starts in contact with exactly one anion: ion pairs are
    pre-assembled (the cation ``distance_nm`` from one anion site atom, on
    the side farthest from the anion's other atoms) and packed as rigid
    units. The default contact distance is the cation's first-shell
    cation-O distance (:data:`CONTACT_NM`). A 1:2 salt such as Mg(TFSI)2
    pairs one anion per cation (a [MgTFSI]+ contact ion pair, the CIP of the
    analysis); the second anion is packed freely. Needs a monatomic cation
    and at least as many anions as cations.

Both non-random starts are checked on the final packed coordinates
(:func:`check_start`); a start that cannot be met is a :class:`BuildError`
saying what was asked, what was found and what to try. Chloroaluminate melts
and neat liquids take only ``random``: a melt has no solvent to separate or
pair the ions with (every ion is in contact with counter-ions), and a neat
liquid has no ions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvflow.errors import BuildError, InputError, PackmolError
from solvflow.packing import PACKMOL_TOLERANCE_A, Structure, pack, structure_of
from solvflow.species import Species, atom_names, element_symbols, n_atoms, site_indices

START_STATES = ("random", "dissociated", "paired")
DISSOCIATED_DEFAULT_NM = 0.5
DISSOCIATED_RANGE_NM = (0.3, 1.5)
CONTACT_RANGE_NM = (0.15, 0.35)
#: Cation - anion site contact distance of a paired start (nm), by cation element.
CONTACT_NM = {"Li": 0.200, "Mg": 0.207, "Ca": 0.240}
CONTACT_SOURCE = ("first-shell cation-O distances, shared/reference/experimental-data.md: "
                  "Li-O about 1.9-2.0 A (CN 4-5), Mg-O about 2.07 A (CN 6), Ca-O about "
                  "2.4 A (CN 7-8)")
PACK_MARGIN_NM = 0.01  # Packmol meets its distances to about 0.01 A; the check is exact
CONTACT_SLACK_NM = 0.001  # 5-decimal XYZ and 3-decimal PDB rounding of a rigid ion pair
_N_DIRECTIONS = 256
FIXED_IONS_TIMEOUT_SCALE = 4.0


@dataclass(frozen=True)
class StartState:
    """A requested starting state.

    Attributes
    ----------
    state : str
        ``"random"``, ``"dissociated"`` or ``"paired"``.
    distance_nm : float or None
        dissociated: the smallest allowed cation - anion site distance;
        paired: the cation - anion site contact distance; random: None.
    """

    state: str = "random"
    distance_nm: float | None = None

    def request(self) -> dict[str, Any]:
        """The part that enters the input hash."""
        return {"state": self.state, "distance_nm": self.distance_nm}


def resolve_start(state: Any, distance_nm: Any, spec: Any) -> StartState:
    """Validate ``state`` and ``distance_nm`` for ``spec``; fill the default distance.

    Raises :class:`InputError` naming the allowed values.
    """
    if state is None:
        state = "random"
    if not isinstance(state, str) or state not in START_STATES:
        raise InputError(f"start {state!r} is not allowed; choose one of: "
                         f"{', '.join(START_STATES)}")
    if state == "random":
        if distance_nm is not None:
            raise InputError("a start distance applies only to --start dissociated or paired")
        return StartState()
    if spec.kind != "salt_solution":
        what = ("a chloroaluminate melt: it has no solvent to separate or pair its ions with "
                "(every ion touches counter-ions)" if spec.kind == "chloroaluminate"
                else "a neat liquid: it has no ions")
        raise InputError(f"--start {state} needs a salt solution; {spec.name} is {what}. "
                         "Only --start random is allowed")
    if state == "paired":
        _check_pairable(spec)
        default = _default_contact(spec) if distance_nm is None else 0.0
        return StartState(state, _distance(distance_nm, default, CONTACT_RANGE_NM,
                                           "contact distance of --start paired"))
    return StartState(state, _distance(distance_nm, DISSOCIATED_DEFAULT_NM, DISSOCIATED_RANGE_NM,
                                       "distance of --start dissociated"))


def _distance(value: Any, default: float, allowed: tuple[float, float], what: str) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not allowed[0] <= value <= allowed[1]:
        raise InputError(f"{what} must be a number of nm in [{allowed[0]}, {allowed[1]}], "
                         f"got {value!r}")
    return float(value)


def _salt_ions(spec: Any) -> tuple[Species, Species]:
    cations = [spec.get(n) for n in spec.salt if spec.get(n).role == "cation"]
    anions = [spec.get(n) for n in spec.salt if spec.get(n).role == "anion"]
    if len(cations) != 1 or len(anions) != 1:
        raise InputError(f"--start paired needs a salt of one cation and one anion species; "
                         f"{spec.name} has {len(cations)} and {len(anions)}")
    return cations[0], anions[0]


def _check_pairable(spec: Any) -> None:
    cation, anion = _salt_ions(spec)
    if n_atoms(cation) != 1:
        raise InputError(f"--start paired needs a monatomic cation; {cation.name} has "
                         f"{n_atoms(cation)} atoms")
    if spec.salt[anion.name] < spec.salt[cation.name]:
        raise InputError(f"--start paired puts one anion in contact with each cation, but "
                         f"{spec.name} has fewer {anion.name} than {cation.name}")


def _default_contact(spec: Any) -> float:
    cation, _ = _salt_ions(spec)
    element = element_symbols(cation.smiles, cation.name)[0]
    if element not in CONTACT_NM:
        raise InputError(f"no default contact distance for {element} (known: "
                         f"{', '.join(CONTACT_NM)}); give --start-distance-nm")
    return CONTACT_NM[element]


def pack_start(start: StartState, species: list[Species], molecules: list[Any],
               counts: list[int], *, box_nm: float, seed: int, workdir: Path,
               nloop: int | None = None) -> tuple[NDArray[np.float64], dict[str, Any]]:
    """Pack a dissociated or paired box.

    Returns
    -------
    coords : ndarray, shape (n_atoms, 3), float64, Angstrom
        In topology order (species by species, molecule by molecule).
    record : dict
        How the start was made (for spec.yaml's ``start``).
    """
    kw = {"box_nm": box_nm, "seed": seed, "workdir": workdir, "nloop": nloop}
    if start.state == "dissociated":
        return _pack_dissociated(start, species, molecules, counts, **kw)
    if start.state == "paired":
        return _pack_paired(start, species, molecules, counts, **kw)
    raise InputError(f"pack_start needs a dissociated or paired start, got {start.state!r}")


def _pack_dissociated(start: StartState, species: list[Species], molecules: list[Any],
                      counts: list[int], **kw: Any) -> tuple[NDArray[np.float64], dict[str, Any]]:
    assert start.distance_nm is not None
    radius_a = (start.distance_nm + PACK_MARGIN_NM) * 10.0 - PACKMOL_TOLERANCE_A / 2.0
    ions = [k for k, sp in enumerate(species) if sp.role != "solvent" and counts[k]]
    solvents = [k for k, sp in enumerate(species) if sp.role == "solvent" and counts[k]]
    first = []
    for k in ions:
        extra: tuple[str, ...] = ()
        if species[k].role == "cation":
            centre = " ".join(str(i + 1) for i in site_indices(species[k]))
            extra = (f"  atoms {centre}", f"    radius {radius_a:.4f}", "  end atoms")
        first.append(structure_of(molecules[k], counts[k], extra))
    try:
        ion_xyz = pack(first, **kw)
    except PackmolError:
        raise BuildError(
            f"--start dissociated: Packmol could not place {sum(counts[k] for k in ions)} ions "
            f"in the {kw['box_nm']:.2f} nm box with no anion atom within "
            f"{start.distance_nm:g} nm of any cation (cations then also start "
            f"{2 * radius_a / 10:.2f} nm apart): the concentration is too high for this "
            "distance; try a lower concentration, a smaller --start-distance-nm, or "
            "--start random or paired"
        ) from None
    symbols = tuple(s for st in first for _ in range(st.number) for s in st.symbols)
    # Packmol wants fixed atoms inside the box; wrapping them atom by atom changes no
    # minimum-image distance, and the whole molecules of pass 1 are put back afterwards.
    edge_a = kw["box_nm"] * 10.0
    wrapped = np.mod(ion_xyz, edge_a)
    wrapped[wrapped >= edge_a] = 0.0
    fixed = Structure(symbols, wrapped, 1, ("  fixed 0. 0. 0. 0. 0. 0.",))
    second = [fixed] + [structure_of(molecules[k], counts[k]) for k in solvents]
    try:  # solvent around fixed ions converges 1.5-4x slower than a random box (CPU time)
        coords = pack(second, **kw, timeout_scale=FIXED_IONS_TIMEOUT_SCALE) if solvents \
            else ion_xyz
    except PackmolError as exc:
        raise BuildError(f"--start dissociated: packing the solvent around the placed ions "
                         f"failed: {exc}; try a lower concentration, a smaller "
                         "--start-distance-nm, or --start random or paired") from None
    coords[: len(ion_xyz)] = ion_xyz
    layout = [(1, [(k, counts[k] * n_atoms(species[k])) for k in ions])]
    layout += [(counts[k], [(k, n_atoms(species[k]))]) for k in solvents]
    record = {"state": "dissociated", "distance_nm": start.distance_nm,
              "condition": "no anion site within distance_nm of any cation centre "
                           "(minimum image) at t = 0",
              "method": "Packmol: ions first with a cation exclusion radius, then the "
                        "solvent around the fixed ions",
              "cation_cation_min_nm": round(2 * radius_a / 10.0, 4)}
    return _assemble(layout, coords, len(species)), record


def _pack_paired(start: StartState, species: list[Species], molecules: list[Any],
                 counts: list[int], **kw: Any) -> tuple[NDArray[np.float64], dict[str, Any]]:
    assert start.distance_nm is not None
    cat = next(k for k, sp in enumerate(species) if sp.role == "cation")
    an = next(k for k, sp in enumerate(species) if sp.role == "anion")
    anion_xyz = molecules[an].GetConformer().GetPositions()
    site, position = contact_position(anion_xyz, site_indices(species[an]),
                                      start.distance_nm * 10.0)
    cat_symbols = tuple(a.GetSymbol() for a in molecules[cat].GetAtoms())
    an_symbols = tuple(a.GetSymbol() for a in molecules[an].GetAtoms())
    unit = Structure(cat_symbols + an_symbols, np.vstack([position[None, :], anion_xyz]),
                     counts[cat])
    structures = [unit]
    layout = [(counts[cat], [(cat, 1), (an, len(an_symbols))])]
    if counts[an] > counts[cat]:
        structures.append(structure_of(molecules[an], counts[an] - counts[cat]))
        layout.append((counts[an] - counts[cat], [(an, len(an_symbols))]))
    for k, sp in enumerate(species):
        if k not in (cat, an) and counts[k]:
            structures.append(structure_of(molecules[k], counts[k]))
            layout.append((counts[k], [(k, n_atoms(sp))]))
    try:
        coords = pack(structures, **kw)
    except PackmolError as exc:
        raise BuildError(f"--start paired: {exc}; try a lower concentration or --start "
                         "random") from None
    record = {"state": "paired", "distance_nm": start.distance_nm,
              "condition": "every cation centre within distance_nm of an anion site at t = 0",
              "anions_per_cation": 1,
              "contact_site": {species[an].name: atom_names(species[an])[site]},
              "distance_source": CONTACT_SOURCE}
    return _assemble(layout, coords, len(species)), record


def contact_position(xyz_a: NDArray[np.float64], sites: list[int],
                     distance_a: float) -> tuple[int, NDArray[np.float64]]:
    """Where a cation touches an anion: ``distance_a`` from one site atom, most exposed.

    Tries 256 directions around every site atom and keeps the point whose
    nearest other atom of the anion is farthest away.

    Returns
    -------
    site : int
        Index of the site atom touched.
    position : ndarray, shape (3,), Angstrom
    """
    k = np.arange(_N_DIRECTIONS) + 0.5
    polar = np.arccos(1.0 - 2.0 * k / _N_DIRECTIONS)
    azimuth = math.pi * (1.0 + 5.0**0.5) * k
    directions = np.column_stack([np.cos(azimuth) * np.sin(polar),
                                  np.sin(azimuth) * np.sin(polar), np.cos(polar)])
    best = (-1.0, sites[0], xyz_a[sites[0]])
    for site in sites:
        points = xyz_a[site] + distance_a * directions
        others = np.delete(xyz_a, site, axis=0)
        if len(others) == 0:
            return site, points[0]
        gap = np.linalg.norm(points[:, None, :] - others[None, :, :], axis=-1).min(axis=1)
        i = int(np.argmax(gap))
        if gap[i] > best[0]:
            best = (float(gap[i]), site, points[i])
    if best[0] < distance_a:
        raise BuildError(f"no point {distance_a / 10:.3f} nm from an anion site is nearer to it "
                         "than to the anion's other atoms; give a larger --start-distance-nm")
    return best[1], best[2]


def _assemble(layout: list[tuple[int, list[tuple[int, int]]]], coords: NDArray[np.float64],
              n_species: int) -> NDArray[np.float64]:
    """Reorder Packmol's output (structure by structure) into topology order."""
    per_species: list[list[NDArray[np.float64]]] = [[] for _ in range(n_species)]
    offset = 0
    for copies, parts in layout:
        width = sum(n for _, n in parts)
        block = coords[offset : offset + copies * width].reshape(copies, width, 3)
        start = 0
        for k, n in parts:
            per_species[k].append(block[:, start : start + n].reshape(-1, 3))
            start += n
        offset += copies * width
    return np.concatenate([a for arrays in per_species for a in arrays])


def ion_site_atoms(species: list[Species], counts: list[int],
                   role: str) -> NDArray[np.int64]:
    """Global atom indices (topology order) of the site atoms of every ``role`` molecule."""
    out: list[int] = []
    offset = 0
    for sp, count in zip(species, counts, strict=True):
        width = n_atoms(sp)
        if sp.role == role:
            sites = site_indices(sp)
            out += [offset + m * width + i for m in range(count) for i in sites]
        offset += count * width
    return np.asarray(out, dtype=np.int64)


def nearest_anion_site_nm(positions_nm: NDArray[np.float64], edge_nm: float,
                          cations: NDArray[np.int64],
                          anion_sites: NDArray[np.int64]) -> NDArray[np.float64]:
    """Minimum-image distance (nm) from each cation atom to its nearest anion site atom.

    Returns an array of shape (len(cations),), float64.
    """
    from scipy.spatial import cKDTree

    wrapped = np.mod(positions_nm, edge_nm)
    wrapped[wrapped >= edge_nm] = 0.0
    tree = cKDTree(wrapped[anion_sites], boxsize=edge_nm)
    distances, _ = tree.query(wrapped[cations], k=1)
    return np.asarray(distances, dtype=np.float64)


def check_start(record: dict[str, Any], species: list[Species], counts: list[int],
                positions_nm: NDArray[np.float64], edge_nm: float) -> dict[str, Any]:
    """Verify a dissociated or paired start on the packed positions; return what was measured.

    Raises :class:`BuildError` saying what was asked, what was found and what to try.
    """
    cations = ion_site_atoms(species, counts, "cation")
    nearest = nearest_anion_site_nm(positions_nm, edge_nm, cations,
                                    ion_site_atoms(species, counts, "anion"))
    distance = record["distance_nm"]
    if record["state"] == "dissociated":
        found = float(nearest.min())
        if found < distance:
            raise BuildError(
                f"--start dissociated asked for no anion site within {distance:g} nm of any "
                f"cation, but the packed box has one {found:.3f} nm from cation atom "
                f"{int(cations[np.argmin(nearest)])}: try a bigger box (--n-salt), a lower "
                "concentration, or --start random or paired"
            )
        return {"closest_anion_site_nm": round(found, 4)}
    found = float(nearest.max())
    if found > distance + CONTACT_SLACK_NM:
        raise BuildError(
            f"--start paired asked for every cation within {distance:g} nm of an anion site, "
            f"but cation atom {int(cations[np.argmax(nearest)])} is {found:.3f} nm from the "
            "nearest: try a bigger box (--n-salt), a lower concentration, or --start random"
        )
    return {"farthest_nearest_anion_site_nm": round(found, 4)}
