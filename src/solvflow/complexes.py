"""Pre-assembled first shells: a start where every cation already holds its ligands.

Used by ``solvflow validate --start complex`` to show that a first shell is
*stable* (the random-packing start shows whether it *forms*). For each cation
the donor O atoms of ``n_ligands`` solvent molecules are placed on the
vertices of a polyhedron (octahedron, tetrahedron, square antiprism) at the
reference cation-O distance: each ligand is a rigid RDKit conformer fitted
(Kabsch) onto its donor vertices, with its body pointing away from the
cation, and turned about that axis to keep clear of the other ligands.
Cations and ligands are then fixed in Packmol, which packs every other
molecule around them with its usual 2 A tolerance. Distances nm unless
named ``_a`` (Angstrom, Packmol and RDKit coordinates).
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvflow.errors import BuildError, InputError

GEOMETRIES = ("octahedron", "tetrahedron", "square_antiprism")
PACKMOL_TOLERANCE_A = 2.0  # as solvflow.build
# Vertex pairs (cis edges) given to bidentate ligands, per geometry.
_PAIRS = {
    "octahedron": [(0, 2), (1, 4), (3, 5)],
    "tetrahedron": [(0, 1), (2, 3)],
    "square_antiprism": [(0, 4), (1, 5), (2, 6), (3, 7)],
}


def polyhedron(geometry: str) -> NDArray[np.float64]:
    """Unit vectors to the vertices of ``geometry``, shape (n_vertices, 3).

    Octahedron order: +x, -x, +y, -y, +z, -z. Square antiprism: the top square
    (z > 0) at 0, 90, 180, 270 degrees, then the bottom one at 45, 135, 225,
    315 degrees, with all edges equal.
    """
    if geometry == "octahedron":
        return np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]],
                        dtype=np.float64)
    if geometry == "tetrahedron":
        v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=np.float64)
        return v / math.sqrt(3.0)
    if geometry == "square_antiprism":
        r_xy = 1.0 / math.sqrt(1.0 + math.sqrt(2.0) / 4.0)  # equal edges: h = r_xy 2^(1/4) / 2
        h = r_xy * 2.0**0.25 / 2.0
        top = [[r_xy * math.cos(a), r_xy * math.sin(a), h] for a in np.radians([0, 90, 180, 270])]
        bottom = [[r_xy * math.cos(a), r_xy * math.sin(a), -h]
                  for a in np.radians([45, 135, 225, 315])]
        return np.array(top + bottom, dtype=np.float64)
    raise InputError(f"unknown complex geometry {geometry!r}; allowed: {', '.join(GEOMETRIES)}")


def donor_sites(geometry: str, n_ligands: int, denticity: int) -> list[list[int]]:
    """Vertex indices given to each ligand (one vertex, or a cis pair for a bidentate)."""
    n_vertices = len(polyhedron(geometry))
    if denticity == 1 and n_ligands <= n_vertices:
        return [[k] for k in range(n_ligands)]
    if denticity == 2 and n_ligands <= len(_PAIRS[geometry]):
        return [list(pair) for pair in _PAIRS[geometry][:n_ligands]]
    raise InputError(
        f"a {geometry} cannot hold {n_ligands} ligands with {denticity} donor O each "
        f"({n_vertices} vertices)"
    )


def kabsch(points: NDArray[np.float64], targets: NDArray[np.float64]) -> tuple[
        NDArray[np.float64], NDArray[np.float64]]:
    """Rotation R (3, 3) and translation t (3,) minimising sum |R p + t - q|^2."""
    pc, qc = points.mean(axis=0), targets.mean(axis=0)
    u, _s, vt = np.linalg.svd((points - pc).T @ (targets - qc))
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return rot, qc - rot @ pc


def _rotate_about(coords: NDArray[np.float64], axis: NDArray[np.float64],
                  origin: NDArray[np.float64], angle: float) -> NDArray[np.float64]:
    k = axis / np.linalg.norm(axis)
    x = coords - origin
    cos, sin = math.cos(angle), math.sin(angle)
    return origin + x * cos + np.cross(k, x) * sin + np.outer(x @ k, k) * (1 - cos)


def place_ligand(coords_a: NDArray[np.float64], donors: list[int], vertices: NDArray[np.float64],
                 distance_a: float, placed_a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Ligand coordinates (Angstrom) with its donors on ``vertices`` x ``distance_a``.

    The ligand's heavy-atom centroid is aimed along the mean donor direction,
    then the ligand is turned about that axis (24 trial angles; a bidentate only by
    a half turn, which swaps its donors) to maximise
    its smallest distance to the atoms already ``placed_a``.
    """
    centroid = coords_a.mean(axis=0)
    donor_mean = coords_a[donors].mean(axis=0)
    axis = vertices.mean(axis=0)
    axis /= np.linalg.norm(axis)
    reach = np.linalg.norm(centroid - donor_mean)
    points = np.vstack([coords_a[donors], centroid])
    along = distance_a * float(np.linalg.norm(vertices.mean(axis=0))) + reach
    targets = np.vstack([vertices * distance_a, axis * along])
    rot, shift = kabsch(points, targets)
    fitted = coords_a @ rot.T + shift
    if len(placed_a) == 0:
        return fitted
    best, best_gap = fitted, -1.0
    # a turn about the axis keeps one donor on its vertex; two donors only by a half turn
    turns = (np.linspace(0.0, 2.0 * math.pi, 24, endpoint=False) if len(donors) == 1
             else np.array([0.0, math.pi]))
    for angle in turns:
        trial = _rotate_about(fitted, axis, np.zeros(3), float(angle))
        gap = float(np.min(np.linalg.norm(trial[:, None, :] - placed_a[None, :, :], axis=2)))
        if gap > best_gap:
            best, best_gap = trial, gap
    return best


