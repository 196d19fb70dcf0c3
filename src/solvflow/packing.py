"""Packmol mechanics: structures in, packed coordinates out (Angstrom at this edge).

A :class:`Structure` is one Packmol ``structure`` block: an XYZ template (one
molecule, or a rigid unit of several molecules such as a pre-assembled ion
pair, or a whole fixed configuration), a copy count and extra keyword lines.
:func:`pack` writes the input, runs the binary and reads the packed
coordinates in Packmol's output order (structure by structure, copy by copy).
The box is cubic and periodic (``pbc``); Packmol keeps atoms of different
copies at least ``PACKMOL_TOLERANCE_A`` apart, across the boundary too.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvflow.errors import PackmolError

PACKMOL_TOLERANCE_A = 2.0


@dataclass(frozen=True)
class Structure:
    """One Packmol ``structure`` block.

    Attributes
    ----------
    symbols : tuple of str
        Element symbols of the template's atoms.
    xyz_a : ndarray, shape (n_atoms, 3), Angstrom
        Template coordinates.
    number : int
        Copies to pack.
    extra : tuple of str
        Extra lines inside the block (``fixed ...``, ``atoms ... radius ...``).
    """

    symbols: tuple[str, ...]
    xyz_a: NDArray[np.float64]
    number: int
    extra: tuple[str, ...] = ()

    @property
    def n_atoms(self) -> int:
        return len(self.symbols)


def structure_of(mol: Any, number: int, extra: tuple[str, ...] = ()) -> Structure:
    """A :class:`Structure` from an RDKit molecule with one conformer (Angstrom)."""
    symbols = tuple(atom.GetSymbol() for atom in mol.GetAtoms())
    return Structure(symbols, mol.GetConformer().GetPositions(), number, extra)


def pack(structures: list[Structure], *, box_nm: float, seed: int, workdir: Path,
         nloop: int | None = None, timeout_scale: float = 1.0) -> NDArray[np.float64]:
    """Run Packmol on ``structures`` in the periodic cubic box of edge ``box_nm``.

    Packmol is stopped after ``timeout_scale x (120 s + 0.05 s per atom)`` of wall time.

    Returns
    -------
    ndarray, shape (n_atoms, 3), float64, Angstrom
        Packmol's output order: each structure's copies in turn.

    Raises
    ------
    PackmolError
        Packmol failed, timed out or is missing.
    """
    from packmol.cli import get_binary_path

    edge_a = box_nm * 10.0
    lines = [f"tolerance {PACKMOL_TOLERANCE_A}", "filetype xyz", "output packed.xyz",
             f"seed {seed}", f"pbc 0. 0. 0. {edge_a:.4f} {edge_a:.4f} {edge_a:.4f}"]
    lines += [f"nloop {nloop}", ""] if nloop else [""]
    n_total = 0
    for k, st in enumerate(structures):
        name = f"species{k}.xyz"
        write_xyz(workdir / name, st.symbols, st.xyz_a)
        lines += [f"structure {name}", f"  number {st.number}", *st.extra, "end structure", ""]
        n_total += st.number * st.n_atoms
    (workdir / "packmol.inp").write_text("\n".join(lines))
    n_molecules = sum(st.number for st in structures)
    timeout = timeout_scale * (120 + 0.05 * n_total)
    try:
        with open(workdir / "packmol.inp") as stdin:
            proc = subprocess.run([str(get_binary_path())], stdin=stdin, cwd=workdir,
                                  capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise PackmolError(
            f"Packmol did not finish packing {n_molecules} molecules into a {box_nm:.2f} nm box "
            f"within {timeout:.0f} s; the box is probably too dense (check molar volumes)"
        ) from None
    except FileNotFoundError as exc:
        raise PackmolError(f"the Packmol binary is missing ({exc}); reinstall 'packmol'") from None
    if proc.returncode != 0 or "Success!" not in proc.stdout:
        raise PackmolError(
            f"Packmol could not pack {n_molecules} molecules into a {box_nm:.3f} nm box with "
            f"{PACKMOL_TOLERANCE_A} A between molecules (exit status {proc.returncode}): the box "
            "is too dense for these molecules; check the densities and molar volumes in the "
            "system file"
        )
    return read_xyz(workdir / "packed.xyz", n_total)


def write_xyz(path: Path, symbols: tuple[str, ...], xyz_a: NDArray[np.float64]) -> None:
    """Write an XYZ file (Angstrom, 5 decimals)."""
    rows = [f"{s} {x:.5f} {y:.5f} {z:.5f}" for s, (x, y, z) in zip(symbols, xyz_a, strict=True)]
    path.write_text(f"{len(rows)}\nsolvflow species\n" + "\n".join(rows) + "\n")


def read_xyz(path: Path, n_atoms: int) -> NDArray[np.float64]:
    """Coordinates (Angstrom) of the first ``n_atoms`` atoms of an XYZ file."""
    lines = path.read_text().splitlines()
    rows = [line.split()[1:4] for line in lines[2 : 2 + n_atoms]]
    coords = np.asarray(rows, dtype=np.float64)
    if coords.shape != (n_atoms, 3):
        raise PackmolError(f"Packmol wrote {coords.shape[0]} atoms, expected {n_atoms}")
    return coords
