"""Hydrogen mass repartitioning check: one box run at 2 fs and at 4 fs + HMR, compared.

    # NVE energy drift from one equilibrated state: 2 fs, 4 fs + HMR, 4 fs without HMR
    PYTHONPATH=src OPENMM_CPU_THREADS=1 python validation/hmr_check.py nve RUNDIR --nve-ps 2

    PYTHONPATH=src OPENMM_CPU_THREADS=1 python validation/hmr_check.py run \\
        --system lifsi_dme --concentration 2.0 --n-salt 14 --timestep-fs 4 --workdir /tmp/hmr
    PYTHONPATH=src python validation/hmr_check.py compare /tmp/hmr/*/hmr_summary.json

``run`` builds the box (seed 1, so both time steps start from the same box), runs
minimise / heat / NPT equilibration / NPT production at the time step asked for
(4 fs: ``hydrogen_mass_amu`` 3), analyses the production frames and then runs a
short NVE segment (velocity Verlet, same time step and masses) from the final state
for the energy drift. It writes ``hmr_summary.json``: density (mean of the
production log rows, block standard error), temperature (mean, standard deviation),
cation-partner RDF first-peak position, coordination numbers, SSIP/CIP/AGG (with the
analysis' block errors), NVE drift (kJ/mol per ns per degree of freedom).
``compare`` prints each quantity at both time steps, the difference and its
combined standard error (sqrt(se1^2 + se2^2)).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

HMR_AMU = 3.0


def protocol_dict(timestep_fs: float, npt_ps: float, production_ps: float) -> dict[str, Any]:
    """The check's protocol at ``timestep_fs`` (4 fs: with HMR); stage lengths in ps."""
    data: dict[str, Any] = {
        "name": f"hmr_check_{timestep_fs:g}fs", "timestep_fs": timestep_fs,
        "friction_per_ps": 1.0, "pressure_bar": 1.0, "barostat_interval_steps": 25,
        "report_interval_ps": 0.2, "checkpoint_interval_min": 2,
        "stages": {"minimize": {"tolerance_kJ_mol_nm": 10.0, "max_iterations": 2000},
                   "heat": {"start_K": 50, "duration_ps": 4},
                   "npt": {"duration_ps": npt_ps, "average_last_fraction": 0.5},
                   "production": {"duration_ns": production_ps / 1000.0, "ensemble": "NPT",
                                  "frame_interval_ps": 0.2}}}
    if timestep_fs > 2.0:
        data["hydrogen_mass_amu"] = HMR_AMU
    return data


def block_mean(values: np.ndarray, n_blocks: int = 5) -> tuple[float, float]:
    """(mean, standard error from ``n_blocks`` contiguous block means)."""
    blocks = np.array_split(np.asarray(values, dtype=float), n_blocks)
    means = np.array([b.mean() for b in blocks if len(b)])
    return float(values.mean()), float(means.std(ddof=1) / math.sqrt(len(means)))


def first_peak(rdf: dict[str, Any]) -> float:
    """r (nm) of the highest g(r) below 0.4 nm: the first-shell peak of a cation RDF."""
    r, g = np.asarray(rdf["r_nm"]), np.asarray(rdf["g"])
    inner = r < 0.4
    return float(r[inner][np.argmax(g[inner])])


def nve_drift(rundir: Path, timestep_fs: float, hmr: float | None, ps: float,
              state_file: Path | None = None) -> dict[str, Any]:
    """Energy drift of velocity Verlet from the run's state.xml (or ``state_file``):
    kJ/mol per ns per degree of freedom, its fit standard error, the RMS of the total
    energy about the fit; ``blew_up`` when the energy stops being finite."""
    import openmm
    from openmm import unit

    from solvflow.simulation import rundir as rd
    from solvflow.simulation.hmr import repartition_hydrogen_mass
    from solvflow.simulation.reporters import degrees_of_freedom

    inputs = rd.read_inputs(rundir)
    system = openmm.XmlSerializer.deserialize(inputs.system_xml)
    if hmr is not None:
        repartition_hydrogen_mass(system, inputs.topology, hmr)
    state = openmm.XmlSerializer.deserialize((state_file or rundir / rd.STATE).read_text())
    integrator = openmm.VerletIntegrator(timestep_fs / 1000.0)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"))
    context.setState(state)
    steps_per_point = max(1, int(round(0.02 / (timestep_fs / 1000.0))))
    times, energies = [], []
    for k in range(int(round(ps / 0.02)) + 1):
        try:
            if k:
                integrator.step(steps_per_point)
            s = context.getState(getEnergy=True)
            energy = (s.getPotentialEnergy() + s.getKineticEnergy()).value_in_unit(
                unit.kilojoule_per_mole)
        except openmm.OpenMMException:
            energy = math.nan
        if not math.isfinite(energy):
            return {"timestep_fs": timestep_fs, "hydrogen_mass_amu": hmr, "nve_ps": ps,
                    "blew_up": True, "at_ps": k * 0.02}
        times.append(k * 0.02)
        energies.append(energy)
    t, e = np.array(times), np.array(energies)
    fit, cov = np.polyfit(t, e, 1, cov=True)
    dof = degrees_of_freedom(system)
    return {"timestep_fs": timestep_fs, "hydrogen_mass_amu": hmr, "blew_up": False,
            "nve_ps": ps, "dof": dof,
            "drift_kJ_mol_ns_dof": float(fit[0] * 1000.0 / dof),
            "drift_se": float(math.sqrt(cov[0, 0]) * 1000.0 / dof),
            "energy_fluctuation_kJ_mol": float(np.std(e - np.polyval(fit, t)))}