def ligand_conformer(mol: Any, donors: list[int], bite_a: float | None, seed: int) -> NDArray[
        np.float64]:
    """Coordinates (Angstrom) of the conformer whose donor-donor distance is closest to ``bite_a``.

    Monodentate ligands (``bite_a`` None) keep the molecule's own conformer.
    """
    if bite_a is None or len(donors) < 2:
        return np.asarray(mol.GetConformer().GetPositions(), dtype=np.float64)
    from rdkit import Chem
    from rdkit.Chem import AllChem

    trial = Chem.Mol(mol)
    ids = list(AllChem.EmbedMultipleConfs(trial, numConfs=40, randomSeed=seed))
    if not ids:
        return np.asarray(mol.GetConformer().GetPositions(), dtype=np.float64)
    best = min(ids, key=lambda c: abs(_bite(trial.GetConformer(c).GetPositions(), donors) - bite_a))
    return np.asarray(trial.GetConformer(best).GetPositions(), dtype=np.float64)


def _bite(xyz: NDArray[np.float64], donors: list[int]) -> float:
    return float(np.linalg.norm(xyz[donors[0]] - xyz[donors[1]]))


def complex_coordinates(ligand_mol: Any, n_ligands: int, geometry: str, distance_nm: float,
                        seed: int) -> list[NDArray[np.float64]]:
    """Coordinates (Angstrom, cation at the origin) of each ligand of one complex."""
    donors = [a.GetIdx() for a in ligand_mol.GetAtoms() if a.GetSymbol() == "O"]
    if not donors:
        raise InputError("the complex ligand has no O atom to coordinate with")
    donors = donors[:2]
    vertices = polyhedron(geometry)
    sites = donor_sites(geometry, n_ligands, len(donors))
    distance_a = 10.0 * distance_nm
    bite = (distance_a * float(np.linalg.norm(vertices[sites[0][0]] - vertices[sites[0][1]]))
            if len(donors) == 2 else None)
    conformer = ligand_conformer(ligand_mol, donors, bite, seed)
    placed: list[NDArray[np.float64]] = []
    for site in sites:
        previous = np.vstack(placed) if placed else np.zeros((0, 3))
        placed.append(place_ligand(conformer, donors, vertices[site], distance_a, previous))
    return placed


def complex_centres(n: int, edge_a: float) -> NDArray[np.float64]:
    """``n`` cation positions (Angstrom) spread over the box: a k^3 sub-lattice, k^3 >= n."""
    k = max(1, math.ceil(n ** (1.0 / 3.0) - 1e-9))
    grid = [(i, j, m) for i in range(k) for j in range(k) for m in range(k)]
    grid.sort(key=lambda g: (sum(g) % 2, g))  # spread: alternate sites first
    return np.array([[(c + 0.5) * edge_a / k for c in grid[s]] for s in range(n)])


