"""Force fields: loading the shipped XML, OPLS geometric mixing, ionic charge scaling.

Every shipped species is covered by an OpenMM ForceField XML in ``forcefields/``
(installed as ``solvflow/data/ffxml/solvflow/``). The files follow OPLS-AA /
CL&P conventions: Lennard-Jones sigma and epsilon mix *geometrically*
(sigma_ij = sqrt(sigma_i sigma_j), epsilon_ij = sqrt(epsilon_i epsilon_j)) and
1-4 pairs are scaled 0.5 (Coulomb) and 0.5 (LJ).

OpenMM's ``NonbondedForce`` mixes Lorentz-Berthelot, so :func:`create_system`
moves all Lennard-Jones interactions into a ``CustomNonbondedForce`` whose
energy is exact geometric mixing written as a product of per-particle factors
(cheap on a GPU: two multiplications per pair, no square roots)::

    E_LJ = a_i a_j / r^12 - b_i b_j / r^6,   a = 2 sqrt(eps) sigma^6,  b = 2 sqrt(eps) sigma^3

which equals ``4 eps_ij [(sigma_ij/r)^12 - (sigma_ij/r)^6]`` with geometric
sigma_ij and eps_ij. Electrostatics stay in the ``NonbondedForce`` (PME), and
1-4 pairs stay there as exceptions with geometric sigma and 0.5 x epsilon.

Ionic charges (every residue with a non-zero net charge) are multiplied by
the charge scale (electronic continuum correction); 1-4 charge products of
those residues are scaled by its square.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from solvflow.atomic import atomic_write
from solvflow.errors import ForceFieldError, InputError
from solvflow.resources import data_dir

DEFAULT_CUTOFF_NM = 1.0
DEFAULT_SWITCH_NM = 0.9
EWALD_TOLERANCE = 5e-4
LJ_14_SCALE = 0.5
COULOMB_14_SCALE = 0.5
_LJ_EXPRESSION = "(a1*a2*ir6 - b1*b2)*ir6; ir6 = 1/r^6"
LJ_FORCE_NAME = "LennardJonesGeometric"
LJ_LB_FORCE_NAME = "LennardJonesLorentzBerthelot"
_LB_EXPRESSION = ("4*epsilon*(sr6^2 - sr6); sr6 = (sigma/r)^6; sigma = 0.5*(sigma1 + sigma2); "
                  "epsilon = sqrt(epsilon1*epsilon2)")
MIXING_RULES = ("geometric", "lorentz-berthelot")


@dataclass(frozen=True)
class SystemSettings:
    """How a box becomes an OpenMM System (recorded in spec.yaml and reports)."""

    charge_scale: float = 1.0
    cutoff_nm: float = DEFAULT_CUTOFF_NM
    switch_nm: float = DEFAULT_SWITCH_NM

    def to_dict(self) -> dict[str, Any]:
        return {
            "charge_scale": self.charge_scale,
            "electrostatics": f"PME (ewald error tolerance {EWALD_TOLERANCE:g})",
            "cutoff_nm": self.cutoff_nm,
            "lj_switch_nm": self.switch_nm,
            "lj_long_range_correction": True,
            "mixing": "geometric (sigma and epsilon), CustomNonbondedForce",
            "scale_14": {"coulomb": COULOMB_14_SCALE, "lj": LJ_14_SCALE},
            "constraints": "HBonds",
            "charge_scaling": "charges of every ion (residue with net charge) x charge_scale",
        }


def forcefield_path(name: str) -> Path:
    """The XML file for a species' ``forcefield`` entry (shipped name or a path)."""
    candidate = Path(name)
    if candidate.is_absolute() or os.sep in name:
        if not candidate.is_file():
            raise ForceFieldError(f"force-field file {name!r} does not exist")
        return candidate
    shipped = data_dir("forcefields") / name
    if not shipped.is_file():
        available = sorted(p.name for p in data_dir("forcefields").glob("*.xml"))
        raise ForceFieldError(
            f"no shipped force-field file {name!r}; shipped: {', '.join(available) or 'none'} "
            "(or give a path; `solvflow parametrize --smiles` makes one for a new organic species)"
        )
    return shipped


