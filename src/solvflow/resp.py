"""QM-derived RESP charges for any species: HF/6-31G* ESP (PySCF) on a Merz-Kollman grid.

The route (Bayly, Cieplak, Cornell, Kollman, J. Phys. Chem. 97 (1993) 10269):

1. geometry: the RDKit conformer solvflow builds with, or a given structure
   (XYZ/PDB), optionally optimised at the same level (PySCF + geomeTRIC);
2. closed-shell HF/6-31G* (Cartesian d, as in Gaussian/GAMESS RESP work),
   density-fitted (def2-universal-JKFIT), for the species' formal charge;
3. electrostatic potential on the Merz-Kollman grid: points on spheres of
   1.4, 1.6, 1.8 and 2.0 x the MK radius around every atom, 1 point per
   Angstrom^2 of each sphere, kept if outside every other atom's scaled sphere
   (Singh & Kollman, J. Comput. Chem. 5 (1984) 129; the sphere-point
   algorithm of GAMESS, as used by R.E.D. and the psi4 ``resp`` plug-in);
4. two-stage RESP: stage 1 a = 0.0005, stage 2 a = 0.001 (au), hyperbolic
   restraint b = 0.1 on heavy atoms only (toward zero); symmetry-equivalent
   atoms (RDKit canonical ranks, ``breakTies=False``) constrained equal and
   the total charge exact (Lagrange multipliers). Stage 1 leaves the H of
   methyl/methylene groups (and their C) free; stage 2 refits only those
   atoms, with equivalence, all others fixed at their stage-1 values.

Units: coordinates in Angstrom at the edges (names say so); the fit works in
atomic units (bohr, hartree/e), as the published restraint weights are.
RMS errors are reported in hartree/e and kJ/mol/e, RRMS is dimensionless.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from solvflow.errors import InputError, ParametrizeError

BOHR_PER_ANGSTROM = 1.0 / 0.52917721092
KJ_MOL_PER_HARTREE = 2625.499639
METHOD = "RHF"
BASIS = "6-31g*"
AUXBASIS = "def2-universal-jkfit"
MK_LAYERS = (1.4, 1.6, 1.8, 2.0)
MK_DENSITY_PER_A2 = 1.0
STAGE1_A, STAGE2_A, RESTRAINT_B = 0.0005, 0.001, 0.1
# Merz-Kollman radii (Angstrom) as tabulated in GAMESS (and so in R.E.D. and the psi4
# `resp` plug-in, resp/vdw_surface.py): H, C, N, O are Singh & Kollman's; B 1.45 and
# Al 1.24 are GAMESS's entries. In B(hfip)4-, AlCl4- and Al2Cl7- the B and Al are
# buried under O or Cl spheres, so their radius barely changes the grid (see
# docs/forcefields.md for the Al sensitivity check).
MK_RADII_ANGSTROM: dict[str, float] = {
    "H": 1.20, "He": 1.20, "Li": 1.37, "Be": 1.45, "B": 1.45, "C": 1.50, "N": 1.50,
    "O": 1.40, "F": 1.35, "Ne": 1.30, "Na": 1.57, "Mg": 1.36, "Al": 1.24, "Si": 1.17,
    "P": 1.80, "S": 1.75, "Cl": 1.70,
}
ESP_CHUNK_POINTS = 64
SCF_MAX_MEMORY_MB = 9000
_GEOMETRIC_LOG_INI = """[loggers]
keys=root
[handlers]
keys=stream_handler
[formatters]
keys=formatter
[logger_root]
level=WARNING
handlers=stream_handler
[handler_stream_handler]
class=geometric.nifty.RawStreamHandler
level=WARNING
formatter=formatter
args=(sys.stderr,)
[formatter_formatter]
format=%(message)s
"""


@dataclass
class EspData:
    """QM electrostatic potential of one geometry (what ``tools/qm_cache`` stores).

    ``coords_angstrom`` (n_atoms, 3), ``grid_angstrom`` (n_points, 3) and
    ``esp_hartree`` (n_points,) in hartree/e; ``meta`` holds method, basis, grid
    settings, energy, SCF/optimisation convergence and timings.
    """

    symbols: list[str]
    coords_angstrom: np.ndarray
    total_charge: int
    grid_angstrom: np.ndarray
    esp_hartree: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class RespFit:
    """Result of a two-stage RESP fit; charges in e, RMS in hartree/e and kJ/mol/e."""

    charges: np.ndarray
    stage1: np.ndarray
    unrestrained: np.ndarray
    rms_hartree: float
    rrms: float
    rms_unrestrained_hartree: float
    stage2_atoms: list[int]
    settings: dict[str, Any]

    @property
    def rms_kj_mol_e(self) -> float:
        return self.rms_hartree * KJ_MOL_PER_HARTREE

    def summary(self) -> dict[str, Any]:
        return {"charges": [round(float(q), 6) for q in self.charges],
                "stage1": [round(float(q), 6) for q in self.stage1],
                "unrestrained": [round(float(q), 6) for q in self.unrestrained],
                "rms_esp_hartree": self.rms_hartree, "rms_esp_kj_mol_e": self.rms_kj_mol_e,
                "rrms_esp": self.rrms, "rms_esp_unrestrained_hartree":
                    self.rms_unrestrained_hartree,
                "stage2_atoms": self.stage2_atoms, **self.settings}


# ----------------------------------------------------------------------------- grid
def unit_sphere_points(n: int) -> np.ndarray:
    """About ``n`` points on the unit sphere (GAMESS/Connolly latitude rings), shape (m, 3)."""
    n_equator = int(np.sqrt(np.pi * n))
    n_rings = max(int(n_equator / 2), 1)
    points: list[tuple[float, float, float]] = []
    for i in range(n_rings + 1):
        theta = np.pi * i / n_rings
        z, xy = np.cos(theta), np.sin(theta)
        n_ring = max(int(n_equator * xy + 1e-10), 1)
        for j in range(n_ring):
            if len(points) >= n:
                return np.array(points)
            phi = 2.0 * np.pi * j / n_ring
            points.append((np.cos(phi) * xy, np.sin(phi) * xy, z))
    return np.array(points)


def mk_radii(symbols: list[str]) -> np.ndarray:
    """MK radius (Angstrom) of each atom; :class:`InputError` for an element without one."""
    missing = sorted({s for s in symbols if s not in MK_RADII_ANGSTROM})
    if missing:
        raise InputError(f"no Merz-Kollman radius for {', '.join(missing)}; RESP grids are "
                         f"defined for {', '.join(MK_RADII_ANGSTROM)}")
    return np.array([MK_RADII_ANGSTROM[s] for s in symbols])


def mk_grid(symbols: list[str], coords_angstrom: np.ndarray,
            layers: tuple[float, ...] = MK_LAYERS,
            density_per_a2: float = MK_DENSITY_PER_A2) -> np.ndarray:
    """Merz-Kollman ESP points (Angstrom), shape (n_points, 3), layer by layer, atom by atom."""
    coords = np.asarray(coords_angstrom, dtype=float)
    radii = mk_radii(symbols)
    out = []
    for scale in layers:
        scaled = radii * scale
        for i, r in enumerate(scaled):
            dots = coords[i] + r * unit_sphere_points(int(density_per_a2 * 4.0 * np.pi * r * r))
            d = np.linalg.norm(dots[:, None, :] - coords[None, :, :], axis=2)
            d[:, i] = np.inf
            out.append(dots[(d >= scaled[None, :]).all(axis=1)])
    return np.concatenate(out)


# ----------------------------------------------------------------------------- QM
def check_basis(symbols: list[str], basis: str = BASIS) -> None:
    """Raise :class:`InputError` if PySCF's ``basis`` has no entry for an element."""
    import warnings

    try:
        from pyscf.gto import basis as pyscf_basis
    except ImportError:
        raise ParametrizeError("the RESP route needs PySCF and geomeTRIC: "
                               "pip install 'solvflow[qm]'") from None

    missing = []
    for element in sorted(set(symbols)):
        try:
            with warnings.catch_warnings():  # PySCF's hint to install basis-set-exchange
                warnings.simplefilter("ignore")
                pyscf_basis.load(basis, element)
        except Exception:  # PySCF raises BasisNotFoundError (or KeyError in old versions)
            missing.append(element)
    if missing:
        raise InputError(f"basis {basis} has no functions for {', '.join(missing)} in PySCF; "
                         "the RESP route is HF/6-31G* (Pople basis, defined for H-Kr), so "
                         "species with these elements cannot get RESP charges here")


