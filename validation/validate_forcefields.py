"""Retired: the force-field validation is the ``solvflow validate`` command now.

This wrapper only forwards its arguments, so old notes keep working::

    PYTHONPATH=src python validation/validate_forcefields.py density:dme -o /tmp/val

is ``solvflow validate density:dme -o /tmp/val``. The checks are data in
``src/solvflow/validate_checks.yaml``; see docs/validation.md.
"""

from __future__ import annotations

import sys

from solvflow.cli import main

if __name__ == "__main__":
    sys.exit(main(["validate", *sys.argv[1:]]))
