"""Regenerate the RESP charges of AlCl4-, Al2Cl7- and B(hfip)4- (solvflow.resp, PySCF).

Run from the repository root::

    PYTHONPATH=src .venv/bin/python tools/make_resp_charges.py            # fit from the cache
    PYTHONPATH=src .venv/bin/python tools/make_resp_charges.py --qm AlCl4  # rerun the QM
    PYTHONPATH=src .venv/bin/python tools/make_resp_charges.py --check     # compare with XML

What it does:

1. QM (only with ``--qm NAME``; without it a missing cache is an error):
   the species' SMILES from systems/_species.yaml, RDKit conformer (seed 1;
   solvflow.species.molecule), HF/6-31G* optimisation for AlCl4-
   (PySCF + geomeTRIC); a single point at a fixed start structure for Al2Cl7-
   (see UNRELAXED_START) and none for B(hfip)4- (45 atoms: one density-fitted
   HF/6-31G* single point takes minutes on 2 cores, an optimisation hours),
   then the HF/6-31G* ESP on the Merz-Kollman grid, written to
   ``tools/qm_cache/NAME.npz`` (coordinates, grid, ESP) and ``NAME.json``
   (method, basis, grid, energy, convergence, timings).
2. Fit: two-stage RESP from the cache (no QM), class means rounded to 1e-4 e,
   the rounding residual on the one-atom class with the largest |q| (Al of
   AlCl4-, the bridging Cl or Al of Al2Cl7-, B of B(hfip)4-), so every
   residue sums to -1 exactly; the fit and charges go into NAME.json.
3. ``--write``: put the AlCl4-/Al2Cl7- charges and a provenance <Note> into
   forcefields/chloroaluminates.xml (only charge attributes and the RESP note
   change; types, LJ and bonded terms are left as they are). borates.xml is
   written by tools/make_borates.py, which reads the B(hfip)4- cache.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "tools" / "qm_cache"
CHLOROALUMINATES = ROOT / "forcefields" / "chloroaluminates.xml"
# name -> (HF optimisation?, residue in chloroaluminates.xml or None)
SPECIES: dict[str, tuple[bool, str | None]] = {
    "AlCl4": (True, "AL4"),
    "Al2Cl7": (False, "AL7"),  # see UNRELAXED_START: single point at the start structure
    "BHFIP4": (False, None),
}
# Species whose optimisation starts from the plain ETKDGv3 conformer (no force-field
# relaxation): UFF makes the Al-Cl-Al bridge of Al2Cl7- exactly linear (180.0 deg), a
# symmetric saddle point that a gradient optimiser cannot leave; ETKDG gives 113 deg.
# The Al-Cl bonds of that start are set to the r0 of chloroaluminates.xml (terminal 2.11,
# bridging 2.28 A, literature gas-phase/crystal values). Al2Cl7- is NOT HF-optimised: an
# HF/6-31G* optimisation from this start (2026-12-01) ran 10 CPU-minutes on the shared 2-core
# machine without converging (flat bridge bending/torsion), so the shipped charges are a
# single point at this start structure. To optimise: set SPECIES["Al2Cl7"] = (True, "AL7")
# and run --qm Al2Cl7 --write on a free machine.
UNRELAXED_START = {"Al2Cl7"}
START_AL_CL_A = {False: 2.11, True: 2.28}
SEED = 1
MAX_OPT_STEPS = 100
DECIMALS = 4
NOTE_START = "RESP charges (tools/make_resp_charges.py)"


def species(name: str) -> Any:
    """solvflow Species of ``name`` from the shipped species library."""
    from solvflow.spec import species_library
    from solvflow.species import Species

    d = species_library()[name]
    return Species(name=name, smiles=d["smiles"], residue=d["residue"], charge=d["charge"],
                   role=d["role"], forcefield=d["forcefield"])


def run_qm(name: str) -> None:
    """HF/6-31G* ESP of ``name`` into tools/qm_cache (minutes for B(hfip)4-)."""
    from solvflow.parametrize import resp_esp
    from solvflow.resp import save_esp

    optimise, _ = SPECIES[name]
    sp = species(name)
    start = etkdg_start(name, sp.smiles) if name in UNRELAXED_START else None
    esp = resp_esp(sp.smiles, name, charge=sp.charge, optimise=optimise,
                   max_opt_steps=MAX_OPT_STEPS, seed=SEED, structure=start)
    extra = {"species": name, "smiles": sp.smiles}
    if start is not None:
        esp.meta["geometry_source"] = esp.meta["geometry_source"].replace(
            f"structure file {start}", f"RDKit ETKDGv3 seed {SEED} without force-field "
            f"relaxation, Al-Cl bonds set to 2.11/2.28 A (tools/qm_cache/{start.name}; UFF "
            "would make the Al-Cl-Al bridge linear, a saddle point); not HF-optimised")
    save_esp(esp, CACHE / name, extra)
    print(f"{name}: QM done in {esp.meta['wall_s_total']:.0f} s, {esp.meta['n_points']} points")


def etkdg_start(name: str, smiles: str) -> Path:
    """Write tools/qm_cache/NAME_start.xyz: the ETKDGv3 (seed 1) conformer, unrelaxed."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = SEED
    if AllChem.EmbedMolecule(mol, params) != 0:
        raise SystemExit(f"{name}: ETKDGv3 could not embed")
    from rdkit.Chem import rdMolTransforms

    conf = mol.GetConformer()
    for bond in mol.GetBonds():  # Al-Cl bonds at the XML's r0 (fewer HF optimisation steps)
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        bridging = any(mol.GetAtomWithIdx(k).GetDegree() == 2 for k in (i, j))
        rdMolTransforms.SetBondLength(conf, i, j, START_AL_CL_A[bridging])
    xyz = conf.GetPositions()
    lines = [str(mol.GetNumAtoms()), f"{name}: RDKit ETKDGv3 seed {SEED}, no relaxation, "
             f"Al-Cl set to {START_AL_CL_A[False]} (terminal) / {START_AL_CL_A[True]} A"]
    lines += [f"{a.GetSymbol()} {x:.6f} {y:.6f} {z:.6f}"
              for a, (x, y, z) in zip(mol.GetAtoms(), xyz, strict=True)]
    path = CACHE / f"{name}_start.xyz"
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def fit(name: str) -> tuple[list[str], np.ndarray, Any, dict[str, Any]]:
    """(atom names, rounded charges e, RespFit, QM metadata) from the cache of ``name``."""
    from solvflow.resp import equivalence_ranks, load_esp, resp_charges, rounded_charges
    from solvflow.species import atom_names

    sp = species(name)
    esp = load_esp(CACHE / name)
    result = resp_charges(esp, sp.smiles)
    q = rounded_charges(result.charges, equivalence_ranks(sp.smiles), sp.charge, DECIMALS)
    return atom_names(sp), q, result, esp.meta


