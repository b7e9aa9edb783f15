"""Status and Events: phase rules, quorum health, conditions with stable transition times."""

from __future__ import annotations

import copy
import dataclasses
import datetime
from typing import Any

from aurora_api import contract
from aurora_api.reports import InstanceReport, StorageReport
from aurora_api.v1alpha1.cluster import AuroraCluster
from aurora_operator.reconcile import checks, failover, plan, report
from aurora_operator.reconcile.observed import Manifest, Observed
from aurora_operator.render import names, storage
from aurora_operator.settings import Settings

from . import factories

NOW = datetime.datetime(2026, 11, 27, 4, 0, tzinfo=datetime.UTC)
LABELS = {contract.LABEL_CLUSTER: "demo"}


def world(c: AuroraCluster, storage_ready: int = 6, writer: bool = True, readers_ready: int = 2) -> Observed:
    """Pods plus what their processes report: ``storage_ready`` nodes stream at term 1, the writer and
    ``readers_ready`` readers are ready."""
    pods: list[Manifest] = []
    nodes: dict[str, StorageReport | None] = {}
    for i, pod_name in enumerate(names.storage_pods(c)):
        labels = LABELS | {contract.LABEL_COMPONENT: "storage", storage.ZONE_INDEX_LABEL: str(i // 2)}
        pods.append(factories.pod(pod_name, labels, ready=i < storage_ready))
        streaming = i < storage_ready
        nodes[pod_name] = StorageReport(
            term=1, streaming=streaming, state="streaming" if streaming else "idle"
        )
    reports: dict[str, InstanceReport | None] = {}
    for ordinal in range(c.spec.instances.readers + 1):
        ready = writer if ordinal == 0 else ordinal <= readers_ready
        labels = LABELS | {contract.LABEL_COMPONENT: "instance"}
        pods.append(factories.pod(names.instance_pod(c, ordinal), labels, ready=ready, node="node-zone-b"))
        reports[names.instance(c, ordinal)] = InstanceReport(
            role="writer" if ordinal == 0 else "reader",
            term=1,
            timeline=1,
            ready=ready,
            system_identifier="7",
            postmaster_running=True,
        )
    return Observed(
        pods=tuple(pods),
        node_zones={f"node-{z}": z for z in factories.ZONES},
        instances=reports,
        storage=nodes,
    )


def run(
    c: AuroraCluster, observed: Observed, errors: list[str] | None = None
) -> tuple[Any, list[report.Event]]:
    decided = plan.plan(c, Settings(), observed, lambda: "pw")
    decision = failover.decide(c, observed, NOW)
    findings = checks.all_findings(c, observed, NOW)
    return report.report(c, observed, decided, decision, findings, errors or [], NOW)


def cond(status: Any, type_: str) -> Any:
    return next(c for c in status.conditions if c.type == type_)


def test_all_ready_is_ready_with_topology() -> None:
    c = factories.cluster(creationTimestamp="2026-11-27T03:59:00Z", status={"phase": "Provisioning"})
    status, events = run(c, world(c))
    assert status.phase == "Ready"
    assert status.writer == "demo-instance-0" and status.term == 1 and status.timeline == 1
    assert status.system_identifier == "7"  # recorded from the writer's own report
    assert status.readers_ready == 2 and status.readers == 2
    assert status.storage.summary == "6/6" and status.storage.write_quorum and status.storage.read_quorum
    assert [z.ready for z in status.storage.zones] == [2, 2, 2]
    assert status.endpoints.writer == "demo.db.svc:5432" and status.endpoints.reader == "demo-ro.db.svc:5432"
    assert status.instances[1].zone == "zone-b" and status.instances[1].role == "reader"
    assert cond(status, "Ready").status == "True"
    assert cond(status, "Ready").observed_generation == 1
    assert report.Event("Normal", "Ready", "phase Provisioning -> Ready (60s after creation)") in events


def test_new_cluster_is_provisioning_without_noise() -> None:
    c = factories.cluster()
    status, events = run(c, Observed(node_zones={f"node-{z}": z for z in factories.ZONES}))
    assert status.phase == "Provisioning"
    assert cond(status, "StorageQuorum").reason == "NoWriteQuorum"
    assert [e.reason for e in events] == ["Provisioning"]


def test_lost_storage_nodes_degrade_but_quorum_is_reported() -> None:
    c = factories.cluster(status={"phase": "Ready"})
    status, _ = run(c, world(c, storage_ready=4))
    assert status.phase == "Degraded"
    assert cond(status, "StorageQuorum").status == "True"
    assert cond(status, "StorageQuorum").reason == "WriteQuorum"
    status, _ = run(c, world(c, storage_ready=3))
    assert cond(status, "StorageQuorum").status == "False"
    assert status.storage.read_quorum and not status.storage.write_quorum


def test_missing_zone_and_secret_become_conditions_and_warnings() -> None:
    spec = {
        "backup": {
            "objectStore": {"endpoint": "http://m:9000", "bucket": "bkt", "credentialsSecret": {"name": "s3"}}
        }
    }
    c = factories.cluster(spec)
    observed = Observed(node_zones={"node-a": "zone-a", "node-b": "zone-b"})
    status, events = run(c, observed)
    zones = cond(status, "ZonesAvailable")
    assert (zones.status, zones.reason) == ("False", "NoNodesInZone")
    assert "topology.kubernetes.io/zone=zone-c" in zones.message and "demo-storage-2-4" in zones.message
    secrets = cond(status, "SecretsAvailable")
    assert secrets.status == "False" and "'s3'" in secrets.message
    warnings = {e.reason for e in events if e.type == "Warning"}
    assert {"NoNodesInZone", "SecretNotFound"} <= warnings


def test_apply_errors_are_reported() -> None:
    c = factories.cluster()
    status, events = run(c, Observed(), errors=["created PodDisruptionBudget demo-storage failed: forbidden"])
    assert cond(status, "Reconciled").status == "False"
    assert "forbidden" in cond(status, "Reconciled").message
    assert any(e.reason == "ApplyFailed" for e in events)


def test_transition_time_kept_while_status_unchanged() -> None:
    c = factories.cluster()
    first, _ = run(c, world(c))
    later = factories.cluster(status=first.model_dump(by_alias=True, mode="json"))
    decided = plan.plan(later, Settings(), world(later), lambda: "pw")
    findings = checks.all_findings(later, world(later), NOW)
    decision = failover.decide(later, world(later), NOW)
    second, events = report.report(
        later, world(later), decided, decision, findings, [], NOW + datetime.timedelta(minutes=5)
    )
    assert cond(second, "Ready").last_transition_time == NOW
    assert events == []
    third, events = run(later, world(later, writer=False))
    assert third.phase == "Degraded"
    assert {e.reason for e in events} == {"WriterNotReady", "Degraded"}


def test_serverless_reports_acu_as_the_pods_hold_it() -> None:
    c = factories.cluster({"instances": {"serverless": {"minCapacity": 1, "maxCapacity": 4}}})
    observed = world(c)
    pods = []
    for pod in observed.pods:
        if pod["metadata"]["name"] == names.instance_pod(c, 0):
            pod = copy.deepcopy(pod)
            pod["metadata"].setdefault("annotations", {})[contract.ANNOTATION_TARGET_ACU] = "3"
            pod["spec"] = {"containers": [{"name": "postgres", "resources": {"limits": {"memory": "6Gi"}}}]}
            pod["status"]["containerStatuses"] = [
                {"name": "postgres", "resources": {"limits": {"memory": "4Gi"}}, "state": {"running": {}}}
            ]
            pod["status"]["conditions"].append(
                {"type": "PodResizeInProgress", "status": "True", "message": "resizing"}
            )
        pods.append(pod)
    status, _ = run(c, dataclasses.replace(observed, pods=tuple(pods)))
    writer = status.instances[0]
    assert (status.acu, writer.acu, writer.target_acu) == (2, 2, 3)  # 4 GiB applied, 6 GiB asked
    assert writer.resize.startswith("InProgress")
    assert run(factories.cluster(), Observed())[0].acu is None


def test_a_paused_cluster_keeps_its_pause_record_says_paused_and_warns_of_nothing() -> None:
    spec = {"instances": {"serverless": {"minCapacity": 0, "maxCapacity": 4}}}
    ready = factories.cluster(spec)
    before, _ = run(ready, world(ready))
    record = {"state": "Paused", "since": "2026-12-01T09:00:00Z", "message": "2 instances stopped"}
    was = before.model_dump(by_alias=True, mode="json") | {"pause": record}
    c = factories.cluster(spec, was)
    status, events = run(c, world(c, storage_ready=0, writer=False, readers_ready=0))
    assert status.phase == "Paused"
    assert status.pause is not None and status.pause.state == "Paused"  # the main pass keeps the record
    assert [e for e in events if e.type == "Warning"] == []
    assert [e.reason for e in events] == ["Paused"]
