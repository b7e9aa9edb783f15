"""The whole loop (observe -> plan -> apply -> report) against the in-memory ``FakeKube``."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from aurora_api import contract
from aurora_api.v1alpha1.cluster import AuroraCluster
from aurora_operator.kube import FakeKube
from aurora_operator.reconcile import loop
from aurora_operator.settings import Settings

from . import factories

NOW = datetime.datetime(2026, 11, 27, 4, 0, tzinfo=datetime.UTC)


def counter() -> Callable[[], str]:
    count = iter(range(1000))
    return lambda: f"pw-{next(count)}"


async def reconcile(kube: FakeKube, c: AuroraCluster) -> loop.Outcome:
    return await loop.reconcile(kube, Settings(), c, now=NOW, password=counter())


def kinds(kube: FakeKube) -> dict[str, int]:
    found: dict[str, int] = {}
    for kind, _, _ in kube.objects:
        found[kind] = found.get(kind, 0) + 1
    return found


async def test_provisioning_creates_the_topology_once() -> None:
    kube = FakeKube(factories.nodes())
    c = factories.cluster()
    first = await reconcile(kube, c)
    assert kinds(kube) == {
        "Secret": 7, "ServiceAccount": 1, "Role": 1, "RoleBinding": 1, "ConfigMap": 2,
        "Service": 7, "StatefulSet": 6, "PodDisruptionBudget": 3, "NetworkPolicy": 4,
    }  # fmt: skip
    assert factories.must(first).phase == "Provisioning"
    assert len(first.done) == len(kube.objects)
    password = kube.objects["Secret", "db", "demo-superuser"]["stringData"]["password"]

    # An operator restart re-runs the same reconcile on the same world: nothing new, nothing rewritten.
    calls_before = len(kube.calls)
    second = await reconcile(
        kube, factories.cluster(status=factories.must(first).model_dump(by_alias=True, mode="json"))
    )
    assert second.done == []
    assert len(kube.calls) == calls_before
    assert kube.objects["Secret", "db", "demo-superuser"]["stringData"]["password"] == password


async def test_scaling_readers_two_four_one() -> None:
    kube = FakeKube(factories.nodes())
    await reconcile(kube, factories.cluster())
    await reconcile(kube, factories.cluster({"instances": {"readers": 4}}))
    sets = sorted(name for kind, _, name in kube.objects if kind == "StatefulSet" and "instance" in name)
    assert sets == [f"demo-instance-{i}" for i in range(5)]
    out = await reconcile(kube, factories.cluster({"instances": {"readers": 1}}))
    sets = sorted(name for kind, _, name in kube.objects if kind == "StatefulSet" and "instance" in name)
    assert sets == ["demo-instance-0", "demo-instance-1"]
    assert ("Service", "db", "demo-instance-4") not in kube.objects
    assert factories.must(out).readers == 1 and [i.name for i in factories.must(out).instances] == sets


async def test_one_failing_object_does_not_stop_the_rest() -> None:
    kube = FakeKube(factories.nodes())
    kube.fail_kinds = {"PodDisruptionBudget"}
    out = await reconcile(kube, factories.cluster())
    assert kinds(kube).get("PodDisruptionBudget") is None
    assert kinds(kube)["StatefulSet"] == 6
    reconciled = next(c for c in factories.must(out).conditions if c.type == "Reconciled")
    assert reconciled.status == "False" and "injected failure" in reconciled.message
    failures = [e.message for e in out.events if e.reason == "ApplyFailed" and e.type == "Warning"]
    assert sum(m.startswith("created PodDisruptionBudget") for m in failures) == 3  # one per object
    assert sum(m.startswith("Reconciled:") for m in failures) == 1  # and the condition turning False


async def test_role_labels_follow_status_writer() -> None:
    kube = FakeKube(factories.nodes())
    first = await reconcile(kube, factories.cluster())
    base = {contract.LABEL_CLUSTER: "demo", contract.LABEL_COMPONENT: "instance"}
    for ordinal in range(3):
        kube.put(factories.pod(f"demo-instance-{ordinal}-0", base | {contract.LABEL_ROLE: "reader"}))
    await reconcile(
        kube, factories.cluster(status=factories.must(first).model_dump(by_alias=True, mode="json"))
    )
    roles = [
        kube.objects["Pod", "db", f"demo-instance-{i}-0"]["metadata"]["labels"][contract.LABEL_ROLE]
        for i in range(3)
    ]
    assert roles == ["writer", "reader", "reader"]


async def test_teardown_follows_reclaim_policy() -> None:
    kube = FakeKube(factories.nodes())
    await reconcile(kube, factories.cluster())
    claim = {"kind": "PersistentVolumeClaim", "metadata": {"name": "data-demo-storage-0-0", "namespace": "db",
             "labels": {contract.LABEL_CLUSTER: "demo"}}}  # fmt: skip
    kube.put(claim)
    kept = await loop.teardown(kube, factories.cluster({"storage": {"reclaimPolicy": "Retain"}}))
    assert kept == [f"kept Secret demo-{a}" for a in ("superuser", "replication", "app")]
    assert ("PersistentVolumeClaim", "db", "data-demo-storage-0-0") in kube.objects
    assert "ownerReferences" not in kube.objects["Secret", "db", "demo-app"]["metadata"]
    assert "ownerReferences" in kube.objects["StatefulSet", "db", "demo-storage-0"]["metadata"]
    done = await loop.teardown(kube, factories.cluster())
    assert done[0] == "deleted PVC data-demo-storage-0-0" and "deleted Secret demo-app" in done
    assert ("PersistentVolumeClaim", "db", "data-demo-storage-0-0") not in kube.objects


async def test_resync_undoes_manual_edits_without_reporting_them() -> None:
    kube = FakeKube(factories.nodes())
    first = await reconcile(kube, factories.cluster())
    edited = kube.objects["Service", "db", "demo-ro"]
    edited["spec"]["selector"] = {"app": "something-else"}  # a manual edit; the fingerprint is unchanged
    assert (await reconcile(kube, factories.cluster())).done == []  # a normal pass trusts the fingerprint
    status = factories.must(first).model_dump(by_alias=True, mode="json")
    out = await loop.reconcile(kube, Settings(), factories.cluster(status=status), now=NOW, resync=True)
    assert kube.objects["Service", "db", "demo-ro"]["spec"]["selector"][contract.LABEL_ROLE] == "reader"
    assert out.done == [] and not any(e.reason == "Applied" for e in out.events)