def load_forcefield(files: Iterable[str | Path]) -> Any:
    """An ``openmm.app.ForceField`` from shipped names or paths (each loaded once)."""
    from openmm.app import ForceField

    paths: list[str] = []
    for name in files:
        path = str(forcefield_path(str(name)))
        if path not in paths:
            paths.append(path)
    try:
        return ForceField(*paths)
    except Exception as exc:  # noqa: BLE001 - OpenMM raises a bare Exception for bad XML
        raise ForceFieldError(f"cannot load force-field files {paths}: {exc}") from None


def create_system(
    topology: Any,
    forcefield: Any,
    *,
    settings: SystemSettings | None = None,
    periodic: bool = True,
    lorentz_berthelot_residues: Iterable[str] = (),
) -> Any:
    """An OpenMM System for ``topology`` with geometric mixing and scaled ionic charges.

    Parameters
    ----------
    topology : openmm.app.Topology
        With bonds (and a periodic box when ``periodic``).
    forcefield : openmm.app.ForceField
    settings : SystemSettings, optional
        Charge scale, cutoff and switching distance (nm).
    periodic : bool
        PME with a cutoff (True) or no cutoff (False, for single molecules).
    lorentz_berthelot_residues : iterable of str
        Residue names whose parameters were fitted with Lorentz-Berthelot mixing
        (declared in their XML, see :func:`lorentz_berthelot_residues`): every pair
        involving one of their atoms mixes LB; all other pairs mix geometrically.

    Raises
    ------
    ForceFieldError
        A residue has no template, or a bond or angle has no parameters (the
        message names the residue and the atoms).
    """
    from openmm import unit
    from openmm.app import PME, HBonds, NoCutoff

    settings = settings or SystemSettings()
    if periodic:
        _check_box(topology, settings.cutoff_nm)
        kwargs: dict[str, Any] = {
            "nonbondedMethod": PME,
            "nonbondedCutoff": settings.cutoff_nm * unit.nanometer,
            "ewaldErrorTolerance": EWALD_TOLERANCE,
        }
    else:
        kwargs = {"nonbondedMethod": NoCutoff}
    try:
        system = forcefield.createSystem(topology, constraints=HBonds, **kwargs)
    except ValueError as exc:
        raise ForceFieldError(_template_message(str(exc))) from None
    check_coverage(topology, system)
    scale_ionic_charges(system, topology, settings.charge_scale)
    lb = set(lorentz_berthelot_residues)
    lb_atoms = {a.index for a in topology.atoms() if a.residue.name in lb}
    apply_geometric_mixing(system, settings.switch_nm if periodic else None, lb_atoms)
    return system


