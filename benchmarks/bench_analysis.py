"""Whole-process speed and memory of ``solvflow analyze`` (not part of the test run).

Everything is timed as **whole processes** (a fresh interpreter each time, imports
included), one after the other in one run on the same machine, on the same files:

* **ours**: ``solvflow analyze RUNDIR --cutoff FSI=0.30 --cutoff DME=0.30
  --rdf-frames 0 --no-diffusion --no-plots`` (coordination, pairing, anion
  states, clusters, residence), exactly as the console script runs it;
* **solvation-analysis** on the same work (``Solute`` with the coordination and
  pairing analyses, ``skip_rdf=True``, the same cutoffs in Angstrom, topology.pdb
  + traj.dcd), the field's MDAnalysis-based tool;
* **MDTraj reading** the frames (``mdtraj.iterload(chunk=100)``, nothing done with
  them): the floor any MDTraj-based analysis stands on.

Inside the ``ours`` and ``reading`` processes the phases are timed too (imports,
topology, the frame loop), so the *core* analysis time (``analyze()`` after the
imports: topology from spec.yaml, reading every frame, all the analysis) can be
set against MDTraj's *reading* time of the same frames (its frame loop alone).
The first ``analyze()`` call of a process also loads numba's cached machine code;
the script times a second call in the same process to separate that cost.

Peak memory: ``VmHWM`` of the ``ours`` process on the first 1/4, 1/2 and all of the
frames (memory must not grow with trajectory length).

The trajectory: a LiFSI/DME box at 2 M built by ``solvflow.build`` (``--n-salt``
119: 8,518 atoms) and ``--frames`` frames of seeded rigid-body random walks
(``tests/synthetic.py``; NOT physical dynamics), as DCD. Each quick timing is the
fastest of ``--repeat`` runs; solvation-analysis runs once (it takes ~100x
longer). The machine may be shared: the load average is printed before and after,
and ratios come from the same run. ``--profile`` adds a cProfile of one ``analyze()``.

Usage::

    nice python benchmarks/bench_analysis.py --workdir /tmp/solvflow-bench
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CUTOFFS_NM = {"FSI": 0.30, "DME": 0.30}
DT_PS = 1.0
HWM = ("import atexit\n"
       "def _hwm():\n"
       "    for line in open('/proc/self/status'):\n"
       "        if line.startswith('VmHWM'):\n"
       "            print('VmHWM_kB', line.split()[1], file=sys.stderr)\n"
       "atexit.register(_hwm)\n")
OURS_CLI = "import sys\n" + HWM + "from solvflow.cli import main\nsys.exit(main())\n"
OURS_PHASES = """
import json, sys, time
t0 = time.perf_counter()
from solvflow.analysis.api import analyze
t1 = time.perf_counter()
kw = dict(cutoffs_nm=CUTOFFS, dt_ps=DT, rdf_frames=0, diffusion=False)
analyze(RUNDIR, **kw)
t2 = time.perf_counter()
analyze(RUNDIR, **kw)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_analyze_s": t2 - t1, "second_analyze_s": t3 - t2}))
"""
READ = """
import json, sys, time
t0 = time.perf_counter()
import mdtraj as md
t1 = time.perf_counter()
top = md.load_topology(RUNDIR + "/topology.pdb")
t2 = time.perf_counter()
n = 0
for chunk in md.iterload(RUNDIR + "/traj.dcd", top=top, chunk=100):
    n += chunk.n_frames
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "pdb_topology_s": t2 - t1, "read_frames_s": t3 - t2,
                  "frames": n}))
