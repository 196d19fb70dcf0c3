"""Command-line front end: parse, call the API, print.

Each subcommand lives in ``solvflow.commands.<name>`` and provides
``register(subparsers)`` (adds its parser and sets ``func``).  Errors the
user can cause arrive here as :class:`~solvflow.errors.SolvflowError` and
become one line on stderr plus a non-zero exit status; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from solvflow import __version__
from solvflow.errors import SolvflowError

# Order in `solvflow --help`; commands not listed here follow alphabetically.
_COMMAND_ORDER = ["build", "parametrize", "run", "platforms", "analyze", "sweep", "compare",
                  "claims", "report", "export", "validate", "systems"]


def _command_modules() -> list[str]:
    import solvflow.commands as pkg

    # a directory listing, not pkgutil.iter_modules (which imports inspect: slower --help)
    found = {entry.name[:-3] for folder in pkg.__path__ for entry in os.scandir(folder)
             if entry.name.endswith(".py") and not entry.name.startswith("_")}
    ordered = [name for name in _COMMAND_ORDER if name in found]
    return ordered + sorted(found - set(ordered))


def make_parser() -> argparse.ArgumentParser:
    """The full argument parser (one subparser per command module)."""
    parser = argparse.ArgumentParser(
        prog="solvflow",
        description="Cation solvation in battery electrolytes: build, simulate, analyse.",
    )
    parser.add_argument("--version", action="version", version=f"solvflow {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _command_modules():
        module = importlib.import_module(f"solvflow.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``solvflow`` script; returns the exit status."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SolvflowError as exc:
        print(f"solvflow {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the user's file system: unwritable or missing paths
        where = f" {exc.filename}" if exc.filename else ""
        print(f"solvflow {args.command}: error: cannot use{where}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"solvflow {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
