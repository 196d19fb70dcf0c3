"""Speed and memory of ``solvflow.analysis.analyze`` (not part of the test run).

Builds a ~10,000-atom LiFSI/DME box with ``solvflow.build`` and writes a
synthetic trajectory (seeded rigid-body random walks of every molecule,
wrapped into the box; NOT physical dynamics) into a scratch directory, then
prints:

* frames/s of the full analysis (RDF sample, shells, pairing, clusters,
  residence, diffusion) and of the shell/pairing work alone;
* the ratio against merely reading the same frames with ``mdtraj.iterload``
  (topology parsed from the PDB, as ``analyze`` does; ``read_frames_only_s``
  gives the frames alone); every timing is the fastest of ``--repeat`` runs,
  wall and CPU time of this process, with the load average;
* the ratio against solvation-analysis (coordination, pairing, speciation,
  residence; RDFs skipped, same cutoffs) on the first ``--sa-frames`` frames,
  scaled per frame;
* peak resident memory (``ru_maxrss`` of a fresh subprocess) for 1x and 4x
  the trajectory length.

Usage::

    PYTHONPATH=src python benchmarks/bench_analysis.py --workdir /tmp/solvflow-bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

CUTOFFS_NM = {"FSI": 0.30, "DME": 0.30}


def prepare(workdir: Path, n_salt: int, n_frames: int, tag: str) -> Path:
    import solvflow
    from solvflow.analysis.synthetic import write_random_walk

    rundir = workdir / f"lifsi_{tag}"
    if not (rundir / "topology.pdb").is_file():
        solvflow.build("lifsi_dme", concentration=2.0, n_salt=n_salt, output=rundir,
                       write_system=False, seed=1, overwrite=True)
    traj = rundir / "traj.dcd"
    if not traj.is_file() or _n_frames(traj) != n_frames:
        write_random_walk(rundir / "topology.pdb", traj, n_frames, sigma_nm=0.03, seed=2)
    return rundir


def _n_frames(path: Path) -> int:
    import mdtraj as md

    with md.open(str(path)) as handle:
        return len(handle)


def _timed(func: Callable[[], object]) -> tuple[float, float]:
    """(wall s, CPU s of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    func()
    return time.perf_counter() - wall, time.process_time() - cpu


def time_read(rundir: Path, topology: object = None) -> tuple[float, float]:
    """Reading all frames with mdtraj.iterload (topology parsed from the PDB unless given)."""
    import mdtraj as md

    top = topology if topology is not None else str(rundir / "topology.pdb")

    def read() -> None:
        for _ in md.iterload(str(rundir / "traj.dcd"), top=top, chunk=100):
            pass

    return _timed(read)


def time_ours(rundir: Path, **options: object) -> tuple[float, float]:
    from solvflow.analysis import analyze

    return _timed(lambda: analyze(rundir, cutoffs_nm=CUTOFFS_NM, dt_ps=1.0,
                                  **options))  # type: ignore[arg-type]


def best_of(repeat: int, func: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """Smallest wall and smallest CPU time of ``repeat`` runs (the machine is shared)."""
    runs = [func() for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def time_solvation_analysis(rundir: Path, n_frames: int) -> tuple[float, float] | None:
    """(wall s, CPU s) of solvation-analysis on the first ``n_frames`` frames (one run)."""
    try:
        import MDAnalysis as mda
        from solvation_analysis.solute import Solute
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start, cpu = time.perf_counter(), time.process_time()
        u = mda.Universe(str(rundir / "topology.pdb"), str(rundir / "traj.dcd"))
        solute = Solute.from_atoms(
            u.select_atoms("resname LI"),
            {"FSI": u.select_atoms("resname FSI and (element O or element N)"),
             "DME": u.select_atoms("resname DME and element O")},
            solute_name="Li", radii={k: 10.0 * v for k, v in CUTOFFS_NM.items()},
            skip_rdf=True,
            analysis_classes=["coordination", "pairing", "speciation", "residence"],
        )
        solute.run(stop=n_frames)
        return time.perf_counter() - start, time.process_time() - cpu


def peak_memory_mib(rundir: Path) -> float:
    code = (
        "import resource, sys; sys.path.insert(0, 'src');"
        "from solvflow.analysis import analyze;"
        f"analyze({str(rundir)!r}, cutoffs_nm={CUTOFFS_NM!r}, dt_ps=1.0);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    return int(out.stdout.split()[-1]) / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/solvflow-bench"))
    parser.add_argument("--n-salt", type=int, default=139, help="LiFSI pairs (139: ~9,950 atoms)")
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--sa-frames", type=int, default=100,
                        help="frames for solvation-analysis (scaled per frame)")
    parser.add_argument("--no-memory", action="store_true", help="skip the 4x memory run")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each timing; the fastest counts (shared machine)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rundir = prepare(args.workdir, args.n_salt, args.frames, "1x")
    n = args.frames
    results: dict[str, object] = {"frames": n, "cpus": os.cpu_count(),
                                  "machine": platform.processor() or platform.machine(),
                                  "load_average_before": os.getloadavg()[0]}
    import mdtraj as md

    topology = md.load_topology(str(rundir / "topology.pdb"))
    reps = args.repeat
    t_read, c_read = best_of(reps, lambda: time_read(rundir))
    t_frames, c_frames = best_of(reps, lambda: time_read(rundir, topology))
    t_full, c_full = best_of(reps, lambda: time_ours(rundir))
    t_shells, c_shells = best_of(reps, lambda: time_ours(rundir, rdf_frames=0, diffusion=False))
    results.update({
        "repeat": reps,
        "read_s": t_read, "read_cpu_s": c_read, "read_frames_per_s": n / t_read,
        "read_frames_only_s": t_frames,
        "full_s": t_full, "full_cpu_s": c_full, "full_frames_per_s": n / t_full,
        "full_vs_read": t_full / t_read, "full_vs_read_cpu": c_full / c_read,
        "shells_only_s": t_shells, "shells_only_cpu_s": c_shells,
        "shells_only_frames_per_s": n / t_shells,
        "shells_only_vs_read": t_shells / t_read, "shells_only_vs_read_cpu": c_shells / c_read,
    })
    sa = time_solvation_analysis(rundir, args.sa_frames)
    if sa is not None:
        per_frame, per_frame_cpu = sa[0] / args.sa_frames, sa[1] / args.sa_frames
        results.update({"solvation_analysis_s": sa[0], "solvation_analysis_cpu_s": sa[1],
                        "solvation_analysis_frames": args.sa_frames,
                        "solvation_analysis_frames_per_s": 1.0 / per_frame,
                        "speedup_full_vs_solvation_analysis": per_frame * n / t_full,
                        "speedup_full_vs_solvation_analysis_cpu": per_frame_cpu * n / c_full,
                        "speedup_shells_only_vs_solvation_analysis": per_frame * n / t_shells,
                        "speedup_shells_only_vs_solvation_analysis_cpu":
                            per_frame_cpu * n / c_shells})
    if not args.no_memory:
        big = prepare(args.workdir, args.n_salt, 4 * n, "4x")
        results["peak_rss_MiB_1x"] = peak_memory_mib(rundir)
        results["peak_rss_MiB_4x"] = peak_memory_mib(big)
    results["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