"""
SOLVATION_ANALYSIS = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import MDAnalysis as mda
from solvation_analysis.solute import Solute
t1 = time.perf_counter()
u = mda.Universe(RUNDIR + "/topology.pdb", RUNDIR + "/traj.dcd")
solute = Solute.from_atoms(
    u.select_atoms("resname LI"),
    {"FSI": u.select_atoms("resname FSI and (element O or element N)"),
     "DME": u.select_atoms("resname DME and element O")},
    solute_name="Li", radii={k: 10.0 * v for k, v in CUTOFFS.items()}, skip_rdf=True,
    analysis_classes=["coordination", "pairing"])
t2 = time.perf_counter()
solute.run()
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "setup_s": t2 - t1, "run_s": t3 - t2,
                  "frames": len(u.trajectory)}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def _code(template: str, rundir: Path) -> str:
    return (f"RUNDIR = {str(rundir)!r}\nCUTOFFS = {CUTOFFS_NM!r}\nDT = {DT_PS!r}\n"
            + template)


def run_process(argv: list[str]) -> dict[str, Any]:
    """Wall seconds, child CPU seconds, VmHWM (MiB, if printed) and stdout JSON of a process."""
    before = os.times()
    start = time.perf_counter()
    proc = subprocess.run(argv, env=_env(), cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = os.times()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    out: dict[str, Any] = {"wall_s": wall, "cpu_s": (after.children_user - before.children_user
                                                     + after.children_system
                                                     - before.children_system)}
    for line in proc.stderr.splitlines():
        if line.startswith("VmHWM_kB"):
            out["VmHWM_MiB"] = int(line.split()[1]) / 1024.0
    last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    if last and last[0].startswith("{"):
        out.update(json.loads(last[0]))
    return out


def best_of(repeat: int, argv: list[str]) -> dict[str, Any]:
    """The run with the smallest wall time of ``repeat`` runs, plus every wall time."""
    runs = [run_process(argv) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["wall_s"])
    best["all_wall_s"] = [round(r["wall_s"], 3) for r in runs]
    return best


def ours_argv(rundir: Path, out_json: Path, stop: int | None = None) -> list[str]:
    args = ["analyze", str(rundir), "--dt-ps", str(DT_PS), "--rdf-frames", "0",
            "--no-diffusion", "--no-plots", "-o", str(out_json)]
    for name, nm in CUTOFFS_NM.items():
        args += ["--cutoff", f"{name}={nm}"]
    if stop is not None:
        args += ["--stop", str(stop)]
    return [sys.executable, "-c", OURS_CLI, *args]


def prepare(workdir: Path, n_salt: int, n_frames: int) -> Path:
    """A built LiFSI/DME run directory with an ``n_frames`` random-walk ``traj.dcd``.

    Built by the source tree's ``solvflow.build`` (as every timed process runs it).
    """
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
    import mdtraj as md

    import solvflow
    from synthetic import write_random_walk

    rundir = workdir / f"lifsi_{n_salt}"
    if not (rundir / "topology.pdb").is_file():
        solvflow.build("lifsi_dme", concentration=2.0, n_salt=n_salt, output=rundir,
                       write_system=False, seed=1, overwrite=True)
    traj = rundir / "traj.dcd"
    if traj.is_file():
        with md.open(str(traj)) as handle:
            if len(handle) == n_frames:
                return rundir
    write_random_walk(rundir / "topology.pdb", traj, n_frames, sigma_nm=0.03, seed=2)
    return rundir


PROFILE = """
import collections, cProfile, os, pstats, sys, time
marks = [("start", time.process_time())]
def mark(name):
    marks.append((name, time.process_time()))
import numpy; mark("import numpy")
import yaml; mark("import yaml")
import mdtraj; mark("import mdtraj")
import numba; mark("import numba")
import rdkit.Chem; mark("import rdkit.Chem (elements from SMILES)")
from solvflow.analysis.api import analyze; mark("import solvflow.analysis (rest)")
from solvflow.analysis import kernels
kernels._n_visited(3, 1); mark("numba start-up (first call of any kernel)")
kw = dict(cutoffs_nm=CUTOFFS, dt_ps=DT, rdf_frames=0, diffusion=False)
analyze(RUNDIR, stop=2, **kw); mark("analyze(2 frames): spec, topology, groups, kernel loads")
analyze(RUNDIR, **kw); mark("analyze(all frames), warm")
top = mdtraj.load_topology(RUNDIR + "/topology.pdb"); mark("MDTraj: parse topology.pdb")
for chunk in mdtraj.iterload(RUNDIR + "/traj.dcd", top=top, chunk=100):
    pass
mark("MDTraj: read all frames (iterload)")
print("phases of one process, CPU s (no profiler):")
for (_, t0), (name, t1) in zip(marks, marks[1:]):
    print(f"  {t1 - t0:7.3f}  {name}")
pr = cProfile.Profile(time.process_time)
pr.enable()
analyze(RUNDIR, **kw)
pr.disable()
stats = pstats.Stats(pr).stats
by_file = collections.Counter()
for (path, _, func), (_, _, tottime, _, _) in stats.items():
    key = path.split("site-packages/")[-1].split("/src/")[-1] if path != "~" else func
    by_file[key] += tottime
print("warm analyze(), CPU s by file (cProfile tottime; the profiler inflates Python-level "
      "loops, e.g. topology and groups, several-fold):")
for key, value in by_file.most_common(TOP):
    print(f"  {value:7.3f}  {key}")
