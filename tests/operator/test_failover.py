"""Who writes: the pure failover/switchover decision on literal reports, and one reconcile on FakeKube that
shows the decision is recorded (with a resourceVersion precondition) before any promote is sent."""

from __future__ import annotations

import datetime
from collections.abc import Mapping

import pytest
from aurora_api import contract
from aurora_api.reports import InstanceReport, StorageReport
from aurora_api.v1alpha1.cluster import AuroraCluster
from aurora_operator.instances import FakeInstances
from aurora_operator.kube import FakeKube
from aurora_operator.reconcile import announce, failover, loop
from aurora_operator.reconcile.failover import Demote, Promote
from aurora_operator.reconcile.observed import Manifest, Observed
from aurora_operator.render import names
from aurora_operator.settings import Settings
from aurora_operator.storage_nodes import FakeStorageNodes

from . import factories

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
ENDPOINT = "demo.db.svc:5432"
SYSTEM = "7400000000000000001"


def established(**status: object) -> AuroraCluster:
    base = {"writer": "demo-instance-0", "term": 3, "systemIdentifier": SYSTEM, "phase": "Ready"}
    return factories.cluster(status=base | status)


def reader(lsn: str = "0/3000000", timeline: int = 2, term: int = 3, **kw: object) -> InstanceReport:
    fields = {"role": "reader", "term": term, "timeline": timeline, "received_lsn": lsn, "ready": True}
    return InstanceReport.model_validate(
        fields | {"postmaster_running": True, "system_identifier": SYSTEM} | kw
    )


def writer(term: int = 3, **kw: object) -> InstanceReport:
    fields = {"role": "writer", "term": term, "timeline": 2, "ready": True, "postmaster_running": True}
    return InstanceReport.model_validate(fields | {"system_identifier": SYSTEM} | kw)


def pods(c: AuroraCluster, ordinals: range, deleting: int | None = None) -> tuple[Manifest, ...]:
    found = []
    for ordinal in ordinals:
        labels = {contract.LABEL_CLUSTER: "demo", contract.LABEL_COMPONENT: "instance"}
        pod = factories.pod(names.instance_pod(c, ordinal), labels)
        pod["status"]["podIP"] = f"10.0.0.{ordinal}"
        if ordinal == deleting:
            pod["metadata"]["deletionTimestamp"] = "2026-11-30T12:00:00Z"
        found.append(pod)
    return tuple(found)


def world(
    c: AuroraCluster,
    reports: Mapping[int, InstanceReport | None],
    *,
    storage: int = 6,
    silent: dict[int, float] | None = None,
    deleting: int | None = None,
) -> Observed:
    nodes = {
        name: StorageReport(term=3, streaming=True) if i < storage else None
        for i, name in enumerate(names.storage_pods(c))
    }
    return Observed(
        pods=pods(c, range(3), deleting),
        instances={names.instance(c, i): r for i, r in reports.items()},
        silent_seconds={names.instance(c, i): s for i, s in (silent or {}).items()},
        storage=nodes,
    )


def test_healthy_writer_is_left_alone() -> None:
    c = established()
    d = failover.decide(c, world(c, {0: writer(), 1: reader(), 2: reader()}), NOW)
    assert d.start is None and d.actions == () and d.writer == "demo-instance-0"
    assert d.sentence == "demo-instance-0 writes at term 3"


def test_writer_pod_deleted_promotes_the_best_reader_by_tier_then_lsn() -> None:
    c = established()
    reports = {0: writer(), 1: reader("0/3000000"), 2: reader("0/3000100")}
    d = failover.decide(c, world(c, reports, deleting=0), NOW)
    assert d.start is not None
    assert (d.start.kind, d.start.to, d.start.term, d.start.from_writer) == (
        "failover", "demo-instance-2", 4, "demo-instance-0",
    )  # fmt: skip
    assert "being deleted" in d.start.reason
    assert d.actions[0] == Promote("demo-instance-2", 4)
    assert Demote("demo-instance-1", 4, ENDPOINT) in d.actions
    # A lower promotion tier wins over a more advanced LSN.
    tiered = factories.cluster(
        {"instances": {"readers": 2, "promotionTiers": [1, 0, 1]}},
        status={"writer": "demo-instance-0", "term": 3, "systemIdentifier": SYSTEM},
    )
    d = failover.decide(tiered, world(tiered, reports, deleting=0), NOW)
    assert d.start is not None and d.start.to == "demo-instance-1"


