"""The sweep's task board: done / running / failed / queued, ns/day and ETA per running task.

On a terminal it is a live table (rich), refreshed twice a second from the
tasks' progress files; otherwise (a log file, a batch job, a pipe) it prints
one line per state change, so a log of the sweep reads like a journal.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from solvflow.campaign.task import read_progress

MAX_EVENTS = 6


def make_board(stream: IO[str] | None, campaign: Any) -> LineBoard:
    """A live board when ``stream`` (default stdout) is a terminal, else a line board."""
    out = stream if stream is not None else sys.stdout
    isatty = getattr(out, "isatty", None)
    if isatty is not None and isatty():
        return LiveBoard(out, campaign)
    return LineBoard(out, campaign)


def _clock() -> str:
    return time.strftime("%H:%M:%S")


def _eta(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "--"
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    return time.strftime("%H:%M:%S", time.gmtime(seconds))


def describe(record: dict[str, Any]) -> str:
    """One task's outcome in words: time, platform, speed, simulated ns, or its error."""
    state = record["state"]
    if state == "failed":
        return str(record.get("error") or "failed")
    parts = []
    if record.get("task_time_s") is not None:
        parts.append(f"{record['task_time_s']:.1f} s")
    if record.get("platform"):
        parts.append(str(record["platform"]))
    if record.get("ns_per_day"):
        parts.append(f"{record['ns_per_day']:.3g} ns/day")
    if record.get("simulated_ns") is not None:
        parts.append(f"{record['simulated_ns']:g} ns simulated")
    if record.get("note"):
        parts.append(str(record["note"]))
    return ", ".join(parts)


class LineBoard:
    """One line per state change (not a terminal)."""

    def __init__(self, stream: IO[str], campaign: Any) -> None:
        self.stream, self.campaign = stream, campaign

    def counts(self) -> dict[str, int]:
        records = self.campaign.in_workflow()
        return {s: sum(r["state"] == s for r in records)
                for s in ("finished", "running", "stopped", "failed", "queued")}

    def start(self, n_pending: int) -> None:
        c = self.campaign
        done = len(c.tasks) - n_pending
        where = f" on {c.meta.get('scheduler')}" if n_pending else ""
        self._print(f"sweep {c.workflow.name} -> {c.root}: {len(c.tasks)} tasks, {done} "
                    f"finished before, {n_pending} to run{where}")

    def event(self, record: dict[str, Any]) -> None:
        detail = describe(record) if record["state"] != "running" else record.get("worker", "")
        self._print(f"[{_clock()}] {record['state']:<8} {record['id']}"
                    + (f"  ({detail})" if detail else ""))

    def refresh(self) -> None:
        """Nothing between state changes."""

    def close(self) -> None:
        c = self.counts()
        self._print("sweep done: " + ", ".join(f"{n} {s}" for s, n in c.items())
                    + f"; see {self.campaign.root / 'campaign.json'}")

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


class LiveBoard(LineBoard):
    """A rich live table on a terminal."""

    def __init__(self, stream: IO[str], campaign: Any) -> None:
        super().__init__(stream, campaign)
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream)
        self.events: list[str] = []
        self.live = Live(console=self.console, refresh_per_second=2, transient=False,
                         get_renderable=self._render)

    def start(self, n_pending: int) -> None:
        super().start(n_pending)
        if n_pending:
            self.live.start()

    def event(self, record: dict[str, Any]) -> None:
        if record["state"] in ("finished", "failed", "stopped"):
            self.events = (self.events + [f"[{_clock()}] {record['state']:<8} {record['id']}  "
                                          f"{describe(record)}"])[-MAX_EVENTS:]

    def refresh(self) -> None:
        if self.live.is_started:
            self.live.refresh()

    def close(self) -> None:
        if self.live.is_started:
            self.live.stop()
        for record in self.campaign.in_workflow():
            if record["state"] == "failed":
                self._print(f"failed   {record['id']}: {record.get('error')}")
        super().close()

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text  # plain text: ids and errors are not markup

        c = self.counts()
        head = (f"{self.campaign.workflow.name}: [green]{c['finished']} done[/]  "
                f"[cyan]{c['running']} running[/]  [red]{c['failed']} failed[/]  "
                f"[yellow]{c['stopped']} stopped[/]  {c['queued']} queued")
        table = Table(expand=False, box=None, header_style="bold")
        for column in ("task", "phase", "ns done / total", "ns/day", "ETA"):
            table.add_column(column)
        for record in self.campaign.in_workflow():
            if record["state"] != "running":
                continue
            info = read_progress(self.campaign.root, record["id"]) or {}
            phase = info.get("phase", "")
            if phase == "simulate" and info.get("stage"):
                phase = f"{info['stage']} {info.get('stage_index')}/{info.get('n_stages')}"
            done, total = info.get("ns_done"), info.get("ns_total")
            ns = f"{done:.4g} / {total:.4g}" if done is not None and total else ""
            speed = info.get("ns_per_day")
            table.add_row(Text(record["id"]), Text(str(phase)), ns,
                          f"{speed:.3g}" if speed else "", _eta(info.get("eta_s")))
        return Group(head, table, *(Text(event) for event in self.events))
