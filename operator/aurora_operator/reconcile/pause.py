"""The pure auto-pause decision of a serverless cluster with ``minCapacity: 0``.

Why pure: the order of a pause is what keeps it safe, and each step is a unit test on literal reports:

1. **Pausing** (recorded first, with each instance's ``wakes`` as seen idle): after ``secondsUntilAutoPause``
   with no client connection on any instance, and only while nothing else is going on (no writer change,
   rolling update or base backup; every instance answering and the writer ready; the proxy ready). The
   cluster and reader endpoints switch to the resume proxy (``render.services``).
2. After ``SWITCH_SECONDS`` (so new clients reach the proxy, not an instance about to stop) each instance is
   asked to pause **with the recorded wakes**: one woken since by a client through the proxy refuses, and a
   client that connected directly keeps its PostgreSQL up (the manager stops it only with no client). Either
   cancels the pause (Resuming). A writer stops with a clean shutdown: its last WAL reaches the storage nodes
   like any other, so no acknowledged commit depends on the stopped instance.
3. **Paused** once every instance reports PostgreSQL stopped: the pods' requests drop to what a manager
   needs (``capacity.paused_resources``), so the node's compute is free for others.
4. **Resuming** as soon as any instance reports it was woken (the proxy woke it for a client) or auto-pause
   was turned off: every instance is woken and its requests restored; the record is cleared (and the
   endpoints lead to the instances again) once the writer serves at its full requests.

It must not perform I/O or read the clock.
"""

from __future__ import annotations

import dataclasses
import datetime

from aurora_api import capacity
from aurora_api.reports import InstanceReport
from aurora_api.v1alpha1.cluster import PauseStatus
from lightkube.utils.quantity import parse_quantity

from .autoscale import CONTAINER, Manifest

SWITCH_SECONDS = 3.0
"""Endpoints lead to the proxy this long before instances are asked to stop (Service changes reach the
nodes' proxies within about a second)."""
GIVE_UP_SECONDS = 60.0
"""A pause whose instances do not all stop within this long is abandoned (clients keep connecting
directly)."""


@dataclasses.dataclass(frozen=True)
class Member:
    """One compute instance as this pass sees it."""

    name: str
    report: InstanceReport | None
    requests_paused: bool
    """The pod asks only the paused requests (its compute is released)."""

    @property
    def connections(self) -> int | None:
        load = self.report.load if self.report is not None else None
        return load.connections if load is not None else None

    @property
    def stopped(self) -> bool:
        return self.report is not None and self.report.paused and not self.report.postmaster_running


@dataclasses.dataclass(frozen=True)
class Plan:
    record: PauseStatus | None
    """The pause record after this pass (None: running)."""
    changed: bool = False
    """``record`` differs from the one read: write it (before anything else is done)."""
    pause: tuple[tuple[str, int], ...] = ()
    """(instance, wakes) to ask to pause."""
    resume: tuple[str, ...] = ()
    shrink: tuple[str, ...] = ()
    """Pods whose requests drop to the paused ones."""
    grow: tuple[str, ...] = ()
    """Pods whose requests are restored."""
    event: tuple[str, str, str] | None = None


def requests_paused(pod: Manifest) -> bool:
    for c in pod.get("spec", {}).get("containers") or []:
        if c.get("name") == CONTAINER:
            memory = ((c.get("resources") or {}).get("requests") or {}).get("memory")
            return memory is not None and parse_quantity(memory) == capacity.PAUSED_MEMORY_MIB * capacity.MIB
    return False


def idle(members: list[Member]) -> bool:
    """Every instance answers and reports no client connection."""
    return bool(members) and all(m.connections == 0 for m in members)


def idle_since(
    since: float | None, record: PauseStatus | None, members: list[Member], now: float
) -> float | None:
    """When the idle time that may start a pause began (None: not idle), on the caller's monotonic clock.

    The clock runs only while the cluster runs (no pause record): a client that a pause or resume served can
    be gone before any pass sees its connection, and without the restart a resumed cluster would count its
    idle time from before the pause and start pausing again at once.
    """
    if record is not None or not idle(members):
        return None
    return since if since is not None else now