def record_fit(name: str, names: list[str], q: np.ndarray, result: Any) -> None:
    """Store the fit and the rounded charges in tools/qm_cache/NAME.json."""
    from solvflow.atomic import atomic_write

    path = (CACHE / name).with_suffix(".json")
    doc = json.loads(path.read_text())
    doc["fit"] = result.summary()
    doc["charges_e"] = dict(zip(names, [float(x) for x in q], strict=True))
    atomic_write(path, json.dumps(doc, indent=1) + "\n")


def note_text(name: str, names: list[str], q: np.ndarray, result: Any,
              meta: dict[str, Any]) -> str:
    from solvflow.parametrize import resp_note

    listing = ", ".join(f"{n} {x:+.4f}" for n, x in zip(names, q, strict=True))
    return f"{name}: {resp_note(result, meta)} Rounded to 1e-4 e: {listing}."


def residue_charges(text: str, residue: str) -> dict[str, float]:
    """Charges by atom name of ``<Residue name=residue>`` in an XML text."""
    block = re.search(rf'<Residue name="{residue}">(.*?)</Residue>', text, re.S)
    if block is None:
        raise SystemExit(f"no residue {residue} in the XML")
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r'<Atom name="([^"]+)"[^>]*charge="([^"]+)"', block.group(1))}


