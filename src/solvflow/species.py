"""Species: the chemistry of one kind of molecule or ion.

A :class:`Species` is declarative data (SMILES, residue name, formal charge,
role, force-field file, coordinating sites).  :func:`molecule` turns it into
an RDKit molecule with explicit hydrogens, deterministic atom names and a
seeded 3-D conformer; :func:`add_residue` appends it to an OpenMM topology.

Atom names are the element symbol followed by a running index per element in
SMILES order, hydrogens last (``C1, C2, O1, ..., H1, H2``), so they are
unique within a residue and stable for a given SMILES.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from solvflow.errors import BuildError, SpeciesError

if TYPE_CHECKING:  # numpy is imported where used: `solvflow systems` stays light
    import numpy as np
    from numpy.typing import NDArray

ROLES = ("cation", "anion", "solvent")
_RESIDUE_RE = re.compile(r"^[A-Z0-9]{1,3}$")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]{0,31}$")


@dataclass(frozen=True)
class Species:
    """One species as declared in a system file or the species library.

    Attributes
    ----------
    name : str
        Short name used in system files and reports (``"FSI"``).
    smiles : str
        SMILES with formal charges; hydrogens implicit.
    residue : str
        Residue name in topology files, 1-3 upper-case letters or digits.
    charge : int
        Formal charge (e).
    role : str
        ``"cation"``, ``"anion"`` or ``"solvent"``.
    forcefield : str
        OpenMM ForceField XML file: a shipped file name or a path.
    sites : str or None
        SMARTS of coordinating atoms (partners) or of the centre atom
        (polyatomic cations). ``None``: every heavy atom.
    density_g_cm3 : float or None
        Pure-liquid density (solvents) for the initial box.
    molar_volume_cm3_mol : float or None
        Estimated molar volume (ions) for the initial box.
    source : str
        Provenance of the definition.
    """

    name: str
    smiles: str
    residue: str
    charge: int
    role: str
    forcefield: str
    sites: str | None = None
    density_g_cm3: float | None = None
    molar_volume_cm3_mol: float | None = None
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for spec.yaml), without empty optional fields."""
        out: dict[str, Any] = {
            "name": self.name,
            "smiles": self.smiles,
            "residue": self.residue,
            "charge": self.charge,
            "role": self.role,
            "forcefield": self.forcefield,
        }
        for key in ("sites", "density_g_cm3", "molar_volume_cm3_mol"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.source:
            out["source"] = self.source
        return out


def validate_species(sp: Species, where: str, *, chemistry: bool = True) -> None:
    """Check a species definition; raise :class:`SpeciesError` naming the problem.

    ``chemistry=False`` skips the RDKit checks (SMILES, formal charge, site SMARTS).
    """
    if not _NAME_RE.match(str(sp.name)):
        raise SpeciesError(
            f"{where}: species name {sp.name!r} is not allowed; use a letter followed by up to "
            "31 letters, digits, '_', '+' or '-' (it names files and atom types)"
        )
    if sp.role not in ROLES:
        raise SpeciesError(f"{where}: species {sp.name!r} has role {sp.role!r}; allowed: {ROLES}")
    if not _RESIDUE_RE.match(sp.residue):
        raise SpeciesError(
            f"{where}: species {sp.name!r} has residue name {sp.residue!r}; "
            "use 1-3 upper-case letters or digits (PDB residue name)"
        )
    if chemistry:
        _check_chemistry(sp, where)
    if sp.role == "cation" and sp.charge <= 0 or sp.role == "anion" and sp.charge >= 0:
        raise SpeciesError(
            f"{where}: species {sp.name!r} has role {sp.role!r} but charge {sp.charge:+d}"
        )
    if sp.role == "solvent" and sp.charge != 0:
        raise SpeciesError(f"{where}: solvent {sp.name!r} must be neutral (charge {sp.charge:+d})")
    for key in ("density_g_cm3", "molar_volume_cm3_mol"):
        value = getattr(sp, key)
        if value is not None and not (isinstance(value, (int, float)) and value > 0):
            raise SpeciesError(f"{where}: species {sp.name!r}: {key} must be a positive number")
    if sp.role == "solvent" and not (sp.density_g_cm3 and sp.density_g_cm3 > 0):
        raise SpeciesError(
            f"{where}: solvent {sp.name!r} needs density_g_cm3 (pure-liquid density, g/cm^3)"
        )


def _check_chemistry(sp: Species, where: str) -> None:
    """RDKit checks: the SMILES parses, its formal charge is the declared one, sites match."""
    mol = _parse_smiles(sp.smiles, sp.name, where)
    from rdkit import Chem

    formal = Chem.GetFormalCharge(mol)
    if formal != sp.charge:
        raise SpeciesError(
            f"{where}: species {sp.name!r} declares charge {sp.charge:+d} but its SMILES "
            f"{sp.smiles!r} has total formal charge {formal:+d}"
        )
    if sp.sites is not None:
        site_indices(sp)  # raises on a bad SMARTS or one that matches nothing


def _parse_smiles(smiles: str, name: str, where: str) -> Any:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) and smiles else None
    if mol is None:
        raise SpeciesError(f"{where}: species {name!r} has an invalid SMILES {smiles!r}")
    return mol


