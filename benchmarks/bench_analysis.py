"""Speed and memory of ``solvflow.analysis.analyze`` (not part of the test run).

Builds a ~10,000-atom LiFSI/DME box with ``solvflow.build`` and writes a
synthetic trajectory (seeded rigid-body random walks of every molecule,
wrapped into the box; NOT physical dynamics) into a scratch directory, then
prints:

* frames/s of the full analysis (RDF sample, shells, pairing, clusters,
  residence, diffusion) and of the shell/pairing work alone;
* the ratio against merely reading the same frames with ``mdtraj.iterload``;
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


def time_read(rundir: Path) -> float:
    import mdtraj as md

    start = time.perf_counter()
    for _ in md.iterload(str(rundir / "traj.dcd"), top=str(rundir / "topology.pdb"), chunk=100):
        pass
    return time.perf_counter() - start


def time_ours(rundir: Path, **options: object) -> float:
    from solvflow.analysis import analyze

    start = time.perf_counter()
    analyze(rundir, cutoffs_nm=CUTOFFS_NM, dt_ps=1.0, **options)  # type: ignore[arg-type]
    return time.perf_counter() - start


def time_solvation_analysis(rundir: Path, n_frames: int) -> float | None:
    try:
        import MDAnalysis as mda
        from solvation_analysis.solute import Solute
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
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
        return time.perf_counter() - start


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
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rundir = prepare(args.workdir, args.n_salt, args.frames, "1x")
    n = args.frames
    results: dict[str, object] = {"frames": n, "cpus": os.cpu_count(),
                                  "machine": platform.processor() or platform.machine(),
                                  "load_average_before": os.getloadavg()[0]}
    t_read = min(time_read(rundir) for _ in range(2))
    t_full = time_ours(rundir)
    t_shells = time_ours(rundir, rdf_frames=0, diffusion=False)
    results.update({
        "read_s": t_read, "read_frames_per_s": n / t_read,
        "full_s": t_full, "full_frames_per_s": n / t_full, "full_vs_read": t_full / t_read,
        "shells_only_s": t_shells, "shells_only_frames_per_s": n / t_shells,
        "shells_only_vs_read": t_shells / t_read,
    })
    t_sa = time_solvation_analysis(rundir, args.sa_frames)
    if t_sa is not None:
        per_frame = t_sa / args.sa_frames
        results.update({"solvation_analysis_s": t_sa, "solvation_analysis_frames": args.sa_frames,
                        "solvation_analysis_frames_per_s": 1.0 / per_frame,
                        "speedup_full_vs_solvation_analysis": per_frame * n / t_full})
    if not args.no_memory:
        big = prepare(args.workdir, args.n_salt, 4 * n, "4x")
        results["peak_rss_MiB_1x"] = peak_memory_mib(rundir)
        results["peak_rss_MiB_4x"] = peak_memory_mib(big)
    results["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
