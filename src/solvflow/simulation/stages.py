"""The stage plan of a protocol: global step ranges, ensembles, temperature schedules."""

from __future__ import annotations

import math
from dataclasses import dataclass

from solvflow.simulation.protocols import Protocol

RAMP_INCREMENTS = 20  # a ramp is a staircase of at most this many constant-temperature steps


@dataclass(frozen=True)
class StagePlan:
    """One stage: global steps ``[start, end)``; ``ensemble`` None for minimisation.

    ``schedule`` lists ``(end_step, temperature_K)`` segments covering the stage.
    """

    name: str
    start: int
    end: int
    ensemble: str | None
    schedule: tuple[tuple[int, float], ...]

    @property
    def steps(self) -> int:
        return self.end - self.start


def plan_stages(protocol: Protocol, target_K: float) -> list[StagePlan]:
    """Stages of ``protocol`` for a run at ``target_K``, in order, with global step ranges."""
    plans: list[StagePlan] = []
    step = 0
    for name in protocol.stages():
        segments = _segments(protocol, name, target_K)
        ensemble = _ensemble(protocol, name)
        end = step + sum(n for n, _ in segments)
        schedule, at = [], step
        for n, temperature in segments:
            at += n
            schedule.append((at, temperature))
        plans.append(StagePlan(name, step, end, ensemble, tuple(schedule)))
        step = end
    return plans


def _ensemble(protocol: Protocol, name: str) -> str | None:
    if name == "minimize":
        return None
    if name == "heat":
        return "NVT"
    if name == "anneal":
        assert protocol.anneal is not None
        return protocol.anneal.ensemble
    if name == "npt":
        return "NPT"
    return protocol.production.ensemble


def _segments(protocol: Protocol, name: str, target_K: float) -> list[tuple[int, float]]:
    """(steps, temperature) pieces of one stage."""
    if name == "minimize":
        return []
    if name == "heat":
        assert protocol.heat is not None
        return _ramp(protocol.steps(protocol.heat.duration_ps), protocol.heat.start_K, target_K)
    if name == "anneal":
        a = protocol.anneal
        assert a is not None
        ramp = protocol.steps(a.ramp_ps)
        hold = [(protocol.steps(a.hold_ps), a.high_K)] if protocol.steps(a.hold_ps) else []
        return _ramp(ramp, target_K, a.high_K) + hold + _ramp(ramp, a.high_K, target_K)
    if name == "npt":
        assert protocol.npt is not None
        return [(protocol.steps(protocol.npt.duration_ps), target_K)]
    return [(protocol.production_steps, target_K)]


def _ramp(steps: int, start_K: float, end_K: float) -> list[tuple[int, float]]:
    """A linear ramp from ``start_K`` to ``end_K`` as a staircase over ``steps`` steps."""
    if steps <= 0:
        return []
    n = min(RAMP_INCREMENTS, steps)
    size = math.ceil(steps / n)
    pieces, done, i = [], 0, 0
    while done < steps:
        length = min(size, steps - done)
        fraction = i / (n - 1) if n > 1 else 1.0
        pieces.append((length, start_K + (end_K - start_K) * min(fraction, 1.0)))
        done += length
        i += 1
    return pieces


def expected_counts(plan: list[StagePlan], report_every: int, frame_every: int, step: int,
                    stages_finished: list[str]) -> tuple[int, int]:
    """(log rows, trajectory frames) a run following ``plan`` has written at ``step``.

    Derived from the schedule alone (not from the reporters' counters): one row
    for a finished minimisation, then in each MD stage a row every
    ``report_every`` steps after its start up to its end; frames every
    ``frame_every`` steps after the start of ``production``.
    """
    rows = 0
    for stage in plan:
        if stage.ensemble is None:
            rows += 1 if stage.name in stages_finished else 0
        elif step > stage.start:
            rows += (min(step, stage.end) - stage.start) // report_every
    production = plan[-1]
    frames = (step - production.start) // frame_every if step > production.start else 0
    return rows, frames
