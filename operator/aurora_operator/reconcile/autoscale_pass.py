"""The autoscaler's pass for one serverless cluster: observe, decide (``autoscale``), resize in place, Events.

Why a pass of its own (on a 2 s timer, like the backup pass on its own): scaling up must react within
seconds of sustained pressure, faster than the main resync, and it touches nothing the main pass decides
(roles, terms, templates): only the running pods' container resources, through the ``resize`` subresource,
so PostgreSQL is never restarted. The pod keeps its target as an annotation, which the main pass reports in
``status.instances[].targetAcu`` next to the capacity the kubelet reports it actually holds.

What it remembers between passes (``Memory``, in the operator's process): each instance's previous load
report and recent samples. An operator restart forgets them, which only delays the next scale-down by a
minute (it needs a minute of history); the capacities themselves are in the pods.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from aurora_api import capacity, contract
from aurora_api.reports import InstanceReport, LoadReport
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..instances import Instances
from ..kube import Kube
from ..render import names
from . import autoscale, observe

Manifest = dict[str, Any]
ANNOTATION_TARGET = contract.ANNOTATION_TARGET_ACU


@dataclasses.dataclass
class Memory:
    """Per cluster, between passes: last report and recent samples per instance, when each last changed,
    and capacities a node refused (per pod uid: a re-created pod may land on a bigger node)."""

    last: dict[str, LoadReport] = dataclasses.field(default_factory=dict)
    samples: dict[str, tuple[autoscale.Sample, ...]] = dataclasses.field(default_factory=dict)
    changed_at: dict[str, float] = dataclasses.field(default_factory=dict)
    refused: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Result:
    events: list[tuple[str, str, str]]
    """(type, reason, message) for the AuroraCluster."""


@dataclasses.dataclass(frozen=True)
class Look:
    """The instance pods (by instance name, those not being deleted), their managers' URLs and reports."""

    pods: dict[str, Manifest]
    urls: dict[str, str | None]
    reports: dict[str, InstanceReport | None]


async def look(kube: Kube, instances: Instances, c: AuroraCluster) -> Look:
    """One read of the instance pods and their reports, shared by the autoscaler and the pause."""
    labels = {contract.LABEL_CLUSTER: c.metadata.name, contract.LABEL_COMPONENT: contract.COMPONENT_INSTANCE}
    pods = {
        p["metadata"]["labels"].get(contract.LABEL_INSTANCE, ""): p
        for p in await kube.list_objects("v1", "Pod", c.metadata.namespace, labels)
        if not p["metadata"].get("deletionTimestamp")
    }
    urls = {name: observe.pod_url(pod, contract.INSTANCE_HTTP_PORT) for name, pod in pods.items()}
    answers = await asyncio.gather(*(instances.status(u) if u else _none() for u in urls.values()))
    return Look(pods, urls, dict(zip(urls, answers, strict=True)))


async def run(kube: Kube, c: AuroraCluster, seen: Look, memory: Memory, now: float) -> Result:
    """One autoscaling step; nothing while a pause is in progress or in force (``pause_pass`` owns the pods'
    resources then, and a resumed cluster starts its history afresh)."""
    serverless = c.spec.instances.serverless
    if serverless is None:
        return Result([])
    if c.status.pause is not None:
        memory.last.clear()
        memory.samples.clear()
        return Result([])
    namespace = c.metadata.namespace
    pods, reports = seen.pods, seen.reports
    events: list[tuple[str, str, str]] = []
    views = []
    for name, pod in pods.items():
        report = reports.get(name)
        load = report.load if report is not None else None
        if load is not None:
            before = memory.last.get(name)
            memory.last[name] = load
            s = autoscale.sample(before, load, now) if before is not None else None
            kept = memory.samples.get(name, ())
            memory.samples[name] = autoscale.trim((*kept, s) if s else kept, now)
        state, message = autoscale.resize_state(pod)
        uid = pod["metadata"].get("uid", "")
        if state == "Infeasible" and uid not in memory.refused:
            wanted = autoscale.wanted_acu(pod)
            memory.refused[uid] = wanted - capacity.STEP
            events.append(("Warning", "ScaleRefused", f"{name}: {wanted} ACU refused by the node: {message}"))
        ordinal = names.instance_ordinal(c, name)
        views.append(
            autoscale.InstanceView(
                name=name,
                role=report.role if report is not None else "unknown",
                tier=c.spec.instances.tier(ordinal) if ordinal is not None else 15,
                current=autoscale.wanted_acu(pod),
                samples=memory.samples.get(name, ()),
                last_change=memory.changed_at.get(name),
                resizing=state == "InProgress",
                ceiling=memory.refused.get(uid),
            )
        )
    uids = {p["metadata"].get("uid", "") for p in pods.values()}
    memory.refused = {uid: acu for uid, acu in memory.refused.items() if uid in uids}
    for gone in set(memory.last) - set(pods):
        memory.last.pop(gone)
        memory.samples.pop(gone, None)
    decided = autoscale.targets(views, serverless.min_capacity, serverless.max_capacity, now)
    for view in views:
        target = decided.get(view.name)
        if target is None or view.current is None or autoscale.same(target.acu, view.current):
            continue  # nothing new to ask
        if await _resize(kube, namespace, pods[view.name], target.acu):
            memory.changed_at[view.name] = now
            held = autoscale.pod_acu(pods[view.name])
            if held is not None and autoscale.same(target.acu, held):
                message = f"{view.name} stays at {held:g} ACU (the {view.current:g} ACU asked is withdrawn)"
            else:
                verb = "up" if target.acu > view.current else "down"
                message = f"{view.name} {verb} from {view.current:g} to {target.acu:g} ACU"
            events.append(("Normal", "Scaled", f"{message}: {target.reason}"))
    return Result(events)


async def _none() -> None:
    return None


async def _resize(kube: Kube, namespace: str, pod: Manifest, acu: float) -> bool:
    name = pod["metadata"]["name"]
    await kube.patch_metadata("v1", "Pod", namespace, name, {}, {ANNOTATION_TARGET: f"{acu:g}"})
    return await kube.resize_pod(namespace, name, autoscale.CONTAINER, capacity.resources(acu))
