"""Regenerate ``forcefields/borates.xml``: B(hfip)4- (residue BHF) by analogy, RESP charges.

Run from the repository root (no QM runs: the HF/6-31G* ESP is read from
``tools/qm_cache/BHFIP4.npz``; ``tools/make_resp_charges.py --qm BHFIP4`` remakes it)::

    PYTHONPATH=src .venv/bin/python tools/make_borates.py

What it does (all numbers are transcribed below with their source):

1. geometry: ``solvflow.species.molecule(BHFIP4, seed=1)`` (RDKit ETKDGv3
   seed 1, UFF-relaxed): the conformer of the cached QM (not optimised: one
   HF/6-31G* gradient of the 45-atom anion takes minutes here, an optimisation hours);
2. charges: two-stage RESP (``solvflow.resp``) on the cached HF/6-31G* ESP
   (Merz-Kollman grid), symmetry classes from RDKit
   ``CanonicalRankAtoms(breakTies=False)``, class means rounded to 4 decimals,
   the rounding residual on B (a one-atom class) so the total is exactly -1;
3. writes the OpenMM XML with types, bonded terms and LJ from OPLS-AA
   (foyer/oplsaa.xml, fftool/oplsaa.ff) and CL&P BF4- (clandp/il.ff).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

SMILES_SYSTEM = "ca_bhfip4_dme"
SPECIES = "BHFIP4"
RESIDUE = "BHF"
SEED = 1
DATE = "2026-12-01"
ROOT = Path(__file__).resolve().parents[1]
OUT_DEFAULT = ROOT / "forcefields" / "borates.xml"
CACHE = ROOT / "tools" / "qm_cache" / SPECIES
# The charges this file carried before RESP (2026-11-25, PM6 Mulliken + AM1-BCC bond
# corrections through antechamber/sqm), for the record in <Info> and docs/forcefields.md.
OLD_CHARGES = ("Previous charges (2026-11-25, PM6 Mulliken + AM1-BCC corrections, sqm): "
               "B +0.5312, O -0.5738, CH C +0.1901, CF3 C +0.6644, F -0.2486, H +0.1637.")

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


def resp_charges(mol: Any) -> tuple[list[float], str]:
    """RESP charges (e) of B(hfip)4- from tools/qm_cache/BHFIP4 and the <Note> text.

    No QM runs here: ``tools/make_resp_charges.py --qm BHFIP4`` makes the cache
    (HF/6-31G* ESP on the MK grid of the RDKit conformer seed 1).
    """
    from solvflow.parametrize import resp_note
    from solvflow.resp import equivalence_ranks, load_esp, rounded_charges
    from solvflow.resp import resp_charges as fit_charges

    if not CACHE.with_suffix(".npz").exists():
        raise SystemExit(f"no QM cache {CACHE}.npz: run tools/make_resp_charges.py --qm "
                         f"{SPECIES} --species {SPECIES} first (more than 16 CPU-minutes)")
    esp = load_esp(CACHE)
    if esp.symbols != [a.GetSymbol() for a in mol.GetAtoms()]:
        raise RuntimeError("atom order of the cached QM differs from the molecule")
    fit = fit_charges(esp, _smiles())
    q = [float(x) for x in rounded_charges(fit.charges, equivalence_ranks(_smiles()), -1, 4)]
    note = (resp_note(fit, esp.meta) + " Class means rounded to 1e-4 e, the residual on B "
            f"(a one-atom class), so the residue sums to -1 exactly. Result: "
            f"{_per_type(mol, q)}. {OLD_CHARGES} QM wall time when generated: "
            f"{esp.meta['wall_s_total']:.0f} s (2-core machine, shared).")
    return q, note


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def _info(charge_note: str) -> list[str]:
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
        "    <Reference>C. I. Bayly, P. Cieplak, W. D. Cornell, P. A. Kollman, \"A well-behaved "
        "electrostatic potential based method using charge restraints for deriving atomic "
        "charges: the RESP model\", J. Phys. Chem. 97 (1993) 10269-10280. "
        "DOI: 10.1021/j100142a004</Reference>",
        "    <Reference>U. C. Singh, P. A. Kollman, \"An approach to computing electrostatic "
        "charges for molecules\", J. Comput. Chem. 5 (1984) 129-145. DOI: 10.1002/jcc.540050204 "
        "(Merz-Kollman grid)</Reference>",
        "    <Reference>Q. Sun et al., \"Recent developments in the PySCF program package\", "
        "J. Chem. Phys. 153 (2020) 024109. DOI: 10.1063/5.0006074 (HF/6-31G* ESP)</Reference>",
        "    <Reference>J. J. P. Stewart, \"Optimization of parameters for semiempirical methods "
        "V: Modification of NDDO approximations and application to 70 elements\", J. Mol. "
        "Model. 13 (2007) 1173-1213. DOI: 10.1007/s00894-007-0233-4 (PM6: the B-O and C-O-B "
        "optima quoted for the bonded terms)</Reference>",
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
        f"    <Note>{escape(charge_note)}</Note>",
        "  </Info>",
    ]


def _per_type(mol: Any, q: list[float]) -> str:
    per_type = {atom_type(atom): q[atom.GetIdx()] for atom in mol.GetAtoms()}
    return ", ".join(f"{t} {v:+.4f}" for t, v in per_type.items())


def build_xml(mol: Any, q: list[float], note: str) -> str:
    """The complete ForceField XML text."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>',
             "<!-- solvflow force field: borate anions, B(hfip)4- (BHF), by analogy "
             "(OPLS-AA + CL&P). Generated by tools/make_borates.py. -->",
             "<ForceField>", *_info(note), "  <AtomTypes>"]
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
    """Command line: RESP charges from the QM cache, then write the XML."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DEFAULT, help="output XML path")
    args = parser.parse_args(argv)
    mol = anion_molecule()
    q, note = resp_charges(mol)
    args.out.write_text(build_xml(mol, q, note))
    print(f"wrote {args.out} (RESP charges from {CACHE.relative_to(ROOT)}.npz/.json)")


if __name__ == "__main__":
    main()