def _template_message(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else text
    return (f"{first} Every species needs a residue template in its force-field file "
            "(residue and atom names as in topology.pdb; see docs/forcefields.md).")


def _check_box(topology: Any, cutoff_nm: float) -> None:
    from openmm import unit

    vectors = topology.getPeriodicBoxVectors()
    if vectors is None:
        raise InputError("the topology has no periodic box (CRYST1); cannot use PME")
    edges = [v.value_in_unit(unit.nanometer) for v in vectors]
    check_box_edge(min(edges[0][0], edges[1][1], edges[2][2]), cutoff_nm)


def check_box_edge(edge_nm: float, cutoff_nm: float) -> None:
    """Raise :class:`InputError` if a box edge is shorter than twice the cutoff (PME, LJ)."""
    if edge_nm < 2.0 * cutoff_nm:
        raise InputError(
            f"the box edge {edge_nm:.2f} nm is shorter than twice the cutoff "
            f"({cutoff_nm:g} nm): use more molecules (--n-salt) or a smaller cutoff "
            "(--cutoff-nm)"
        )


def check_coverage(topology: Any, system: Any) -> None:
    """Raise :class:`ForceFieldError` if a bond or angle of the topology got no parameters.

    OpenMM's ForceField silently skips bonds and angles whose atom classes
    have no entry; a molecule would then fall apart or bend freely.
    """
    import openmm

    bonded: dict[int, set[int]] = {a.index: set() for a in topology.atoms()}
    for a, b in topology.bonds():
        bonded[a.index].add(b.index)
        bonded[b.index].add(a.index)
    have_bonds: set[frozenset[int]] = set()
    have_angles: set[tuple[int, int, int]] = set()
    for force in system.getForces():
        if isinstance(force, openmm.HarmonicBondForce):
            for k in range(force.getNumBonds()):
                i, j, *_ = force.getBondParameters(k)
                have_bonds.add(frozenset((i, j)))
        elif isinstance(force, openmm.HarmonicAngleForce):
            for k in range(force.getNumAngles()):
                i, j, m, *_ = force.getAngleParameters(k)
                have_angles.add((min(i, m), j, max(i, m)))
    for k in range(system.getNumConstraints()):
        i, j, _ = system.getConstraintParameters(k)
        have_bonds.add(frozenset((i, j)))
    atoms = list(topology.atoms())
    for a, b in topology.bonds():
        if frozenset((a.index, b.index)) not in have_bonds:
            raise ForceFieldError(f"no bond parameters for {_describe(atoms, a.index, b.index)}")
    for centre, partners in bonded.items():
        ordered = sorted(partners)
        for x, i in enumerate(ordered):
            for m in ordered[x + 1 :]:
                if (i, centre, m) not in have_angles:
                    raise ForceFieldError(
                        f"no angle parameters for {_describe(atoms, i, centre, m)}"
                    )


def _describe(atoms: list[Any], *indices: int) -> str:
    residue = atoms[indices[0]].residue
    names = "-".join(atoms[i].name for i in indices)
    return (f"residue {residue.index + 1} ({residue.name}), atoms {names}: "
            "add them to the residue's force-field file")


def scale_ionic_charges(system: Any, topology: Any, scale: float) -> list[str]:
    """Multiply the charges of every ionic residue by ``scale`` (in place).

    Returns the names of the residues scaled (one entry per residue name).
    """
    if scale == 1.0:
        return []
    nonbonded = _nonbonded(system)
    factor = [1.0] * system.getNumParticles()
    scaled: list[str] = []
    for residue in topology.residues():
        indices = [a.index for a in residue.atoms()]
        net = sum(nonbonded.getParticleParameters(i)[0]._value for i in indices)
        if abs(net) < 1e-6:
            continue
        if residue.name not in scaled:
            scaled.append(residue.name)
        for i in indices:
            factor[i] = scale
            q, sigma, eps = nonbonded.getParticleParameters(i)
            nonbonded.setParticleParameters(i, q * scale, sigma, eps)
    for k in range(nonbonded.getNumExceptions()):
        i, j, qq, sigma, eps = nonbonded.getExceptionParameters(k)
        if factor[i] != 1.0 or factor[j] != 1.0:
            nonbonded.setExceptionParameters(k, i, j, qq * factor[i] * factor[j], sigma, eps)
    return scaled


def _nonbonded(system: Any) -> Any:
    import openmm

    found = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)]
    if len(found) != 1:
        raise ForceFieldError(f"expected one NonbondedForce in the system, found {len(found)}")
    return found[0]


