"""``analyze``: the user-facing entry point (run directory or any trajectory + topology).

The RDFs (reported and plotted) use a sample of at most ``rdf_frames``
evenly strided analysed frames (every ``ceil(n_frames / rdf_frames)``-th).

* All cutoffs given: **one pass** over the trajectory; the sampled frames of
  each chunk also feed the RDFs.
* A cutoff missing: first an **RDF pass that reads only the sampled
  frames** (the first minimum of the smoothed RDF becomes the cutoff; no
  minimum -> :class:`AnalysisInputError` asking for ``--cutoff NAME=NM``, no
  silent fallback), then the main pass.

The main pass reads all analysed frames in chunks: shells, pairing,
clusters, residence and diffusion (see :mod:`solvflow.analysis.engine`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mdtraj as md
import numpy as np
import yaml

from solvflow.analysis.conductivity import IonCharges, conductivity_of, ion_charges
from solvflow.analysis.contract import DEFINITIONS, ERROR_KEYS, UNITS
from solvflow.analysis.engine import SolvationAccumulator
from solvflow.analysis.groups import Group, groups_from_spec, parse_named, select_groups
from solvflow.analysis.rdf import RDF, RDFAccumulator, first_minimum
from solvflow.analysis.spectop import topology_from_spec
from solvflow.analysis.trajectory import (
    NO_TIME_STEP,
    FrameRange,
    TimeStep,
    chunk_boxes,
    count_atoms,
    count_frames,
    frame_range,
    iter_chunks,
    parse_box,
    resolve_time_step,
)
from solvflow.analysis.transport import CentreTracker
from solvflow.errors import AnalysisInputError


@dataclass
class AnalysisResult:
    """Everything :func:`analyze` found; ``to_dict()`` is the analysis.json contract."""

    data: dict[str, Any]
    rdfs: dict[str, RDF] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> None, numpy scalars -> Python)."""
        return _jsonable(self.data)

    def write_json(self, path: str | Path) -> Path:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return out

    def plot(self, outdir: str | Path) -> list[Path]:
        """Write the PNG plots (RDFs, ion pairing, shells) into ``outdir``."""
        from solvflow.analysis.plots import write_plots

        return write_plots(self, Path(outdir))

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def coordination_numbers(self) -> dict[str, float]:
        return dict(self.data["coordination_numbers"])

    @property
    def ion_pairing(self) -> dict[str, float]:
        return dict(self.data["ion_pairing"])