def _pyscf_molecule(symbols: list[str], coords_angstrom: np.ndarray, charge: int,
                    basis: str) -> Any:
    from pyscf import gto

    check_basis(symbols, basis)
    atoms = [(s, tuple(float(x) for x in c)) for s, c in zip(symbols, coords_angstrom,
                                                              strict=True)]
    mol = gto.M(atom=atoms, basis=basis, charge=charge, spin=None, cart=True,
                unit="Angstrom", verbose=0)
    if mol.nelectron % 2:
        raise InputError(f"{mol.nelectron} electrons for total charge {charge}: the RESP route "
                         "is closed-shell RHF; check the formal charge")
    mol.spin = 0
    mol.build()
    return mol


def _scf(mol: Any) -> Any:
    from pyscf import scf

    mf = scf.RHF(mol).density_fit(auxbasis=AUXBASIS)
    mf.conv_tol = 1e-10
    mf.max_cycle = 200
    # Keep the 3-index DF tensor in memory (B(hfip)4-: about 6 GB): PySCF's default 4 GB
    # would put it on disk and reread it every SCF cycle, many times slower.
    mf.max_memory = max(mf.max_memory, SCF_MAX_MEMORY_MB)
    mf.with_df.max_memory = mf.max_memory
    mf.kernel()
    if not mf.converged:
        raise ParametrizeError(f"HF/{mol.basis} SCF did not converge in {mf.max_cycle} cycles")
    return mf