def write_chloroaluminates(results: dict[str, tuple[list[str], np.ndarray, str]]) -> None:
    """Replace the AL4/AL7 charges and the RESP <Note> in chloroaluminates.xml."""
    from solvflow.atomic import atomic_write

    text = CHLOROALUMINATES.read_text()
    for name, (names, q, _) in results.items():
        residue = SPECIES[name][1]
        block = re.search(rf'<Residue name="{residue}">.*?</Residue>', text, re.S)
        assert block is not None
        new = block.group(0)
        for atom, charge in zip(names, q, strict=True):
            new, n = re.subn(rf'(<Atom name="{atom}"[^>]*charge=")[^"]+"',
                             rf'\g<1>{charge:.4f}"', new)
            if n != 1:
                raise SystemExit(f"{residue}: atom {atom} found {n} times")
        text = text[:block.start()] + new + text[block.end():]
    notes = " ".join(note for _, _, note in results.values())
    note = f"  <Note>{escape(NOTE_START)}: {escape(notes)}</Note>\n"
    text = re.sub(rf"  <Note>{re.escape(escape(NOTE_START))}.*?</Note>\n", "", text, flags=re.S)
    text = text.replace(" </Info>", note + " </Info>", 1)
    atomic_write(CHLOROALUMINATES, text)


def check(name: str, names: list[str], q: np.ndarray) -> float:
    """Largest |difference| (e) between the refit and the shipped XML charges."""
    residue = SPECIES[name][1]
    path = CHLOROALUMINATES if residue else ROOT / "forcefields" / "borates.xml"
    shipped = residue_charges(path.read_text(), residue or "BHF")
    return max(abs(shipped[n] - x) for n, x in zip(names, q, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qm", nargs="*", default=[], choices=list(SPECIES), metavar="NAME",
                        help=f"rerun the QM of these species ({', '.join(SPECIES)})")
    parser.add_argument("--species", nargs="*", default=list(SPECIES), choices=list(SPECIES),
                        help="species to fit (default: all); their caches must exist")
    parser.add_argument("--write", action="store_true",
                        help="update forcefields/chloroaluminates.xml and the cache JSON")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a refit charge differs from the XML by > 1e-3 e")
    args = parser.parse_args(argv)
    for name in args.qm:
        run_qm(name)
    missing = [n for n in args.species if not (CACHE / n).with_suffix(".npz").exists()]
    if missing:
        raise SystemExit(f"no QM cache for {', '.join(missing)} in {CACHE}; run with "
                         f"--qm {' '.join(missing)} (minutes to hours of CPU)")
    worst, xml_updates = 0.0, {}
    for name in args.species:
        names, q, result, meta = fit(name)
        print(f"{name}: RMS {result.rms_hartree:.6f} hartree/e, RRMS {result.rrms:.4f}; "
              + ", ".join(f"{n} {x:+.4f}" for n, x in zip(names, q, strict=True)))
        if args.write:
            record_fit(name, names, q, result)
            if SPECIES[name][1]:
                xml_updates[name] = (names, q, note_text(name, names, q, result, meta))
        if args.check:
            diff = check(name, names, q)
            worst = max(worst, diff)
            print(f"{name}: largest difference from the shipped XML {diff:.2e} e")
    if xml_updates:
        write_chloroaluminates(xml_updates)
        print(f"wrote {CHLOROALUMINATES.relative_to(ROOT)}")
    return 1 if args.check and worst > 1e-3 else 0


if __name__ == "__main__":
    sys.exit(main())
