"""Exception hierarchy.

Every error a user can cause is a :class:`SolvflowError`.  Input problems are
also :class:`ValueError` (so generic callers can catch them), failures of a
real component (Packmol, OpenMM, AmberTools) are also :class:`RuntimeError`.
The command-line front end turns any :class:`SolvflowError` into a one-line
message and a non-zero exit status; nothing else is caught there.
"""

from __future__ import annotations


class SolvflowError(Exception):
    """Base class of every error solvflow raises on purpose."""

    exit_code = 1


class InputError(SolvflowError, ValueError):
    """The user asked for something invalid (bad file, value or option)."""

    exit_code = 2


class SpecError(InputError):
    """A system or protocol file is malformed (unknown key, wrong type, ...)."""


class UnknownSystemError(SpecError):
    """No shipped system of that name and no such file."""


class SpeciesError(SpecError):
    """A species definition is invalid (SMILES, charge, residue name, ...)."""


class CompositionError(InputError):
    """A concentration, ratio or count that cannot give a valid box."""


class OutputExistsError(InputError):
    """The output directory exists and is not empty (use overwrite)."""


class BuildError(SolvflowError, RuntimeError):
    """Building the box failed (conformer generation, Packmol)."""


class PackmolError(BuildError):
    """Packmol could not pack the box."""


class ForceFieldError(SolvflowError, RuntimeError):
    """Parameters are missing or inconsistent for a residue or atom."""


class ParametrizeError(ForceFieldError):
    """AmberTools could not parametrize a new species."""


class SimulationError(SolvflowError, RuntimeError):
    """The simulation failed (blow-up, NaN, platform problem)."""


class PlatformError(SimulationError):
    """The requested OpenMM platform is not available."""


class AnalysisError(SolvflowError, RuntimeError):
    """Trajectory analysis failed."""


class AnalysisInputError(InputError):
    """Invalid analysis request (selection, cutoff, frame range, box)."""


__all__ = [
    "AnalysisError",
    "AnalysisInputError",
    "BuildError",
    "CompositionError",
    "ForceFieldError",
    "InputError",
    "OutputExistsError",
    "PackmolError",
    "ParametrizeError",
    "PlatformError",
    "SimulationError",
    "SolvflowError",
    "SpecError",
    "SpeciesError",
    "UnknownSystemError",
]