def run(args: argparse.Namespace) -> None:
    from solvflow.analysis import analyze
    from solvflow.build import build
    from solvflow.simulate import simulate
    from solvflow.simulation.protocols import parse_protocol
    from solvflow.simulation.rundir import log_rows, read_inputs

    label = f"{args.system}_{args.concentration:g}_{args.timestep_fs:g}fs"
    rundir = Path(args.workdir) / label
    if not (rundir / "spec.yaml").is_file():
        build(args.system, output=rundir, concentration=args.concentration,
              n_salt=args.n_salt, seed=1)
    data = protocol_dict(args.timestep_fs, args.npt_ps, args.production_ps)
    started = time.time()
    result = simulate(rundir, protocol=parse_protocol(data), platform=args.platform,
                      progress="lines")
    rows = [r for r in log_rows(rundir / "log.csv") if r["stage"] == "production"]
    density = block_mean(np.array([float(r["density_g_cm3"]) for r in rows]))
    temps = np.array([float(r["temperature_K"]) for r in rows])
    analysis = analyze(rundir).to_dict()
    summary = {
        "label": label, "timestep_fs": args.timestep_fs,
        "hydrogen_mass_amu": data.get("hydrogen_mass_amu"),
        "n_atoms": read_inputs(rundir).topology.getNumAtoms(),
        "platform": result.platform, "simulated_ns": result.simulated_ns,
        "production_ps": args.production_ps, "wall_s_this_session": time.time() - started,
        "ns_per_day": result.ns_per_day,
        "density_g_cm3": density, "temperature_K": [float(temps.mean()), float(temps.std())],
        "rdf_first_peak_nm": {k: first_peak(v) for k, v in analysis.get("rdf", {}).items()},
        "coordination_numbers": analysis["coordination_numbers"],
        "ion_pairing": analysis["ion_pairing"], "stderr": analysis.get("stderr", {}),
        "n_frames": analysis.get("n_frames"),
        "nve": nve_drift(rundir, args.timestep_fs, data.get("hydrogen_mass_amu"), args.nve_ps),
    }
    (rundir / "hmr_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


def nve(args: argparse.Namespace) -> None:
    """NVE from one state: 2 fs as built, 4 fs with HMR, 4 fs without (the control)."""
    rundir = Path(args.rundir)
    state = Path(args.state) if args.state else None
    results = [nve_drift(rundir, ts, hmr, args.nve_ps, state)
               for ts, hmr in ((2.0, None), (4.0, HMR_AMU), (4.0, None))]
    (rundir / "hmr_nve.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


def _pairs(summary: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Quantity name -> (value, standard error)."""
    se = summary.get("stderr", {})
    out = {"density_g_cm3": tuple(summary["density_g_cm3"])}
    for key in ("coordination_numbers", "ion_pairing"):
        for name, value in summary[key].items():
            err = (se.get(key) or {}).get(name)
            out[f"{key}.{name}"] = (value, err if err is not None else float("nan"))
    for name, value in summary["rdf_first_peak_nm"].items():
        out[f"rdf_first_peak_nm.{name}"] = (value, 0.0025)  # half the 0.005 nm bin
    out["temperature_K (mean)"] = (summary["temperature_K"][0], float("nan"))
    nve = summary["nve"]
    out["nve drift kJ/mol/ns/dof"] = (nve["drift_kJ_mol_ns_dof"], nve["drift_se"])
    return out


def compare(args: argparse.Namespace) -> None:
    summaries = [json.loads(Path(p).read_text()) for p in args.summaries]
    summaries.sort(key=lambda s: s["timestep_fs"])
    a, b = summaries[0], summaries[-1]
    pa, pb = _pairs(a), _pairs(b)
    print(f"| quantity | {a['timestep_fs']:g} fs | {b['timestep_fs']:g} fs + HMR | "
          "difference | combined SE | |diff|/SE |")
    print("|---|---|---|---|---|---|")
    for key in pa:
        if key not in pb:
            continue
        (va, ea), (vb, eb) = pa[key], pb[key]
        se = math.sqrt(ea**2 + eb**2)
        ratio = abs(vb - va) / se if se > 0 and math.isfinite(se) else float("nan")
        print(f"| {key} | {va:.4g} +- {ea:.2g} | {vb:.4g} +- {eb:.2g} | {vb - va:+.3g} | "
              f"{se:.2g} | {ratio:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(required=True)
    r = sub.add_parser("run")
    r.add_argument("--system", default="lifsi_dme")
    r.add_argument("--concentration", type=float, default=2.0)
    r.add_argument("--n-salt", type=int, default=14)
    r.add_argument("--timestep-fs", type=float, choices=(2.0, 4.0), default=2.0)
    r.add_argument("--npt-ps", type=float, default=10.0)
    r.add_argument("--production-ps", type=float, default=40.0)
    r.add_argument("--nve-ps", type=float, default=2.0)
    r.add_argument("--platform", default="CPU")
    r.add_argument("--workdir", default="/tmp/solvflow-hmr")
    r.set_defaults(func=run)
    n = sub.add_parser("nve", help="NVE drift at 2 fs, 4 fs + HMR, 4 fs without HMR")
    n.add_argument("rundir")
    n.add_argument("--state", help="state.xml to start from (default: RUNDIR/state.xml)")
    n.add_argument("--nve-ps", type=float, default=2.0)
    n.set_defaults(func=nve)
    c = sub.add_parser("compare")
    c.add_argument("summaries", nargs=2)
    c.set_defaults(func=compare)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