def _record(state: str, now: datetime.datetime, message: str, wakes: dict[str, int]) -> PauseStatus:
    return PauseStatus.model_validate(
        {"state": state, "since": now, "message": message[:1024], "wakes": wakes}
    )


def decide(
    record: PauseStatus | None,
    timeout: int | None,
    idle_seconds: float,
    blocked: str | None,
    writer: str | None,
    members: list[Member],
    now: datetime.datetime,
) -> Plan:
    """``timeout``: the spec's idle seconds (None: auto-pause off); ``idle_seconds``: how long every instance
    has reported no client; ``blocked``: why a pause must not start now (None: nothing)."""
    if record is None:
        if timeout is None or blocked is not None or idle_seconds < timeout:
            return Plan(None)
        message = f"no client connection for {idle_seconds:.0f}s: endpoints switched to the resume proxy"
        wakes = {m.name: m.report.wakes for m in members if m.report is not None}
        return Plan(_record("Pausing", now, message, wakes), True, event=("Normal", "Pausing", message))
    elapsed = (now - record.since).total_seconds()
    if record.state == "Pausing":
        return _pausing(record, timeout, elapsed, members, now)
    if record.state == "Paused":
        woken = [m.name for m in members if m.report is not None and not m.report.paused]
        if timeout is None or woken:
            why = "auto-pause turned off" if timeout is None else f"{', '.join(woken)} woken by a client"
            return resuming(now, why)
        shrink = tuple(m.name for m in members if m.stopped and not m.requests_paused)
        return Plan(record, shrink=shrink)
    return _resume_step(record, elapsed, writer, members)


def resuming(now: datetime.datetime, why: str) -> Plan:
    """Wake everything (a client came, or auto-pause was turned off)."""
    message = f"resuming: {why}"
    return Plan(_record("Resuming", now, message, {}), True, event=("Normal", "Resuming", message))


def _pausing(
    record: PauseStatus, timeout: int | None, elapsed: float, members: list[Member], now: datetime.datetime
) -> Plan:
    busy = [f"{m.name} has {m.connections} client connections" for m in members if (m.connections or 0) > 0]
    woken = [
        m.name
        for m in members
        if m.report is not None and m.report.wakes != record.wakes.get(m.name, m.report.wakes)
    ]
    if timeout is None:
        return resuming(now, "auto-pause turned off")
    if busy or woken:
        return resuming(now, "; ".join(busy + [f"{n} woken by a client" for n in woken]))
    if elapsed > GIVE_UP_SECONDS:
        return resuming(now, f"not every instance stopped within {GIVE_UP_SECONDS:.0f}s")
    if elapsed < SWITCH_SECONDS:
        return Plan(record)
    if all(m.stopped for m in members):
        message = f"{len(members)} instances stopped; their compute is released"
        shrink = tuple(m.name for m in members if not m.requests_paused)
        paused = _record("Paused", now, message, record.wakes)
        return Plan(paused, True, shrink=shrink, event=("Normal", "Paused", message))
    ask = tuple(
        (m.name, record.wakes[m.name])
        for m in members
        if m.report is not None and not m.report.paused and m.name in record.wakes
    )
    return Plan(record, pause=ask)


def _resume_step(record: PauseStatus, elapsed: float, writer: str | None, members: list[Member]) -> Plan:
    resume = tuple(m.name for m in members if m.report is not None and m.report.paused)
    grow = tuple(m.name for m in members if m.requests_paused)
    serving = next((m for m in members if m.name == writer and m.report is not None and m.report.ready), None)
    if serving is not None and not resume and not grow:
        message = f"resumed: the writer serves {elapsed:.1f}s after the resume began"
        return Plan(None, True, event=("Normal", "Resumed", message))
    return Plan(record, resume=resume, grow=grow)