def pack_with_complexes(molecules: list[Any], counts: list[int], cation_index: int,
                        ligand_index: int, complex_cfg: dict[str, Any], *, box_nm: float,
                        seed: int, workdir: Path) -> NDArray[np.float64]:
    """Packmol coordinates (Angstrom, shape (n_atoms, 3)) with every cation's shell fixed.

    Atom order is the usual one (species by species), the fixed molecules first
    within their species, so :func:`solvflow.build.pack_box`'s topology applies.
    """
    n_cations, n_lig = counts[cation_index], int(complex_cfg["n_ligands"])
    if n_cations * n_lig > counts[ligand_index]:
        raise InputError(f"{n_cations} cations x {n_lig} ligands need more solvent molecules than "
                         f"the box has ({counts[ligand_index]})")
    edge_a = 10.0 * box_nm
    centres = complex_centres(n_cations, edge_a)
    ligands = complex_coordinates(molecules[ligand_index], n_lig, str(complex_cfg["geometry"]),
                                  float(complex_cfg["distance_nm"]), seed)
    lines = [f"tolerance {PACKMOL_TOLERANCE_A}", "filetype xyz", "output packed.xyz",
             f"seed {seed}", f"pbc 0. 0. 0. {edge_a:.4f} {edge_a:.4f} {edge_a:.4f}", ""]
    n_total = 0
    whole: list[tuple[int, NDArray[np.float64]]] = []  # (first atom, unwrapped coordinates)
    for k, (mol, n) in enumerate(zip(molecules, counts, strict=True)):
        fixed: list[NDArray[np.float64]] = []
        if k == cation_index:
            fixed = [c[None, :] for c in centres]
        elif k == ligand_index:
            fixed = [lig + c for c in centres for lig in ligands]
        for m, xyz in enumerate(fixed):
            # Packmol wants fixed atoms inside the periodic box: give it each atom's periodic
            # image (it never sees a fixed molecule's bonds); the whole molecule is put back below
            _write_fixed_xyz(workdir / f"fixed{k}_{m}.xyz", mol, np.mod(xyz, edge_a))
            lines += [f"structure fixed{k}_{m}.xyz", "  number 1", "  fixed 0. 0. 0. 0. 0. 0.",
                      "end structure", ""]
            whole.append((n_total + m * mol.GetNumAtoms(), xyz))
        if n - len(fixed) > 0:
            _write_fixed_xyz(workdir / f"species{k}.xyz", mol, mol.GetConformer().GetPositions())
            lines += [f"structure species{k}.xyz", f"  number {n - len(fixed)}",
                      "end structure", ""]
        n_total += n * mol.GetNumAtoms()
    coords = _run_packmol(workdir, lines, n_total)
    for first, xyz in whole:
        coords[first : first + len(xyz)] = xyz
    return coords


def _run_packmol(workdir: Path, lines: list[str], n_total: int) -> NDArray[np.float64]:
    """Run Packmol on ``lines``; the packed coordinates (Angstrom, shape (n_total, 3))."""
    from packmol.cli import get_binary_path

    (workdir / "packmol.inp").write_text("\n".join(lines))
    with open(workdir / "packmol.inp") as stdin:
        proc = subprocess.run([str(get_binary_path())], stdin=stdin, cwd=workdir,
                              capture_output=True, text=True, timeout=300 + 0.05 * n_total)
    if proc.returncode != 0 or "Success!" not in proc.stdout:
        raise BuildError(f"Packmol could not pack the box around the fixed complexes (exit "
                         f"status {proc.returncode}); try a larger box (n_salt)")
    rows = (workdir / "packed.xyz").read_text().splitlines()[2 : 2 + n_total]
    coords = np.asarray([row.split()[1:4] for row in rows], dtype=np.float64)
    if coords.shape != (n_total, 3):
        raise BuildError(f"Packmol wrote {len(coords)} atoms, expected {n_total}")
    return coords


def _write_fixed_xyz(path: Path, mol: Any, xyz_a: NDArray[np.float64]) -> None:
    rows = [f"{a.GetSymbol()} {x:.5f} {y:.5f} {z:.5f}"
            for a, (x, y, z) in zip(mol.GetAtoms(), xyz_a, strict=True)]
    path.write_text(f"{len(rows)}\nfixed\n" + "\n".join(rows) + "\n")


def build_complex_rundir(spec: Any, comp: Any, complex_cfg: dict[str, Any], rundir: Path, *,
                         seed: int, settings: Any) -> Path:
    """Write a run directory (topology, spec.yaml, system.xml) started from complexes.

    ``spec`` a :class:`~solvflow.spec.SystemSpec`, ``comp`` its
    :class:`~solvflow.composition.Composition`; ``spec.yaml`` records
    ``start: {state: complex, distance_nm, ligand, n_ligands, geometry}`` (in the input hash).
    """
    import shutil
    import tempfile

    import yaml

    from solvflow.build import box_topology, check_min_distance, spec_document, write_topology
    from solvflow.forcefield import write_system
    from solvflow.species import molecule

    species = [spec.get(name) for name in comp.counts]
    names = [sp.name for sp in species]
    cation, ligand = spec.cation.name, str(complex_cfg["ligand"])
    if ligand not in names:
        raise InputError(f"complex ligand {ligand!r} is not in the box ({', '.join(names)})")
    molecules = [molecule(sp, seed=seed) for sp in species]
    counts = [comp.counts[n] for n in names]
    rundir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="packmol-", dir=rundir))
    try:
        coords = pack_with_complexes(molecules, counts, names.index(cation), names.index(ligand),
                                     complex_cfg, box_nm=comp.box_nm, seed=seed, workdir=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    edge = comp.box_nm
    topology = box_topology(species, molecules, comp.counts, edge)
    positions = coords / 10.0
    check_min_distance(topology, positions, edge, 0.1)  # ligands may sit closer than Packmol's 2 A
    write_topology(rundir, topology, positions)
    start = {"state": "complex", "distance_nm": float(complex_cfg["distance_nm"]),
             **{k: complex_cfg[k] for k in sorted(complex_cfg) if k != "distance_nm"}}
    document = spec_document(spec, comp, species, seed=seed, charge_scale=settings.charge_scale,
                             start=start)
    (rundir / "spec.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    write_system(rundir, settings)
    return rundir
