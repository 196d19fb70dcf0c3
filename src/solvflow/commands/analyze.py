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
from solvflow.namevalue import parse_numbers


def _cutoffs(items: list[str] | None) -> dict[str, float]:
    return parse_numbers(items, "--cutoff", "NAME=NM (e.g. DME=0.28)", AnalysisInputError)


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
            dt_ps=args.dt_ps, diffusion=_flag(args.diffusion, args.no_diffusion, "diffusion"),
            residence=True if args.residence else None, charges=_charges(args.charge),
            charge_scale=args.charge_scale, temperature_K=args.temperature_k,
        )
    result.write_json(output)
    print(summary(result.to_dict()))
    print(f"wrote    {output}")
    if not args.no_plots:
        for path in result.plot(output.parent):
            print(f"wrote    {path}")
    return 0


def _flag(on: bool, off: bool, what: str) -> bool | None:
    if on and off:
        raise AnalysisInputError(f"--{what} and --no-{what} contradict each other")
    return True if on else (False if off else None)


def _charges(items: list[str] | None) -> dict[str, float] | None:
    if not items:
        return None
    return parse_numbers(items, "--charge", "NAME=Z (e.g. FSI=-1)", AnalysisInputError)


def _pm(data: dict[str, Any], group: str, key: str, fmt: str = ".3f") -> str:
    """``value +- stderr (n_eff N)``, or the value with the unreliable-error flag."""
    value = data[group][key]
    err = data["stderr"].get(group, {}).get(key)
    n_eff = (data.get("effective_samples") or {}).get(group, {}).get(key)
    if f"{group}.{key}" in (data.get("few_samples") or []):
        return f"{value:{fmt}} (n_eff < 10: error bar unreliable; n_eff {n_eff:.1f})"
    text = f"{value:{fmt}}" + (f" +- {err:{fmt}}" if err is not None else "")
    return text + (f" (n_eff {n_eff:.0f})" if n_eff is not None else "")


def summary(data: dict[str, Any]) -> str:
    """Cutoffs, coordination numbers, pairing, residence, diffusion, conductivity with errors."""
    lines = _provenance_lines(data) + [f"cation   {data['cation']}   frames {data['n_frames']} "
                                       f"{data['frames_used']}", _time_step_line(data)]
    for name, cut in data["cutoffs_nm"].items():
        lines.append(f"{name:<8} cutoff {cut:.3f} nm ({data['cutoff_source'][name]})  CN "
                     f"{_pm(data, 'coordination_numbers', name)}")
    lines.append("pairing  " + "  ".join(f"{k} {_pm(data, 'ion_pairing', k)}"
                                         for k in data["ion_pairing"]))
    if data.get("anion_states"):
        lines.append("anions   " + "  ".join(f"{k} {_pm(data, 'anion_states', k)}"
                                             for k in data["anion_states"]))
    lines += _transport_lines(data) + _caveats(data)
    return "\n".join(lines)


def _time_step_line(data: dict[str, Any]) -> str:
    source = {"dt_ps": "--dt-ps", "dcd_header": "DCD header", "frame_times": "frame times"}
    dt = data.get("timestep_ps")
    if dt is None:
        return "time     step unknown: no residence times, diffusion or conductivity (--dt-ps)"
    return f"time     step {dt:g} ps ({source.get(data.get('timestep_source') or '', '?')})"


def _num(value: float | None, err: float | None, unit: str, fmt: str = ".3g") -> str:
    if value is None:
        return "n/a"
    return f"{value:{fmt}}" + (f" +- {err:{fmt}}" if err is not None else "") + f" {unit}"


def _transport_lines(data: dict[str, Any]) -> list[str]:
    """Residence times, diffusion and conductivity (when computed), with their errors."""
    lines = []
    inter = data.get("residence_times_ps") or {}
    cont = data.get("residence_times_continuous_ps") or {}
    for name in inter:
        lags = ((data.get("residence_correlation") or {}).get(name) or {}).get("lag_ps") or [0]
        longer = f"> {lags[-1]:g} ps (longest lag)"
        tau_i, tau_c = inter[name], cont.get(name)
        lines.append(f"tau      {name}: intermittent "
                     f"{_num(tau_i, None, 'ps') if tau_i is not None else longer}, "
                     f"continuous {_num(tau_c, None, 'ps') if tau_c is not None else longer}")
    for name, d in (data.get("diffusion") or {}).items():
        lines.append(f"D        {name}: {_num(d.get('D_m2_s'), d.get('stderr_m2_s'), 'm^2/s')}"
                     f" ({d.get('stderr_method', '')})")
    cond = data.get("conductivity") or {}
    if "note" in cond:
        lines.append(f"sigma    not computed: {cond['note']}")
    for key, label in (("nernst_einstein", "Nernst-Einstein"),
                       ("einstein_helfand", "Einstein-Helfand")):
        if key in cond:
            c = cond[key]
            raw = _num(c["scaled_charges_S_m"], c["stderr_scaled_charges_S_m"], "S/m")
            formal = _num(c["formal_charges_S_m"], c["stderr_formal_charges_S_m"], "S/m")
            lines.append(f"sigma    {label}: {raw} with scaled charges (s="
                         f"{cond['charge_scale']:g}, as simulated); {formal} rescaled to "
                         "formal charges")
    return lines


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
    """Honest warnings: unknown time step, too few independent samples, slow shells."""
    out = []
    if data.get("note"):
        out.append(f"note     {data['note']}")
    few = data.get("few_samples") or []
    if few:
        shown = ", ".join(few[:6]) + (f" and {len(few) - 6} more" if len(few) > 6 else "")
        out.append(f"note     n_eff < 10 for {shown}: their error bars are unreliable; "
                   "run longer")
    simulated = data.get("simulated_time_ps")
    residence = data.get("residence_times_ps") or {}
    slow = [name for name, tau in residence.items()
            if simulated is not None and (tau is None or tau > simulated / 10)]
    if slow:
        out.append(f"note     shells of {', '.join(slow)} persist longer than a tenth of the "
                   "run: correlation times (and errors) may be underestimated; run longer")
    return out


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
                        help="time between analysed frames in ps (default: a DCD header with a "
                             "real time step, or XTC/TRR/NetCDF/H5 frame times; else unknown "
                             "and residence/diffusion are skipped)")
    parser.add_argument("--chunk", type=int, default=100, help="frames read at a time")
    parser.add_argument("--rdf-frames", type=int, default=200,
                        help="frames sampled for RDFs and cutoffs (default 200)")
    parser.add_argument("--blocks", type=int, default=5,
                        help="time blocks for the diffusion and conductivity errors")
    parser.add_argument("--diffusion", action="store_true",
                        help="require diffusion and conductivity (error if the time step is "
                             "unknown)")
    parser.add_argument("--no-diffusion", action="store_true", help="skip the MSD")
    parser.add_argument("--residence", action="store_true",
                        help="require residence times (error if the time step is unknown)")
    parser.add_argument("--charge", action="append", metavar="NAME=Z",
                        help="formal charge of an ion species, for the conductivity of a "
                             "trajectory file (repeatable; a run directory has them)")
    parser.add_argument("--charge-scale", type=float, metavar="S",
                        help="ionic charge scale used in the simulation (default: the run "
                             "directory's, else 1)")
    parser.add_argument("--temperature-k", type=float, metavar="K",
                        help="temperature for the conductivity (default: the run directory's)")
    parser.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    parser.add_argument("-o", "--output", metavar="JSON",
                        help="analysis.json to write (default: RUNDIR/analysis.json); plots "
                             "go beside it")
    parser.set_defaults(func=_run)
