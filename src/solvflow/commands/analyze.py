"""``solvflow analyze``: solvation structure of a run directory or any trajectory."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from solvflow.errors import AnalysisInputError


def _cutoffs(items: list[str] | None) -> dict[str, float]:
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise AnalysisInputError(f"--cutoff must be NAME=NM (e.g. DME=0.28), got {item!r}")
    return out


@contextlib.contextmanager
def _silence_c_stdout() -> Iterator[None]:
    """Hide what C code prints on fd 1 (MDTraj's DCD reader announces every file it opens)."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (e.g. captured by a test harness): nothing to hide
        yield
        return
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def _run(args: argparse.Namespace) -> int:
    from solvflow.analysis import analyze

    target = Path(args.target)
    if not target.exists():
        raise AnalysisInputError(f"{target} does not exist: give a run directory or a trajectory "
                                 "file (with --top)")
    is_rundir = target.is_dir()
    if args.output:
        output = Path(args.output)
    elif is_rundir:
        output = target / "analysis.json"
    else:
        raise AnalysisInputError("give -o analysis.json when analysing a trajectory file")
    if output.is_dir():
        output = output / "analysis.json"
    if not output.parent.is_dir():
        raise AnalysisInputError(f"cannot write {output}: folder {output.parent} does not exist")
    with _silence_c_stdout():
        result = analyze(
            target,
            args.top,
            cation=args.cation,
            anions=args.anion,
            solvents=args.solvent,
            cutoffs_nm=_cutoffs(args.cutoff),
            box_nm=args.box_nm,
            start=args.start, stop=args.stop, step=args.step,
            chunk=args.chunk, rdf_frames=args.rdf_frames, n_blocks=args.blocks,
            dt_ps=args.dt_ps, diffusion=not args.no_diffusion,
        )
    result.write_json(output)
    print(summary(result.to_dict()))
    print(f"wrote    {output}")
    if not args.no_plots:
        for path in result.plot(output.parent):
            print(f"wrote    {path}")
    return 0


def summary(data: dict[str, Any]) -> str:
    """A few lines: cutoffs, coordination numbers, SSIP/CIP/AGG with errors."""
    err = data["stderr"]

    def pm(value: float, e: float | None) -> str:
        return f"{value:.3f}" + (f" +- {e:.3f}" if e is not None else "")

    lines = _provenance_lines(data) + [f"cation   {data['cation']}   frames {data['n_frames']} "
                                       f"{data['frames_used']}"]
    for name, cut in data["cutoffs_nm"].items():
        lines.append(f"{name:<8} cutoff {cut:.3f} nm ({data['cutoff_source'][name]})  CN "
                     f"{pm(data['coordination_numbers'][name], err['coordination_numbers'][name])}")
    lines.append("pairing  " + "  ".join(f"{k} {pm(v, err['ion_pairing'][k])}"
                                         for k, v in data["ion_pairing"].items()))
    if data.get("anion_states"):
        lines.append("anions   " + "  ".join(f"{k} {pm(v, err['anion_states'][k])}"
                                             for k, v in data["anion_states"].items()))
    lines += _caveats(data)
    return "\n".join(lines)


def _provenance_lines(data: dict[str, Any]) -> list[str]:
    """System, force field, charge scale, platform and simulated time (when known)."""
    prov = data.get("provenance") or {}
    status = prov.get("status") or {}
    simulated = data.get("simulated_time_ps")
    lines = []
    if prov.get("system"):
        lines.append(f"system   {prov['system']}  counts {prov.get('counts')}  "
                     f"T {prov.get('temperature_K')} K")
        lines.append(f"ff       {', '.join(prov.get('forcefield_files', []))}  charge scale "
                     f"{prov.get('charge_scale')}")
    if status:
        lines.append(f"md       protocol {status.get('protocol')}, platform "
                     f"{status.get('platform')} ({status.get('precision')}), "
                     f"{status.get('simulated_ns')} ns in all")
    if simulated is not None:
        lines.append(f"analysed {simulated:g} ps of trajectory")
    return lines


def _caveats(data: dict[str, Any]) -> list[str]:
    """Honest warnings: block errors are lower bounds when shells outlive a block."""
    simulated = data.get("simulated_time_ps")
    n_blocks = data.get("n_blocks") or 1
    residence = data.get("residence_times_ps") or {}
    if simulated is None:
        return ["note     no time step: residence times and diffusion not computed"]
    block_ps = simulated / n_blocks
    slow = [name for name, tau in residence.items() if tau is None or tau > block_ps]
    if not slow:
        return []
    return [f"note     shells of {', '.join(slow)} persist longer than one block "
            f"({block_ps:.3g} ps): the +- block errors are lower bounds; run longer"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "analyze", help="solvation shells, SSIP/CIP/AGG, clusters, residence, diffusion",
        description="Analyse a run directory (species from spec.yaml) or any trajectory with "
                    "--top and MDTraj selections. Writes analysis.json and PNG plots.")
    parser.add_argument("target", help="run directory, or a trajectory file (with --top)")
    parser.add_argument("--top", help="topology file for a trajectory (PDB, CIF, PRMTOP, GRO...)")
    parser.add_argument("--cation", metavar="NAME=SEL",
                        help="cation centres, one atom per ion: e.g. 'Li=resname LI'")
    parser.add_argument("--anion", action="append", metavar="NAME=SEL",
                        help="anion coordinating sites, e.g. 'FSI=resname FSI and element O' "
                             "(repeatable)")
    parser.add_argument("--solvent", action="append", metavar="NAME=SEL",
                        help="solvent coordinating sites, e.g. 'DME=resname DME and element O' "
                             "(repeatable)")
    parser.add_argument("--cutoff", action="append", metavar="NAME=NM",
                        help="shell radius of a partner in nm (default: first RDF minimum)")
    parser.add_argument("--box-nm", metavar="L|a,b,c",
                        help="orthorhombic box in nm (needed if the trajectory has none)")
    parser.add_argument("--start", type=int, help="first frame (default 0)")
    parser.add_argument("--stop", type=int, help="stop before this frame (default: end)")
    parser.add_argument("--step", type=int, help="analyse every STEP-th frame (default 1)")
    parser.add_argument("--dt-ps", type=float,
                        help="time between analysed frames in ps (default: from the file)")
    parser.add_argument("--chunk", type=int, default=100, help="frames read at a time")
    parser.add_argument("--rdf-frames", type=int, default=200,
                        help="frames sampled for RDFs and cutoffs (default 200)")
    parser.add_argument("--blocks", type=int, default=5, help="blocks for standard errors")
    parser.add_argument("--no-diffusion", action="store_true", help="skip the MSD")
    parser.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    parser.add_argument("-o", "--output", metavar="JSON",
                        help="analysis.json to write (default: RUNDIR/analysis.json); plots "
                             "go beside it")
    parser.set_defaults(func=_run)
