"""Wall-time durations as users write them (``--walltime 2h30m``, ``90m``, ``01:30:00``).

Light on purpose (stdlib only): the command modules import it while the
parser is built.
"""

from __future__ import annotations

import re

from solvflow.errors import InputError

#: Exit status of ``solvflow run`` / ``solvflow sweep`` when the wall time ran out before the
#: end: everything done so far is checkpointed and running the same command again resumes.
EXIT_RESUMABLE = 3

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_UNIT_FORM = re.compile(r"^(?:(\d+(?:\.\d*)?|\.\d+)([dhms]))+$")
_UNIT_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([dhms])")
_CLOCK_FORM = re.compile(r"^(?:(\d+)-)?(\d+):(\d{1,2})(?::(\d{1,2}))?$")

ALLOWED = ("a number with units d, h, m, s (e.g. 90m, 2h30m, 3600s, 1.5h), "
           "or HH:MM[:SS] / D-HH:MM[:SS] as in SLURM (e.g. 01:30:00, 1-12:00)")


def parse_duration(text: str | float | int, what: str = "--walltime") -> float:
    """Seconds in ``text``.

    Parameters
    ----------
    text : str, float or int
        ``"2h30m"``, ``"90m"``, ``"3600s"``, ``"1.5h"``, ``"1d"``, ``"01:30:00"`` (HH:MM:SS),
        ``"01:30"`` (HH:MM), ``"1-12:00:00"`` (D-HH:MM:SS). A bare number (int or float, not
        a string) is taken as seconds, for the Python API.
    what : str
        Name used in the error message.

    Returns
    -------
    float
        The duration in seconds (> 0).

    Raises
    ------
    InputError
        Unparsable text, or a duration that is not positive.
    """
    if isinstance(text, bool):
        raise InputError(f"{what}: expected a duration, got {text!r}; allowed: {ALLOWED}")
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        seconds = _parse_text(str(text).strip().lower(), what)
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise InputError(f"{what}: the duration must be positive and finite, got {text!r}")
    return seconds


def _parse_text(text: str, what: str) -> float:
    if _UNIT_FORM.match(text):
        return sum(float(number) * _UNITS[unit] for number, unit in _UNIT_PART.findall(text))
    clock = _CLOCK_FORM.match(text)
    if clock:
        days, first, second, third = clock.groups()
        if third is None:  # HH:MM
            hours, minutes, secs = int(first), int(second), 0
        else:
            hours, minutes, secs = int(first), int(second), int(third)
        if minutes >= 60 or secs >= 60:
            raise InputError(f"{what}: minutes and seconds must be below 60 in {text!r}")
        return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60.0 + secs
    hint = " (give a unit, e.g. 90m or 3600s)" if re.fullmatch(r"[\d.]+", text) else ""
    raise InputError(f"{what}: cannot read {text!r} as a duration{hint}; allowed: {ALLOWED}")


def format_duration(seconds: float) -> str:
    """``5430.0`` -> ``"1h30m30s"`` (for messages)."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "",
             f"{secs}s" if secs or not (hours or minutes) else ""]
    return "".join(parts)
