"""Validate the shipped force fields against experiment (issue 3, item 6).

Checks (all at 298.15 K, 1 bar, NPT with a Monte Carlo barostat):

* ``dme``, ``dmac``: density of the neat liquids (target: within 3 %).
* ``emim_r1.0``, ``emim_r1.5``: density of AlCl3/[EMIm]Cl at r = 1.0 and 1.5
  (target: within 5 %), with the system file's default charge scale.
* ``emim_r1.0_cs1.0``: r = 1.0 with unscaled charges (what the scale changes).
* ``li_o``, ``mg_o``, ``ca_o``: first peak of the cation-O g(r) and the
  coordination number of O within the first minimum, against reference values.
* ``li_o_cs1.0``: Li-O at charge scale 1.0.

Each check builds a box with :func:`solvflow.build`, loads ``system.xml`` with
``openmm.XmlSerializer`` (no solvflow simulation code), adds a
``MonteCarloBarostat``, minimises and runs Langevin NPT. Nothing here tunes a
parameter: the force fields are used exactly as shipped.

Every check writes ``<output>/<check>/result.json``; the script prints a
table of every result found under ``<output>`` and writes
``<output>/results.json``. Run one check per process to use two cores::

    OPENMM_CPU_THREADS=1 PYTHONPATH=src python validation/validate_forcefields.py \
        --checks dme --output /tmp/val

Default lengths fit a 2-core machine without a GPU; use ``--platform CUDA``
and longer ``--equil-ps`` / ``--prod-ps`` / more molecules on a GPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform as pyplatform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

TEMPERATURE_K = 298.15
PRESSURE_BAR = 1.0
TIMESTEP_PS = 0.002
FRICTION_PER_PS = 1.0
AVOGADRO = 6.02214076e23
N_BLOCKS = 5

# Reference values: /work/shared/reference/experimental-data.md ([V] read in a
# public source, [R] recalled from the literature, approximate).
DENSITY_CHECKS: dict[str, dict[str, Any]] = {
    "dme": {"system": "dme", "size": "n_solvent", "ref": (0.862, 0.867), "tol": 0.03,
            "source": "vendor 0.867 [V]; vibrating tube 0.861-0.864 [R] "
                      "(J. Chem. Eng. Data 48 (2003) 1044; 44 (1999) 212)"},
    "dmac": {"system": "dmac", "size": "n_solvent", "ref": (0.937, 0.937), "tol": 0.03,
             "source": "handbook value [V]"},
    "emim_r1.0": {"system": "alcl3_emimcl", "ratio": 1.0, "size": "n_pairs",
                  "ref": (1.29, 1.29), "tol": 0.05,
                  "source": "Fannin et al., J. Phys. Chem. 88 (1984) 2614 [R]"},
    "emim_r1.5": {"system": "alcl3_emimcl", "ratio": 1.5, "size": "n_pairs",
                  "ref": (1.35, 1.39), "tol": 0.05,
                  "source": "Fannin et al., J. Phys. Chem. 88 (1984) 2614 [R]"},
    "emim_r1.0_cs1.0": {"system": "alcl3_emimcl", "ratio": 1.0, "size": "n_pairs",
                        "ref": (1.29, 1.29), "tol": 0.05, "charge_scale": 1.0,
                        "source": "Fannin et al., J. Phys. Chem. 88 (1984) 2614 [R]"},
}
SHELL_SOURCE = "shared/reference/experimental-data.md, first-shell distances [R]"
SHELL_CHECKS: dict[str, dict[str, Any]] = {
    "li_o": {"system": "lifsi_dme", "concentration": 1.0, "cation": "LI",
             "ref_peak_nm": (0.19, 0.20), "ref_cn": (4.0, 5.0), "source": SHELL_SOURCE},
    "mg_o": {"system": "mg_tfsi2_dmac", "concentration": 0.5, "cation": "MG",
             "ref_peak_nm": (0.205, 0.210), "ref_cn": (6.0, 6.0),
             "source": SHELL_SOURCE + "; Mg-O 2.05-2.10 A for [Mg(DMAc)6]2+ [R]"},
    "ca_o": {"system": "ca_bhfip4_dme", "concentration": 0.5, "cation": "CA",
             "ref_peak_nm": (0.24, 0.24), "ref_cn": (7.0, 8.0), "source": SHELL_SOURCE},
    "li_o_cs1.0": {"system": "lifsi_dme", "concentration": 1.0, "cation": "LI",
                   "ref_peak_nm": (0.19, 0.20), "ref_cn": (4.0, 5.0), "charge_scale": 1.0,
                   "source": SHELL_SOURCE},
}
# Tolerance on the g(r) peak position: the reference values are recalled ([R]),
# so a peak within 0.01 nm (0.1 A) of the quoted range counts as a pass.
PEAK_TOL_NM = 0.01
ALL_CHECKS = [*DENSITY_CHECKS, *SHELL_CHECKS]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (lengths in ps, sizes in molecules)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checks", nargs="+", default=[], choices=ALL_CHECKS, metavar="CHECK",
                   help=f"checks to run, from {', '.join(ALL_CHECKS)} (none: only the table)")
    p.add_argument("--output", type=Path, default=Path("validation-runs"),
                   help="folder of run directories and result JSON files")
    p.add_argument("--equil-ps", type=float, default=20.0, help="NPT equilibration, densities")
    p.add_argument("--prod-ps", type=float, default=30.0, help="NPT averaging, densities")
    p.add_argument("--shell-equil-ps", type=float, default=10.0, help="NPT equilibration, g(r)")
    p.add_argument("--shell-prod-ps", type=float, default=25.0, help="NPT sampling, g(r)")
    p.add_argument("--n-solvent", type=int, default=150, help="molecules of a neat liquid")
    p.add_argument("--n-pairs", type=int, default=40, help="EMIm+ count of a melt")
    p.add_argument("--n-salt", type=int, default=4, help="salt formula units, g(r) boxes")
    p.add_argument("--seed", type=int, default=2024, help="build and velocity seed")
    p.add_argument("--platform", default="CPU", help="OpenMM platform (CPU, CUDA, OpenCL)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: OPENMM_CPU_THREADS or all)")
    p.add_argument("--sample-ps", type=float, default=0.2, help="sampling interval")
    return p.parse_args(argv)


def cutoff_for_box(box_nm: float) -> float:
    """1.0 nm if the initial box edge is >= 2.1 nm, else 0.9 nm."""
    return 1.0 if box_nm >= 2.1 else 0.9


def build_box(cfg: dict[str, Any], args: argparse.Namespace, rundir: Path) -> dict[str, Any]:
    """Build the run directory; return composition, box and cutoff."""
    import solvflow
    from solvflow.composition import compose
    from solvflow.spec import load_system

    kwargs: dict[str, Any] = {}
    if "ratio" in cfg:
        kwargs = {"ratio": cfg["ratio"], "n_salt": args.n_pairs}
    elif "concentration" in cfg:
        kwargs = {"concentration": cfg["concentration"], "n_salt": args.n_salt}
    else:
        kwargs = {"n_salt": args.n_solvent}
    spec = load_system(cfg["system"])
    comp = compose(spec, **kwargs)
    cutoff = cutoff_for_box(comp.box_nm)
    scale = cfg.get("charge_scale", spec.charge_scale)
    solvflow.build(cfg["system"], output=rundir, seed=args.seed, cutoff_nm=cutoff,
                   charge_scale=scale, overwrite=True, **kwargs)
    return {"system": cfg["system"], "composition": kwargs, "counts": dict(comp.counts),
            "initial_box_nm": round(comp.box_nm, 4), "cutoff_nm": cutoff,
            "charge_scale": scale}


def make_simulation(rundir: Path, args: argparse.Namespace) -> tuple[Any, Any, float]:
    """OpenMM Simulation from ``system.xml`` + ``topology.pdb`` with a barostat.

    Returns the simulation, the PDB file and the total mass in g/mol.
    """
    import openmm
    from openmm import app, unit

    system = openmm.XmlSerializer.deserialize((rundir / "system.xml").read_text())
    barostat = openmm.MonteCarloBarostat(PRESSURE_BAR * unit.bar, TEMPERATURE_K * unit.kelvin, 25)
    barostat.setRandomNumberSeed(args.seed)
    system.addForce(barostat)
    pdb = app.PDBFile(str(rundir / "topology.pdb"))
    integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE_K * unit.kelvin,
                                                 FRICTION_PER_PS / unit.picosecond,
                                                 TIMESTEP_PS * unit.picosecond)
    integrator.setRandomNumberSeed(args.seed)
    plat = openmm.Platform.getPlatformByName(args.platform)
    props = {}
    if args.platform == "CPU" and args.threads:
        props["Threads"] = str(args.threads)
    sim = app.Simulation(pdb.topology, system, integrator, plat, props)
    sim.context.setPositions(pdb.positions)
    sim.context.setPeriodicBoxVectors(*pdb.topology.getPeriodicBoxVectors())
    mass = sum(system.getParticleMass(i).value_in_unit(unit.dalton)
               for i in range(system.getNumParticles()))
    return sim, pdb, mass


def density_g_cm3(volume_nm3: float, mass_g_mol: float) -> float:
    """Mass density (g/cm^3) of ``mass_g_mol`` in ``volume_nm3``."""
    return mass_g_mol / AVOGADRO / (volume_nm3 * 1e-21)


def block_stderr(series: np.ndarray, n_blocks: int = N_BLOCKS) -> float:
    """Standard error of the mean from ``n_blocks`` contiguous block means."""
    blocks = np.array_split(np.asarray(series, dtype=np.float64), n_blocks)
    means = np.array([b.mean() for b in blocks])
    return float(means.std(ddof=1) / np.sqrt(n_blocks))


def run_md(sim: Any, equil_ps: float, prod_ps: float, sample_ps: float,
           keep_positions: bool) -> dict[str, Any]:
    """Minimise, equilibrate and sample; volumes in nm^3, positions in nm."""
    from openmm import unit

    steps = max(1, round(sample_ps / TIMESTEP_PS))
    v0 = sim.context.getState().getPeriodicBoxVolume().value_in_unit(unit.nanometer**3)
    t0 = time.perf_counter()
    sim.minimizeEnergy(maxIterations=2000)
    sim.context.setVelocitiesToTemperature(TEMPERATURE_K * unit.kelvin, sim.integrator
                                           .getRandomNumberSeed())
    t1 = time.perf_counter()
    volumes, frames, boxes = [], [], []
    n_equil = round(equil_ps / sample_ps)
    n_prod = round(prod_ps / sample_ps)
    for k in range(n_equil + n_prod):
        sim.step(steps)
        state = sim.context.getState(getPositions=keep_positions and k >= n_equil)
        volumes.append(state.getPeriodicBoxVolume().value_in_unit(unit.nanometer**3))
        if keep_positions and k >= n_equil:
            frames.append(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
            boxes.append(state.getPeriodicBoxVectors(asNumpy=True)
                         .value_in_unit(unit.nanometer).diagonal())
    t2 = time.perf_counter()
    ns_day = (equil_ps + prod_ps) / 1000.0 / max(t2 - t1, 1e-9) * 86400.0
    return {"v0": v0, "volumes": np.array(volumes), "n_equil": n_equil,
            "frames": np.array(frames), "boxes": np.array(boxes),
            "minimise_s": t1 - t0, "md_s": t2 - t1, "ns_per_day": ns_day}


def deviation(value: float, ref: tuple[float, float]) -> float:
    """Signed deviation (%) from the nearest end of a reference range (0 inside it)."""
    lo, hi = ref
    if lo <= value <= hi:
        return 0.0
    nearest = lo if value < lo else hi
    return 100.0 * (value - nearest) / nearest


def density_check(name: str, args: argparse.Namespace, rundir: Path) -> dict[str, Any]:
    """Build, simulate and score one density check."""
    cfg = DENSITY_CHECKS[name]
    meta = build_box(cfg, args, rundir)
    sim, pdb, mass = make_simulation(rundir, args)
    md = run_md(sim, args.equil_ps, args.prod_ps, args.sample_ps, keep_positions=False)
    rho = density_g_cm3(md["volumes"], mass)
    prod = rho[md["n_equil"]:]
    mean = float(prod.mean())
    dev = deviation(mean, cfg["ref"])
    return meta | {
        "check": name, "kind": "density", "quantity": "density_g_cm3",
        "value": round(mean, 4), "stderr": round(block_stderr(prod), 4),
        "start_density": round(density_g_cm3(md["v0"], mass), 4),
        "density_after_equil": round(float(rho[md["n_equil"] - 1]), 4),
        "end_density": round(float(rho[-1]), 4),
        "density_min_max": [round(float(rho.min()), 4), round(float(rho.max()), 4)],
        "density_series": {"every_ps": args.sample_ps, "g_cm3": np.round(rho, 4).tolist()},
        "final_box_nm": round(float(md["volumes"][-1]) ** (1 / 3), 4),
        "reference": list(cfg["ref"]), "source": cfg["source"],
        "deviation_pct": round(dev, 2), "target_pct": 100 * cfg["tol"],
        "passed": abs(dev) <= 100 * cfg["tol"],
    } | _run_info(args, pdb, md, args.equil_ps, args.prod_ps)


def _run_info(args: argparse.Namespace, pdb: Any, md: dict[str, Any], equil_ps: float,
              prod_ps: float) -> dict[str, Any]:
    threads = args.threads or os.environ.get("OPENMM_CPU_THREADS", "all")
    return {"n_atoms": pdb.topology.getNumAtoms(), "n_molecules": pdb.topology.getNumResidues(),
            "equil_ps": equil_ps, "prod_ps": prod_ps, "timestep_fs": 1000 * TIMESTEP_PS,
            "platform": args.platform, "threads": threads, "seed": args.seed,
            "minimise_s": round(md["minimise_s"], 1), "md_s": round(md["md_s"], 1),
            "ns_per_day": round(md["ns_per_day"], 2), "host": pyplatform.node(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def shell_check(name: str, args: argparse.Namespace, rundir: Path) -> dict[str, Any]:
    """Build, simulate and score one cation-O first-shell check."""
    import mdtraj

    cfg = SHELL_CHECKS[name]
    meta = build_box(cfg, args, rundir)
    sim, pdb, _ = make_simulation(rundir, args)
    md = run_md(sim, args.shell_equil_ps, args.shell_prod_ps, args.sample_ps,
                keep_positions=True)
    top = mdtraj.Topology.from_openmm(pdb.topology)
    cations = [a.index for a in top.atoms if a.residue.name == cfg["cation"]]
    oxygens = [a.index for a in top.atoms if a.element.symbol == "O"]
    resname = np.array([a.residue.name for a in top.atoms])
    boxes = md["boxes"]
    traj = mdtraj.Trajectory(md["frames"], top, unitcell_lengths=boxes,
                             unitcell_angles=np.full_like(boxes, 90.0))
    shell = first_shell(traj, cations, oxygens, resname)
    ref_peak, ref_cn = cfg["ref_peak_nm"], cfg["ref_cn"]
    peak_dev = deviation(shell["peak_nm"], ref_peak)
    peak_ok = (ref_peak[0] - PEAK_TOL_NM) <= shell["peak_nm"] <= (ref_peak[1] + PEAK_TOL_NM)
    cn_ok = ref_cn[0] - 0.5 <= shell["cn"] <= ref_cn[1] + 0.5
    return meta | shell | {
        "check": name, "kind": "shell", "quantity": f"{cfg['cation']}-O g(r) peak (nm), CN",
        "value": shell["peak_nm"], "stderr": shell["peak_stderr_nm"],
        "reference_peak_nm": list(ref_peak), "reference_cn": list(ref_cn),
        "source": cfg["source"], "deviation_pct": round(peak_dev, 2),
        "peak_passed": bool(peak_ok), "cn_passed": bool(cn_ok),
        "passed": bool(peak_ok and cn_ok),
        "final_box_nm": round(float(md["volumes"][-1]) ** (1 / 3), 4),
    } | _run_info(args, pdb, md, args.shell_equil_ps, args.shell_prod_ps)


def rdf_peak(traj: Any, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """g(r) on 0-0.8 nm (bins 0.002 nm); first peak and first minimum after it (nm)."""
    import mdtraj

    r, g = mdtraj.compute_rdf(traj, pairs, r_range=(0.0, 0.8), bin_width=0.002)
    window = (r > 0.15) & (r < 0.35)
    peak = float(r[window][np.argmax(g[window])])
    smooth = np.convolve(g, np.ones(5) / 5, mode="same")
    after = (r > peak) & (r < peak + 0.2)
    minimum = float(r[after][np.argmin(smooth[after])])
    return r, g, peak, minimum


def first_shell(traj: Any, cations: list[int], oxygens: list[int],
                resname: np.ndarray) -> dict[str, Any]:
    """Peak, first minimum, O coordination number (total and per residue), block errors."""
    import mdtraj

    pairs = np.array([(c, o) for c in cations for o in oxygens])
    r, g, peak, minimum = rdf_peak(traj, pairs)
    d = mdtraj.compute_distances(traj, pairs).reshape(traj.n_frames, len(cations), -1)
    inside = d < minimum
    per_frame = inside.sum(axis=2).mean(axis=1)
    by_res = {str(n): round(float(inside[:, :, resname[oxygens] == n].sum(axis=2).mean()), 2)
              for n in sorted(set(resname[oxygens]))}
    block_peaks = [rdf_peak(traj[idx], pairs)[2]
                   for idx in np.array_split(np.arange(traj.n_frames), N_BLOCKS)]
    return {"peak_nm": round(peak, 4),
            "peak_stderr_nm": round(float(np.std(block_peaks, ddof=1) / np.sqrt(N_BLOCKS)), 4),
            "first_min_nm": round(minimum, 4), "g_peak": round(float(g.max()), 1),
            "cn": round(float(per_frame.mean()), 2),
            "cn_stderr": round(block_stderr(per_frame), 2), "cn_by_residue": by_res,
            "n_cations": len(cations), "n_frames": traj.n_frames,
            "rdf": {"r_nm": np.round(r, 4).tolist(), "g": np.round(g, 3).tolist()}}


def table(results: list[dict[str, Any]]) -> str:
    """Plain-text table of results."""
    rows = [f"{'check':<16} {'measured':>20} {'reference':>14} {'dev %':>7} {'result':>6} "
            f"{'ps':>9} {'atoms':>6} {'box nm':>6} {'cut':>4} {'q':>4}"]
    for res in results:
        ps = f"{res['equil_ps']:g}+{res['prod_ps']:g}"
        if res["kind"] == "density":
            meas = f"{res['value']:.3f}+-{res['stderr']:.3f}"
            ref = "-".join(f"{x:.3f}" for x in sorted(set(res["reference"])))
        else:
            meas = (f"{10 * res['value']:.2f}A CN {res['cn']:.1f}+-{res['cn_stderr']:.1f}")
            ref = (f"{'-'.join(f'{10 * x:.2f}' for x in sorted(set(res['reference_peak_nm'])))}A "
                   f"{'-'.join(f'{x:g}' for x in sorted(set(res['reference_cn'])))}")
        verdict = "pass" if res["passed"] else "MISS"
        rows.append(f"{res['check']:<16} {meas:>20} {ref:>14} {res['deviation_pct']:>7.1f} "
                    f"{verdict:>6} {ps:>9} {res['n_atoms']:>6} {res['final_box_nm']:>6.2f} "
                    f"{res['cutoff_nm']:>4.1f} {res['charge_scale']:>4.1f}")
    return "\n".join(rows)


def markdown(results: list[dict[str, Any]]) -> str:
    """Markdown tables (densities; first shells) for docs/validation.md."""
    dens = ["| check | density / g cm^-3 (+- s.e.) | start -> end | experiment | dev. % | target "
            "| result | ps (equil+avg) | molecules / atoms | box / nm | cutoff / nm | q scale |",
            "|" + "---|" * 12]
    shell = ["| check | peak / A (+- s.e.) | first min / A | CN (+- s.e.) | CN by residue "
             "| reference peak / A, CN | result (peak, CN) | ps | atoms | box / nm | cutoff / nm "
             "| q scale |", "|" + "---|" * 12]
    for r in results:
        common = (f"{r['equil_ps']:g}+{r['prod_ps']:g} | {r['n_molecules']} / {r['n_atoms']} | "
                  f"{r['final_box_nm']:.2f} | {r['cutoff_nm']:.1f} | {r['charge_scale']:.1f} |")
        verdict = "pass" if r["passed"] else "**miss**"
        if r["kind"] == "density":
            ref = "-".join(f"{x:.3f}" for x in sorted(set(r["reference"])))
            dens.append(f"| {r['check']} | {r['value']:.3f} +- {r['stderr']:.3f} | "
                        f"{r['start_density']:.3f} -> {r['end_density']:.3f} | {ref} | "
                        f"{r['deviation_pct']:+.1f} | {r['target_pct']:g} % | {verdict} | "
                        + common)
            continue
        ref_p = "-".join(f"{10 * x:.2f}" for x in sorted(set(r["reference_peak_nm"])))
        ref_c = "-".join(f"{x:g}" for x in sorted(set(r["reference_cn"])))
        ok = "/".join("pass" if r[k] else "miss" for k in ("peak_passed", "cn_passed"))
        by_res = ", ".join(f"{k} {v:.2f}" for k, v in r["cn_by_residue"].items())
        shell.append(f"| {r['check']} | {10 * r['value']:.2f} +- {10 * r['stderr']:.2f} | "
                     f"{10 * r['first_min_nm']:.2f} | {r['cn']:.2f} +- {r['cn_stderr']:.2f} | "
                     f"{by_res} | {ref_p}, {ref_c} | {ok} | {r['equil_ps']:g}+{r['prod_ps']:g} | "
                     f"{r['n_atoms']} | {r['final_box_nm']:.2f} | {r['cutoff_nm']:.1f} | "
                     f"{r['charge_scale']:.1f} |")
    return "\n".join(dens) + "\n\n" + "\n".join(shell) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the requested checks, then print and save the table of all results."""
    args = parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    for name in args.checks:
        rundir = args.output / name
        runner = density_check if name in DENSITY_CHECKS else shell_check
        result = runner(name, args, rundir / "run")
        (rundir / "result.json").write_text(json.dumps(result, indent=1))
        print(f"{name}: done in {result['md_s']:.0f} s ({result['ns_per_day']} ns/day)",
              file=sys.stderr)
    found = [json.loads(p.read_text()) for p in sorted(args.output.glob("*/result.json"))]
    found.sort(key=lambda res: ALL_CHECKS.index(res["check"]))
    summary = [{k: v for k, v in res.items() if k not in ("rdf", "density_series")}
               for res in found]
    (args.output / "results.json").write_text(json.dumps(summary, indent=1))
    (args.output / "results.md").write_text(markdown(found))
    print(table(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
