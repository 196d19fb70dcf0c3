"""Start a dask-jobqueue cluster for `solvflow sweep --scheduler ADDRESS` and keep it up.

    python docs/jobqueue/start_cluster.py docs/jobqueue/slurm.yaml --jobs 4
    # prints: scheduler tcp://10.0.0.5:40123 ; in another shell on the login node:
    solvflow sweep review_claims -o /shared/campaigns/review --scheduler tcp://10.0.0.5:40123

The YAML is a Dask configuration file (jobqueue.slurm or jobqueue.pbs); the job
script that would be submitted is printed first. Ctrl-C cancels the jobs.
"""

from __future__ import annotations

import argparse
import time

import dask
import yaml


def make_cluster(config_file: str):  # noqa: ANN201 - a SLURMCluster or PBSCluster
    """The jobqueue cluster the file describes (nothing is submitted until scale())."""
    with open(config_file) as fh:
        config = yaml.safe_load(fh)
    kind = next(iter(config["jobqueue"]))
    dask.config.update(dask.config.config, config, priority="new")
    from dask_jobqueue import PBSCluster, SLURMCluster

    cls = {"slurm": SLURMCluster, "pbs": PBSCluster}[kind]
    return cls()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="docs/jobqueue/slurm.yaml or pbs.yaml (edited)")
    parser.add_argument("--jobs", type=int, default=1, help="batch jobs to submit")
    args = parser.parse_args()
    cluster = make_cluster(args.config)
    print(cluster.job_script())
    cluster.scale(jobs=args.jobs)
    print(f"scheduler {cluster.scheduler_address}", flush=True)
    try:
        while True:
            time.sleep(60)
    except KeyboardInterrupt:
        cluster.close()


if __name__ == "__main__":
    main()
