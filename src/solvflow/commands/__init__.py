"""One module per ``solvflow`` subcommand; each defines ``register(subparsers)``."""