@lru_cache(maxsize=64)
def _molecule_cached(smiles: str, name: str, seed: int) -> Any:
    from rdkit import Chem

    mol = Chem.AddHs(_parse_smiles(smiles, name, "species"))
    _embed(mol, name, seed)
    return mol


def molecule(sp: Species, seed: int = 1) -> Any:
    """RDKit molecule with explicit H, atom names and one 3-D conformer (Angstrom).

    Embedding is seeded ETKDGv3; molecules it cannot embed get random-start
    coordinates; force-field relaxation uses MMFF94 where it has parameters,
    else UFF (boron, aluminium). Atom names are stored as the ``name`` atom
    property.
    """
    from rdkit import Chem

    mol = Chem.Mol(_molecule_cached(sp.smiles, sp.name, seed))
    for atom, name in zip(mol.GetAtoms(), atom_names(sp), strict=True):
        atom.SetProp("name", name)
    return mol


def _embed(mol: Any, name: str, seed: int) -> None:
    from rdkit.Chem import AllChem

    if mol.GetNumAtoms() == 1:
        conf = _single_atom_conformer()
        mol.AddConformer(conf, assignId=True)
        return
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    status = AllChem.EmbedMolecule(mol, params)
    if status != 0:
        params.useRandomCoords = True
        params.maxIterations = 2000
        status = AllChem.EmbedMolecule(mol, params)
    if status != 0:
        raise BuildError(f"RDKit could not generate 3-D coordinates for species {name!r}")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    elif AllChem.UFFHasAllMoleculeParams(mol):
        AllChem.UFFOptimizeMolecule(mol, maxIters=2000)
    _check_geometry(mol, name)


def _single_atom_conformer() -> Any:
    from rdkit import Chem
    from rdkit.Geometry import Point3D

    conf = Chem.Conformer(1)
    conf.SetAtomPosition(0, Point3D(0.0, 0.0, 0.0))
    conf.Set3D(True)
    return conf


def _check_geometry(mol: Any, name: str) -> None:
    """Reject a conformer with clashing non-bonded atoms (closer than 0.9 A)."""
    import numpy as np

    xyz = mol.GetConformer().GetPositions()
    dist = np.linalg.norm(xyz[:, None, :] - xyz[None, :, :], axis=-1)
    bonded = np.zeros_like(dist, dtype=bool)
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        bonded[i, j] = bonded[j, i] = True
    np.fill_diagonal(bonded, True)
    if np.any(dist[~bonded] < 0.9):
        raise BuildError(f"the 3-D conformer of species {name!r} has clashing atoms")


@lru_cache(maxsize=256)
def element_symbols(smiles: str, name: str = "species") -> tuple[str, ...]:
    """Element symbols of every atom, hydrogens included, in solvflow's atom order.

    The order is that of ``Chem.AddHs(Chem.MolFromSmiles(smiles))``: the order of
    topology.pdb and of :func:`atom_names`. Raises :class:`SpeciesError` for an
    invalid SMILES.
    """
    from rdkit import Chem

    mol = Chem.AddHs(_parse_smiles(smiles, name, "species"))
    return tuple(atom.GetSymbol() for atom in mol.GetAtoms())