def analyze(
    trajectory: str | Path,
    topology: str | Path | md.Topology | None = None,
    *,
    cation: str | tuple[str, str] | None = None,
    anions: Mapping[str, str] | Sequence[str] | None = None,
    solvents: Mapping[str, str] | Sequence[str] | None = None,
    cutoffs_nm: Mapping[str, float] | None = None,
    cutoff_source: str = "given",
    box_nm: str | float | Sequence[float] | None = None,
    start: int | None = None,
    stop: int | None = None,
    step: int | None = None,
    chunk: int = 100,
    rdf_frames: int = 200,
    n_blocks: int = 5,
    max_lag: int | None = None,
    dt_ps: float | None = None,
    diffusion: bool | None = None,
    residence: bool | None = None,
    n_top_shells: int = 10,
    charges: Mapping[str, float] | None = None,
    charge_scale: float | None = None,
    temperature_K: float | None = None,
) -> AnalysisResult:
    """Solvation structure of a cation: shells, pairing, clusters, residence, diffusion.

    Parameters
    ----------
    trajectory : str or Path
        A run directory (species and topology from its ``spec.yaml``, or
        ``topology.pdb``/``.cif`` if it lacks ``atom_names``; ``traj.dcd``/``.xtc``)
        or a trajectory file readable by MDTraj.
    topology : str, Path or mdtraj.Topology, optional
        Needed with a trajectory file (PDB, CIF, PRMTOP, GRO, ...).
    cation : str or (name, selection)
        ``"Li=resname LI"``: one centre atom per cation (MDTraj selection).
    anions, solvents : mapping name -> selection, or ``["NAME=SEL", ...]``
        Coordinating sites of each partner.
    cutoffs_nm : mapping name -> nm, optional
        Shell radius per partner; missing ones come from the RDF's first minimum.
    cutoff_source : str
        What ``cutoffs_nm`` are, recorded in analysis.json ``cutoff_source`` (default
        ``"given"``; campaigns say which reference rule they come from).
    box_nm : float, "L", "a,b,c" or (a, b, c), optional
        Orthorhombic box in nm (overrides the file's; required if it has none).
    start, stop, step : int, optional
        Analysed frames ``range(start, stop, step)`` of the file.
    chunk : int
        Frames read at a time.
    rdf_frames : int
        Frames sampled for the RDFs (cutoffs and plots); 0 skips RDFs when all
        cutoffs are given.
    n_blocks : int
        Time blocks for the diffusion and conductivity errors (time averages use
        the statistical inefficiency of the per-frame series).
    max_lag : int, optional
        Longest lag in analysed frames for residence and MSD (default: half, at most 1000).
    dt_ps : float, optional
        Time between analysed frames, ps (default: a DCD header with a real time step,
        or the frame times of XTC/TRR/NetCDF/H5; otherwise unknown).
    diffusion : bool, optional
        Self-diffusion and conductivity: None = when the time step is known, True =
        required (error if the time step is unknown), False = skip.
    residence : bool, optional
        Residence times, same rule as ``diffusion``.
    n_top_shells : int
        Shell compositions to list.
    charges : mapping name -> formal charge (e), optional
        Ion charges for the conductivity of a trajectory file (a run directory has
        them in spec.yaml); every charged species must be a partner or the cation.
    charge_scale : float, optional
        Factor applied to the formal ionic charges in the simulation (default: the
        run directory's, else 1.0).
    temperature_K : float, optional
        For the conductivity (default: the run directory's).

    Returns
    -------
    AnalysisResult
    """
    job = _resolve_job(trajectory, topology, cation, anions, solvents)
    if chunk < 1 or n_blocks < 1 or rdf_frames < 0 or n_top_shells < 1:
        raise AnalysisInputError("chunk, n_blocks and n_top_shells must be >= 1, rdf_frames >= 0")
    frames = frame_range(count_frames(job.trajectory), start, stop, step)
    box = parse_box(box_nm)
    time_step = resolve_time_step(job.trajectory, job.topology, frames, dt_ps)
    want = {"diffusion": _wanted(diffusion, "diffusion", time_step),
            "residence": residence is not False}  # exchange times also bound the errors
    _wanted(residence, "residence", time_step)
    transport = _ion_charges(job, charges, charge_scale, temperature_K) if want["diffusion"] \
        else None
    cutoffs = _check_cutoffs(cutoffs_nm, job.partners)
    sources = {name: cutoff_source for name in cutoffs}
    sampler = _RDFSampler(job, frames.n_frames, rdf_frames)
    if len(cutoffs) < len(job.partners):  # cutoffs first: a pass over the RDF frames only
        for part in iter_chunks(job.trajectory, job.topology, frames, chunk, sampler.factor):
            sampler.add(part.xyz, chunk_boxes(part, box))
        rdfs = sampler.result()
        _cutoffs_from_rdf(job, rdfs, cutoffs, sources)
        sampler.done = True
    acc = _main_pass(job, frames, box, cutoffs, chunk, n_blocks, max_lag, want, transport,
                     n_top_shells, sampler if rdf_frames > 0 and not sampler.done else None)
    rdfs = sampler.result() if sampler.done else {}
    data = _assemble(job, frames, acc, cutoffs, sources, rdfs, time_step, n_blocks)
    if want["diffusion"] and time_step.dt_ps is not None:
        data["conductivity"] = conductivity_of(acc, data, transport, time_step.dt_ps, n_blocks)
    return AnalysisResult(data, rdfs)


