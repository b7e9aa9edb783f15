"""The pure report: status (phase, conditions, topology, quorum health) and the Events worth emitting.

Why pure: phase rules are the part users read first; they are tested table-style without a cluster. The
phase is Ready when the writer, every desired reader and all six storage nodes are ready; Degraded when a
cluster that was Ready still has a ready writer or lost something; Provisioning until it is first Ready.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Literal

from aurora_api import contract
from aurora_api.v1alpha1 import cluster as api
from aurora_api.v1alpha1.cluster import AuroraCluster
from aurora_api.v1alpha1.common import Condition

from ..render import names
from ..render.storage import ZONE_INDEX_LABEL
from . import conditions
from .checks import SECRETS, ZONES, Finding
from .observed import Manifest, Observed, pod_ready
from .plan import Plan

PROBLEMS = frozenset({ZONES, SECRETS, "Reconciled"})
"""Condition types whose failure is a user-fixable problem rather than progress."""


@dataclasses.dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def instance_statuses(c: AuroraCluster, observed: Observed, plan: Plan) -> list[api.InstanceStatus]:
    pods = {pod["metadata"]["name"]: pod for pod in observed.pods}
    found = []
    for ordinal in plan.ordinals:
        pod: Manifest = pods.get(names.instance_pod(c, ordinal), {})
        node = pod.get("spec", {}).get("nodeName", "")
        found.append(
            api.InstanceStatus(
                name=names.instance(c, ordinal),
                role="writer" if ordinal == plan.writer else "reader",
                ready=bool(pod) and pod_ready(pod),
                zone=observed.node_zones.get(node, ""),
                node=node,
                promotion_tier=c.spec.instances.tier(ordinal),
            )
        )
    return found


def storage_status(c: AuroraCluster, observed: Observed) -> api.StorageStatus:
    per_zone = [0] * contract.ZONES
    for pod in observed.pods:
        labels = pod["metadata"].get("labels", {})
        if labels.get(contract.LABEL_COMPONENT) != contract.COMPONENT_STORAGE or not pod_ready(pod):
            continue
        index = labels.get(ZONE_INDEX_LABEL, "")
        if index.isdigit() and int(index) < contract.ZONES:
            per_zone[int(index)] += 1
    ready = sum(per_zone)
    return api.StorageStatus(
        nodes=contract.STORAGE_NODES,
        nodes_ready=ready,
        write_quorum=ready >= contract.WRITE_QUORUM,
        read_quorum=ready >= contract.READ_QUORUM,
        summary=f"{ready}/{contract.STORAGE_NODES}",
        zones=[
            api.ZoneStatus(zone=z, ready=n)
            for z, n in zip(c.spec.storage.zones.values, per_zone, strict=True)
        ],
    )


def phase_of(c: AuroraCluster, writer_ready: bool, readers_ok: bool, storage: api.StorageStatus) -> api.Phase:
    if c.metadata.deletion_timestamp:
        return "Deleting"
    if writer_ready and readers_ok and storage.nodes_ready == contract.STORAGE_NODES:
        return "Ready"
    if c.status.phase in ("Ready", "Degraded"):
        return "Degraded"
    return "Provisioning"


def _conditions(
    c: AuroraCluster,
    phase: api.Phase,
    instances: list[api.InstanceStatus],
    storage: api.StorageStatus,
    findings: list[Finding],
    errors: list[str],
) -> list[Condition]:
    gen = c.metadata.generation
    writer = next((i for i in instances if i.role == "writer"), None)
    readers = [i for i in instances if i.role == "reader"]
    ready_readers = sum(i.ready for i in readers)
    quorum_reason = (
        "AllNodesReady"
        if storage.nodes_ready == storage.nodes
        else ("WriteQuorum" if storage.write_quorum else "NoWriteQuorum")
    )
    quorum_msg = (
        f"{storage.summary} storage nodes ready (write quorum {contract.WRITE_QUORUM}, "
        f"read quorum {contract.READ_QUORUM})"
    )
    found = [
        conditions.make("Ready", phase == "Ready", phase, f"cluster is {phase}", gen),
        conditions.make("StorageQuorum", storage.write_quorum, quorum_reason, quorum_msg, gen),
        conditions.make(
            "WriterAvailable",
            bool(writer and writer.ready),
            "WriterReady" if writer and writer.ready else "WriterNotReady",
            f"writer {writer.name if writer else '-'} is "
            + ("ready" if writer and writer.ready else "not ready"),
            gen,
        ),
        conditions.make(
            "ReadersReady",
            ready_readers == len(readers),
            "AllReadersReady" if ready_readers == len(readers) else "ReadersNotReady",
            f"{ready_readers}/{len(readers)} readers ready",
            gen,
        ),
    ]
    for kind, ok_reason, ok_message in (
        (ZONES, "AllZonesHaveNodes", "every storage zone has a schedulable node"),
        (SECRETS, "AllSecretsFound", "every referenced Secret exists"),
    ):
        bad = [f for f in findings if f.condition == kind]
        if bad:
            found.append(conditions.make(kind, False, bad[0].reason, "; ".join(f.message for f in bad), gen))
        else:
            found.append(conditions.make(kind, True, ok_reason, ok_message, gen))
    if errors:
        found.append(conditions.make("Reconciled", False, "ApplyFailed", "; ".join(errors)[:2000], gen))
    else:
        found.append(conditions.make("Reconciled", True, "Applied", "all objects match the spec", gen))
    return found


def report(
    c: AuroraCluster,
    observed: Observed,
    plan: Plan,
    findings: list[Finding],
    errors: list[str],
    now: datetime.datetime,
) -> tuple[api.AuroraClusterStatus, list[Event]]:
    """The new status and the Events for what changed since ``c.status``."""
    instances = instance_statuses(c, observed, plan)
    storage = storage_status(c, observed)
    writer = next(i for i in instances if i.role == "writer")
    readers = [i for i in instances if i.role == "reader"]
    readers_ready = sum(i.ready for i in readers)
    phase = phase_of(c, writer.ready, readers_ready >= c.spec.instances.readers, storage)
    current = _conditions(c, phase, instances, storage, findings, errors)
    serverless = c.spec.instances.serverless
    status = api.AuroraClusterStatus(
        phase=phase,
        observed_generation=c.metadata.generation,
        conditions=conditions.merge(c.status.conditions, current, now),
        writer=writer.name,
        target_writer=c.status.target_writer,
        term=max(c.status.term, 1),
        timeline=max(c.status.timeline, 1),
        instances=instances,
        readers=c.spec.instances.readers,
        readers_ready=readers_ready,
        acu=None if serverless is None else (c.status.acu or serverless.min_capacity),
        endpoints=api.Endpoints(
            writer=names.endpoint(c, names.writer_service(c)),
            reader=names.endpoint(c, names.reader_service(c)),
        ),
        storage=storage,
        secrets=api.SecretsStatus(**{a: names.secret(c, a) for a in names.ACCOUNTS}),
    )
    known = {cond.type for cond in c.status.conditions}
    events = [
        Event("Normal" if cond.status == "True" else "Warning", cond.reason, f"{cond.type}: {cond.message}")
        for cond in conditions.transitions(c.status.conditions, current)
        # A new cluster starts with everything "not ready": only real problems are worth an Event then.
        if cond.type != "Ready" and (cond.type in known or (cond.status != "True" and cond.type in PROBLEMS))
    ]
    if phase != c.status.phase:
        message = f"phase {c.status.phase or 'None'} -> {phase}"
        if (
            phase == "Ready"
            and c.metadata.creation_timestamp is not None
            and c.status.phase == "Provisioning"
        ):
            message += f" ({(now - c.metadata.creation_timestamp).total_seconds():.0f}s after creation)"
        events.append(Event("Normal" if phase in ("Ready", "Provisioning") else "Warning", phase, message))
    return status, events
