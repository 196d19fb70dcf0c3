"""``python -m solvflow`` runs the command-line interface."""

import sys

from solvflow.cli import main

sys.exit(main())
