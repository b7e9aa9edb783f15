"""Claims whose volume went with a deleted node are given up (and only those), so the pod runs elsewhere."""

from __future__ import annotations

import datetime
from typing import Any

from aurora_api import contract
from aurora_operator.kube import FakeKube
from aurora_operator.reconcile import loop, stranded
from aurora_operator.reconcile.observed import Observed
from aurora_operator.settings import Settings

from . import factories

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
POD = "demo-instance-1-0"
CLAIM = f"data-{POD}"


def pending_pod(unschedulable_for: float) -> dict[str, Any]:
    since = NOW - datetime.timedelta(seconds=unschedulable_for)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD, "namespace": "db", "labels": {contract.LABEL_CLUSTER: "demo"}},
        "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": CLAIM}}]},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "lastTransitionTime": since.isoformat().replace("+00:00", "Z")}],
        },
    }  # fmt: skip


def claim() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": CLAIM, "namespace": "db", "labels": {contract.LABEL_CLUSTER: "demo"}},
        "spec": {"volumeName": "pv-1"},
    }


def volume(key: str = stranded.HOSTNAME_KEY, values: tuple[str, ...] = ("node-gone",)) -> dict[str, Any]:
    term = {"matchExpressions": [{"key": key, "operator": "In", "values": list(values)}]}
    affinity = {"required": {"nodeSelectorTerms": [term]}}
    return {"metadata": {"name": "pv-1"}, "spec": {"nodeAffinity": affinity}}


def observed(pod: dict[str, Any], pv: dict[str, Any], nodes: frozenset[str]) -> Observed:
    return Observed(pods=(pod,), node_names=nodes, claims={CLAIM: claim()}, volumes={"pv-1": pv})


def test_a_claim_pinned_to_a_deleted_node_is_stranded() -> None:
    found = stranded.find(observed(pending_pod(60), volume(), frozenset({"node-a"})), NOW)
    assert found == [stranded.Stranded(POD, CLAIM, ("node-gone",))]


def test_a_node_that_still_exists_keeps_its_volumes_even_when_down() -> None:
    assert stranded.find(observed(pending_pod(600), volume(), frozenset({"node-gone"})), NOW) == []


def test_a_pod_unschedulable_for_less_than_the_grace_keeps_its_claim() -> None:
    short = stranded.GRACE_SECONDS / 2
    assert stranded.find(observed(pending_pod(short), volume(), frozenset({"node-a"})), NOW) == []


def test_a_zonal_volume_is_reachable_from_other_nodes_and_never_stranded() -> None:
    zonal = volume(key="topology.kubernetes.io/zone", values=("zone-a",))
    assert stranded.find(observed(pending_pod(600), zonal, frozenset({"node-a"})), NOW) == []


def test_a_scheduled_pod_is_not_stranded() -> None:
    pod = pending_pod(600)
    pod["spec"]["nodeName"] = "node-a"
    assert stranded.find(observed(pod, volume(), frozenset({"node-a"})), NOW) == []


async def test_reconcile_deletes_the_claim_then_the_pod_and_says_so() -> None:
    kube = FakeKube(factories.nodes())
    c = factories.cluster()
    await loop.reconcile(kube, Settings(), c, now=NOW, password=lambda: "pw")  # provision
    kube.put(pending_pod(120))
    kube.put(claim())
    kube.volumes["pv-1"] = volume()
    kube.calls.clear()
    outcome = await loop.reconcile(kube, Settings(), c, now=NOW, password=lambda: "pw")
    deletes = [call for call in kube.calls if call.startswith("delete")]
    assert deletes == [f"delete PersistentVolumeClaim/{CLAIM}", f"delete Pod/{POD}"]
    assert any(e.reason == "VolumeRecreated" and "node-gone" in e.message for e in outcome.events)
