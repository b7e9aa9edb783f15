"""The pure report: status (phase, conditions, topology, quorum health) and the Events worth emitting.

Why pure: phase rules are the part users read first; they are tested table-style without a cluster. The
phase is Ready when the writer, every desired reader and all six storage nodes are ready; Degraded when a
cluster that was Ready still has a ready writer or lost something; Provisioning until it is first Ready.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Literal

from aurora_api import contract
from aurora_api.v1alpha1 import cluster as api
from aurora_api.v1alpha1.cluster import AuroraCluster
from aurora_api.v1alpha1.common import Condition

from ..render import data_api, names
from ..render.storage import ZONE_INDEX_LABEL
from . import autoscale, conditions, pause
from .backups import CONDITION as BACKUP_CONDITION
from .checks import CAPACITY, CERTIFICATE, SECRETS, ZONES, Finding
from .failover import Decision
from .observed import Manifest, Observed, pod_ready
from .plan import Plan
from .restore import CONDITION as RESTORE_CONDITION

PROBLEMS = frozenset({ZONES, SECRETS, CAPACITY, CERTIFICATE, "Reconciled"})
"""Condition types whose failure is a user-fixable problem rather than progress."""


@dataclasses.dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def instance_statuses(c: AuroraCluster, observed: Observed, plan: Plan) -> list[api.InstanceStatus]:
    """One entry per wanted instance, as its instance manager reports it (role ``unknown`` when silent)."""
    pods = {pod["metadata"]["name"]: pod for pod in observed.pods}
    found = []
    for ordinal in plan.ordinals:
        name = names.instance(c, ordinal)
        pod: Manifest = pods.get(names.instance_pod(c, ordinal), {})
        node = pod.get("spec", {}).get("nodeName", "")
        rep = observed.instances.get(name)
        found.append(
            api.InstanceStatus(
                name=name,
                role=rep.role if rep else "unknown",
                ready=bool(pod) and pod_ready(pod) and bool(rep and rep.ready),
                zone=observed.node_zones.get(node, ""),
                node=node,
                promotion_tier=c.spec.instances.tier(ordinal),
                term=rep.term if rep else None,
                timeline=rep.timeline if rep else None,
                received_lsn=(rep.flushed_lsn if rep.role == "writer" else rep.received_lsn) if rep else None,
                replayed_lsn=rep.replayed_lsn if rep else None,
                lag_bytes=rep.lag_bytes if rep else None,
                decision=rep.last_decision[:300] if rep else "no answer from the instance manager",
                **(_capacity(pod) if c.spec.instances.serverless is not None and pod else {}),
            )
        )
    return found


def _capacity(pod: Manifest) -> dict[str, Any]:
    """Serverless: what the pod holds (as the kubelet applied it; 0 once a pause released its requests),
    the target, a resize under way."""
    target = pod["metadata"].get("annotations", {}).get(contract.ANNOTATION_TARGET_ACU)
    state, message = autoscale.resize_state(pod)
    released = pause.requests_paused(pod) and not state
    return {
        "acu": 0.0 if released else autoscale.pod_acu(pod),
        "target_acu": float(target) if target else None,
        "resize": f"{state}: {message}"[:300] if state else "",
    }


def storage_status(c: AuroraCluster, observed: Observed, term: int) -> api.StorageStatus:
    """Quorum health from the nodes' own reports: a node counts when it streams from the ``term`` writer."""
    per_zone = [0] * contract.ZONES
    pods = {pod["metadata"]["name"]: pod for pod in observed.pods}
    streaming, repairing = 0, []
    for name, rep in sorted(observed.storage.items()):
        if rep is None:
            continue
        if rep.state == "repairing":
            repairing.append(name)
        if not (rep.streaming and rep.term == term):
            continue
        streaming += 1
        index = pods.get(name, {}).get("metadata", {}).get("labels", {}).get(ZONE_INDEX_LABEL, "")
        if index.isdigit() and int(index) < contract.ZONES:
            per_zone[int(index)] += 1
    reachable = sum(1 for rep in observed.storage.values() if rep is not None)
    summary = f"{streaming}/{contract.STORAGE_NODES}"
    if repairing:
        summary += f", repairing {', '.join(repairing)}"
    return api.StorageStatus(
        nodes=contract.STORAGE_NODES,
        nodes_ready=streaming,
        reachable=reachable,
        write_quorum=streaming >= contract.WRITE_QUORUM,
        read_quorum=reachable >= contract.READ_QUORUM,
        repairing=repairing,
        summary=summary,
        zones=[
            api.ZoneStatus(zone=z, ready=n)
            for z, n in zip(c.spec.storage.zones.values, per_zone, strict=True)
        ],
    )