def optimise_geometry(symbols: list[str], coords_angstrom: np.ndarray, charge: int, *,
                      basis: str = BASIS, max_steps: int = 100) -> tuple[np.ndarray, int]:
    """HF/``basis`` minimum (geomeTRIC through PySCF): (coordinates Angstrom, steps taken)."""
    try:
        from pyscf.geomopt import geometric_solver
    except ImportError:  # pragma: no cover - geomeTRIC is a declared dependency
        raise ParametrizeError("geometry optimisation needs geomeTRIC: pip install geometric"
                               ) from None
    from pyscf import scf

    mf = scf.RHF(_pyscf_molecule(symbols, coords_angstrom, charge, basis))
    mf = mf.density_fit(auxbasis=AUXBASIS)
    mf.conv_tol = 1e-9  # the final single point is converged to 1e-10
    steps = 0

    def count(_envs: dict[str, Any]) -> None:
        nonlocal steps
        steps += 1

    with tempfile.TemporaryDirectory(prefix="solvflow-geomopt-") as tmp:
        log_ini = Path(tmp) / "log.ini"  # geomeTRIC's progress log: warnings only
        log_ini.write_text(_GEOMETRIC_LOG_INI)
        try:
            converged, mol_eq = geometric_solver.kernel(
                mf, maxsteps=max_steps, callback=count, logIni=str(log_ini),
                prefix=str(Path(tmp) / "opt"))
        except RuntimeError as exc:  # PySCF's scanner: an SCF step did not converge
            raise ParametrizeError(f"HF/{basis} geometry optimisation failed: {exc}") from None
    if not converged:
        raise ParametrizeError(f"HF/{basis} geometry optimisation did not converge in "
                               f"{max_steps} steps; raise the step limit or start from a "
                               "better structure")
    return mol_eq.atom_coords(unit="Angstrom"), steps


def esp_at_points(mf: Any, points_angstrom: np.ndarray) -> np.ndarray:
    """Electrostatic potential (hartree/e) of the SCF density and nuclei at the points."""
    from pyscf import lib

    mol = mf.mol
    pts = np.asarray(points_angstrom, dtype=float) * BOHR_PER_ANGSTROM
    dm = mf.make_rdm1()
    dm_tril = lib.pack_tril(dm + dm.T - np.diag(np.diag(dm)))
    charges, centres = mol.atom_charges(), mol.atom_coords()
    v_nuc = (charges[None, :] / np.linalg.norm(pts[:, None] - centres[None], axis=2)).sum(1)
    v_el = np.empty(len(pts))
    for start in range(0, len(pts), ESP_CHUNK_POINTS):
        block = pts[start:start + ESP_CHUNK_POINTS]
        ints = mol.intor("int1e_grids", hermi=1, grids=block)  # (points, nao, nao)
        v_el[start:start + len(block)] = lib.pack_tril(ints) @ dm_tril
    return np.asarray(v_nuc - v_el)


def qm_esp(symbols: list[str], coords_angstrom: np.ndarray, charge: int, *,
           basis: str = BASIS, optimise: bool = False, max_opt_steps: int = 100,
           geometry_source: str = "") -> EspData:
    """HF ESP on the MK grid for one geometry (optionally optimised first)."""
    start = time.perf_counter()
    coords = np.asarray(coords_angstrom, dtype=float)
    steps = 0
    if optimise:
        coords, steps = optimise_geometry(symbols, coords, charge, basis=basis,
                                          max_steps=max_opt_steps)
    t_opt = time.perf_counter() - start
    mf = _scf(_pyscf_molecule(symbols, coords, charge, basis))
    grid = mk_grid(symbols, coords)
    esp = esp_at_points(mf, grid)
    import pyscf

    meta = {"method": METHOD, "basis": basis, "cartesian_d": True, "density_fit": AUXBASIS,
            "energy_hartree": float(mf.e_tot), "scf_converged": bool(mf.converged),
            "scf_conv_tol": mf.conv_tol, "n_basis": int(mf.mol.nao),
            "optimised": optimise, "optimisation_steps": steps,
            "geometry_source": geometry_source, "pyscf_version": pyscf.__version__,
            "grid": grid_settings(), "n_points": int(len(grid)),
            "wall_s_optimisation": round(t_opt, 1),
            "wall_s_total": round(time.perf_counter() - start, 1)}
    return EspData(list(symbols), coords, charge, grid, esp, meta)