def apply_geometric_mixing(system: Any, switch_nm: float | None = DEFAULT_SWITCH_NM,
                           lorentz_berthelot_atoms: Iterable[int] = ()) -> Any:
    """Move Lennard-Jones terms to a geometric-mixing ``CustomNonbondedForce`` (in place).

    The ``NonbondedForce`` keeps charges (and PME); its LJ epsilon becomes 0.
    1-4 exceptions get sigma_ij = sqrt(sigma_i sigma_j) (OpenMM wrote the
    arithmetic mean) and keep OpenMM's epsilon = lj14scale sqrt(eps_i eps_j)
    (0.5 in every shipped file). Excluded pairs
    (1-2, 1-3, 1-4) are excluded from the custom force. Returns the new force.

    ``lorentz_berthelot_atoms`` (atoms of species fitted with LB mixing): pairs of two
    such atoms stay in the native ``NonbondedForce`` (LB, switched, dispersion
    correction), pairs of one such atom and another atom go to a second custom force
    with the LB expression (interaction group), and the geometric force is limited
    to the pairs of two other atoms. With none (every shipped file), one force.
    """
    nonbonded = _nonbonded(system)
    lb = set(lorentz_berthelot_atoms)
    custom = _new_lj_force(nonbonded, _LJ_EXPRESSION, ("a", "b"), switch_nm, LJ_FORCE_NAME)
    sigma_eps: list[tuple[float, float]] = []
    for i in range(nonbonded.getNumParticles()):
        q, sigma, eps = nonbonded.getParticleParameters(i)
        s, e = sigma.value_in_unit(sigma.unit), eps.value_in_unit(eps.unit)
        sigma_eps.append((s, e))
        custom.addParticle([2.0 * math.sqrt(e) * s**6, 2.0 * math.sqrt(e) * s**3])
        if i not in lb:
            nonbonded.setParticleParameters(i, q, 1.0, 0.0)
    for k in range(nonbonded.getNumExceptions()):
        i, j, qq, _sigma, eps = nonbonded.getExceptionParameters(k)
        custom.addExclusion(i, j)
        if eps.value_in_unit(eps.unit) != 0.0 and i not in lb and j not in lb:
            (si, _), (sj, _) = sigma_eps[i], sigma_eps[j]  # a 1-4 pair: epsilon is already
            nonbonded.setExceptionParameters(k, i, j, qq, math.sqrt(si * sj), eps)  # scaled
    periodic = nonbonded.getNonbondedMethod() != nonbonded.NoCutoff
    nonbonded.setUseDispersionCorrection(bool(lb) and periodic)
    nonbonded.setUseSwitchingFunction(bool(lb) and periodic and switch_nm is not None)
    if nonbonded.getUseSwitchingFunction():
        nonbonded.setSwitchingDistance(switch_nm)
    system.addForce(custom)
    if lb:
        others = set(range(nonbonded.getNumParticles())) - lb
        custom.addInteractionGroup(others, others)
        cross = _new_lj_force(nonbonded, _LB_EXPRESSION, ("sigma", "epsilon"), switch_nm,
                              LJ_LB_FORCE_NAME)
        for s, e in sigma_eps:
            cross.addParticle([s, e])
        for k in range(custom.getNumExclusions()):
            cross.addExclusion(*custom.getExclusionParticles(k))
        cross.addInteractionGroup(lb, others)
        system.addForce(cross)
    return custom


def _new_lj_force(nonbonded: Any, expression: str, parameters: tuple[str, ...],
                  switch_nm: float | None, name: str) -> Any:
    """An empty CustomNonbondedForce with the cutoff, switch and LRC of ``nonbonded``."""
    import openmm

    force = openmm.CustomNonbondedForce(expression)
    force.setName(name)
    for parameter in parameters:
        force.addPerParticleParameter(parameter)
    if nonbonded.getNonbondedMethod() == openmm.NonbondedForce.NoCutoff:
        force.setNonbondedMethod(openmm.CustomNonbondedForce.NoCutoff)
        return force
    force.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
    force.setCutoffDistance(nonbonded.getCutoffDistance())
    force.setUseLongRangeCorrection(True)
    if switch_nm is not None:
        force.setUseSwitchingFunction(True)
        force.setSwitchingDistance(switch_nm)
    return force


def mixing_record(system: Any) -> dict[str, Any]:
    """spec.yaml's record of the mixing rule the System actually uses."""
    import openmm

    names = {f.getName() for f in system.getForces()
             if isinstance(f, openmm.CustomNonbondedForce)}
    if LJ_LB_FORCE_NAME not in names:
        return {"mixing": "geometric (sigma and epsilon), CustomNonbondedForce"}
    return {"mixing": ("geometric (sigma and epsilon) for pairs of geometric-mixing species, "
                       "CustomNonbondedForce; Lorentz-Berthelot for every pair involving a "
                       "species fitted with it (NonbondedForce for LB-LB pairs, "
                       f"{LJ_LB_FORCE_NAME} for LB-other pairs)")}


