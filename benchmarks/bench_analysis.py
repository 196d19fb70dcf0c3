"""Speed and memory of ``solvflow.analysis.analyze`` (not part of the test run).

Builds a ~10,000-atom LiFSI/DME box with ``solvflow.build`` and writes a
synthetic trajectory (seeded rigid-body random walks of every molecule,
wrapped into the box; NOT physical dynamics) of N and 4N frames, each both
as DCD and as XTC (the XTC converted from the DCD with MDTraj: what GROMACS
users bring and OpenMM users often write), in run directories under the
scratch directory, then prints, for every format and length:

* frames/s of the full analysis (RDF sample, shells, pairing, clusters,
  residence, diffusion) and of the shell work alone (``rdf_frames=0,
  diffusion=False``: coordination, pairing, clusters, residence);
* the ratio against merely reading the same frames with ``mdtraj.iterload``
  (chunk 100, topology parsed from the PDB: the way a user reads it;
  ``analyze`` of a run directory builds its topology from spec.yaml instead);
* CPU time of parsing topology.pdb with MDTraj vs building the topology from
  spec.yaml (``solvflow.analysis.spectop``);
* every timing as wall time and CPU time of this process
  (``time.process_time``), the fastest of ``--repeat`` runs, with the load
  average (the machine may be shared: CPU time is the steadier measure);
* solvation-analysis on the same work (coordination, pairing, speciation,
  residence; RDFs skipped; same cutoffs) on the first ``--sa-frames`` and on
  all N frames of each format, in CPU ms per frame (at 4N extrapolated from
  its marginal cost per frame), and our speed-up per frame;
* peak resident memory (``VmHWM`` of a fresh subprocess, full analysis)
  for N and 4N frames of each format.

Compiled kernels (numba, ``solvflow.analysis.kernels``) are used when numba is
installed; ``--no-numba`` times the pure-numpy path instead. Before any timing
one untimed warm-up analysis (50 frames) runs, so **the timed runs exclude JIT
compilation and loading of the cached machine code**; that cold-start cost is
measured separately in fresh subprocesses (first minus second call on 50
frames), once with numba's on-disk cache filled and once with an empty cache
(full compilation).

Usage::

    PYTHONPATH=src python benchmarks/bench_analysis.py --workdir /tmp/solvflow-bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

CUTOFFS_NM = {"FSI": 0.30, "DME": 0.30}
FORMATS = ("dcd", "xtc")
DT_PS = 1.0  # frame spacing written into the XTC and passed to analyze


def prepare(workdir: Path, n_salt: int, n_frames: int, tag: str,
            md_rundir: Path | None = None) -> dict[str, Path]:
    """Run directories ``lifsi_<tag>`` (DCD) and ``lifsi_<tag>_xtc`` (same frames as XTC).

    With ``md_rundir`` (a solvflow run directory with real MD frames), its
    ``traj.dcd`` is used instead of the synthetic random walk, repeated as
    often as needed to reach ``n_frames`` (for the 4x length: the joins are
    jumps, which changes neither the work nor the memory per frame).
    """
    import solvflow
    from solvflow.analysis.synthetic import write_random_walk

    if md_rundir is not None:
        return _prepare_md(workdir, md_rundir, n_frames, tag)
    rundir = workdir / f"lifsi_{tag}"
    if not (rundir / "topology.pdb").is_file():
        solvflow.build("lifsi_dme", concentration=2.0, n_salt=n_salt, output=rundir,
                       write_system=False, seed=1, overwrite=True)
    traj = rundir / "traj.dcd"
    if not traj.is_file() or _n_frames(traj) != n_frames:
        write_random_walk(rundir / "topology.pdb", traj, n_frames, sigma_nm=0.03, seed=2)
    xtc_dir = workdir / f"lifsi_{tag}_xtc"
    xtc_dir.mkdir(exist_ok=True)
    for name in ("topology.pdb", "spec.yaml"):
        shutil.copyfile(rundir / name, xtc_dir / name)
    xtc = xtc_dir / "traj.xtc"
    if not xtc.is_file() or _n_frames(xtc) != n_frames:
        dcd_to_xtc(traj, rundir / "topology.pdb", xtc)
    return {"dcd": rundir, "xtc": xtc_dir}


def _prepare_md(workdir: Path, md_rundir: Path, n_frames: int, tag: str) -> dict[str, Path]:
    import mdtraj as md

    rundir = workdir / f"md_{tag}"
    xtc_dir = workdir / f"md_{tag}_xtc"
    for folder in (rundir, xtc_dir):
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("topology.pdb", "spec.yaml"):
            shutil.copyfile(md_rundir / name, folder / name)
    traj = rundir / "traj.dcd"
    if not traj.is_file() or _n_frames(traj) != n_frames:
        frames = md.load(str(md_rundir / "traj.dcd"), top=str(md_rundir / "topology.pdb"))
        copies = -(-n_frames // frames.n_frames)
        md.join([frames] * copies)[:n_frames].save_dcd(str(traj))
    xtc = xtc_dir / "traj.xtc"
    if not xtc.is_file() or _n_frames(xtc) != n_frames:
        dcd_to_xtc(traj, rundir / "topology.pdb", xtc)
    return {"dcd": rundir, "xtc": xtc_dir}


def dcd_to_xtc(dcd: Path, topology: Path, xtc: Path) -> None:
    """Write the frames of ``dcd`` as XTC (precision 1e-3 nm), times ``frame * DT_PS``."""
    import mdtraj as md
    import numpy as np

    top = md.load_topology(str(topology))
    done = 0
    with md.formats.XTCTrajectoryFile(str(xtc), "w") as handle:
        for part in md.iterload(str(dcd), top=top, chunk=100):
            frames = np.arange(done, done + part.n_frames)
            handle.write(part.xyz, time=frames * DT_PS, step=frames, box=part.unitcell_vectors)
            done += part.n_frames


def _n_frames(path: Path) -> int:
    import mdtraj as md

    with md.open(str(path)) as handle:
        return len(handle)


def _trajectory(rundir: Path) -> Path:
    return next(p for p in (rundir / "traj.dcd", rundir / "traj.xtc") if p.is_file())


def _timed(func: Callable[[], object]) -> tuple[float, float]:
    """(wall s, CPU s of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    func()
    return time.perf_counter() - wall, time.process_time() - cpu


def time_read(rundir: Path) -> tuple[float, float]:
    """Reading all frames with mdtraj.iterload, topology parsed from the PDB."""
    import mdtraj as md

    def read() -> None:
        for _ in md.iterload(str(_trajectory(rundir)), top=str(rundir / "topology.pdb"),
                             chunk=100):
            pass

    return _timed(read)


def time_ours(rundir: Path, **options: Any) -> tuple[float, float]:
    from solvflow.analysis import analyze

    return _timed(lambda: analyze(rundir, cutoffs_nm=CUTOFFS_NM, dt_ps=DT_PS, **options))


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
        u = mda.Universe(str(rundir / "topology.pdb"), str(_trajectory(rundir)))
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


def sa_per_frame(dirs: dict[str, Path], n_short: int, n: int) -> dict[str, Any]:
    """solvation-analysis on ``n_short`` and on ``n`` frames of each format (one run each).

    Gives its CPU ms per frame at ``n`` frames (measured) and at ``4 n`` frames
    (extrapolated: cost(n) + 3 n x the marginal cost per frame between ``n_short`` and
    ``n``). A first untimed run on 5 frames imports everything it loads lazily.
    """
    if time_solvation_analysis(dirs["dcd"], 5) is None:
        return {}
    out: dict[str, Any] = {}
    for fmt in FORMATS:
        short, full = (time_solvation_analysis(dirs[fmt], k) for k in (n_short, n))
        if short is None or full is None:
            raise RuntimeError("solvation-analysis stopped working between runs")
        marginal = (full[1] - short[1]) / (n - n_short)
        out[fmt] = {"frames": [n_short, n], "s": [short[0], full[0]],
                    "cpu_s": [short[1], full[1]],
                    "marginal_cpu_ms_per_frame": 1e3 * marginal,
                    f"cpu_ms_per_frame_{n}": 1e3 * full[1] / n,
                    f"cpu_ms_per_frame_{4 * n}_extrapolated":
                        1e3 * (full[1] + 3 * n * marginal) / (4 * n)}
    return out


def peak_memory_mib(rundir: Path) -> float:
    """Peak resident memory (MiB) of a fresh process running the full analysis.

    Read from ``VmHWM`` in ``/proc/self/status``: ``ru_maxrss`` of a child
    can report the parent's peak (Linux keeps it across ``exec``), which made
    earlier figures show the benchmark's own size.
    """
    code = (
        "import sys; sys.path.insert(0, 'src');"
        "from solvflow.analysis import analyze;"
        f"analyze({str(rundir)!r}, cutoffs_nm={CUTOFFS_NM!r}, dt_ps={DT_PS!r});"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    return int(out.stdout.split()[-1]) / 1024.0


def cold_start_s(rundir: Path, empty_cache: bool) -> float:
    """Extra CPU s of the first ``analyze`` call of a fresh process (JIT load or compile).

    First minus second call on 50 frames; with ``empty_cache`` numba compiles every kernel
    (a new ``NUMBA_CACHE_DIR``), otherwise it loads them from its on-disk cache.
    """
    code = (
        "import sys, time; sys.path.insert(0, 'src');"
        "from solvflow.analysis import analyze;"
        "cpu = []\n"
        "for _ in range(2):\n"
        "    t = time.process_time()\n"
        f"    analyze({str(rundir)!r}, cutoffs_nm={CUTOFFS_NM!r}, dt_ps={DT_PS!r}, stop=50)\n"
        "    cpu.append(time.process_time() - t)\n"
        "print(cpu[0] - cpu[1])"
    )
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if empty_cache:
            env["NUMBA_CACHE_DIR"] = cache
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parents[1], env=env)
    return float(out.stdout.split()[-1])


def topology_cpu_s(rundir: Path, repeat: int) -> dict[str, float]:
    """CPU s to parse ``topology.pdb`` with MDTraj vs to build the topology from spec.yaml."""
    import mdtraj as md
    import yaml

    from solvflow.analysis.spectop import topology_from_spec

    spec = yaml.load((rundir / "spec.yaml").read_text(), Loader=yaml.CSafeLoader)
    pdb = best_of(repeat, lambda: _timed(lambda: md.load_topology(str(rundir / "topology.pdb"))))
    built = best_of(repeat, lambda: _timed(lambda: topology_from_spec(spec)))
    return {"pdb_parse": pdb[1], "spec_build": built[1]}


def measure(rundir: Path, n: int, repeat: int) -> dict[str, float]:
    """Reading, full analysis and shell work of one trajectory: times, rates and ratios."""
    out: dict[str, float] = {"frames": n}
    runs = {"read": lambda: time_read(rundir),
            "full": lambda: time_ours(rundir),
            "shells": lambda: time_ours(rundir, rdf_frames=0, diffusion=False)}
    for name, func in runs.items():
        wall, cpu = best_of(repeat, func)
        out.update({f"{name}_s": wall, f"{name}_cpu_s": cpu,
                    f"{name}_cpu_ms_per_frame": 1e3 * cpu / n, f"{name}_frames_per_s": n / wall})
    for name in ("full", "shells"):
        out[f"{name}_vs_read"] = out[f"{name}_s"] / out["read_s"]
        out[f"{name}_vs_read_cpu"] = out[f"{name}_cpu_s"] / out["read_cpu_s"]
    return out


def table(results: dict[str, Any]) -> str:
    """Markdown rows: format, frames, CPU and wall times, ratios to reading, SA speed-ups."""
    lines = ["| format | frames | read CPU / wall s | full CPU / wall s | full / read CPU, wall "
             "| shells CPU / wall s | shells / read CPU, wall | solvation-analysis CPU/frame: "
             "speed-up full, shells |", "|---" * 8 + "|"]
    for key, r in results["runs"].items():
        fmt, frames = key.split("_")
        sa = results.get("solvation_analysis", {}).get(fmt, {})
        sa_ms = sa.get(f"cpu_ms_per_frame_{frames}",
                       sa.get(f"cpu_ms_per_frame_{frames}_extrapolated"))
        speed = "-" if sa_ms is None else (
            f"{sa_ms:.2f} ms: {sa_ms / r['full_cpu_ms_per_frame']:.1f}x, "
            f"{sa_ms / r['shells_cpu_ms_per_frame']:.1f}x")
        lines.append(
            f"| {fmt.upper()} | {r['frames']:,} | {r['read_cpu_s']:.2f} / {r['read_s']:.2f} "
            f"| {r['full_cpu_s']:.2f} / {r['full_s']:.2f} "
            f"| {r['full_vs_read_cpu']:.1f}x, {r['full_vs_read']:.1f}x "
            f"| {r['shells_cpu_s']:.2f} / {r['shells_s']:.2f} "
            f"| {r['shells_vs_read_cpu']:.1f}x, {r['shells_vs_read']:.1f}x | {speed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/solvflow-bench"))
    parser.add_argument("--n-salt", type=int, default=139, help="LiFSI pairs (139: ~9,950 atoms)")
    parser.add_argument("--frames", type=int, default=1000, help="N (also 4N is measured)")
    parser.add_argument("--sa-frames", type=int, default=200,
                        help="short solvation-analysis run (its long run has --frames frames; "
                             "0 skips it)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--only-1x", action="store_true", help="skip the 4N trajectories")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each timing; the fastest counts (shared machine)")
    parser.add_argument("--md-rundir", type=Path,
                        help="use this run directory's real MD traj.dcd (>= --frames frames) "
                             "instead of the synthetic random walk")
    parser.add_argument("--no-numba", action="store_true",
                        help="time the pure-numpy path (as without numba installed)")
    args = parser.parse_args()
    if args.no_numba:
        os.environ["SOLVFLOW_NUMBA"] = "0"  # also seen by the memory subprocesses
    args.workdir.mkdir(parents=True, exist_ok=True)
    n = args.frames
    dirs = {"1x": prepare(args.workdir, args.n_salt, n, "1x", args.md_rundir)}
    if not args.only_1x:
        dirs["4x"] = prepare(args.workdir, args.n_salt, 4 * n, "4x", args.md_rundir)
    import mdtraj
    import numpy

    results: dict[str, Any] = {
        "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(), "mdtraj": mdtraj.__version__,
        "numpy": numpy.__version__, "repeat": args.repeat,
        "load_average_before": os.getloadavg()[0], "runs": {},
        "trajectory": (f"real MD from {args.md_rundir}" if args.md_rundir
                       else "synthetic random walk")}
    from solvflow.analysis import analyze, kernels

    results["numba_kernels"] = kernels.enabled()
    analyze(dirs["1x"]["dcd"], cutoffs_nm=CUTOFFS_NM, dt_ps=DT_PS, stop=50)  # warm-up, untimed
    if kernels.enabled():  # after the warm-up, which fills numba's on-disk cache
        import numba

        results["numba"] = numba.__version__
        results["cold_start_cpu_s"] = {
            "cached": cold_start_s(dirs["1x"]["dcd"], empty_cache=False),
            "compile": cold_start_s(dirs["1x"]["dcd"], empty_cache=True)}
    results["topology_cpu_s"] = topology_cpu_s(dirs["1x"]["dcd"], args.repeat)
    for tag, by_format in dirs.items():
        for fmt in FORMATS:
            length = n if tag == "1x" else 4 * n
            results["runs"][f"{fmt}_{length}"] = measure(by_format[fmt], length, args.repeat)
    if not args.no_memory:
        results["peak_rss_MiB"] = {f"{fmt}_{tag}": peak_memory_mib(by_format[fmt])
                                   for tag, by_format in dirs.items() for fmt in FORMATS}
    if args.sa_frames > 0:
        results["solvation_analysis"] = sa_per_frame(dirs["1x"], args.sa_frames, n)
    results["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
