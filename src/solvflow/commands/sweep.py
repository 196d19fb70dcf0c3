"""``solvflow sweep``: run every task of a workflow (build -> run -> analyze) on Dask."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from solvflow.errors import InputError

DESCRIPTION = """\
Run a campaign: every combination in the workflow file (systems x compositions x
charge scales x start states x replicas) is one task, build -> run -> analyze in
CAMPAIGN/runs/<task-id>/ (e.g. lifsi_dme-1M-cs0.8-random-r1), run on Dask distributed.

WORKFLOW is a shipped workflow ({names}) or the path of a
workflow YAML: name, protocol (preset name or file), systems: a list of {{system,
concentrations_M | ratios | molalities_mol_kg (default: the system file's own),
n_salt | target_atoms, and optional charge_scales, starts, replicas, production_ns,
cutoff_nm, label}}; optional top-level charge_scales ([0.8, 1.0]; null = the system's
own), starts (random, dissociated, paired), replicas (N: seeds 1..N, or {{seeds:
[...]}}), production_ns, walltime, tasks_per_gpu. Unknown keys and bad values are
errors naming the key and what is allowed, before anything runs (docs/campaign.md).

CAMPAIGN/campaign.json lists every task with its parameters, state (queued, running,
finished, stopped, failed), wall time, platform, ns/day and error; CAMPAIGN/workflow.yaml
is the workflow with every default filled in; CAMPAIGN/logs/<task-id>.log holds each
task's output. On a terminal a live board shows done/running/failed/queued tasks and
ns/day and ETA of each running one; elsewhere one line per state change. Afterwards:
solvflow compare / claims / report CAMPAIGN.

Run the same command again at any time: finished tasks are skipped without starting
MD, interrupted or stopped ones resume from their last checkpoint, failed ones are
retried. A failing task never stops the others.

Workers: by default a LocalCluster on this machine, one worker per GPU
(--tasks-per-gpu K per GPU, each pinned to its device), else CPU workers with OpenMM
threads so that workers x threads = cores (OPENMM_CPU_THREADS sets the threads).
--scheduler tcp://HOST:8786 uses a running Dask scheduler instead, e.g. a SLURM or PBS
cluster from dask-jobqueue (docs/jobqueue/); its workers must see CAMPAIGN at the same
path.
"""

EPILOG = """\
exit status: 0 every task finished; 3 some stopped by --walltime (rerun to continue);
1 some failed (see campaign.json or the board); 2 bad input (nothing was run).

examples:
  solvflow sweep smoke --list                         # the tasks, without running them
  solvflow sweep smoke -o campaigns/smoke             # seconds per task, CPU
  solvflow sweep cpu_claims -o campaigns/cpu --walltime 2h
  solvflow sweep review_claims -o /scratch/review --tasks-per-gpu 2
  solvflow sweep review_claims -o /shared/review --scheduler tcp://login1:8786
"""


def _workflow_names() -> str:
    from solvflow.resources import data_dir

    try:
        return ", ".join(sorted(p.stem for p in data_dir("workflows").glob("*.yaml")))
    except OSError:
        return "none found"


def _list(workflow: Any, tasks: list[Any]) -> int:
    print(f"workflow {workflow.name}: {len(tasks)} tasks, protocol {workflow.protocol.name}"
          + (f"; {workflow.description}" if workflow.description else ""))
    for task in tasks:
        cutoff = f", cutoff {task.cutoff_nm:g} nm" if task.cutoff_nm else ""
        print(f"  {task.id:<44} {task.n_atoms:>7} atoms, n_salt {task.n_salt}, seed "
              f"{task.seed}, {task.production_ns:g} ns production{cutoff}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from solvflow.campaign.sweep import sweep
    from solvflow.campaign.workflow import expand, load_workflow

    workflow = load_workflow(args.workflow)
    if args.list:
        return _list(workflow, expand(workflow))
    if args.output is None:
        raise InputError("-o CAMPAIGN is required: the campaign directory to create or continue")
    previous = signal.signal(signal.SIGTERM, _stop)  # a batch system ending the job
    try:
        result = sweep(workflow, Path(args.output), scheduler=args.scheduler,
                       workers=args.workers, walltime=args.walltime,
                       tasks_per_gpu=args.tasks_per_gpu, platform=args.platform,
                       plots=not args.no_plots)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return result.exit_status


def _stop(signum: int, frame: Any) -> None:
    """SIGTERM as Ctrl-C: running tasks are recorded as stopped, the workers shut down."""
    raise KeyboardInterrupt(f"signal {signum}")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sweep", help="run a campaign (workflow file) on Dask: skips finished tasks, resumes",
        description=DESCRIPTION.format(names=_workflow_names()), epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workflow", metavar="WORKFLOW",
                        help="shipped workflow name or path of a workflow YAML")
    parser.add_argument("-o", "--output", metavar="CAMPAIGN",
                        help="campaign directory (created; an existing one continues); "
                             "required unless --list")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="address of a running Dask scheduler (tcp://HOST:8786); "
                             "default: start a LocalCluster here")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="LocalCluster workers (default: GPUs x tasks per GPU, else one "
                             "per core up to the number of tasks)")
    parser.add_argument("--tasks-per-gpu", type=int, metavar="K",
                        help="tasks sharing one GPU (small boxes leave a GPU idle); default: "
                             "the workflow's tasks_per_gpu, else 1")
    parser.add_argument("--walltime", metavar="DURATION",
                        help="wall-time budget of the whole sweep (90m, 2h30m, 01:30:00): MD "
                             "stops at a checkpoint by then (exit status 3) and the next "
                             "sweep continues; default: the workflow's walltime, else none")
    parser.add_argument("--platform", metavar="NAME",
                        help="OpenMM platform for every task: CUDA, OpenCL, CPU, Reference "
                             "(default: the fastest that loads on each worker)")
    parser.add_argument("--no-plots", action="store_true",
                        help="skip each run's PNG plots (analysis.json is always written)")
    parser.add_argument("--list", action="store_true",
                        help="validate the workflow and list its tasks (ids, atoms, seeds); "
                             "run nothing")
    parser.set_defaults(func=_run)