def lorentz_berthelot_residues(paths: Iterable[str | Path]) -> list[str]:
    """Residues whose force-field file declares Lorentz-Berthelot mixing.

    A file declares it in its ``<Info>`` (ignored by OpenMM)::

        <Info><MixingRule residues="LIM NAM">lorentz-berthelot</MixingRule></Info>

    ``residues`` (space-separated) limits it to those residue templates; without it
    every residue template of the file is meant. Any other rule than
    ``lorentz-berthelot`` or ``geometric`` is a :class:`ForceFieldError`.
    """
    import xml.etree.ElementTree as ET

    found: list[str] = []
    for path in paths:
        root = ET.parse(str(path)).getroot()
        for rule in root.findall("Info/MixingRule"):
            text = (rule.text or "").strip().lower()
            if text not in MIXING_RULES:
                raise ForceFieldError(f"{path}: <MixingRule> must be one of "
                                      f"{', '.join(MIXING_RULES)}, got {text!r}")
            if text != "lorentz-berthelot":
                continue
            names = (rule.get("residues") or "").split() or [
                r.get("name", "") for r in root.findall("Residues/Residue")]
            found += [n for n in names if n and n not in found]
    return found


def geometric_lj_parameters(system: Any) -> list[tuple[float, float]]:
    """Per-particle (sigma nm, epsilon kJ/mol) recovered from the geometric LJ force's a, b
    (``a = 2 sqrt(eps) sigma^6``, ``b = 2 sqrt(eps) sigma^3``); (1.0, 0.0) where eps = 0."""
    custom = _geometric_force(system)
    out = []
    for i in range(custom.getNumParticles()):
        a, b = custom.getParticleParameters(i)[:2]
        if a <= 0.0 or b <= 0.0:
            out.append((1.0, 0.0))
            continue
        sigma = (a / b) ** (1.0 / 3.0)
        out.append((sigma, (b / (2.0 * sigma**3)) ** 2))
    return out


def _geometric_force(system: Any) -> Any:
    import openmm

    for force in system.getForces():
        if isinstance(force, openmm.CustomNonbondedForce) and force.getName() == LJ_FORCE_NAME:
            return force
    raise ForceFieldError(f"the System has no {LJ_FORCE_NAME} force (not built by solvflow)")


def tabulated_geometric_lj(custom: Any, sigma_eps: list[tuple[float, float]]) -> Any:
    """The same exact geometric LJ as ``custom``, on per-type tables instead of per-particle
    factors: ``E = A(t1,t2)/r^12 - B(t1,t2)/r^6`` with ``A = a_i a_j``, ``B = b_i b_j``
    (Discrete2DFunction; one type per distinct (sigma, epsilon)). Settings and exclusions
    copied from ``custom``. Used by ``benchmarks/bench_mixing.py`` to measure its cost."""
    import openmm

    types: dict[tuple[float, float], int] = {}
    index = [types.setdefault(p, len(types)) for p in sigma_eps]
    factors = [(2.0 * math.sqrt(e) * s**6, 2.0 * math.sqrt(e) * s**3) for s, e in types]
    n = len(types)
    a_table = [factors[i][0] * factors[j][0] for j in range(n) for i in range(n)]
    b_table = [factors[i][1] * factors[j][1] for j in range(n) for i in range(n)]
    table = openmm.CustomNonbondedForce("(A(t1, t2)*ir6 - B(t1, t2))*ir6; ir6 = 1/r^6")
    table.addTabulatedFunction("A", openmm.Discrete2DFunction(n, n, a_table))
    table.addTabulatedFunction("B", openmm.Discrete2DFunction(n, n, b_table))
    table.addPerParticleParameter("t")
    for t in index:
        table.addParticle([float(t)])
    copy_pair_settings(custom, table)
    return table


def copy_pair_settings(old: Any, new: Any) -> None:
    """Give CustomNonbondedForce ``new`` the exclusions, cutoff method and distance, switching,
    long-range correction and name of ``old`` (same particles, same order)."""
    for k in range(old.getNumExclusions()):
        new.addExclusion(*old.getExclusionParticles(k))
    new.setNonbondedMethod(old.getNonbondedMethod())
    new.setCutoffDistance(old.getCutoffDistance())
    new.setUseSwitchingFunction(old.getUseSwitchingFunction())
    new.setSwitchingDistance(old.getSwitchingDistance())
    new.setUseLongRangeCorrection(old.getUseLongRangeCorrection())
    new.setName(old.getName())