def foreign_systems(observed: Observed, system: str | None) -> list[str]:
    """Instances reporting a system identifier other than the cluster's."""
    if not system:
        return []
    return sorted(
        name
        for name, rep in observed.instances.items()
        if rep is not None and rep.system_identifier and rep.system_identifier != system
    )


def phase_of(
    c: AuroraCluster, writer_ready: bool, readers_ok: bool, storage: api.StorageStatus, consistent: bool
) -> api.Phase:
    if c.metadata.deletion_timestamp:
        return "Deleting"
    if c.status.pause is not None:
        return "Paused"  # from the start of a pause until the writer serves again after a resume
    if writer_ready and readers_ok and consistent and storage.nodes_ready == contract.STORAGE_NODES:
        return "Ready"
    if c.status.phase in ("Ready", "Degraded"):
        return "Degraded"
    return "Provisioning"


def _writer_condition(c: AuroraCluster, writer: api.InstanceStatus | None, decision: Decision) -> Condition:
    gen = c.metadata.generation
    name = writer.name if writer else decision.writer
    if decision.blocked and (c.status.failover is not None or not (writer and writer.ready)):
        return conditions.make("WriterAvailable", False, "FailoverBlocked", decision.sentence, gen)
    if c.status.failover is not None:
        return conditions.make("WriterAvailable", False, "FailoverInProgress", decision.sentence, gen)
    if writer and writer.ready and writer.role == "writer":
        return conditions.make("WriterAvailable", True, "WriterReady", f"writer {name} is ready", gen)
    return conditions.make("WriterAvailable", False, "WriterNotReady", f"writer {name} is not ready", gen)


def _conditions(
    c: AuroraCluster,
    phase: api.Phase,
    instances: list[api.InstanceStatus],
    writer_name: str,
    storage: api.StorageStatus,
    findings: list[Finding],
    errors: list[str],
    decision: Decision,
    foreign: list[str],
) -> list[Condition]:
    gen = c.metadata.generation
    writer = next((i for i in instances if i.name == writer_name), None)
    readers = [i for i in instances if i.name != writer_name]
    ready_readers = sum(i.ready for i in readers)
    quorum_reason = (
        "AllNodesReady"
        if storage.nodes_ready == storage.nodes
        else ("WriteQuorum" if storage.write_quorum else "NoWriteQuorum")
    )
    quorum_msg = (
        f"{storage.summary} storage nodes streaming from the writer at term {max(c.status.term, 1)}, "
        f"{storage.reachable} answering (write quorum {contract.WRITE_QUORUM}, "
        f"read quorum {contract.READ_QUORUM})"
    )
    found = [
        conditions.make("Ready", phase == "Ready", phase, f"cluster is {phase}", gen),
        conditions.make("StorageQuorum", storage.write_quorum, quorum_reason, quorum_msg, gen),
        _writer_condition(c, writer, decision),
        conditions.make(
            "ReadersReady",
            ready_readers == len(readers),
            "AllReadersReady" if ready_readers == len(readers) else "ReadersNotReady",
            f"{ready_readers}/{len(readers)} readers ready",
            gen,
        ),
    ]
    checked = [
        (ZONES, "AllZonesHaveNodes", "every storage zone has a schedulable node"),
        (SECRETS, "AllSecretsFound", "every referenced Secret exists"),
    ]
    if c.spec.instances.serverless is not None:
        checked.append((CAPACITY, "InRange", "the capacity range fits the nodes"))
    if c.spec.tls.enabled and c.spec.tls.secret_name:
        checked.append((CERTIFICATE, "Usable", f"the certificate in {c.spec.tls.secret_name!r} is usable"))
    for kind, ok_reason, ok_message in checked:
        bad = [f for f in findings if f.condition == kind]
        if bad:
            found.append(conditions.make(kind, False, bad[0].reason, "; ".join(f.message for f in bad), gen))
        else:
            found.append(conditions.make(kind, True, ok_reason, ok_message, gen))
    system = c.status.system_identifier or "(not known yet)"
    if foreign:
        message = f"{', '.join(foreign)} serve a system other than the cluster's {system}"
        found.append(conditions.make("SystemConsistent", False, "ForeignSystem", message, gen))
    else:
        message = f"every instance that answered serves system {system}"
        found.append(conditions.make("SystemConsistent", True, "SameSystem", message, gen))
    if errors:
        found.append(conditions.make("Reconciled", False, "ApplyFailed", "; ".join(errors)[:2000], gen))
    else:
        found.append(conditions.make("Reconciled", True, "Applied", "all objects match the spec", gen))
    return found


