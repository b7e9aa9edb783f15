"""A change of writer announced by Events exactly once, derived from the status that records it.

Why not an Event posted by the pass that starts or completes the change, like the other Events: the status
write and the Event are two API calls, and an operator stopped between them loses the Event (kopf cancels
its poster, unposted Events and all, when it exits; the container of an operator pod force-deleted with
``--grace-period=0`` ran on for 1.3-2.5 s on the test bed, time enough to write a completed failover to
status). CI's e2e test of an operator killed in the middle of a failover once found the failover
completed with no ``FailoverCompleted`` Event.

So these Events are rendered from the status (the change in progress, the last completed one) under names
made of the cluster's uid, the change's kind, term and phase. Every pass after the status write may create
them: the API server keeps the first and answers 409 to the rest, so a restarted operator posts what its
predecessor did not, and never a second copy.
"""

from __future__ import annotations

import datetime
from typing import Literal

from aurora_api.v1alpha1 import cluster as api
from aurora_api.v1alpha1.cluster import AuroraCluster

from .observed import Manifest

FRESH = datetime.timedelta(minutes=15)
"""Only changes this recent are announced. The API server forgets Events after an hour (its default
``--event-ttl``); a change announced again after that would read as news. The gap this covers (a status
written, the operator stopped before the Event) lasts as long as an operator restart: seconds."""


def _timestamp(at: datetime.datetime) -> str:
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(
    c: AuroraCluster,
    change: api.WriterChange,
    phase: Literal["started", "completed"],
    type_: Literal["Normal", "Warning"],
    message: str,
    at: datetime.datetime,
    component: str,
) -> Manifest:
    meta = c.metadata
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta.name}.{meta.uid[:8]}.{change.kind}-{change.term}-{phase}",
            "namespace": meta.namespace,
        },
        "involvedObject": {
            "apiVersion": c.api_version,
            "kind": c.kind,
            "name": meta.name,
            "namespace": meta.namespace,
            "uid": meta.uid,
        },
        "type": type_,
        "reason": f"{change.kind.capitalize()}{phase.capitalize()}",
        "message": message[:1024],
        "firstTimestamp": _timestamp(at),
        "lastTimestamp": _timestamp(at),
        "count": 1,
        "source": {"component": component},
    }


def _because(change: api.WriterChange) -> str:
    return f"; {change.reason}" if change.reason else ""


def writer_changes(
    c: AuroraCluster, status: api.AuroraClusterStatus, now: datetime.datetime, component: str
) -> list[Manifest]:
    """The Events of the writer change in ``status`` (as just written) and of the last completed one."""
    found: list[Manifest] = []
    running = status.failover
    if running is not None and now - running.started_at <= FRESH:
        severity: Literal["Normal", "Warning"] = "Normal" if running.kind == "switchover" else "Warning"
        message = (
            f"{running.kind}: promoting {running.to} at term {running.term} "
            f"(writer was {running.from_writer or 'none'}{_because(running)})"
        )
        found.append(_event(c, running, "started", severity, message, running.started_at, component))
    last = status.last_failover
    if last is not None and last.completed_at is not None and now - last.completed_at <= FRESH:
        message = (
            f"{last.kind} to {last.to} completed at term {last.term}, "
            f"{last.seconds}s after the decision (writer was {last.from_writer or 'none'}{_because(last)})"
        )
        found.append(_event(c, last, "completed", "Normal", message, last.completed_at, component))
    return found
