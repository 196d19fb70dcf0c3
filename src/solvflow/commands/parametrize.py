"""``solvflow parametrize``: system.xml for a run directory, or an XML for a new species."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from solvflow.errors import InputError


def _run(args: argparse.Namespace) -> int:
    if args.smiles is not None:
        return _new_species(args)
    if args.rundir is None:
        raise InputError("give a run directory (system.xml for a built box) or --smiles SMILES "
                         "--name NAME (a force-field XML for a new organic species)")
    return _rundir(args)


def _new_species(args: argparse.Namespace) -> int:
    if args.rundir is not None:
        raise InputError("give either a run directory or --smiles, not both")
    if not args.name:
        raise InputError("--smiles needs --name NAME (species name, also the XML file name)")
    if args.charges == "resp":
        return _resp_species(args)
    if args.structure or args.optimize or args.formal_charge is not None:
        raise InputError("--structure, --optimize and --formal-charge belong to "
                         "--charges resp (AM1-BCC uses its own sqm geometry)")
    from solvflow.parametrize import parametrize_species

    path = parametrize_species(args.smiles, args.name, args.residue, output=args.output,
                               overwrite=args.overwrite)
    residue = args.residue or args.name[:3].upper()
    from rdkit import Chem

    charge = Chem.GetFormalCharge(Chem.MolFromSmiles(args.smiles))
    role = "solvent" if charge == 0 else ("cation" if charge > 0 else "anion")
    print(f"wrote {path} (GAFF2 types, AM1-BCC charges, residue {residue})")
    print("use it in a system file's species list, e.g.:")
    print(f"  - {{name: {args.name}, smiles: \"{args.smiles}\", residue: {residue}, "
          f"charge: {charge}, "
          f"role: {role}, forcefield: {path.resolve()}, density_g_cm3: ...}}")
    return 0


def _resp_species(args: argparse.Namespace) -> int:
    import json

    from solvflow.parametrize import parametrize_resp

    if args.max_opt_steps < 1:
        raise InputError(f"--max-opt-steps must be >= 1, not {args.max_opt_steps}")
    paths = parametrize_resp(args.smiles, args.name, args.residue, output=args.output,
                             charge=args.formal_charge, structure=args.structure,
                             optimise=args.optimize, max_opt_steps=args.max_opt_steps,
                             overwrite=args.overwrite)
    doc = json.loads(paths[0].read_text())
    fit = doc["fit"]
    print(f"wrote {paths[0]} (RESP charges, HF/6-31G* ESP at {doc['qm']['n_points']} points; "
          f"RMS {fit['rms_esp_kj_mol_e']:.3f} kJ/mol/e, RRMS {fit['rrms_esp']:.4f})")
    print("  " + ", ".join(f"{n} {q:+.4f}" for n, q in doc["charges_e"].items()))
    if len(paths) > 1:
        print(f"wrote {paths[1]} (GAFF2 types, RESP charges, residue {doc['residue']})")
    else:
        print("no XML: GAFF2 has no types for an element of this species; combine these "
              "charges with hand-built types (as forcefields/borates.xml does)")
    return 0


def _rundir(args: argparse.Namespace) -> int:
    import yaml

    from solvflow.build import system_settings
    from solvflow.forcefield import settings_from_spec, write_system

    rundir = Path(args.rundir)
    if not (rundir / "spec.yaml").is_file():
        raise InputError(f"{rundir} is not a solvflow run directory (no spec.yaml)")
    if (rundir / "status.json").is_file():
        raise InputError(f"{rundir} has already been simulated (status.json): its system.xml is "
                         "not changed under a running or finished trajectory; build a new run "
                         "directory (solvflow build ... --charge-scale F -o NEW)")
    stored = settings_from_spec(yaml.safe_load((rundir / "spec.yaml").read_text()))
    scale = stored.charge_scale if args.charge_scale is None else args.charge_scale
    cutoff = stored.cutoff_nm if args.cutoff_nm is None else args.cutoff_nm
    path = write_system(rundir, system_settings(scale, cutoff))
    print(f"wrote {path} (charge scale {scale:g}, cutoff {cutoff:g} nm)")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "parametrize", help="write system.xml for a run directory, or an XML for a new species",
        description="With RUNDIR: (re)write its system.xml (PME, geometric LJ mixing, scaled "
                    "ionic charges). With --smiles/--name: GAFF2 types and AM1-BCC charges "
                    "through AmberTools for a new organic species, or (--charges resp) "
                    "HF/6-31G* RESP charges through PySCF for any species 6-31G* covers, "
                    "boron and aluminium included.")
    parser.add_argument("rundir", nargs="?", help="run directory made by `solvflow build`")
    parser.add_argument("--charge-scale", type=float, metavar="F",
                        help="ionic charge scale (0.5-1.0); default: the one in spec.yaml")
    parser.add_argument("--cutoff-nm", type=float, metavar="NM", help="non-bonded cutoff, nm")
    parser.add_argument("--smiles", help="SMILES of a new species (with formal charges)")
    parser.add_argument("--name", help="name of the new species (XML file stem)")
    parser.add_argument("--residue", help="residue name, 1-3 characters (default: from --name)")
    parser.add_argument("--charges", choices=("am1bcc", "resp"), default="am1bcc",
                        help="charge route for --smiles: am1bcc (AmberTools, organic only; "
                             "default) or resp (PySCF HF/6-31G* ESP, two-stage RESP)")
    parser.add_argument("--structure", metavar="FILE",
                        help="resp: geometry as .xyz or .pdb, atoms in the SMILES order "
                             "(Angstrom; default: RDKit conformer)")
    parser.add_argument("--optimize", action="store_true",
                        help="resp: optimise the geometry at HF/6-31G* first (geomeTRIC)")
    parser.add_argument("--max-opt-steps", type=int, default=100, metavar="N",
                        help="resp: geometry-optimisation step limit (default 100)")
    parser.add_argument("--formal-charge", type=int, metavar="Q",
                        help="resp: expected total charge; must match the SMILES")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing NAME.xml in the output folder")
    parser.add_argument("-o", "--output", default=".", metavar="DIR",
                        help="folder for the new species' XML (default: current folder)")
    parser.set_defaults(func=_run)
