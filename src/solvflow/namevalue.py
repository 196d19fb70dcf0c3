"""``NAME=VALUE`` items (command-line options such as ``--cutoff DME=0.28``), parsed once.

Ground floor: standard library and :mod:`solvflow.errors` only, so command
modules may use it at any time without slowing ``solvflow --help``.
"""

from __future__ import annotations

from collections.abc import Sequence

from solvflow.errors import InputError


def parse_pairs(items: Sequence[str] | None, what: str, form: str = "NAME=VALUE",
                error: type[InputError] = InputError) -> list[tuple[str, str]]:
    """``["FSI=resname FSI", ...]`` -> ``[("FSI", "resname FSI"), ...]`` (stripped, in order).

    Raises ``error`` naming ``what`` (e.g. ``"--cutoff"``) and the expected ``form``
    (e.g. ``"NAME=NM (e.g. DME=0.28)"``) for an item without a name or a value.
    """
    out = []
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise error(f"{what} must be {form}, got {item!r}")
        out.append((name.strip(), value.strip()))
    return out


def parse_numbers(items: Sequence[str] | None, what: str, form: str = "NAME=NUMBER",
                  error: type[InputError] = InputError) -> dict[str, float]:
    """``["DME=0.28", ...]`` -> ``{"DME": 0.28, ...}``; a value that is not a number is an error."""
    out = {}
    for item in items or []:
        ((name, value),) = parse_pairs([item], what, form, error)
        try:
            out[name] = float(value)
        except ValueError:
            raise error(f"{what} must be {form}, got {item!r}") from None
    return out