def _wanted(flag: bool | None, what: str, step: TimeStep) -> bool:
    """Whether to compute a time-dependent quantity; error if required but dt is unknown."""
    if flag is False:
        return False
    if step.dt_ps is None and flag:
        raise AnalysisInputError(f"{what} needs the time between frames, and it is unknown "
                                 f"({step.reason}); {NO_TIME_STEP}")
    return step.dt_ps is not None


@dataclass
class _Job:
    trajectory: Path
    topology: md.Topology
    cation: Group
    partners: list[Group]
    provenance: dict[str, Any]
    charges: dict[str, float] | None = None  # formal charges from spec.yaml
    other_charged: list[str] = field(default_factory=list)  # charged, not analysed


def _ion_charges(job: _Job, charges: Mapping[str, float] | None, charge_scale: float | None,
                 temperature_K: float | None) -> IonCharges:
    groups = [(g.name, g.n_molecules) for g in [job.cation, *job.partners]]
    prov = job.provenance
    return ion_charges(
        groups, dict(charges) if charges is not None else job.charges,
        charge_scale if charge_scale is not None else prov.get("charge_scale"),
        temperature_K if temperature_K is not None else prov.get("temperature_K"),
        [] if charges is not None else job.other_charged)


def _resolve_job(trajectory: str | Path, topology: str | Path | md.Topology | None,
                 cation: Any, anions: Any, solvents: Any) -> _Job:
    path = Path(trajectory)
    if path.is_dir():
        return _job_from_rundir(path, topology, cation, anions, solvents)
    if not path.is_file():
        raise AnalysisInputError(f"trajectory {str(path)!r} does not exist")
    if topology is None:
        raise AnalysisInputError("a trajectory file needs a topology (--top FILE)")
    top = _load_topology(topology)
    if cation is None:
        raise AnalysisInputError(
            "give the cation as NAME=SELECTION (e.g. --cation 'Li=resname LI')")
    cat = parse_named([cation], "--cation")[0] if isinstance(cation, str) else tuple(cation)
    cat_group, partners = select_groups(top, cat, _named(anions, "--anion"),
                                        _named(solvents, "--solvent"))
    return _Job(path, top, cat_group, partners, {"trajectory": str(path)})