OTHER_PASSES = frozenset({BACKUP_CONDITION, RESTORE_CONDITION})
"""Conditions another pass owns (the backup pass): carried over unchanged."""


def report(
    c: AuroraCluster,
    observed: Observed,
    plan: Plan,
    decision: Decision,
    findings: list[Finding],
    errors: list[str],
    now: datetime.datetime,
) -> tuple[api.AuroraClusterStatus, list[Event]]:
    """The new status and the Events for what changed since ``c.status``.

    ``c.status`` already carries this pass's recorded writer change (started or completed); everything
    else here is what the pods reported in this pass.
    """
    term = max(c.status.term, 1)
    writer_name = c.status.writer or decision.writer
    instances = instance_statuses(c, observed, plan)
    storage = storage_status(c, observed, term)
    writer_rep = observed.instances.get(writer_name)
    writes = writer_rep is not None and writer_rep.role == "writer" and writer_rep.term == term
    writer_ready = bool(writes and writer_rep and writer_rep.ready) and c.status.failover is None
    system = c.status.system_identifier or (writer_rep.system_identifier if writes and writer_rep else None)
    c_known = c.model_copy(update={"status": c.status.model_copy(update={"system_identifier": system})})
    foreign = foreign_systems(observed, system)
    readers = [i for i in instances if i.name != writer_name]
    readers_ready = sum(i.ready and i.role == "reader" for i in readers)
    phase = phase_of(c, writer_ready, readers_ready >= c.spec.instances.readers, storage, not foreign)
    current = _conditions(
        c_known, phase, instances, writer_name, storage, findings, errors, decision, foreign
    )
    serverless = c.spec.instances.serverless
    status = api.AuroraClusterStatus(
        phase=phase,
        observed_generation=c.metadata.generation,
        conditions=conditions.merge(c.status.conditions, current, now)
        + [cond for cond in c.status.conditions if cond.type in OTHER_PASSES],
        writer=writer_name,
        target_writer=c.status.target_writer,
        term=term,
        timeline=(
            writer_rep.timeline if writes and writer_rep and writer_rep.timeline else c.status.timeline
        ),
        system_identifier=system,
        failover=c.status.failover,
        last_failover=c.status.last_failover,
        instances=instances,
        readers=c.spec.instances.readers,
        readers_ready=readers_ready,
        acu=None if serverless is None else next((i.acu for i in instances if i.name == writer_name), None),
        endpoints=api.Endpoints(
            writer=names.endpoint(c, names.writer_service(c)),
            reader=names.endpoint(c, names.reader_service(c)),
            data_api=data_api.url(c) if data_api.wanted(c) else "",
        ),
        storage=storage,
        secrets=api.SecretsStatus(
            **{a: names.secret(c, a) for a in names.ACCOUNTS},
            data_api_keys=names.data_api_keys(c) if data_api.wanted(c) else "",
        ),
        backup=c.status.backup,
        restore=c.status.restore,
        pause=c.status.pause,  # written by the pause pass
    )
    known = {cond.type for cond in c.status.conditions}
    events = [
        Event("Normal" if cond.status == "True" else "Warning", cond.reason, f"{cond.type}: {cond.message}")
        for cond in conditions.transitions(c.status.conditions, current)
        # A new cluster starts with everything "not ready": only real problems are worth an Event then. A
        # paused cluster's instances are stopped on purpose: the pause's own Events say so, not Warnings.
        if cond.type != "Ready"
        and (cond.type in known or (cond.status != "True" and cond.type in PROBLEMS))
        and not (c.status.pause is not None and cond.status != "True")
    ]
    if phase != c.status.phase:
        message = f"phase {c.status.phase or 'None'} -> {phase}"
        if (
            phase == "Ready"
            and c.metadata.creation_timestamp is not None
            and c.status.phase == "Provisioning"
        ):
            message += f" ({(now - c.metadata.creation_timestamp).total_seconds():.0f}s after creation)"
        severity: Literal["Normal", "Warning"] = (
            "Normal" if phase in ("Ready", "Provisioning", "Paused") else "Warning"
        )
        events.append(Event(severity, phase, message))
    return status, events
