"""OpenMM platforms: what loads, why not, how fast; choosing one for a run.

Order of preference: CUDA, OpenCL, CPU (Reference only when asked for).
Without a GPU, a run picks between the CPU platform and OpenCL on PoCL (OpenCL
on the CPU) by measuring *its own* System on both (:func:`choose_platform_for_run`:
PoCL is slower for native-LJ water but faster for solvflow's exact
geometric-mixing CustomNonbondedForce), cached per machine; the plain default
(:func:`choose_platform`) still skips PoCL. GPUs run in mixed precision.
A platform "loads" when its plugin loaded *and* a
context can be created on it (an OpenCL plugin without a device fails only
there), so both failures are reported.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from solvflow.errors import PlatformError

PREFERENCE = ("CUDA", "OpenCL", "CPU")
KNOWN = ("CUDA", "OpenCL", "HIP", "CPU", "Reference")
GPU_PLATFORMS = ("CUDA", "OpenCL", "HIP")
POCL = "portable computing language"  # OpenCL on the CPU: slower than the CPU platform


@dataclass(frozen=True)
class PlatformInfo:
    """One platform as seen on this machine.

    ``steps_per_s`` is the probe's speed on the built-in water box (None
    when not probed or not usable); ``device`` the device name when known.
    """

    name: str
    usable: bool
    reason: str = ""
    precision: str | None = None
    device: str = ""
    steps_per_s: float | None = None
    n_atoms_probe: int = 0


def platform_properties(name: str) -> dict[str, str]:
    """Context properties solvflow uses on a platform (mixed precision on GPUs)."""
    return {"Precision": "mixed"} if name in GPU_PLATFORMS else {}


def plugin_failures() -> dict[str, str]:
    """Plugin libraries that failed to load: platform name (guessed from the file) -> message."""
    import openmm

    out: dict[str, str] = {}
    for message in openmm.Platform.getPluginLoadFailures():
        name = next((p for p in KNOWN if p.lower() in message.lower()), message.split(":")[0])
        out.setdefault(name, message.strip())
    return out


def _registered() -> list[str]:
    import openmm

    return [openmm.Platform.getPlatform(i).getName()
            for i in range(openmm.Platform.getNumPlatforms())]


@cache
def _context_check(name: str) -> tuple[bool, str, str]:
    """(usable, reason, device name): try a context on a two-particle system."""
    import openmm

    system = openmm.System()
    for _ in range(2):
        system.addParticle(1.0)
    integrator = openmm.VerletIntegrator(0.001)
    try:
        platform = openmm.Platform.getPlatformByName(name)
        context = openmm.Context(system, integrator, platform, platform_properties(name))
    except Exception as exc:  # noqa: BLE001 - OpenMM raises plain Exception subclasses
        return False, f"cannot create a context: {exc}".strip(), ""
    device = ""
    for prop in ("DeviceName", "OpenCLPlatformName"):
        if prop in platform.getPropertyNames():
            value = platform.getPropertyValue(context, prop)
            device = f"{device} ({value})" if device else value
    del context
    return True, "", device


def probe_speed(name: str, seconds: float = 2.0, edge_nm: float = 2.0) -> tuple[float, int]:
    """Steps per second of Langevin MD on the built-in water box (spends about ``seconds``).

    Returns
    -------
    steps_per_s : float
    n_atoms : int
    """
    import openmm

    from solvflow.simulation.testsystems import water_box

    _, system, positions = water_box(edge_nm)
    integrator = openmm.LangevinMiddleIntegrator(300.0, 1.0, 0.002)
    platform = openmm.Platform.getPlatformByName(name)
    context = openmm.Context(system, integrator, platform, platform_properties(name))
    context.setPositions(positions)  # equilibrated water: no minimisation needed
    context.setVelocitiesToTemperature(300.0, 1)
    integrator.step(10)  # kernels compiled, neighbour lists built
    context.getState(getEnergy=True)
    steps, start = 0, time.perf_counter()
    chunk = 10
    while time.perf_counter() - start < seconds:
        integrator.step(chunk)
        context.getState(getEnergy=True)  # wait for the device
        steps += chunk
        chunk = min(chunk * 2, 1000)
    return steps / (time.perf_counter() - start), system.getNumParticles()


def is_pocl(platform: Any, context: Any) -> bool:
    """True when an OpenCL context runs on PoCL (its L-BFGS minimiser kernels abort there)."""
    if platform.getName() != "OpenCL":
        return False
    return POCL in platform.getPropertyValue(
        context, "OpenCLPlatformName").lower()


def list_platforms(probe: bool = True, probe_seconds: float = 2.0) -> list[PlatformInfo]:
    """Every known platform: whether it loads, why not, and (``probe``) its speed."""
    registered = _registered()
    failures = plugin_failures()
    infos = []
    for name in list(KNOWN) + [p for p in registered if p not in KNOWN]:
        if name not in registered:
            reason = failures.get(name, "no plugin for this platform in this OpenMM build")
            infos.append(PlatformInfo(name, False, reason))
            continue
        usable, reason, device = _context_check(name)
        precision = platform_properties(name).get("Precision")
        speed, n_atoms = (None, 0)
        if usable and probe and name != "Reference":
            speed, n_atoms = probe_speed(name, probe_seconds)
        infos.append(PlatformInfo(name, usable, reason, precision, device, speed, n_atoms))
    return infos


def cache_path() -> Path:
    """``$SOLVFLOW_CACHE_DIR`` or ``$XDG_CACHE_HOME/solvflow`` (``~/.cache/solvflow``) +
    ``platforms.json``: the measured platform choice per machine and kind of System."""
    root = os.environ.get("SOLVFLOW_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "solvflow")
    return Path(root) / "platforms.json"


def system_class(system: Any) -> str:
    """What the speed of a System depends on, as a cache key: the force types (and custom
    nonbonded expressions), whether a barostat is present, and the atom count rounded to
    a power of two (the choice does not change between 1,500 and 2,000 atoms)."""
    import hashlib

    import openmm

    forces = []
    for force in system.getForces():
        name = type(force).__name__
        if isinstance(force, openmm.CustomNonbondedForce):
            name += "[" + hashlib.sha256(force.getEnergyFunction().encode()).hexdigest()[:8] + "]"
        forces.append(name)
    size = 2 ** max(0, round(math.log2(max(system.getNumParticles(), 1))))
    return f"~{size} atoms; {'+'.join(sorted(forces))}"


def _cache_key(system: Any) -> str:
    import openmm

    threads = os.environ.get("OPENMM_CPU_THREADS", "default")
    return (f"{socket.gethostname()} | OpenMM {openmm.__version__} | CPU threads {threads} | "
            f"{system_class(system)}")


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(key: str, entry: dict[str, Any]) -> None:
    from solvflow.atomic import atomic_write

    data = _read_cache()
    data[key] = entry
    try:
        cache_path().parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache_path(), json.dumps(data, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass  # a read-only home: measure again next time


def probe_system(name: str, system: Any, positions_nm: Any, box: Any,
                 seconds: float = 2.0) -> float:
    """Force evaluations per second of ``system`` on platform ``name`` (about ``seconds``).

    Forces, not MD steps: the positions may be an unminimised box. One force
    evaluation is what an MD step costs (integration is negligible next to it).
    """
    import openmm
    from openmm import unit

    platform = openmm.Platform.getPlatformByName(name)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform,
                             platform_properties(name))
    context.setPeriodicBoxVectors(*box)
    context.setPositions(positions_nm * unit.nanometer)
    context.getState(getForces=True)  # kernels compiled, neighbour lists built
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < 3:
        context.getState(getForces=True)
        calls += 1
    return calls / (time.perf_counter() - start)


def choose_platform_for_run(name: str | None, system: Any, positions_nm: Any, box: Any,
                            recorded: str | None = None, probe_seconds: float = 2.0,
                            ) -> tuple[Any, dict[str, str], dict[str, Any]]:
    """The platform for a run of ``system``: (platform, properties, how it was chosen).

    ``name`` given: that one. A resumed run (``recorded``) keeps its platform when it
    loads (its checkpoint.chk is platform-specific). Else a GPU (CUDA, then OpenCL on
    a real device) when one loads; else the faster of the CPU platform and OpenCL on
    PoCL for *this* System, measured by :func:`probe_system` and cached in
    :func:`cache_path` per machine and :func:`system_class`.
    """
    if name is not None:
        platform, props = choose_platform(name)
        return platform, props, {"how": "asked for"}
    usable = {p: _context_check(p) for p in PREFERENCE if p in _registered()}
    usable = {p: v for p, v in usable.items() if v[0]}
    if recorded in usable:
        platform, props = choose_platform(recorded)
        return platform, props, {"how": "the platform this run started on"}
    gpu = [p for p in PREFERENCE[:2] if p in usable and POCL not in usable[p][2].lower()]
    cpu_side = [p for p in ("CPU", "OpenCL") if p in usable and p not in gpu]
    if gpu or len(cpu_side) < 2:
        platform, props = choose_platform()
        return platform, props, {"how": "first usable of " + ", ".join(PREFERENCE)}
    key = _cache_key(system)
    entry = _read_cache().get(key)
    how = f"cached measurement ({cache_path()})"
    if not entry or entry.get("platform") not in cpu_side:
        speeds = {p: round(probe_system(p, system, positions_nm, box, probe_seconds), 2)
                  for p in cpu_side}
        entry = {"platform": max(speeds, key=lambda p: speeds[p]),
                 "force_evaluations_per_s": speeds, "n_atoms": system.getNumParticles(),
                 "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
        _write_cache(key, entry)
        how = f"measured on this System ({probe_seconds:g} s per platform), cached"
    platform, props = choose_platform(entry["platform"])
    return platform, props, {"how": how, "key": key, **entry}


def choose_platform(name: str | None = None) -> tuple[Any, dict[str, str]]:
    """The platform to run on and its context properties.

    Parameters
    ----------
    name : str, optional
        ``CUDA``, ``OpenCL``, ``CPU``, ``Reference`` (any case); None picks the
        first usable of CUDA, OpenCL, CPU.

    Raises
    ------
    PlatformError
        The platform asked for does not load (message: why, and which do).
    """
    import openmm

    registered = _registered()
    if name is None:
        for candidate in PREFERENCE:
            usable, _, device = _context_check(candidate) if candidate in registered else (
                False, "", "")
            if usable and not (candidate == "OpenCL" and POCL in device.lower()):
                return (openmm.Platform.getPlatformByName(candidate),
                        platform_properties(candidate))
        raise PlatformError(f"no usable OpenMM platform among {', '.join(PREFERENCE)}")
    canonical = {p.lower(): p for p in list(KNOWN) + registered}.get(name.lower())
    if canonical is None:
        raise PlatformError(f"unknown platform {name!r}; known: {', '.join(KNOWN)}")
    if canonical not in registered:
        reason = plugin_failures().get(canonical, "no plugin for it in this OpenMM build")
    else:
        usable, reason, _ = _context_check(canonical)
        if usable:
            return openmm.Platform.getPlatformByName(canonical), platform_properties(canonical)
    available = [p for p in registered if _context_check(p)[0]]
    raise PlatformError(f"platform {canonical} does not load: {reason}; "
                        f"available: {', '.join(available) or 'none'}")