def grid_settings() -> dict[str, Any]:
    """The MK grid definition, for <Info> and the cache."""
    return {"scheme": "Merz-Kollman (Singh-Kollman), GAMESS sphere points",
            "layers_x_radius": list(MK_LAYERS), "density_per_A2": MK_DENSITY_PER_A2,
            "radii_A": "GAMESS MK table (solvflow.resp.MK_RADII_ANGSTROM)"}


# ----------------------------------------------------------------------------- fit
def equivalence_ranks(smiles: str) -> np.ndarray:
    """RDKit canonical ranks (breakTies=False) of AddHs(MolFromSmiles(smiles)) atoms."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise InputError(f"invalid SMILES {smiles!r}")
    return np.array(Chem.CanonicalRankAtoms(Chem.AddHs(mol), breakTies=False))


def methyl_methylene_atoms(smiles: str) -> list[int]:
    """Indices of sp3 C with >= 2 H, and of those H (the atoms stage 2 refits)."""
    from rdkit import Chem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    out: list[int] = []
    for atom in mol.GetAtoms():
        if atom.GetSymbol() != "C" or atom.GetHybridization() != Chem.HybridizationType.SP3:
            continue
        hs = [nb.GetIdx() for nb in atom.GetNeighbors() if nb.GetSymbol() == "H"]
        if len(hs) >= 2:
            out += [atom.GetIdx(), *hs]
    return sorted(out)


def _design(esp: EspData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(1/r matrix (n_points, n_atoms) in 1/bohr, A0, B0) of the ESP least squares."""
    diff = esp.grid_angstrom[:, None, :] - esp.coords_angstrom[None, :, :]
    inv_r = 1.0 / (np.linalg.norm(diff, axis=2) * BOHR_PER_ANGSTROM)
    return inv_r, inv_r.T @ inv_r, inv_r.T @ esp.esp_hartree


def _solve(a0: np.ndarray, b0: np.ndarray, constraints: np.ndarray, values: np.ndarray,
           restrained: np.ndarray, a: float, b: float) -> np.ndarray:
    """Hyperbolically restrained least squares with linear equality constraints."""
    n, m = len(b0), len(values)
    q = np.zeros(n)
    lhs = np.zeros((n + m, n + m))
    lhs[:n, n:], lhs[n:, :n] = constraints.T, constraints
    rhs = np.concatenate([b0, values])
    for _ in range(200):
        lhs[:n, :n] = a0 + np.diag(np.where(restrained, a / np.sqrt(q * q + b * b), 0.0))
        new = np.linalg.lstsq(lhs, rhs, rcond=None)[0][:n]
        done = np.abs(new - q).max() < 1e-8
        q = new
        if done:
            return q
    raise ParametrizeError("RESP restraint iterations did not converge in 200 steps")


