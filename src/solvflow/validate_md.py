"""MD and measurements of one validation run (see :mod:`solvflow.validate`).

The run directory's ``system.xml`` (geometric mixing, scaled ionic charges) is
loaded with ``openmm.XmlSerializer``, a ``MonteCarloBarostat`` (1 bar, every
25 steps, seeded) is added, and a ``LangevinMiddleIntegrator`` (1/ps, 2 fs)
runs NPT: minimise, velocities, equilibration, sampling every 0.2 ps.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvflow.validate import (
    AVOGADRO,
    FRICTION_PER_PS,
    N_BLOCKS,
    PRESSURE_BAR,
    SAMPLE_PS,
    TIMESTEP_PS,
    Check,
    RunSettings,
    finite,
    score,
)


def md_result(check: Check, rundir: Path, settings: RunSettings,
              meta: dict[str, Any]) -> dict[str, Any]:
    """Simulate the built run directory and score the check; a JSON-ready dict."""
    sim, topology, mass = make_simulation(rundir, settings, meta["temperature_K"])
    keep = check.kind == "shell"
    md = run_md(sim, settings, meta["temperature_K"], keep_positions=keep)
    volumes = md["volumes"]
    density = mass / AVOGADRO / (volumes * 1e-21)
    prod = density[md["n_equil"]:]
    out: dict[str, Any] = meta | {
        "check": check.name, "kind": check.kind, "source": check.source,
        "reference": check.reference, "tolerance": check.tolerance,
        "n_atoms": topology.getNumAtoms(), "n_molecules": topology.getNumResidues(),
        "equilibration_ns": settings.equilibration_ns, "production_ns": settings.production_ns,
        "timestep_fs": 1000 * TIMESTEP_PS, "sample_ps": SAMPLE_PS,
        "platform": sim.context.getPlatform().getName(), "seed": settings.seed,
        "md_s": round(md["md_s"], 1), "ns_per_day": round(md["ns_per_day"], 2),
        "density_series_g_cm3": np.round(density, 4).tolist(),
        "final_box_nm": round(float(volumes[-1]) ** (1 / 3), 4),
    }
    if check.kind == "density":
        mean, se, n_eff = mean_stderr(prod)
        out |= {"density_g_cm3": round(mean, 4), "stderr": finite(se), "effective_samples":
                round(n_eff, 1), "start_density_g_cm3": round(float(mass / AVOGADRO /
                                                                    (md["v0"] * 1e-21)), 4)}
        out |= score(check, {"density_g_cm3": mean})
        return out
    shell = first_shell(md["frames"], md["boxes"], topology, check)
    out |= shell | score(check, {"peak_nm": shell["peak_nm"], "cn": shell["cn"]})
    return out


def make_simulation(rundir: Path, settings: RunSettings, temperature_K: float) -> tuple[
        Any, Any, float]:
    """(Simulation, topology, total mass in g/mol) for a run directory, with a barostat."""
    import openmm
    from openmm import app, unit

    from solvflow.simulation.platforms import choose_platform

    system = openmm.XmlSerializer.deserialize((rundir / "system.xml").read_text())
    barostat = openmm.MonteCarloBarostat(PRESSURE_BAR * unit.bar, temperature_K * unit.kelvin, 25)
    barostat.setRandomNumberSeed(settings.seed)
    system.addForce(barostat)
    pdb = app.PDBFile(str(rundir / "topology.pdb"))
    integrator = openmm.LangevinMiddleIntegrator(temperature_K * unit.kelvin,
                                                 FRICTION_PER_PS / unit.picosecond,
                                                 TIMESTEP_PS * unit.picosecond)
    integrator.setRandomNumberSeed(settings.seed)
    platform, properties = choose_platform(settings.platform)
    sim = app.Simulation(pdb.topology, system, integrator, platform, properties)
    sim.context.setPositions(pdb.positions)
    sim.context.setPeriodicBoxVectors(*pdb.topology.getPeriodicBoxVectors())
    mass = sum(system.getParticleMass(i).value_in_unit(unit.dalton)
               for i in range(system.getNumParticles()))
    return sim, pdb.topology, float(mass)


def run_md(sim: Any, settings: RunSettings, temperature_K: float,
           keep_positions: bool) -> dict[str, Any]:
    """Minimise, equilibrate, sample; volumes nm^3, positions and box edges nm."""
    from openmm import unit

    steps = max(1, round(SAMPLE_PS / TIMESTEP_PS))
    v0 = sim.context.getState().getPeriodicBoxVolume().value_in_unit(unit.nanometer**3)
    sim.minimizeEnergy(maxIterations=2000)
    sim.context.setVelocitiesToTemperature(temperature_K * unit.kelvin, settings.seed)
    n_equil = max(1, round(1000 * settings.equilibration_ns / SAMPLE_PS))
    n_prod = max(N_BLOCKS * 2, round(1000 * settings.production_ns / SAMPLE_PS))
    volumes, frames, boxes = [], [], []
    t0 = time.perf_counter()
    for k in range(n_equil + n_prod):
        sim.step(steps)
        sample = keep_positions and (k >= n_equil or k == 0)
        state = sim.context.getState(getPositions=sample)
        volumes.append(state.getPeriodicBoxVolume().value_in_unit(unit.nanometer**3))
        if sample:
            frames.append(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
            boxes.append(state.getPeriodicBoxVectors(asNumpy=True)
                         .value_in_unit(unit.nanometer).diagonal())
    md_s = time.perf_counter() - t0
    ns = (n_equil + n_prod) * SAMPLE_PS / 1000.0
    return {"v0": v0, "volumes": np.array(volumes), "n_equil": n_equil,
            "frames": np.array(frames), "boxes": np.array(boxes), "md_s": md_s,
            "ns_per_day": ns / max(md_s, 1e-9) * 86400.0}


def mean_stderr(series: NDArray[np.float64]) -> tuple[float, float, float]:
    """Mean, standard error and effective sample count from the statistical inefficiency.

    g from :func:`solvflow.analysis.stats.statistical_inefficiency` (pymbar's
    rule); stderr = std sqrt(g / N), N_eff = N / g. With fewer than 10
    effective samples the error is a lower bound.
    """
    from solvflow.analysis.stats import statistical_inefficiency

    x = np.asarray(series, dtype=np.float64)
    if len(x) < 4 or float(np.std(x)) == 0.0:
        return float(x.mean()), float("nan"), float(len(x))
    g = max(1.0, float(statistical_inefficiency(x)))
    return float(x.mean()), float(x.std(ddof=1) * np.sqrt(g / len(x))), len(x) / g


def rdf_peak(traj: Any, pairs: NDArray[np.int64]) -> tuple[NDArray[np.float64],
                                                          NDArray[np.float64], float, float]:
    """g(r) on 0-0.8 nm (0.002 nm bins): r, g, first peak (0.15-0.35 nm), first minimum."""
    import mdtraj

    r, g = mdtraj.compute_rdf(traj, pairs, r_range=(0.0, 0.8), bin_width=0.002)
    window = (r > 0.15) & (r < 0.35)
    peak = float(r[window][np.argmax(g[window])])
    smooth = np.convolve(g, np.ones(5) / 5, mode="same")
    after = (r > peak) & (r < peak + 0.2)
    return r, g, peak, float(r[after][np.argmin(smooth[after])])


def first_shell(frames: NDArray[np.float64], boxes: NDArray[np.float64], topology: Any,
                check: Check) -> dict[str, Any]:
    """Peak, first minimum, CN (mean, stderr, by residue), first-frame CN, shell retention."""
    import mdtraj

    top = mdtraj.Topology.from_openmm(topology)
    cation_res = _residue_of(check)
    cations = [a.index for a in top.atoms if a.residue.name == cation_res]
    partners = [a.index for a in top.atoms if a.element.symbol == check.partner_element
                and a.residue.name != cation_res]
    traj = mdtraj.Trajectory(frames, top, unitcell_lengths=boxes,
                             unitcell_angles=np.full_like(boxes, 90.0))
    first, sampled = traj[0], traj[1:]
    pairs = np.array([(c, o) for c in cations for o in partners])
    r, g, peak, minimum = rdf_peak(sampled, pairs)
    d = mdtraj.compute_distances(sampled, pairs).reshape(sampled.n_frames, len(cations), -1)
    inside = d < minimum
    per_frame = inside.sum(axis=2).mean(axis=1)
    cn, cn_se, n_eff = mean_stderr(per_frame)
    resname = np.array([a.residue.name for a in top.atoms])[partners]
    by_res = {str(n): round(float(inside[:, :, resname == n].sum(axis=2).mean()), 2)
              for n in sorted(set(resname))}
    d0 = mdtraj.compute_distances(first, pairs).reshape(len(cations), -1) < minimum
    kept = float((inside & d0[None]).sum(axis=2).sum(axis=1).mean() / max(d0.sum(), 1))
    blocks = [rdf_peak(sampled[idx], pairs)[2]
              for idx in np.array_split(np.arange(sampled.n_frames), N_BLOCKS)]
    return {"cation": check.cation, "peak_nm": round(peak, 4),
            "peak_stderr_nm": round(float(np.std(blocks, ddof=1) / np.sqrt(N_BLOCKS)), 4),
            "first_min_nm": round(minimum, 4), "g_peak": round(float(g.max()), 1),
            "cn": round(cn, 2), "cn_stderr": finite(cn_se), "cn_effective_samples":
            round(n_eff, 1), "cn_by_residue": by_res,
            "cn_first_frame": round(float(d0.sum(axis=1).mean()), 2),
            "shell_retained": round(kept, 3), "cn_series": np.round(per_frame, 2).tolist(),
            "n_cations": len(cations), "n_frames": int(sampled.n_frames),
            "rdf": {"r_nm": np.round(r, 4).tolist(), "g": np.round(g, 3).tolist()}}


def _residue_of(check: Check) -> str:
    from solvflow.spec import load_system

    return load_system(check.system).get(check.cation).residue