def test_writer_pod_re_created_or_restarting_fails_over_at_once() -> None:
    c = established()
    observed = world(c, {0: None, 1: reader(), 2: reader()})
    observed.pods[0]["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    d = failover.decide(c, observed, NOW)
    assert d.start is not None and "not running" in d.start.reason


def test_silent_writer_fails_over_only_after_the_grace_period() -> None:
    c = established()
    reports = {0: None, 1: reader(), 2: reader()}
    assert failover.decide(c, world(c, reports, silent={0: 1.0}), NOW).start is None
    d = failover.decide(c, world(c, reports, silent={0: failover.GRACE_SECONDS}), NOW)
    assert d.start is not None and "has not answered" in d.start.reason


def test_writer_that_lost_its_data_or_serves_another_system_is_replaced() -> None:
    c = established()
    lost = failover.decide(c, world(c, {0: writer(seed_needed=True), 1: reader()}), NOW)
    assert lost.start is not None and "lost its data directory" in lost.start.reason
    impostor = failover.decide(c, world(c, {0: writer(system_identifier="1"), 1: reader()}), NOW)
    assert impostor.start is not None and "serves system 1" in impostor.start.reason


STORE = {"endpoint": "http://minio:9000", "bucket": "quorumdb", "credentialsSecret": {"name": "s3"}}


def single(backup: bool = True, **status: object) -> AuroraCluster:
    spec: dict[str, object] = {"instances": {"readers": 0}}
    if backup:
        spec["backup"] = {"objectStore": STORE}
    base = {"writer": "demo-instance-0", "term": 3, "systemIdentifier": SYSTEM, "phase": "Ready"}
    return factories.cluster(spec, status=base | status)


def test_a_lone_writer_that_lost_its_data_is_chosen_again_to_be_reseeded_from_the_store() -> None:
    c = single()
    d = failover.decide(c, world(c, {0: writer(role="unknown", seed_needed=True)}), NOW)
    assert d.start is not None
    assert (d.start.kind, d.start.from_writer, d.start.to, d.start.term) == (
        "failover", "demo-instance-0", "demo-instance-0", 4,
    )  # fmt: skip
    assert d.actions == (Promote("demo-instance-0", 4),)
    assert d.sentence.startswith("failover: re-seeding demo-instance-0 from the object store")
    # Without an object store there is nothing to re-seed from: blocked, and said so.
    bare = single(backup=False)
    d = failover.decide(bare, world(bare, {0: writer(role="unknown", seed_needed=True)}), NOW)
    assert d.start is None and d.blocked == (
        "no reader available to promote, and no object store to re-seed it from"
    )
    # A lone writer that is merely silent (its pod restarting) is waited for, not re-seeded.
    d = failover.decide(c, world(c, {0: None}, silent={0: 5.0}), NOW)
    assert d.start is None and d.blocked == "no reader available to promote"


def test_a_reseed_in_progress_is_waited_for_while_it_reports_progress() -> None:
    change = {"kind": "failover", "from": "demo-instance-0", "to": "demo-instance-0", "term": 4,
              "reason": "x", "startedAt": "2026-11-30T11:50:00Z"}  # fmt: skip
    c = single(failover=change, targetWriter="demo-instance-0", term=4)
    # The promote has not reached it yet (still at term 3, still asking for a seed): not a failure.
    early = datetime.datetime(2026, 11, 30, 11, 50, 2, tzinfo=datetime.UTC)
    d = failover.decide(c, world(c, {0: writer(term=3, role="unknown", seed_needed=True)}), early)
    assert d.start is None and d.actions == (Promote("demo-instance-0", 4),)
    assert "in progress" in d.sentence
    # Ten minutes in but still seeding: waited for; not seeding any more and not ready: abandoned.
    seeding = writer(term=4, role="reader", ready=False, action="re-seed writer from the object store")
    assert failover.decide(c, world(c, {0: seeding}), NOW).blocked is None
    stuck = writer(term=4, role="unknown", ready=False, postmaster_running=False)
    assert failover.decide(c, world(c, {0: stuck}), NOW).blocked == "no reader available to promote"
    done = failover.decide(c, world(c, {0: writer(term=4)}), NOW)
    assert done.completed is not None and done.completed.seconds == 600.0


def test_no_promotion_without_a_read_quorum_of_storage_nodes() -> None:
    c = established()
    d = failover.decide(c, world(c, {0: None, 1: reader()}, storage=2, silent={0: 5.0}), NOW)
    assert d.start is None and d.actions == ()
    assert d.blocked == "only 2 of 6 storage nodes reachable"


def test_no_promotion_of_a_reader_of_another_system_or_without_postgres() -> None:
    c = established()
    reports = {0: None, 1: reader(system_identifier="9"), 2: reader(postmaster_running=False)}
    d = failover.decide(c, world(c, reports, silent={0: 5.0}), NOW)
    assert d.start is None and d.blocked == "no reader available to promote"


def test_a_cluster_that_never_ran_is_not_failed_over() -> None:
    c = factories.cluster(status={"writer": "demo-instance-0", "term": 1})
    d = failover.decide(c, world(c, {0: None, 1: reader()}, silent={0: 60.0}), NOW)
    assert d.start is None and "bootstrap" in d.sentence


def in_progress(to: str = "demo-instance-1", term: int = 4, kind: str = "failover") -> AuroraCluster:
    change = {"kind": kind, "from": "demo-instance-0", "to": to, "term": term, "reason": "x",
              "startedAt": "2026-11-30T11:59:58Z"}  # fmt: skip
    return established(failover=change, targetWriter=to, term=term)


def test_change_in_progress_is_driven_to_completion_and_timed() -> None:
    c = in_progress()
    d = failover.decide(c, world(c, {1: reader(term=4), 2: reader(term=3)}), NOW)
    assert d.start is None and d.completed is None and d.writer == "demo-instance-1"
    assert d.actions == (Promote("demo-instance-1", 4), Demote("demo-instance-2", 4, ENDPOINT))
    done = failover.decide(c, world(c, {1: writer(term=4), 2: reader(term=4)}), NOW)
    assert done.completed is not None and done.completed.seconds == 2.0
    assert done.actions == ()


def test_target_dying_mid_promotion_moves_to_the_next_reader_at_a_higher_term() -> None:
    c = in_progress()
    d = failover.decide(c, world(c, {1: reader(term=4), 2: reader()}, deleting=1), NOW)
    assert d.start is not None and (d.start.to, d.start.term) == ("demo-instance-2", 5)


def test_former_writer_back_at_an_old_term_is_demoted() -> None:
    c = established(writer="demo-instance-1", term=4)
    d = failover.decide(c, world(c, {0: writer(term=3), 1: writer(term=4), 2: reader(term=4)}), NOW)
    assert d.actions == (Demote("demo-instance-0", 4, ENDPOINT),)


@pytest.mark.parametrize(("request_", "target"), [("demo-instance-2", "demo-instance-2"), ("any", None)])
def test_switchover_on_request(request_: str, target: str | None) -> None:
    c = factories.cluster(
        annotations={failover.SWITCHOVER_ANNOTATION: request_},
        status={"writer": "demo-instance-0", "term": 3, "systemIdentifier": SYSTEM},
    )
    d = failover.decide(c, world(c, {0: writer(), 1: reader("0/5"), 2: reader("0/4")}), NOW)
    assert d.start is not None and d.start.kind == "switchover"
    assert d.start.to == (target or "demo-instance-1")
    assert Demote("demo-instance-0", 4, ENDPOINT) in d.actions


def test_switchover_to_a_non_reader_is_refused_and_cleared() -> None:
    c = factories.cluster(
        annotations={failover.SWITCHOVER_ANNOTATION: "demo-instance-9"},
        status={"writer": "demo-instance-0", "term": 3, "systemIdentifier": SYSTEM},
    )
    d = failover.decide(c, world(c, {0: writer(), 1: reader()}), NOW)
    assert d.start is None and d.clear_request and "refused" in d.sentence


async def test_reconcile_records_the_decision_before_promoting() -> None:
    c = established()
    body = factories.body(status=c.status.model_dump(by_alias=True, mode="json"), resourceVersion="41")
    kube = FakeKube(factories.nodes())
    kube.put(body)
    for p in pods(c, range(3), deleting=0):
        kube.put(p)
    urls = {f"http://10.0.0.{i}:{contract.INSTANCE_HTTP_PORT}": r for i, r in ((1, reader()), (2, reader()))}
    instances = FakeInstances(urls)
    storage = FakeStorageNodes({})
    for i, name in enumerate(names.storage_pods(c)):
        labels = {contract.LABEL_CLUSTER: "demo", contract.LABEL_COMPONENT: "storage"}
        pod = factories.pod(name, labels)
        pod["status"]["podIP"] = f"10.0.1.{i}"
        kube.put(pod)
        storage.states[f"http://10.0.1.{i}:{contract.STORAGE_HTTP_PORT}"] = {"term": 3, "streaming": True}
    cluster = AuroraCluster.model_validate(body)
    outcome = await loop.reconcile(kube, Settings(), cluster, now=NOW, storage=storage, instances=instances)
    stored = kube.objects["AuroraCluster", "db", "demo"]
    assert stored["status"]["term"] == 4 and stored["status"]["targetWriter"] == "demo-instance-1"
    assert kube.calls.index("status AuroraCluster/demo") == 0  # recorded before anything else was done
    assert instances.requests[0] == ("promote", "http://10.0.0.1:8008", 4)
    assert outcome.status is not None and outcome.status.failover is not None
    events = announce.writer_changes(cluster, outcome.status, NOW, "test")
    assert [(e["type"], e["reason"]) for e in events] == [("Warning", "FailoverStarted")]
    # A pass on the now stale body (resourceVersion 41) cannot record a second decision.
    again = await loop.reconcile(kube, Settings(), cluster, now=NOW, storage=storage, instances=instances)
    assert again.status is None and kube.calls.count("status AuroraCluster/demo") == 1