def _constraints(n: int, total: float, ranks: np.ndarray, free: set[int],
                 fixed: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    rows, vals = [np.ones(n)], [total]
    for rank in np.unique(ranks):
        members = [i for i in np.flatnonzero(ranks == rank) if i not in free]
        for j in members[1:]:
            row = np.zeros(n)
            row[members[0]], row[j] = 1.0, -1.0
            rows.append(row)
            vals.append(0.0)
    for i, value in fixed.items():
        row = np.zeros(n)
        row[i] = 1.0
        rows.append(row)
        vals.append(value)
    return np.array(rows), np.array(vals)


def fit_resp(esp: EspData, ranks: np.ndarray, stage2_atoms: list[int]) -> RespFit:
    """Two-stage RESP fit of ``esp`` with equivalence ``ranks`` (see the module docstring)."""
    n = len(esp.symbols)
    if len(ranks) != n:
        raise InputError(f"{len(ranks)} equivalence ranks for {n} atoms")
    inv_r, a0, b0 = _design(esp)
    heavy = np.array([s != "H" for s in esp.symbols])
    free1 = set(stage2_atoms)
    c1, v1 = _constraints(n, esp.total_charge, ranks, free1, {})
    stage1 = _solve(a0, b0, c1, v1, heavy, STAGE1_A, RESTRAINT_B)
    final = stage1
    if stage2_atoms:
        fixed = {i: float(stage1[i]) for i in range(n) if i not in free1}
        c2, v2 = _constraints(n, esp.total_charge, ranks, set(), fixed)
        final = _solve(a0, b0, c2, v2, heavy, STAGE2_A, RESTRAINT_B)
    c0, v0 = _constraints(n, esp.total_charge, ranks, set(), {})
    unrestrained = _solve(a0, b0, c0, v0, heavy, 0.0, RESTRAINT_B)

    def rms(q: np.ndarray) -> float:
        return float(np.sqrt(np.mean((inv_r @ q - esp.esp_hartree) ** 2)))

    rrms = float(np.sqrt(((inv_r @ final - esp.esp_hartree) ** 2).sum()
                         / (esp.esp_hartree ** 2).sum()))
    settings = {"stage1_a": STAGE1_A, "stage2_a": STAGE2_A, "restraint_b": RESTRAINT_B,
                "restrained": "heavy atoms, toward 0 (hyperbolic)",
                "equivalence": "RDKit CanonicalRankAtoms(breakTies=False)"}
    return RespFit(final, stage1, unrestrained, rms(final), rrms, rms(unrestrained),
                   list(stage2_atoms), settings)


def resp_charges(esp: EspData, smiles: str) -> RespFit:
    """Two-stage RESP fit with the symmetry classes and CH2/CH3 groups of ``smiles``."""
    return fit_resp(esp, equivalence_ranks(smiles), methyl_methylene_atoms(smiles))


def rounded_charges(charges: np.ndarray, ranks: np.ndarray, total: int,
                    decimals: int = 4) -> np.ndarray:
    """Class means rounded to ``decimals``; the residual goes to a one-atom class.

    The one-atom class with the largest ``|q|`` (the central B or Al, or the bridging
    Cl of Al2Cl7-) takes the rounding residual, so the sum is exactly ``total``.
    Raises :class:`ParametrizeError` if there is no one-atom class to take it.
    """
    q = np.array(charges, dtype=float)
    for rank in np.unique(ranks):
        members = ranks == rank
        q[members] = round(float(q[members].mean()), decimals)
    residual = round(total - float(q.sum()), decimals + 2)
    if abs(residual) < 10.0 ** -(decimals + 3):
        return q
    singles = [int(np.flatnonzero(ranks == r)[0]) for r in np.unique(ranks)
               if (ranks == r).sum() == 1]
    if not singles:
        raise ParametrizeError("no one-atom symmetry class to take the rounding residual; "
                               "write the charges with more decimals")
    target = max(singles, key=lambda i: abs(q[i]))
    q[target] = round(q[target] + residual, decimals + 2)
    return q


# ----------------------------------------------------------------------------- cache
def save_esp(esp: EspData, stem: Path, extra: dict[str, Any] | None = None) -> None:
    """Write ``stem.npz`` (coordinates, grid, ESP) and ``stem.json`` (metadata, fit)."""
    from solvflow.atomic import atomic_write

    stem.parent.mkdir(parents=True, exist_ok=True)
    npz = stem.with_suffix(".npz")
    tmp = npz.with_name(npz.stem + ".tmp.npz")
    np.savez_compressed(tmp, coords_angstrom=esp.coords_angstrom,
                        grid_angstrom=esp.grid_angstrom, esp_hartree=esp.esp_hartree)
    tmp.replace(npz)
    doc = {"symbols": esp.symbols, "total_charge": esp.total_charge, **esp.meta,
           **(extra or {})}
    atomic_write(stem.with_suffix(".json"), json.dumps(doc, indent=1) + "\n")


def load_esp(stem: Path) -> EspData:
    """Read what :func:`save_esp` wrote (no QM is rerun)."""
    doc = json.loads(stem.with_suffix(".json").read_text())
    with np.load(stem.with_suffix(".npz")) as arrays:
        coords, grid, esp = (arrays["coords_angstrom"], arrays["grid_angstrom"],
                             arrays["esp_hartree"])
    meta = {k: v for k, v in doc.items() if k not in {"symbols", "total_charge"}}
    return EspData(doc["symbols"], coords, int(doc["total_charge"]), grid, esp, meta)


__all__ = ["EspData", "RespFit", "esp_at_points", "fit_resp", "load_esp",
           "mk_grid", "optimise_geometry", "qm_esp", "resp_charges", "rounded_charges", "save_esp"]