def atom_names(sp: Species) -> list[str]:
    """Unique atom names in atom order (element + running index; H last)."""
    symbols = element_symbols(sp.smiles, sp.name)
    if len(symbols) == 1:
        return [symbols[0].upper()]
    counts: dict[str, int] = {}
    names = []
    for symbol in symbols:
        counts[symbol] = counts.get(symbol, 0) + 1
        names.append(f"{symbol}{counts[symbol]}")
    return names


def site_indices(sp: Species) -> list[int]:
    """Atom indices of the coordinating sites (or the centre atom of a cation).

    Without ``sites``: every heavy atom. Raises :class:`SpeciesError` for an
    invalid SMARTS or one that matches no atom.
    """
    from rdkit import Chem

    mol = Chem.AddHs(_parse_smiles(sp.smiles, sp.name, "species"))
    if sp.sites is None:
        return [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() > 1]
    pattern = Chem.MolFromSmarts(sp.sites)
    if pattern is None:
        raise SpeciesError(f"species {sp.name!r}: sites {sp.sites!r} is not a valid SMARTS")
    matches = mol.GetSubstructMatches(pattern, uniquify=True)
    indices = sorted({m[0] for m in matches})
    if not indices:
        raise SpeciesError(
            f"species {sp.name!r}: sites {sp.sites!r} matches no atom of {sp.smiles}"
        )
    return indices


def molar_mass(sp: Species) -> float:
    """Molar mass in g/mol (average isotopic masses)."""
    from rdkit.Chem import Descriptors

    return float(Descriptors.MolWt(_parse_smiles(sp.smiles, sp.name, "species")))


def n_atoms(sp: Species) -> int:
    """Number of atoms including hydrogens."""
    return len(element_symbols(sp.smiles, sp.name))


def molar_volume(sp: Species) -> float:
    """Molar volume (cm^3/mol) for the initial-box estimate.

    Solvents: molar mass / density. Ions: the declared estimate, else the
    RDKit grid van der Waals volume times 1.5, a rough liquid packing factor
    (it reproduces the shipped TFSI- and EMIm+ estimates within 5 %). Only
    the initial box depends on it; NPT equilibration sets the density.
    """
    if sp.density_g_cm3:
        return molar_mass(sp) / sp.density_g_cm3
    if sp.molar_volume_cm3_mol:
        return float(sp.molar_volume_cm3_mol)
    return vdw_molar_volume(sp) * 1.5


def vdw_molar_volume(sp: Species) -> float:
    """Van der Waals volume of one conformer, in cm^3/mol."""
    from rdkit.Chem import AllChem

    mol = molecule(sp)
    angstrom3 = AllChem.ComputeMolVolume(mol, gridSpacing=0.2)
    return float(angstrom3 * 0.602214076)


def positions_nm(mol: Any) -> NDArray[np.float64]:
    """Conformer coordinates of an RDKit molecule, shape (n_atoms, 3), in nm."""
    import numpy as np

    return np.asarray(mol.GetConformer().GetPositions(), dtype=np.float64) / 10.0


def add_residue(topology: Any, chain: Any, sp: Species, mol: Any) -> Any:
    """Append one copy of ``sp`` (RDKit ``mol`` from :func:`molecule`) to an OpenMM topology.

    Returns the new residue; atoms carry the names of :func:`atom_names`,
    and every bond of the molecule is added.
    """
    from openmm.app import Element

    residue = topology.addResidue(sp.residue, chain)
    atoms = [
        topology.addAtom(
            atom.GetProp("name"), Element.getByAtomicNumber(atom.GetAtomicNum()), residue
        )
        for atom in mol.GetAtoms()
    ]
    for bond in mol.GetBonds():
        topology.addBond(atoms[bond.GetBeginAtomIdx()], atoms[bond.GetEndAtomIdx()])
    return residue