"""


def profile(rundir: Path, top: int = 15) -> str:
    """Where a warm ``analyze()`` spends its CPU, by source file (fresh process, cProfile)."""
    code = _code(PROFILE, rundir).replace("TOP", str(top))
    out = subprocess.run([sys.executable, "-c", code], env=_env(), cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith("dcdplugin)"))


def measure(rundir: Path, n_frames: int, repeat: int, with_sa: bool) -> dict[str, Any]:
    """Every whole-process timing, the phase timings, memory and the ratios."""
    res: dict[str, Any] = {"load_average_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        out_json = Path(tmp) / "analysis.json"
        run_process(ours_argv(rundir, out_json, stop=50))  # untimed: fills numba's cache
        res["ours_cli"] = best_of(repeat, ours_argv(rundir, out_json))
        res["ours_phases"] = best_of(repeat, [sys.executable, "-c",
                                              _code(OURS_PHASES, rundir)])
        res["mdtraj_read"] = best_of(repeat, [sys.executable, "-c", _code(READ, rundir)])
        res["memory_MiB"] = {
            str(k): run_process(ours_argv(rundir, out_json, stop=k))["VmHWM_MiB"]
            for k in (n_frames // 4, n_frames // 2, n_frames)}
    if with_sa:
        res["solvation_analysis"] = run_process(
            [sys.executable, "-c", _code(SOLVATION_ANALYSIS, rundir)])
    res["load_average_after"] = os.getloadavg()[0]
    return res


def ratios(res: dict[str, Any]) -> dict[str, float]:
    ours, phases, read = res["ours_cli"], res["ours_phases"], res["mdtraj_read"]
    out = {
        "core_first_vs_read": phases["first_analyze_s"] / read["read_frames_s"],
        "core_second_vs_read": phases["second_analyze_s"] / read["read_frames_s"],
        "ours_whole_vs_mdtraj_whole": ours["wall_s"] / read["wall_s"],
    }
    sa = res.get("solvation_analysis")
    if sa:
        out["sa_whole_over_ours_whole"] = sa["wall_s"] / ours["wall_s"]
        out["sa_whole_over_ours_whole_cpu"] = sa["cpu_s"] / ours["cpu_s"]
    return out


def table(res: dict[str, Any], n_frames: int) -> str:
    ours, phases, read = res["ours_cli"], res["ours_phases"], res["mdtraj_read"]
    sa = res.get("solvation_analysis")
    rows = [
        "| process | wall s | CPU s | phases (s) |", "|---|---|---|---|",
        f"| `solvflow analyze` (CLI, {n_frames:,} frames) | {ours['wall_s']:.2f} | "
        f"{ours['cpu_s']:.2f} | - |",
        f"| `analyze()` phases | {phases['wall_s']:.2f} | {phases['cpu_s']:.2f} | import "
        f"{phases['import_s']:.2f}, 1st call {phases['first_analyze_s']:.2f}, 2nd call "
        f"{phases['second_analyze_s']:.2f} |",
        f"| MDTraj reading | {read['wall_s']:.2f} | {read['cpu_s']:.2f} | import "
        f"{read['import_s']:.2f}, PDB {read['pdb_topology_s']:.2f}, frames "
        f"{read['read_frames_s']:.2f} |",
    ]
    if sa:
        rows.append(f"| solvation-analysis | {sa['wall_s']:.2f} | {sa['cpu_s']:.2f} | import "
                    f"{sa['import_s']:.2f}, setup {sa['setup_s']:.2f}, run {sa['run_s']:.2f} |")
    rows.append("")
    rows += [f"- {k}: {v:.2f}" for k, v in ratios(res).items()]
    rows.append(f"- VmHWM MiB by frames analysed: {res['memory_MiB']}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/solvflow-bench"))
    parser.add_argument("--n-salt", type=int, default=119, help="LiFSI pairs (119: 8,518 atoms)")
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each quick timing; the fastest counts (shared machine)")
    parser.add_argument("--no-sa", action="store_true", help="skip solvation-analysis")
    parser.add_argument("--profile", action="store_true",
                        help="print where a warm analyze() spends its CPU (cProfile)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rundir = prepare(args.workdir, args.n_salt, args.frames)
    res = measure(rundir, args.frames, args.repeat, not args.no_sa)
    res.update({"frames": args.frames, "rundir": str(rundir), "cpus": os.cpu_count(),
                "python": sys.version.split()[0], "ratios": ratios(res)})
    print(json.dumps(res, indent=2))
    print(table(res, args.frames))
    if args.profile:
        print(profile(rundir))


if __name__ == "__main__":
    main()
