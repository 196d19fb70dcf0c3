"""``solvflow validate``: force-field checks against experiment, with a pass/miss table."""

from __future__ import annotations

import argparse
from typing import Any

from solvflow.errors import InputError

_EPILOG = """\
checks (defined as data in solvflow/validate_checks.yaml; tolerances fixed there):
  density:dme density:dmac density:emim_r1.0 density:emim_r1.5 density:emim_r2.0
  shell:mg_dmac shell:mg_dme shell:ca_dme shell:li_dme
examples:
  solvflow validate density:dme -o val                     # one check, CPU-sized
  solvflow validate density:my_solvent --reference 0.95 -o val   # a new liquid (system file)
  solvflow validate shell:mg_dmac --ion-parameters aqvist li_merz_iod --start random complex -o val
  solvflow validate --ns 1 --platform CUDA --size-factor 4 -o val   # the long version (GPU)
  solvflow validate --report-only -o val                   # tables and plots of what is there
"""


def register(subparsers: Any) -> None:
    """Add the ``validate`` subcommand."""
    p = subparsers.add_parser(
        "validate", help="check force fields against experiment (densities, first shells)",
        description="Build, simulate (NPT) and score force-field checks against experimental "
                    "references; write results.md / results.json and plots to -o DIR. A run "
                    "whose result.json exists with the same settings is not repeated.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checks", nargs="*", metavar="CHECK",
                   help="check names (default: every check); density:SYSTEM with --reference "
                        "for a liquid without a shipped check")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="folder of run directories and results")
    p.add_argument("--ns", type=float, default=None, metavar="NS",
                   help="production length in ns (default 0.03; equilibration 25 %%, >= 0.01)")
    p.add_argument("--equil-ns", type=float, default=None, metavar="NS",
                   help="equilibration length in ns (default: 25 %% of --ns, >= 0.01)")
    p.add_argument("--platform", default=None,
                   help="OpenMM platform (CUDA, OpenCL, CPU; default: the fastest)")
    p.add_argument("--ion-parameters", nargs="+", default=[None], metavar="SET",
                   help="ion LJ sets for shell checks (aqvist, li_merz_hfe, li_merz_iod; "
                        "default: each system file's)")
    p.add_argument("--start", nargs="+", default=["random"], metavar="START",
                   help="shell starts: random (Packmol) and/or complex (pre-assembled shells)")
    p.add_argument("--charge-scale", type=float, default=None,
                   help="ionic charge scale for every run (default: the check's or system's)")
    p.add_argument("--reference", type=float, default=None, metavar="G_CM3",
                   help="experimental density for density:SYSTEM checks not shipped")
    p.add_argument("--tolerance", type=float, default=None,
                   help="relative tolerance of a --reference check (default 0.03)")
    p.add_argument("--checks-file", default=None, metavar="YAML",
                   help="extra check definitions (same format as the shipped file)")
    p.add_argument("--size-factor", type=float, default=1.0,
                   help="multiply every box's molecule count (e.g. 4 on a GPU)")
    p.add_argument("--seed", type=int, default=2024, help="build, velocity and barostat seed")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: tables and plots of the results under -o")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from solvflow.spec import ION_PARAMETER_SETS
    from solvflow.validate import (
        STARTS,
        RunSettings,
        collect,
        load_checks,
        resolve_checks,
        run_check,
    )
    from solvflow.validate_report import text_table, write_report

    for name in args.ion_parameters:
        if name is not None and name not in ION_PARAMETER_SETS:
            raise InputError(f"unknown ion parameter set {name!r}; allowed: "
                             f"{', '.join(ION_PARAMETER_SETS)}")
    for start in args.start:
        if start not in STARTS:
            raise InputError(f"unknown start {start!r}; allowed: {', '.join(STARTS)}")
    if args.ns is not None and not 0 < args.ns <= 1000:
        raise InputError(f"--ns must be in (0, 1000] ns, got {args.ns:g}")
    if args.equil_ns is not None and not 0 < args.equil_ns <= 1000:
        raise InputError(f"--equil-ns must be in (0, 1000] ns, got {args.equil_ns:g}")
    if not 0.1 <= args.size_factor <= 100:
        raise InputError(f"--size-factor must be in [0.1, 100], got {args.size_factor:g}")
    out = Path(args.output)
    if not args.report_only:
        checks = resolve_checks(args.checks, load_checks(args.checks_file),
                                reference=args.reference, tolerance=args.tolerance)
        settings = RunSettings(production_ns=args.ns if args.ns is not None else 0.03,
                               platform=args.platform, seed=args.seed,
                               size_factor=args.size_factor, equilibration=args.equil_ns)
        out.mkdir(parents=True, exist_ok=True)
        for check in checks:
            variants = ([(i, s) for i in args.ion_parameters for s in args.start]
                        if check.kind == "shell" else [(None, "random")])
            for ion_set, start in variants:
                res = run_check(check, out, settings, ion_parameters=ion_set, start=start,
                                charge_scale=args.charge_scale)
                verdict = "pass" if res["passed"] else "MISS"
                print(f"{res['run_id']}: {verdict} ({res['md_s']:.0f} s MD, "
                      f"{res['ns_per_day']:g} ns/day, {res['platform']})", flush=True)
    results = collect(out)
    if not results:
        raise InputError(f"no results under {out}")
    written = write_report(results, out, plots=not args.no_plots)
    print(text_table(results))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