def restore_native_lj(system: Any, sigma_eps: list[tuple[float, float]]) -> None:
    """Put LJ back into the ``NonbondedForce`` (Lorentz-Berthelot: NOT the OPLS rule) and
    drop the geometric force, in place. For speed comparisons only."""
    nonbonded = _nonbonded(system)
    custom = _geometric_force(system)
    switch = custom.getSwitchingDistance() if custom.getUseSwitchingFunction() else None
    for i, (sigma, eps) in enumerate(sigma_eps):
        q = nonbonded.getParticleParameters(i)[0]
        nonbonded.setParticleParameters(i, q, sigma, eps)
    system.removeForce(next(k for k, f in enumerate(system.getForces())
                            if f.getName() == LJ_FORCE_NAME))
    if nonbonded.getNonbondedMethod() != nonbonded.NoCutoff:
        nonbonded.setUseDispersionCorrection(True)
        if switch is not None:
            nonbonded.setUseSwitchingFunction(True)
            nonbonded.setSwitchingDistance(switch)


def settings_from_spec(spec: dict[str, Any]) -> SystemSettings:
    """The :class:`SystemSettings` recorded in a run directory's spec.yaml (or defaults)."""
    stored = spec.get("forcefield") or {}
    return SystemSettings(
        charge_scale=float(spec.get("charge_scale", 1.0)),
        cutoff_nm=float(stored.get("cutoff_nm", DEFAULT_CUTOFF_NM)),
        switch_nm=float(stored.get("lj_switch_nm", DEFAULT_SWITCH_NM)),
    )


def system_for_rundir(
    rundir: str | Path, settings: SystemSettings | None = None
) -> tuple[Any, Any]:
    """(topology, System) for a built run directory, from its spec.yaml species."""
    rundir = Path(rundir)
    spec = _read_spec(rundir)
    return _system_from_spec(rundir, spec, settings or settings_from_spec(spec))


def _system_from_spec(
    rundir: Path, spec: dict[str, Any], settings: SystemSettings
) -> tuple[Any, Any]:
    from openmm.app import PDBFile, PDBxFile

    pdb = rundir / "topology.pdb"
    structure = PDBFile(str(pdb)) if pdb.is_file() else PDBxFile(str(rundir / "topology.cif"))
    names = [entry["forcefield"] for entry in spec["species"]]
    forcefield = load_forcefield(names)
    lb = lorentz_berthelot_residues(forcefield_path(str(n)) for n in dict.fromkeys(names))
    return structure.topology, create_system(structure.topology, forcefield, settings=settings,
                                             lorentz_berthelot_residues=lb)


def write_system(rundir: str | Path, settings: SystemSettings | None = None) -> Path:
    """Write ``system.xml`` for a run directory and record the settings in spec.yaml.

    The file is a serialized OpenMM System (``openmm.XmlSerializer``), usable
    without solvflow. Both files are replaced atomically.
    """
    from openmm import XmlSerializer

    rundir = Path(rundir)
    spec = _read_spec(rundir)
    settings = settings or settings_from_spec(spec)
    _topology, system = _system_from_spec(rundir, spec, settings)
    files = sorted({entry["forcefield"] for entry in spec["species"]})
    spec["charge_scale"] = settings.charge_scale
    spec["forcefield"] = {"files": files, **settings.to_dict(), **mixing_record(system)}
    lb = lorentz_berthelot_residues(forcefield_path(str(f)) for f in files)
    if lb:
        spec["forcefield"]["lorentz_berthelot_residues"] = lb
    atomic_write(rundir / "system.xml", XmlSerializer.serialize(system))
    atomic_write(rundir / "spec.yaml", yaml.safe_dump(spec, sort_keys=False))
    return rundir / "system.xml"


def _read_spec(rundir: Path) -> dict[str, Any]:
    path = rundir / "spec.yaml"
    if not path.is_file():
        raise InputError(f"{rundir} is not a solvflow run directory (no spec.yaml)")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or "species" not in data:
        raise InputError(f"{path} has no species list; rebuild the run directory")
    return data
