"""The auto-pause pass of a serverless cluster: observe, decide (``pause``), record, then act.

Why beside the autoscaler (same 2 s timer, same read of the pods and reports): both follow the instances'
load, and a resume must be noticed within a pass. The record (``status.pause``) is written under the
cluster's lock on the AuroraCluster as stored now, and **before** anything is done, so a restarted operator
resumes the same pause (or resume) where it stood: every step is idempotent (pause and resume requests,
Service applies, resizes), and the decision depends only on the record and what the instances report.

What it remembers between passes (``Memory``): since when every instance has reported no client while the
cluster ran (``pause.idle_since``). An operator restart starts that clock again, which only delays a pause.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Awaitable, Callable
from typing import Any

from aurora_api import capacity
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..instances import Instances
from ..kube import Kube
from ..render import names, services
from . import autoscale, pause, plan
from .autoscale_pass import Look

Locked = Callable[[Callable[[AuroraCluster], Awaitable[Any]]], Awaitable[Any]]
"""Runs a function on the AuroraCluster as stored now, under the cluster's lock (None if it is gone)."""


@dataclasses.dataclass
class Memory:
    idle_since: float | None = None
    """Operator's monotonic clock when every instance last began reporting no client (None: not idle)."""


@dataclasses.dataclass(frozen=True)
class Result:
    events: list[tuple[str, str, str]]


def blocked(c: AuroraCluster, seen: Look, proxy_ready: bool) -> str | None:
    """Why a pause must not start now, or None."""
    s = c.status
    writer = seen.reports.get(s.writer or "")
    checks = (
        (s.phase != "Ready", f"the cluster is {s.phase}"),
        (s.failover is not None, "a writer change is in progress"),
        (
            s.maintenance is not None and s.maintenance.state in ("Starting", "Rolling"),
            "a rolling update runs",
        ),
        (s.backup is not None and s.backup.running is not None, "a base backup is running"),
        (writer is None or not writer.ready, "the writer is not ready"),
        (not proxy_ready, "the resume proxy is not ready"),
    )
    return next((why for hit, why in checks if hit), None)


async def _proxy_ready(kube: Kube, c: AuroraCluster) -> bool:
    found = await kube.get("apps/v1", "Deployment", c.metadata.namespace, names.proxy(c))
    return bool(found and (found.get("status") or {}).get("readyReplicas"))


async def run(
    kube: Kube,
    instances: Instances,
    c: AuroraCluster,
    seen: Look,
    memory: Memory,
    now: float,
    wall: datetime.datetime,
    locked: Locked,
) -> Result:
    serverless = c.spec.instances.serverless
    timeout = serverless.auto_pause_seconds if serverless is not None else None
    if timeout is None and c.status.pause is None:
        memory.idle_since = None
        return Result([])
    members = [
        pause.Member(name, seen.reports.get(name), pause.requests_paused(pod))
        for name, pod in seen.pods.items()
    ]
    memory.idle_since = pause.idle_since(memory.idle_since, c.status.pause, members, now)
    idle_seconds = now - memory.idle_since if memory.idle_since is not None else 0.0
    ready = await _proxy_ready(kube, c) if timeout is not None else False

    async def record(fresh: AuroraCluster) -> tuple[AuroraCluster, pause.Plan] | None:
        why = blocked(fresh, seen, ready)
        decided = pause.decide(
            fresh.status.pause, timeout, idle_seconds, why, fresh.status.writer, members, wall
        )
        if decided.changed:
            value = decided.record.model_dump(by_alias=True, mode="json") if decided.record else None
            await kube.patch_cluster_status(fresh.metadata.namespace, fresh.metadata.name, {"pause": value})
            fresh = fresh.model_copy(
                update={"status": fresh.status.model_copy(update={"pause": decided.record})}
            )
        return fresh, decided

    done = await locked(record)
    if done is None:
        return Result([])
    fresh, decided = done
    events = [decided.event] if decided.event else []
    if decided.changed and (decided.record is None or decided.record.state == "Pausing"):
        for manifest in (services.writer(fresh), services.readers(fresh)):
            await kube.apply(plan.stamped(manifest))
    refused = await _act(kube, instances, fresh, seen, decided)
    if refused:

        async def cancel(latest: AuroraCluster) -> None:
            if latest.status.pause is not None and latest.status.pause.state == "Pausing":
                again = pause.resuming(wall, f"{', '.join(refused)} woken by a client since judged idle")
                assert again.record is not None and again.event is not None
                value = again.record.model_dump(by_alias=True, mode="json")
                await kube.patch_cluster_status(
                    latest.metadata.namespace, latest.metadata.name, {"pause": value}
                )
                events.append(again.event)

        await locked(cancel)
    return Result(events)


async def _act(kube: Kube, instances: Instances, c: AuroraCluster, seen: Look, p: pause.Plan) -> list[str]:
    """Send the plan's requests and resizes; returns the instances that refused to pause (woken since)."""
    ns = c.metadata.namespace

    async def ask_pause(name: str, wakes: int) -> str | None:
        url = seen.urls.get(name)
        return name if url and await instances.pause(url, wakes) == 409 else None

    async def ask_resume(name: str) -> None:
        url = seen.urls.get(name)
        if url:
            await instances.resume(url)

    async def resize(name: str, paused: bool) -> None:
        pod = seen.pods[name]
        acu = autoscale.wanted_acu(pod)
        wanted = capacity.paused_resources(acu) if paused else capacity.resources(acu)
        await kube.resize_pod(ns, pod["metadata"]["name"], autoscale.CONTAINER, wanted)

    answers = await asyncio.gather(
        *(ask_pause(n, w) for n, w in p.pause),
        *(ask_resume(n) for n in p.resume),
        *(resize(n, True) for n in p.shrink if n in seen.pods),
        *(resize(n, False) for n in p.grow if n in seen.pods),
    )
    return [a for a in answers if isinstance(a, str)]
