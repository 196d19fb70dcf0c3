"""``solvflow run``: run (or resume) the MD protocol in a run directory, building it if needed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from solvflow.commands.build import add_build_options, build_from_args
from solvflow.errors import InputError

_BUILD_ONLY = ("concentration", "molality", "ratio", "n_salt", "charge_scale")


def _target(args: argparse.Namespace) -> Path:
    """The run directory, after building it when TARGET is a system and it has no spec.yaml."""
    target = Path(args.target)
    if (target / "spec.yaml").is_file():
        given = [f"--{name.replace('_', '-')}" for name in _BUILD_ONLY
                 if getattr(args, name) is not None] + (["--overwrite"] if args.overwrite else [])
        if given or (args.output and Path(args.output).resolve() != target.resolve()):
            raise InputError(f"{target} is already a run directory; build options "
                             f"({', '.join(given) or '-o'}) apply only to `run SYSTEM -o RUNDIR`")
        return target
    if target.is_dir() or args.output is None:
        raise InputError(f"{target} is not a run directory (no spec.yaml); give a run directory, "
                         "or a system name with -o RUNDIR to build one first")
    rundir = Path(args.output)
    if (rundir / "spec.yaml").is_file() and not args.overwrite:
        print(f"run directory {rundir} exists: not rebuilding it")
        return rundir
    seed = args.seed
    args.seed = 1 if seed is None else seed
    args.system = args.target
    result = build_from_args(args)
    args.seed = seed
    print(f"built    {result.rundir} ({result.composition.n_atoms} atoms)")
    return Path(result.rundir)


def _run(args: argparse.Namespace) -> int:
    from solvflow.simulate import simulate

    rundir = _target(args)
    progress: Any = "quiet" if args.quiet else None
    result = simulate(rundir, protocol=args.protocol, platform=args.platform,
                      production_ns=args.production_ns, seed=args.seed, progress=progress)
    status = result.status
    if result.already_finished:
        print(f"run directory {rundir} is already finished (protocol {status.get('protocol')}, "
              f"{result.simulated_ns:g} ns, {result.n_frames} frames); nothing to do. "
              "Pass a larger --production-ns to extend it.")
        return 0
    speed = f"{result.ns_per_day:.4g} ns/day" if result.ns_per_day else "-"
    print(f"finished {rundir}: protocol {status.get('protocol')}, stages "
          f"{', '.join(status.get('stages_finished', []))}")
    print(f"platform {result.platform} (precision {result.precision}); production {speed}; "
          f"{result.simulated_ns:g} ns simulated; wall time {result.wall_time_s:.1f} s "
          f"(all sessions); {result.n_frames} frames in traj.dcd")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="run the MD protocol (minimize, heat, anneal, npt, production); resumes",
        description="Run or resume the MD protocol in RUNDIR; with SYSTEM and -o RUNDIR, build "
                    "the run directory first (skipped if it already has spec.yaml).")
    parser.add_argument("target", metavar="RUNDIR|SYSTEM",
                        help="a run directory, or a system name/YAML to build into -o RUNDIR")
    # run RUNDIR needs no -o; --seed defaults to the one in spec.yaml
    add_build_options(parser, output_required=False, seed_default=None)
    parser.add_argument("--protocol", metavar="NAME|PATH.yaml",
                        help="smoke, quick, standard, production, or a YAML file "
                             "(default: the run's own, else quick)")
    parser.add_argument("--platform", metavar="NAME",
                        help="CUDA, OpenCL, CPU or Reference (default: fastest that loads)")
    parser.add_argument("--production-ns", type=float, metavar="NS",
                        help="production length in ns (overrides the protocol; can extend a "
                             "finished run)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    parser.set_defaults(func=_run)
