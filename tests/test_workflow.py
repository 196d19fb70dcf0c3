"""Workflow files: strict validation (clear errors before anything runs), expansion into
tasks, the shipped workflows, the CLI's errors and --list, LocalCluster worker plans, and
the dask-jobqueue example files built into real SLURMCluster / PBSCluster objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from solvflow.campaign.sweep import worker_plan
from solvflow.campaign.workflow import (
    available_workflows,
    expand,
    load_workflow,
    parse_workflow,
    resolved_document,
)
from solvflow.cli import main as cli_main
from solvflow.errors import InputError, SpecError

ROOT = Path(__file__).resolve().parents[1]

GOOD: dict[str, Any] = {
    "name": "t", "protocol": "smoke",
    "systems": [{"system": "lifsi_dme", "concentrations_M": [1.0], "n_salt": 3,
                 "cutoff_nm": 0.6}],
}


def _with(**changes: Any) -> dict[str, Any]:
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    for key, value in changes.items():
        if key.startswith("system_"):
            doc["systems"][0][key[len("system_"):]] = value
        else:
            doc[key] = value
    return doc


def _write(tmp_path: Path, doc: dict[str, Any], name: str = "wf.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def test_shipped_workflows_are_listed_and_load_by_short_name() -> None:
    assert {"smoke", "cpu_claims", "review_claims"} <= set(available_workflows())
    smoke = expand(load_workflow("smoke"))
    assert [t.id for t in smoke] == [
        "lifsi_dme-1M-cs0.8-random-r1", "lifsi_dme-1M-cs0.8-random-r2",
        "lifsi_dme-2M-cs0.8-random-r1", "lifsi_dme-2M-cs0.8-random-r2"]
    assert [t.seed for t in smoke] == [1, 2, 1, 2]
    assert all(t.protocol == "smoke" and t.cutoff_nm == 0.6 for t in smoke)
    assert all(350 <= t.n_atoms <= 450 for t in smoke)  # "about 400 atoms" (target_atoms)


# cpu_claims: each system file's own scale (charge_scales: null), 0.8 and the melt's 1.0
@pytest.mark.parametrize("name,n_tasks,scales", [("cpu_claims", 38, {0.8, 1.0}),
                                                  ("review_claims", 76, {0.8, 1.0})])
def test_claims_workflows_cover_every_claim(name: str, n_tasks: int, scales: set[float]) -> None:
    tasks = expand(load_workflow(name))
    assert len(tasks) == n_tasks
    assert {t.charge_scale for t in tasks} == scales
    conditions = {(t.system, t.value) for t in tasks}
    assert conditions == {("lifsi_dme", 1.0), ("lifsi_dme", 2.0), ("lifsi_dme", 4.0),
                          ("mg_tfsi2_dme", 0.25), ("mg_tfsi2_dme", 0.5),
                          ("mg_tfsi2_dmac", 0.25), ("mg_tfsi2_dmac", 0.5),
                          ("ca_bhfip4_dme", 0.25), ("ca_bhfip4_dme", 0.5),
                          ("alcl3_emimcl", 1.0), ("alcl3_emimcl", 1.3),
                          ("alcl3_emimcl", 1.5), ("alcl3_emimcl", 2.0)}
    for task in tasks:  # two starts for the slow-exchanging multivalent cations only
        multivalent = task.system.startswith(("mg_", "ca_"))
        assert (task.start in ("dissociated", "paired")) == multivalent
        assert task.replica in (1, 2)
    al = next(t for t in tasks if t.system == "alcl3_emimcl" and t.value == 1.5)
    assert al.measure == "ratio" and al.id.startswith("alcl3_emimcl-r1.5-cs")
    if name == "cpu_claims":  # null: systems/alcl3_emimcl.yaml says 1.0, the others 0.8
        assert {t.charge_scale for t in tasks if t.system == "alcl3_emimcl"} == {1.0}
        assert {t.charge_scale for t in tasks if t.system != "alcl3_emimcl"} == {0.8}


def test_claims_workflow_box_sizes_match_their_comments() -> None:
    # cpu_claims.yaml states 1,132-1,262 atoms (45,572 summed); review_claims 9,857-10,255
    cpu = expand(load_workflow("cpu_claims"))
    assert min(t.n_atoms for t in cpu) == 1132 and max(t.n_atoms for t in cpu) == 1262
    assert sum(t.n_atoms for t in cpu) == 45572
    assert load_workflow("cpu_claims").protocol.production.duration_ns == 0.01
    gpu = expand(load_workflow("review_claims"))
    assert min(t.n_atoms for t in gpu) == 9857 and max(t.n_atoms for t in gpu) == 10255


def test_the_long_lifsi_follow_up_reruns_cpu_claims_boxes_10x_longer() -> None:
    # cpu_lifsi_long.yaml says: the same boxes, seeds, protocol and scale, production 100 ps
    base = {t.id: t for t in expand(load_workflow("cpu_claims")) if t.system == "lifsi_dme"}
    long = expand(load_workflow("cpu_lifsi_long"))
    assert {t.id for t in long} == set(base) and len(long) == 6
    for task in long:
        short = base[task.id]
        assert (task.seed, task.n_salt, task.n_atoms, task.charge_scale, task.protocol) == (
            short.seed, short.n_salt, short.n_atoms, short.charge_scale, short.protocol)
        assert task.production_ns == pytest.approx(10 * short.production_ns)


def test_params_and_build_arguments() -> None:
    doc = _with(charge_scales=[0.7, None], starts=["random", "paired"],
                replicas={"seeds": [11, 42]}, production_ns=0.001)
    tasks = expand(parse_workflow(doc))
    assert len(tasks) == 2 * 2 * 2
    first = tasks[0]
    assert first.id == "lifsi_dme-1M-cs0.7-random-r1"
    assert first.params() == {"system": "lifsi_dme", "concentration_M": 1.0, "n_salt": 3,
                              "charge_scale": 0.7, "replica": 1, "seed": 11,
                              "start": "random", "protocol": "smoke", "production_ns": 0.001,
                              "cutoff_nm": 0.6}
    assert first.build_kwargs() == {"concentration": 1.0, "n_salt": 3, "seed": 11,
                                    "charge_scale": 0.7, "cutoff_nm": 0.6}
    paired = next(t for t in tasks if t.start == "paired" and t.charge_scale == 0.8)
    assert paired.id == "lifsi_dme-1M-cs0.8-paired-r1"  # null = the system file's 0.8
    assert paired.build_kwargs()["start"] == "paired"
    assert tasks[-1].seed == 42 and tasks[-1].replica == 2


def test_charge_scales_null_means_each_system_files_own() -> None:
    # documented in the workflow help: `charge_scales: null` = the system file's (0.8 here)
    tasks = expand(parse_workflow(_with(charge_scales=None)))
    assert [t.charge_scale for t in tasks] == [0.8]


def test_system_compositions_default_to_the_system_file_and_molality_ids() -> None:
    doc = _with()
    del doc["systems"][0]["concentrations_M"]
    doc["systems"][0]["n_salt"] = 20
    del doc["systems"][0]["cutoff_nm"]
    assert [t.value for t in expand(parse_workflow(doc))] == [1.0, 2.0, 4.0]  # lifsi_dme.yaml
    doc["systems"][0]["molalities_mol_kg"] = [1.5]
    task = expand(parse_workflow(doc))[0]
    assert task.id == "lifsi_dme-1.5molkg-cs0.8-random-r1" and task.measure == "molality"


def test_resolved_copy_is_a_workflow_giving_the_same_tasks(tmp_path: Path) -> None:
    wf = load_workflow("cpu_claims")
    tasks = expand(wf)
    path = _write(tmp_path, resolved_document(wf, tasks))
    again = load_workflow(path)
    assert expand(again) == tasks
    assert again.protocol == wf.protocol and again.walltime_s == 2.5 * 3600


BAD = [
    ("unknown top-level key", _with(replica=2), r"unknown key 'replica' \(did you mean "
     r"'replicas'\?\); allowed keys: .*systems"),
    ("unknown system key", _with(system_concentration=[1.0]), r"systems\[0\]: unknown key "
     r"'concentration'.*allowed keys: .*concentrations_M"),
    ("unknown system", _with(system_system="lifsi_dmx"), r"systems\[0\]: system: unknown "
     r"system 'lifsi_dmx'; did you mean 'lifsi_dme'\?.*Shipped systems: .*mg_tfsi2_dme"),
    ("empty concentration axis", _with(system_concentrations_M=[]),
     r"systems\[0\]: concentrations_M: must be a non-empty list"),
    ("empty systems", _with(systems=[]), r"systems: must be a non-empty list"),
    ("empty charge scales", _with(charge_scales=[]), r"charge_scales: must be a non-empty"),
    ("empty starts", _with(starts=[]), r"starts: must be a non-empty list of start states "
     r"\(random, dissociated, paired\)"),
    ("negative replicas", _with(replicas=-2), r"replicas: -2 is not allowed; expected "
     r"replicas .*\(1 or more\)"),
    ("zero replicas", _with(system_replicas=0), r"systems\[0\]: replicas: 0 is not allowed"),
    ("repeated seeds", _with(replicas={"seeds": [3, 3]}), r"seeds must differ"),
    ("bad start", _with(starts=["pairs"]), r"starts: unknown start 'pairs' \(did you mean "
     r"'paired'\?\); allowed: random, dissociated, paired"),
    ("bad protocol", _with(protocol="quik"), r"protocol: unknown protocol 'quik': not a "
     r"shipped preset \(.*quick.*\)"),
    ("bad charge scale", _with(charge_scales=[1.2]), r"charge_scales: 1.2 is not allowed; a "
     r"charge scale is a number in \[0.5, 1.0\]"),
    ("no box size", _with(system_n_salt=None), r"n_salt: None is not allowed"),
    ("two box sizes", _with(system_target_atoms=500), r"give exactly one box size.*got both"),
    ("bad walltime", _with(walltime="2 hours"), r"walltime: cannot read '2 hours'"),
    ("missing protocol", {k: v for k, v in GOOD.items() if k != "protocol"},
     r"missing required key\(s\): protocol"),
    ("ratio for a salt in molar units of a melt", {**GOOD, "systems": [
        {"system": "alcl3_emimcl", "concentrations_M": [1.0], "n_salt": 40}]},
     r"chloroaluminate melt: give 'ratios'"),
    ("start a melt cannot take", {**GOOD, "systems": [
        {"system": "alcl3_emimcl", "ratios": [1.5], "n_salt": 40, "starts": ["paired"]}]},
     r"systems\[0\]: starts: --start paired needs a salt solution"),
    ("duplicate task ids", {**GOOD, "systems": [GOOD["systems"][0], GOOD["systems"][0]]},
     r"two tasks would share the id 'lifsi_dme-1M-cs0.8-random-r1'.*'label'"),
]


@pytest.mark.parametrize("doc,message", [(d, m) for _, d, m in BAD], ids=[b[0] for b in BAD])
def test_bad_workflows_are_clear_errors(tmp_path: Path, doc: dict[str, Any],
                                        message: str) -> None:
    path = _write(tmp_path, doc)
    with pytest.raises(SpecError, match=message):
        expand(load_workflow(path))


@pytest.mark.parametrize("doc", [BAD[0][1], BAD[2][1], BAD[3][1], BAD[7][1]],
                         ids=["unknown key", "unknown system", "empty axis", "negative replicas"])
def test_cli_rejects_bad_workflows_before_anything_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture, doc: dict[str, Any]) -> None:
    path = _write(tmp_path, doc)
    campaign = tmp_path / "campaign"
    assert cli_main(["sweep", str(path), "-o", str(campaign)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("solvflow sweep: error: ") and "\n" not in err
    assert not campaign.exists()  # nothing was created, let alone run


def test_cli_unknown_workflow_and_missing_output(capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["sweep", "smok", "-o", "x"]) == 2
    assert "unknown workflow 'smok'; did you mean 'smoke'?" in capsys.readouterr().err
    assert cli_main(["sweep", "smoke"]) == 2
    assert "-o CAMPAIGN is required" in capsys.readouterr().err


def test_cli_list_shows_tasks_without_running(capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["sweep", "cpu_claims", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("workflow cpu_claims: 38 tasks, protocol cpu_claims")
    assert any(line.split()[0] == "mg_tfsi2_dmac-0.5M-cs0.8-paired-r2" for line in out[1:])


def test_help_explains_the_command(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        cli_main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("smoke", "cpu_claims", "review_claims", "campaign.json", "--scheduler",
                   "--walltime", "--tasks-per-gpu", "--workers", "resume",
                   "exit status: 0 every task finished; 3 some stopped", "docs/jobqueue"):
        assert phrase in text, phrase


def test_worker_plan_cpu_and_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENMM_CPU_THREADS", raising=False)
    cpu = worker_plan(10, cores=8, gpus=())
    assert (cpu.workers, cpu.threads, cpu.gpus) == (8, 1, ())
    assert (worker_plan(2, cores=8, gpus=()).threads) == 4  # 2 tasks: 2 workers x 4 threads
    assert worker_plan(10, workers=3, cores=8, gpus=()).threads == 2
    monkeypatch.setenv("OPENMM_CPU_THREADS", "4")
    assert (worker_plan(10, cores=8, gpus=()).workers) == 2
    gpu = worker_plan(10, tasks_per_gpu=2, cores=8, gpus=("0", "3"))
    assert gpu.workers == 4 and [gpu.gpu_of(i) for i in range(4)] == ["0", "0", "3", "3"]
    assert worker_plan(10, platform="CPU", cores=8, gpus=("0",)).gpus == ()
    with pytest.raises(InputError, match="tasks per GPU must be a positive integer"):
        worker_plan(1, tasks_per_gpu=0, gpus=())


@pytest.mark.parametrize("kind", ["slurm", "pbs"])
def test_jobqueue_examples_build_real_clusters(kind: str) -> None:
    """docs/jobqueue/*.yaml are Dask config files: the cluster they describe is built (its
    scheduler starts locally) and its job script rendered; no job is submitted."""
    dask = pytest.importorskip("dask")
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    config = yaml.safe_load((ROOT / "docs" / "jobqueue" / f"{kind}.yaml").read_text())
    section = config["jobqueue"][kind]
    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}[kind]
    with dask.config.set({f"jobqueue.{kind}.{key}": value for key, value in section.items()}):
        with cls(dashboard_address=None) as cluster:
            script = cluster.job_script()
    assert "--nthreads 1" in script if kind == "slurm" else "--nthreads 4" in script
    assert f"--nworkers {section['processes']}" in script
    assert f"export OPENMM_CPU_THREADS={section['cores'] // section['processes']}" in script
    if kind == "slurm":
        assert "#SBATCH --gres=gpu:1" in script and "#SBATCH -p gpu" in script
    else:
        assert "#PBS -l select=1:ncpus=16:mem=32GB" in script
