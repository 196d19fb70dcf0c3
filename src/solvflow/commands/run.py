"""``solvflow run``: run (or resume) the MD protocol in a run directory, building it if needed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from solvflow.commands.build import add_build_options, build_from_args
from solvflow.durations import EXIT_RESUMABLE, format_duration, parse_duration
from solvflow.errors import InputError

_BUILD_ONLY = ("concentration", "molality", "ratio", "n_salt", "charge_scale", "cutoff_nm",
               "start", "start_distance_nm")


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
        _check_same_build(rundir, args)
        print(f"run directory {rundir} exists with the same build: not rebuilding it")
        return rundir
    build_args = argparse.Namespace(**vars(args))
    build_args.system = args.target
    build_args.seed = 1 if args.seed is None else args.seed
    result = build_from_args(build_args)
    print(f"built    {result.rundir} ({result.composition.n_atoms} atoms)")
    return Path(result.rundir)


def _check_same_build(rundir: Path, args: argparse.Namespace) -> None:
    """Refuse to continue a run directory that was built from another system or composition."""
    import yaml

    from solvflow.spec import load_system

    spec = yaml.safe_load((rundir / "spec.yaml").read_text())
    comp = spec.get("composition", {})
    wanted = {"system": load_system(args.target).name}
    have = {"system": spec.get("system", {}).get("name")}
    measure = {"concentration": "molarity", "molality": "molality", "ratio": "ratio"}
    for option, mode in measure.items():
        if getattr(args, option) is not None:
            wanted["composition"] = f"{mode} {getattr(args, option):g}"
            have["composition"] = (f"{comp.get('mode', '').replace('lewis_', '')} "
                                   f"{comp.get('requested', float('nan')):g}")
    for option, stored in (("n_salt", comp.get("n_salt")),
                           ("charge_scale", spec.get("charge_scale")),
                           ("cutoff_nm", spec.get("forcefield", {}).get("cutoff_nm")),
                           ("start", spec.get("start", {}).get("state", "random")),
                           ("start_distance_nm", spec.get("start", {}).get("distance_nm"))):
        if getattr(args, option) is not None:
            wanted[option], have[option] = getattr(args, option), stored
    differ = [f"{key} {have[key]} (asked: {wanted[key]})" for key in wanted
              if wanted[key] != have[key]]
    if differ:
        raise InputError(f"{rundir} was built differently: {'; '.join(differ)}. Continue it with "
                         f"`solvflow run {rundir}`, rebuild it with --overwrite, or choose "
                         "another -o")


def _run(args: argparse.Namespace) -> int:
    from solvflow.simulate import simulate

    rundir = _target(args)
    progress: Any = "quiet" if args.quiet else None
    result = simulate(rundir, protocol=args.protocol, platform=args.platform,
                      production_ns=args.production_ns, seed=args.seed, progress=progress,
                      walltime_s=args.walltime)
    status = result.status
    if result.state == "stopped":
        print(f"stopped  {rundir}: wall time {format_duration(args.walltime)} used up; "
              f"checkpoint at {result.simulated_ns:g} ns (stage {status.get('stage')}), "
              f"{result.n_frames} frames kept. Not finished: run `solvflow run {rundir}` "
              "again to resume")
        return EXIT_RESUMABLE
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


def _walltime(text: str) -> float:
    try:
        return parse_duration(text)
    except InputError as exc:  # argparse prints it as a one-line usage error (exit status 2)
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--walltime: ")) from None


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
    parser.add_argument("--walltime", type=_walltime, metavar="DURATION",
                        help="stop cleanly at a checkpoint when this much wall time has passed "
                             "(e.g. 90m, 2h30m, 3600s, 01:30:00; like GROMACS -maxh) and exit "
                             f"with status {EXIT_RESUMABLE}: not finished, resumable by running "
                             "the same command again")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    parser.set_defaults(func=_run)
