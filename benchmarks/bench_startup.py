"""Start-up time of the ``solvflow`` command as whole processes (not part of the test run).

Runs each command ``--repeat`` times in a fresh interpreter, exactly as the
installed ``solvflow`` console script does (``from solvflow.cli import main;
sys.exit(main())``, with ``src/`` first on ``sys.path`` so the source tree is
measured), and prints the fastest and the median wall time and the least CPU
time (user + system) of each, next to the bare interpreter (``python -c pass``)
measured in the same run. With ``--importtime`` it also prints the slowest
imports (``python -X importtime``, cumulative milliseconds) of each command.

Target: ``solvflow --help``, ``--version`` and ``systems`` each under 0.3 s
(fastest of 5 runs). The machine may be shared: the median shows the noise.

Usage::

    python benchmarks/bench_startup.py --repeat 5 --importtime
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRY = "import sys; from solvflow.cli import main; sys.exit(main())"
COMMANDS = {"python -c pass": None, "solvflow --help": ["--help"],
            "solvflow --version": ["--version"], "solvflow systems": ["systems"]}
TARGET_S = 0.3


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def _argv(args: list[str] | None, *flags: str) -> list[str]:
    if args is None:
        return [sys.executable, *flags, "-c", "pass"]
    return [sys.executable, *flags, "-c", ENTRY, *args]


def run_times(args: list[str] | None, repeat: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of ``repeat`` fresh processes running the command.

    On a loaded machine wall time includes waiting for a core; CPU time does not.
    """
    walls, cpus = [], []
    for _ in range(repeat):
        before, start = os.times(), time.perf_counter()
        subprocess.run(_argv(args), env=_env(), cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = os.times()
        cpus.append(after.children_user - before.children_user
                    + after.children_system - before.children_system)
    return walls, cpus


def slowest_imports(args: list[str] | None, n: int = 8) -> list[tuple[str, float]]:
    """The ``n`` top-level imports with the largest cumulative time (ms), from -X importtime."""
    proc = subprocess.run(_argv(args, "-X", "importtime"), env=_env(), cwd=ROOT, check=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        if name.startswith("  "):  # nested import: counted in its parent's cumulative time
            continue
        rows.append((name.strip(), int(parts[1]) / 1000.0))
    return sorted(rows, key=lambda r: -r[1])[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--importtime", action="store_true",
                        help="also list the slowest top-level imports of each command")
    args = parser.parse_args()
    results: dict[str, dict[str, object]] = {}
    load = os.getloadavg()[0]
    for label, argv in COMMANDS.items():
        times, cpus = run_times(argv, args.repeat)
        row: dict[str, object] = {"min_s": min(times), "median_s": statistics.median(times),
                                  "runs_s": [round(t, 3) for t in times],
                                  "min_cpu_s": min(cpus)}
        if argv is not None:
            row["under_target"] = min(times) < TARGET_S
        if args.importtime:
            row["slowest_imports_ms"] = slowest_imports(argv)
        results[label] = row
    print(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(),
                      "load_average_before": load, "load_average_after": os.getloadavg()[0],
                      "repeat": args.repeat, "target_s": TARGET_S, "commands": results},
                     indent=2))
    print("| command | fastest wall s | median wall s | least CPU s | wall < 0.3 s |\n"
          "|---|---|---|---|---|")
    for label, row in results.items():
        ok = {True: "yes", False: "**no**"}.get(row.get("under_target"), "-")  # type: ignore[arg-type]
        print(f"| `{label}` | {row['min_s']:.3f} | {row['median_s']:.3f} | "
              f"{row['min_cpu_s']:.3f} | {ok} |")


if __name__ == "__main__":
    main()
