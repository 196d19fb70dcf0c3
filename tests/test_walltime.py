"""``--walltime``: a run stops cleanly at a checkpoint when its wall time is used up, exits
with the "not finished, resumable" status, and a rerun finishes with the same frames as an
uninterrupted run.  Real Packmol box of 1 M LiFSI/DME (2 LiFSI, CPU platform)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from solvflow.build import build
from solvflow.cli import main as cli_main
from solvflow.dcd import dcd_frame_count, read_dcd_header
from solvflow.durations import EXIT_RESUMABLE, format_duration, parse_duration
from solvflow.errors import InputError
from solvflow.simulate import load_protocol, simulate


@pytest.mark.parametrize(("text", "seconds"), [
    ("90m", 5400.0), ("2h30m", 9000.0), ("3600s", 3600.0), ("1.5h", 5400.0), ("1d", 86400.0),
    ("01:30:00", 5400.0), ("01:30", 5400.0), ("1-12:00:00", 129600.0), ("45S", 45.0),
    (12.5, 12.5)])
def test_durations_as_users_write_them(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["90", "soon", "1:75", "-5m", "0s", "", "1h-5m"])
def test_bad_durations_say_what_is_allowed(text: str) -> None:
    with pytest.raises(InputError, match="walltime"):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(5430) == "1h30m30s" and format_duration(0.4) == "0s"
    assert format_duration(60) == "1m"


def _frame_steps(rundir: Path) -> list[int]:
    header = read_dcd_header(rundir / "traj.dcd")
    return [header.first_step + i * header.interval
            for i in range(dcd_frame_count(rundir / "traj.dcd"))]


@pytest.fixture(scope="module")
def protocol(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke protocol with a longer production (300 steps, 60 frames)."""
    data = load_protocol("smoke").to_dict()
    data["name"] = "smoke_walltime"
    data["stages"]["production"]["duration_ns"] = 0.0006
    path = tmp_path_factory.mktemp("protocol") / "walltime.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("walltime")
    result = build("lifsi_dme", concentration=1.0, n_salt=2, seed=3, cutoff_nm=0.7,
                   output=root / "template")
    return Path(result.rundir)


def _copy(template: Path, target: Path) -> Path:
    target.mkdir()
    for name in ("spec.yaml", "topology.pdb", "system.xml"):
        (target / name).write_bytes((template / name).read_bytes())
    return target


def test_walltime_stops_at_a_checkpoint_and_rerun_matches_uninterrupted(
        built: Path, protocol: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    reference = _copy(built, tmp_path / "reference")
    full = simulate(reference, protocol=protocol, platform="CPU", progress="quiet")
    assert full.state == "finished" and full.n_frames == 60  # 300 production steps / 5

    stopped = _copy(built, tmp_path / "stopped")
    code = cli_main(["run", str(stopped), "--protocol", str(protocol), "--platform", "CPU",
                     "--walltime", "0.001s", "--quiet"])
    assert code == EXIT_RESUMABLE
    out = capsys.readouterr().out
    assert "not finished" in out.lower() and "resume" in out
    status = json.loads((stopped / "status.json").read_text())
    assert status["state"] == "stopped" and status["stop_reason"] == "walltime"
    record = status["checkpoints"][-1]
    assert record["step"] == status["step"] < full.status["step"]
    assert record["n_frames"] == dcd_frame_count(stopped / "traj.dcd")
    assert (stopped / "checkpoint.chk").is_file()

    again = simulate(stopped, platform="CPU", progress="quiet")  # protocol recorded
    assert again.state == "finished" and "stop_reason" not in again.status
    assert again.status["sessions"][1]["resumed_from"]["step"] == record["step"]
    assert _frame_steps(stopped) == _frame_steps(reference)
    assert again.status["step"] == full.status["step"]


def test_walltime_through_the_api_returns_stopped(built: Path, protocol: Path,
                                                 tmp_path: Path) -> None:
    rundir = _copy(built, tmp_path / "api")
    result = simulate(rundir, protocol=protocol, platform="CPU", progress="quiet",
                      walltime_s=1e-3)
    assert result.state == "stopped" and not result.already_finished
    assert result.status["stages_finished"][:1] == ["minimize"]


def test_bad_walltime_is_a_usage_error(built: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["run", str(built), "--walltime", "soon"])
    assert exc.value.code == 2
    assert "cannot read 'soon' as a duration" in capsys.readouterr().err
