"""Build a run directory: RDKit conformers -> Packmol box -> topology + spec.yaml.

The box is cubic and periodic (Packmol's ``pbc``), packed with a 2.0 A
tolerance between atoms of different molecules, including across the
periodic boundary, from a random, dissociated or paired starting state
(:mod:`solvflow.start_states`). Everything random is seeded: the same seed gives the same
box (same RDKit and Packmol versions).

The run directory is written under a temporary name beside the target and
renamed when complete, so an interrupted build never leaves a half-written
run directory behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from solvflow import __version__
from solvflow.composition import Composition, compose
from solvflow.errors import BuildError, InputError, OutputExistsError
from solvflow.packing import PACKMOL_TOLERANCE_A, pack, structure_of
from solvflow.spec import SystemSpec, load_system
from solvflow.species import (
    Species,
    add_residue,
    atom_names,
    element_symbols,
    molecule,
    site_indices,
)
from solvflow.start_states import StartState, check_start, pack_start, resolve_start

PDB_ATOM_LIMIT = 99_999
MAX_DENSITY_G_CM3 = 2.5


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build` made."""

    rundir: Path
    composition: Composition
    spec: dict[str, Any]
    topology_file: Path


def build(
    system: str | Path | SystemSpec,
    *,
    output: str | Path,
    concentration: float | None = None,
    molality: float | None = None,
    ratio: float | None = None,
    n_salt: int | None = None,
    seed: int = 1,
    charge_scale: float | None = None,
    overwrite: bool = False,
    write_system: bool = True,
    cutoff_nm: float | None = None,
    packmol_nloop: int | None = None,
    start: str = "random",
    start_distance_nm: float | None = None,
) -> BuildResult:
    """Build the box for ``system`` at one composition into the run directory ``output``.

    Parameters
    ----------
    system : str, Path or SystemSpec
        Shipped short name (``"lifsi_dme"``), path of a system YAML, or a spec.
    output : str or Path
        Run directory to create. Must not exist or be empty, unless
        ``overwrite`` (then it must be a solvflow run directory).
    concentration, molality, ratio : float, optional
        One composition measure (mol/L, mol/kg, salt:solvent or AlCl3:cation Cl
        molar ratio); see :func:`solvflow.composition.compose`.
    n_salt : int, optional
        Salt formula units (chloroaluminates: organic cations).
    seed : int
        Seed of RDKit embedding and Packmol.
    charge_scale : float, optional
        Ionic charge scaling recorded for parametrisation; default: the
        system file's ``charge_scale``.
    write_system : bool
        Also write ``system.xml`` (OpenMM System; see :mod:`solvflow.forcefield`).
    cutoff_nm : float, optional
        Non-bonded cutoff (default 1.0 nm; LJ switched from 0.1 nm below it).
    packmol_nloop : int, optional
        Cap on Packmol's optimisation loops (default: Packmol's own), so an
        impossible box fails sooner.
    start : str
        Starting state (see :mod:`solvflow.start_states`): ``"random"``
        (default), ``"dissociated"`` (no anion site within
        ``start_distance_nm``, default 0.5 nm, of any cation) or ``"paired"``
        (every cation in contact with one anion, at ``start_distance_nm``,
        default the cation's first-shell distance). Salt solutions only.
    start_distance_nm : float, optional
        See ``start`` (nm).

    Returns
    -------
    BuildResult
    """
    spec = load_system(system)
    seed = _check_seed(seed)
    start_state = resolve_start(start, start_distance_nm, spec)
    settings = system_settings(spec.charge_scale if charge_scale is None else charge_scale,
                               cutoff_nm)
    scale = settings.charge_scale
    comp = compose(spec, concentration=concentration, molality=molality, ratio=ratio,
                   n_salt=n_salt)
    if comp.estimated_density_g_cm3 > MAX_DENSITY_G_CM3:
        raise BuildError(
            f"estimated density {comp.estimated_density_g_cm3:.2f} g/cm^3 is not a liquid; "
            "check the species' molar volumes"
        )
    target = Path(output)
    _check_output(target, overwrite)
    if write_system:
        from solvflow.forcefield import check_box_edge

        check_box_edge(comp.box_nm, settings.cutoff_nm)  # before Packmol spends time
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        species = [spec.get(name) for name in comp.counts]
        scratch = Path(tempfile.mkdtemp(prefix="packmol-", dir=staging))
        topology, positions, start_record = pack_box(species, comp, seed=seed, workdir=scratch,
                                                     nloop=packmol_nloop, start=start_state)
        shutil.rmtree(scratch)
        topology_file = write_topology(staging, topology, positions)
        resolved = spec_document(spec, comp, species, seed=seed, charge_scale=scale,
                                 start=start_record)
        (staging / "spec.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
        if write_system:
            from solvflow.forcefield import write_system as write_system_xml

            write_system_xml(staging, settings)
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp made it private; a run directory is not
        _replace_dir(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return BuildResult(target, comp, resolved, target / topology_file.name)


def _replace_dir(new: Path, target: Path) -> None:
    """Put ``new`` at ``target``; an old ``target`` is moved aside first, deleted last."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / "run")
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise InputError(f"seed must be an integer in [0, 2^31), got {seed!r}")
    return seed


def _check_scale(scale: Any) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0.5 <= scale <= 1.0:
        raise InputError(f"charge scale must be a number in [0.5, 1.0], got {scale!r}")
    return float(scale)


def _check_output(target: Path, overwrite: bool) -> None:
    if target.exists() and not target.is_dir():
        raise OutputExistsError(f"output {str(target)!r} exists and is not a directory")
    if not target.is_dir() or not any(target.iterdir()):
        return
    if not overwrite:
        raise OutputExistsError(
            f"output directory {str(target)!r} exists and is not empty; "
            "choose another directory or pass --overwrite"
        )
    if not (target / "spec.yaml").is_file():
        raise OutputExistsError(
            f"refusing to overwrite {str(target)!r}: it is not a solvflow run directory "
            "(no spec.yaml), so its contents are not ours to delete"
        )


def system_settings(charge_scale: float, cutoff_nm: float | None) -> Any:
    """Validated :class:`~solvflow.forcefield.SystemSettings` for a build."""
    from solvflow.forcefield import DEFAULT_CUTOFF_NM, SystemSettings

    charge_scale = _check_scale(charge_scale)
    if cutoff_nm is None:
        return SystemSettings(charge_scale=charge_scale)
    if isinstance(cutoff_nm, bool) or not isinstance(cutoff_nm, (int, float)) or not (
        0.6 <= cutoff_nm <= 2.5
    ):
        raise InputError(
            f"cutoff must be a number of nm in [0.6, 2.5] (default {DEFAULT_CUTOFF_NM}), "
            f"got {cutoff_nm!r}"
        )
    return SystemSettings(charge_scale=charge_scale, cutoff_nm=float(cutoff_nm),
                          switch_nm=float(cutoff_nm) - 0.1)


def pack_box(
    species: list[Species], comp: Composition, *, seed: int, workdir: Path,
    nloop: int | None = None, start: StartState | None = None,
) -> tuple[Any, NDArray[np.float64], dict[str, Any]]:
    """Pack ``comp.counts`` copies of each species into the cubic box from ``start``.

    Returns
    -------
    topology : openmm.app.Topology
        One chain per species, residues with bonds, periodic box set.
    positions : ndarray, shape (n_atoms, 3), float64, nm
    start : dict
        The starting state made and what was measured on ``positions``
        (spec.yaml's ``start``).
    """

    molecules = [molecule(sp, seed=seed) for sp in species]
    counts = [comp.counts[sp.name] for sp in species]
    minimum_nm = PACKMOL_TOLERANCE_A / 10.0 * 0.95
    if start is None or start.state == "random":
        record: dict[str, Any] = {"state": "random"}
        coords_a = pack([structure_of(mol, n) for mol, n in zip(molecules, counts, strict=True)],
                        box_nm=comp.box_nm, seed=seed, workdir=workdir, nloop=nloop)
    else:
        coords_a, record = pack_start(start, species, molecules, counts, box_nm=comp.box_nm,
                                      seed=seed, workdir=workdir, nloop=nloop)
        if start.state == "paired" and start.distance_nm is not None:
            minimum_nm = min(minimum_nm, 0.95 * start.distance_nm)
    topology = box_topology(species, molecules, comp.counts, comp.box_nm)
    edge = comp.box_nm
    positions = coords_a / 10.0
    check_min_distance(topology, positions, edge, minimum_nm)
    if record["state"] != "random":
        record["measured"] = check_start(record, species, counts, positions, edge)
    return topology, positions, record


def box_topology(species: list[Species], molecules: list[Any], counts: dict[str, int],
                 edge_nm: float) -> Any:
    """OpenMM Topology of the box: one chain per species, ``counts[name]`` residues each,
    cubic periodic box of edge ``edge_nm`` (nm)."""
    from openmm import Vec3
    from openmm.app import Topology

    topology = Topology()
    for sp, mol in zip(species, molecules, strict=True):
        chain = topology.addChain()
        for _ in range(counts[sp.name]):
            add_residue(topology, chain, sp, mol)
    topology.setPeriodicBoxVectors([Vec3(edge_nm, 0, 0), Vec3(0, edge_nm, 0),
                                    Vec3(0, 0, edge_nm)])
    return topology


def check_min_distance(topology: Any, positions_nm: NDArray[np.float64], edge_nm: float,
                       minimum_nm: float) -> float:
    """Smallest periodic distance between atoms of different residues (nm).

    Raises :class:`BuildError` if it is below ``minimum_nm``.
    """
    from scipy.spatial import cKDTree

    residue_of = np.fromiter((a.residue.index for a in topology.atoms()), dtype=np.int64)
    wrapped = np.mod(positions_nm, edge_nm)
    tree = cKDTree(wrapped, boxsize=edge_nm)
    pairs = tree.query_pairs(r=max(minimum_nm, 0.3), output_type="ndarray")
    inter = pairs[residue_of[pairs[:, 0]] != residue_of[pairs[:, 1]]]
    if len(inter) == 0:
        return float("inf")
    delta = wrapped[inter[:, 0]] - wrapped[inter[:, 1]]
    delta -= edge_nm * np.round(delta / edge_nm)
    smallest = float(np.sqrt((delta**2).sum(axis=1)).min())
    if smallest < minimum_nm:
        raise BuildError(
            f"packed box has atoms of different molecules {smallest:.3f} nm apart "
            f"(< {minimum_nm:.3f} nm)"
        )
    return smallest


def write_topology(rundir: Path, topology: Any, positions_nm: NDArray[np.float64]) -> Path:
    """Write ``topology.pdb`` (``topology.cif`` above 99,999 atoms) with bonds and box."""
    from openmm import unit
    from openmm.app import PDBFile, PDBxFile

    positions = unit.Quantity(positions_nm, unit.nanometer)
    if topology.getNumAtoms() > PDB_ATOM_LIMIT:
        path = rundir / "topology.cif"
        with open(path, "w") as handle:
            PDBxFile.writeFile(topology, positions, handle, keepIds=False)
    else:
        path = rundir / "topology.pdb"
        with open(path, "w") as handle:
            PDBFile.writeFile(topology, positions, handle, keepIds=False)
    return path


def spec_document(spec: SystemSpec, comp: Composition, species: list[Species], *,
                  seed: int, charge_scale: float,
                  start: dict[str, Any] | None = None) -> dict[str, Any]:
    """The resolved ``spec.yaml`` content (see docs/run-directory.md).

    ``start`` is the starting-state record of :func:`pack_box` (default random).
    The input hash covers a non-random start's state and distance; a random
    start leaves the hash as it was before starting states existed.
    """
    system = spec.to_dict()
    start = start or {"state": "random"}
    request = {"system": system, "mode": comp.mode, "requested": comp.requested,
               "n_salt": comp.n_salt, "seed": seed, "charge_scale": charge_scale}
    if start["state"] != "random":
        request["start"] = {"state": start["state"], "distance_nm": start["distance_nm"]}
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    entries = []
    for sp in species:
        names = atom_names(sp)
        entry = sp.to_dict()
        smarts = entry.pop("sites", None)
        entry |= {"count": comp.counts[sp.name], "atom_names": names,
                  # elements beside the names: analysing the run directory needs no RDKit
                  "elements": list(element_symbols(sp.smiles, sp.name)),
                  "sites": [names[i] for i in site_indices(sp)]}
        if smarts:
            entry["sites_smarts"] = smarts
        entries.append(entry)
    cation = spec.cation.name if spec.cation else None
    analysis = ({"cation": cation, "partners": [sp.name for sp in species if sp.name != cation]}
                if cation else {})
    return {
        "solvflow_version": __version__,
        "input_hash": f"sha256:{digest}",
        "seed": seed,
        "start": start,
        "system": system,
        "charge_scale": charge_scale,
        "temperature_K": spec.temperature_K,
        "composition": comp.to_dict(),
        "species": entries,
        "analysis": analysis,
    }