def _job_from_rundir(rundir: Path, topology: Any, cation: Any, anions: Any,
                     solvents: Any) -> _Job:
    if any(x is not None for x in (topology, cation, anions, solvents)):
        raise AnalysisInputError(
            "a run directory defines its species in spec.yaml: do not pass a topology, "
            "cation, anions or solvents with it (analyse traj.dcd directly to override)"
        )
    spec_file = rundir / "spec.yaml"
    if not spec_file.is_file():
        raise AnalysisInputError(f"{str(rundir)!r} is not a run directory (no spec.yaml)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # C parser when libyaml is there
    spec = yaml.load(spec_file.read_text(), Loader=loader) or {}
    traj = _first_existing(rundir, ("traj.dcd", "traj.xtc"), "trajectory (traj.dcd)")
    top = topology_from_spec(spec)
    if top is None:  # spec.yaml without atom_names: parse the topology file
        top = _load_topology(_first_existing(rundir, ("topology.pdb", "topology.cif"),
                                             "topology.pdb"))
    else:
        n_traj = count_atoms(traj)
        if n_traj != top.n_atoms:
            raise AnalysisInputError(
                f"spec.yaml and trajectory disagree: the species in {str(rundir / 'spec.yaml')!r}"
                f" (counts x atom_names) have {top.n_atoms} atoms, {str(traj)!r} has "
                f"{n_traj} per frame")
    cat, partners = groups_from_spec(top, spec)
    names = {g.name for g in [cat, *partners]}
    formal = {str(s["name"]): float(s.get("charge") or 0) for s in spec.get("species", [])}
    other = sorted(n for n, z in formal.items() if z and n not in names)
    return _Job(traj, top, cat, partners, _provenance(rundir, spec, traj),
                {n: z for n, z in formal.items() if n in names}, other)


def _first_existing(rundir: Path, names: Sequence[str], what: str) -> Path:
    for name in names:
        if (rundir / name).is_file():
            return rundir / name
    raise AnalysisInputError(f"run directory {str(rundir)!r} has no {what}; run the "
                             "simulation first (`solvflow run`)")


def _load_topology(topology: str | Path | md.Topology) -> md.Topology:
    if isinstance(topology, md.Topology):
        return topology
    path = Path(topology)
    if not path.is_file():
        raise AnalysisInputError(f"topology {str(path)!r} does not exist")
    try:
        return md.load_topology(str(path))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise AnalysisInputError(f"cannot read topology {str(path)!r}: {exc}") from None


def _named(items: Any, what: str) -> list[tuple[str, str]]:
    if items is None:
        return []
    if isinstance(items, Mapping):
        return [(str(k), str(v)) for k, v in items.items()]
    if isinstance(items, str):
        items = [items]
    return parse_named(list(items), what)


def _check_cutoffs(cutoffs: Mapping[str, float] | None, partners: list[Group]) -> dict[str, float]:
    names = [p.name for p in partners]
    out = {}
    for name, value in (cutoffs or {}).items():
        if name not in names:
            raise AnalysisInputError(f"cutoff given for unknown partner {name!r}; partners are "
                                     f"{', '.join(names)}")
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise AnalysisInputError(f"cutoff of {name!r} must be a positive number in nm, "
                                     f"got {value!r}")
        out[name] = float(value)
    return out


class _RDFSampler:
    """RDFs of every ``factor``-th analysed frame (at most ``rdf_frames`` frames).

    Fed either by a pass that reads only those frames (when cutoffs must come
    from the RDF before the main pass) or by the main pass itself (cutoffs
    given: the trajectory is read once).
    """

    def __init__(self, job: _Job, n_frames: int, rdf_frames: int) -> None:
        self.cation_atoms, self.cation_residue = job.cation.atoms, job.cation.atom_residue
        self.sites = np.concatenate([p.atoms for p in job.partners])
        self.site_residue = np.concatenate([p.atom_residue for p in job.partners])
        site_partner = np.concatenate([np.full(p.atoms.size, k)
                                       for k, p in enumerate(job.partners)])
        self.acc = RDFAccumulator(site_partner.astype(np.int64), len(job.partners))
        self.factor = max(1, math.ceil(n_frames / max(rdf_frames, 1)))
        self.names = [p.name for p in job.partners]
        self.done = False

    def add(self, xyz: np.ndarray, boxes: np.ndarray) -> None:
        """Add sampled frames: xyz (n, n_atoms, 3) nm, boxes (n, 3) nm."""
        self.acc.add_chunk(xyz[:, self.cation_atoms], xyz[:, self.sites], boxes,
                           self.cation_residue, self.site_residue)

    def add_sampled(self, xyz: np.ndarray, boxes: np.ndarray, first: int) -> None:
        """Add the sampled frames of a chunk whose first frame is analysed frame ``first``."""
        take = np.flatnonzero((first + np.arange(xyz.shape[0])) % self.factor == 0)
        if take.size:
            self.add(xyz[take], boxes[take])

    def result(self) -> dict[str, RDF]:
        return dict(zip(self.names, self.acc.result(), strict=True))


def _cutoffs_from_rdf(job: _Job, rdfs: dict[str, RDF], cutoffs: dict[str, float],
                      sources: dict[str, str]) -> None:
    for p in job.partners:
        if p.name in cutoffs:
            continue
        found = first_minimum(rdfs[p.name].r_nm, rdfs[p.name].g)
        if found is None:
            raise AnalysisInputError(
                f"no first minimum found in the {job.cation.name}-{p.name} RDF "
                f"({rdfs[p.name].n_frames} frames, r <= {rdfs[p.name].r_nm[-1]:.2f} nm); "
                f"give the shell radius with --cutoff {p.name}=NM"
            )
        cutoffs[p.name], sources[p.name] = found, "rdf_first_minimum"


def _main_pass(job: _Job, frames: FrameRange, box: Any, cutoffs: dict[str, float], chunk: int,
               n_blocks: int, max_lag: int | None, want: dict[str, bool],
               transport: IonCharges | None, n_top: int,
               sampler: _RDFSampler | None) -> SolvationAccumulator:
    tracker = _tracker(job) if want["diffusion"] else None
    charges = None if transport is None or transport.reason else transport.per_molecule
    acc = SolvationAccumulator(job.cation, job.partners, cutoffs, frames.n_frames, n_blocks,
                               max_lag, tracker, n_top, want["residence"] is not False, charges)
    for part in iter_chunks(job.trajectory, job.topology, frames, chunk):
        boxes = chunk_boxes(part, box)
        if sampler is not None:
            sampler.add_sampled(part.xyz, boxes, acc.n_seen)
        acc.add_chunk(part.xyz, boxes)
    if sampler is not None:
        sampler.done = True
    return acc


def _tracker(job: _Job) -> CentreTracker:
    top = job.topology
    residue_of_atom = np.array([a.residue.index for a in top.atoms])
    residues = np.concatenate([g.residues for g in [job.cation, *job.partners]])
    position = np.full(top.n_residues, -1)
    position[residues] = np.arange(residues.size)
    atoms = np.nonzero(position[residue_of_atom] >= 0)[0]
    masses = np.array([a.element.mass if a.element is not None and a.element.mass else 1.0
                       for a in top.atoms])[atoms]
    return CentreTracker(position[residue_of_atom[atoms]], atoms, masses)


def _assemble(job: _Job, frames: FrameRange, acc: SolvationAccumulator, cutoffs: dict[str, float],
              sources: dict[str, str], rdfs: dict[str, RDF], step: TimeStep,
              n_blocks: int) -> dict[str, Any]:
    dt = step.dt_ps
    found = acc.conclude(dt)
    data: dict[str, Any] = {
        "cation": job.cation.name,
        "partners": {p.name: p.role for p in job.partners},
        "n_frames": frames.n_frames,
        "frames_used": frames.as_list(),
        "n_frames_in_file": frames.n_total,
        "timestep_ps": dt,
        "timestep_source": step.source,
        "simulated_time_ps": None if dt is None else dt * frames.n_frames,
        "n_ions": {job.cation.name: job.cation.n_molecules,
                   **{p.name: p.n_molecules for p in job.partners}},
        "cutoffs_nm": {p.name: cutoffs[p.name] for p in job.partners},
        "cutoff_source": {p.name: sources[p.name] for p in job.partners},
        "selections": {g.name: g.selection for g in [job.cation, *job.partners]},
    }
    errors = {k: found.pop(k) for k in ERROR_KEYS}
    data.update(found)
    if dt is None:
        data["note"] = (f"time step unknown ({step.reason}): residence times, diffusion and "
                        f"conductivity not computed; {NO_TIME_STEP}")
    data["rdf"] = {name: {"r_nm": r.r_nm.tolist(), "g": r.g.tolist(),
                          "running_cn_sites": r.running_cn.tolist(), "n_frames": r.n_frames}
                   for name, r in rdfs.items()}
    data.update(errors)
    data["n_blocks"] = min(n_blocks, frames.n_frames)
    data["units"] = UNITS
    data["definitions"] = DEFINITIONS
    data["provenance"] = job.provenance
    return data


def _provenance(rundir: Path, spec: Mapping[str, Any], traj: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_directory": str(rundir),
        "trajectory": str(traj),
        "system": (spec.get("system") or {}).get("name"),
        "solvflow_version": spec.get("solvflow_version"),
        "input_hash": spec.get("input_hash"),
        "seed": spec.get("seed"),
        "charge_scale": spec.get("charge_scale"),
        "temperature_K": spec.get("temperature_K"),
        "counts": (spec.get("composition") or {}).get("counts"),
        "forcefield_files": sorted({s["forcefield"] for s in spec.get("species", [])
                                    if s.get("forcefield")}),
    }
    status = rundir / "status.json"
    if status.is_file():
        try:
            out["status"] = json.loads(status.read_text())
        except json.JSONDecodeError:
            out["status"] = "unreadable status.json"
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    return value
