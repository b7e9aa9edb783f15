"""The rolling update on literal worlds: window arithmetic, the order (storage, readers, switchover, old
writer), one pod at a time, waits, stops, and the revision that a failover does not change."""

from __future__ import annotations

import datetime

import pytest
from aurora_api import contract
from aurora_api.reports import InstanceReport, Role, StorageReport
from aurora_api.v1alpha1.cluster import AuroraCluster
from aurora_operator.instances import FakeInstances
from aurora_operator.kube import FakeKube
from aurora_operator.reconcile import loop, maintenance
from aurora_operator.reconcile.maintenance import Switchover, Window
from aurora_operator.reconcile.observed import Manifest, Observed
from aurora_operator.reconcile.plan import RestartPod
from aurora_operator.render import instances, names, revision, storage
from aurora_operator.settings import Settings
from aurora_operator.storage_nodes import FakeStorageNodes

from . import factories

MONDAY_NOON = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)  # a Monday
OLD, NEW = "rev-old", "rev-new"


def established(readers: int = 2, annotations: dict[str, str] | None = None,
                **status: object) -> AuroraCluster:  # fmt: skip
    base = {"writer": "demo-instance-0", "term": 3, "systemIdentifier": "7", "phase": "Ready"}
    spec = {"instances": {"readers": readers}, "maintenance": {"window": "sun:03:00-sun:04:00"}}
    return factories.cluster(spec, base | status, annotations=annotations or {})


def rolling(**status: object) -> AuroraCluster:
    roll = {"state": "Rolling", "rollingSince": "2026-11-30T11:59:00Z"}
    return established(2, None, maintenance=roll, **status)


def sets(c: AuroraCluster, readers: int = 2) -> dict[str, str]:
    found = {names.storage_set(c, z): NEW for z in range(3)}
    return found | {names.instance(c, o): NEW for o in range(readers + 1)}


def live_sets(wanted: dict[str, str]) -> dict[tuple[str, str], Manifest]:
    return {
        ("StatefulSet", name): {
            "metadata": {"name": name, "generation": 2},
            "status": {"observedGeneration": 2},
            "spec": {"template": {"metadata": {"annotations": {contract.ANNOTATION_REVISION: rev}}}},
        }
        for name, rev in wanted.items()
    }


def world(
    c: AuroraCluster,
    revisions: dict[str, str],
    *,
    writer: int = 0,
    readers: int = 2,
    broken: str | None = None,
    deleting: str | None = None,
) -> Observed:
    """Every pod healthy; ``revisions`` maps pod name -> revision (default OLD)."""
    pods = []
    for name in names.storage_pods(c) + [names.instance_pod(c, o) for o in range(readers + 1)]:
        pod = factories.pod(name, {contract.LABEL_CLUSTER: "demo"})
        pod["metadata"]["annotations"] = {contract.ANNOTATION_REVISION: revisions.get(name, OLD)}
        pod["metadata"]["creationTimestamp"] = "2026-11-30T11:58:00Z"
        if name == broken:
            pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
            pod["status"]["containerStatuses"] = [
                {"name": "main", "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "no"}}}
            ]
        if name == deleting:
            pod["metadata"]["deletionTimestamp"] = "2026-11-30T12:00:00Z"
        pods.append(pod)
    reports = {}
    for o in range(readers + 1):
        role: Role = "writer" if o == writer else "reader"
        reports[names.instance(c, o)] = InstanceReport(role=role, term=3, ready=True, postmaster_running=True)
    return Observed(
        objects=live_sets(sets(c, readers)),
        pods=tuple(pods),
        instances=reports,
        storage={n: StorageReport(term=3, streaming=True, state="streaming") for n in names.storage_pods(c)},
    )


def step(c: AuroraCluster, observed: Observed, now: datetime.datetime = MONDAY_NOON, writer: int = 0,
         readers: int = 2) -> maintenance.Step:  # fmt: skip
    ordinals = tuple(range(readers + 1))
    return maintenance.step(c, observed, sets(c, readers), ordinals, names.instance(c, writer), now)


def all_new(c: AuroraCluster, readers: int = 2) -> dict[str, str]:
    return dict.fromkeys(names.storage_pods(c) + [names.instance_pod(c, o) for o in range(readers + 1)], NEW)


def test_window_contains_and_next_start_including_a_window_across_the_week_end() -> None:
    w = Window.parse("sun:23:30-mon:00:30")
    assert w.contains(datetime.datetime(2026, 11, 29, 23, 45, tzinfo=datetime.UTC))  # Sunday
    assert w.contains(datetime.datetime(2026, 11, 30, 0, 10, tzinfo=datetime.UTC))  # Monday
    assert not w.contains(MONDAY_NOON)
    assert w.next_start(MONDAY_NOON) == datetime.datetime(2026, 12, 6, 23, 30, tzinfo=datetime.UTC)
    plain = Window.parse("mon:12:01-mon:13:00")
    assert not plain.contains(MONDAY_NOON)
    assert plain.next_start(MONDAY_NOON) == MONDAY_NOON + datetime.timedelta(minutes=1)
    assert plain.contains(MONDAY_NOON + datetime.timedelta(minutes=1))


def test_nothing_out_of_date_is_up_to_date() -> None:
    c = established()
    assert step(c, world(c, all_new(c))).state == "UpToDate"


def test_changes_wait_for_the_window_and_start_in_it_or_on_request() -> None:
    c = established()
    pending = step(c, world(c, {}))
    assert pending.state == "Pending" and pending.action is None and len(pending.outdated) == 9
    assert pending.next_window == datetime.datetime(2026, 12, 6, 3, 0, tzinfo=datetime.UTC)
    sunday = datetime.datetime(2026, 12, 6, 3, 10, tzinfo=datetime.UTC)
    assert step(c, world(c, {}), sunday).state == "Starting"
    asked = established(annotations={contract.ANNOTATION_APPLY_NOW: "true"})
    started = step(asked, world(asked, {}))
    assert started.state == "Starting" and started.action is None  # recorded first, acted on next pass


def test_a_started_roll_restarts_storage_first_one_at_a_time() -> None:
    c = rolling()
    first = step(c, world(c, {}))
    assert first.action == RestartPod("demo-storage-0-0", "rolling update")
    waiting = step(c, world(c, {}, deleting="demo-storage-0-0"))
    assert waiting.state == "Waiting" and waiting.action is None
    not_streaming = world(c, {"demo-storage-0-0": NEW})
    reports = dict(not_streaming.storage) | {"demo-storage-0-0": StorageReport(term=2, streaming=True)}
    behind = Observed(**{**not_streaming.__dict__, "storage": reports})
    assert step(c, behind).action is None


def test_readers_after_storage_then_a_switchover_then_the_old_writer() -> None:
    c = rolling()
    storage_done = dict.fromkeys(names.storage_pods(c), NEW)
    assert step(c, world(c, storage_done)).action == RestartPod("demo-instance-1-0", "rolling update")
    readers_done = storage_done | {"demo-instance-1-0": NEW, "demo-instance-2-0": NEW}
    assert step(c, world(c, readers_done)).action == Switchover("demo-instance-1")
    after = rolling(writer="demo-instance-1")
    switched = world(after, readers_done, writer=1)
    assert step(after, switched, writer=1).action == RestartPod("demo-instance-0-0", "rolling update")


def test_a_pod_that_does_not_come_back_stops_the_roll() -> None:
    c = rolling()
    stopped = step(c, world(c, {"demo-storage-0-0": NEW}, broken="demo-storage-0-0"))
    assert stopped.state == "Stopped" and stopped.action is None
    assert "demo-storage-0-0" in stopped.sentence and "ErrImageNeverPull" in stopped.sentence


def test_an_out_of_date_broken_pod_is_replaced_at_once() -> None:
    c = rolling()
    fixed = step(c, world(c, {}, broken="demo-storage-1-2"))
    assert fixed.action == RestartPod("demo-storage-1-2", "out of date and broken")


def test_the_roll_waits_for_a_backup_a_writer_change_and_the_statefulset_controller() -> None:
    backing_up = rolling(backup={"running": {"id": "b1", "instance": "demo-instance-1",
                                             "startedAt": "2026-11-30T11:59:00Z"}})  # fmt: skip
    assert step(backing_up, world(backing_up, {})).state == "Waiting"
    c = rolling()
    observed = world(c, {})
    stale = dict(observed.objects)
    stale[("StatefulSet", "demo-storage-0")]["status"]["observedGeneration"] = 1
    lagging = step(c, Observed(**{**observed.__dict__, "objects": stale}))
    assert lagging.state == "Waiting" and "demo-storage-0" in lagging.sentence


@pytest.mark.parametrize("volume", ["EmptyDir", "PersistentVolumeClaim"])
def test_a_single_instance_restarts_in_place_only_with_a_persistent_volume(volume: str) -> None:
    c = factories.cluster(
        {"instances": {"readers": 0, "dataVolume": volume}},
        {"writer": "demo-instance-0", "term": 3, "systemIdentifier": "7",
         "maintenance": {"state": "Rolling", "rollingSince": "2026-11-30T11:59:00Z"}},
    )  # fmt: skip
    storage_done = dict.fromkeys(names.storage_pods(c), NEW)
    result = step(c, world(c, storage_done, readers=0), readers=0)
    if volume == "EmptyDir":
        assert result.state == "Stopped" and result.action is None
    else:
        assert result.action == RestartPod("demo-instance-0-0", "rolling update, no reader")


def test_a_failover_does_not_change_any_revision_but_an_image_or_restart_parameter_does() -> None:
    c = established()
    s = Settings()
    before = revision.of_set(instances.stateful_set(c, s, 1, contract.ROLE_READER, 3))
    after = revision.of_set(instances.stateful_set(c, s, 1, contract.ROLE_WRITER, 4))
    assert before == after is not None
    image = factories.cluster({"engine": {"image": "quorumdb:other"}}, {"term": 3})
    assert revision.of_set(instances.stateful_set(image, s, 1, contract.ROLE_READER, 3)) != before
    shared = factories.cluster({"postgresql": {"parameters": {"shared_buffers": "256MB"}}}, {"term": 3})
    work = factories.cluster({"postgresql": {"parameters": {"work_mem": "8MB"}}}, {"term": 3})
    assert revision.of_set(instances.stateful_set(shared, s, 1, contract.ROLE_READER, 3)) != before
    assert revision.of_set(instances.stateful_set(work, s, 1, contract.ROLE_READER, 3)) == before


def test_status_records_the_start_and_the_end_of_a_roll() -> None:
    c = established()
    started = maintenance.Step("Starting", "rolling update of 9 of 9 pods starts (requested)", total=9)
    status, cond, events = maintenance.status_of(c, started, MONDAY_NOON)
    assert status.rolling_since == MONDAY_NOON and cond.status == "False"
    assert [e.reason for e in events] == ["RollStarting"]
    done = maintenance.Step("UpToDate", "all 9 pods run their current template", total=9)
    status, cond, events = maintenance.status_of(rolling(), done, MONDAY_NOON)
    assert status.rolling_since is None and status.last_completed == MONDAY_NOON and cond.status == "True"
    assert [e.reason for e in events] == ["RollCompleted"]


async def test_the_loop_applies_the_new_templates_first_then_restarts_one_pod_per_pass() -> None:
    """The whole pass on FakeKube: an image change under a started roll restarts nothing while the
    StatefulSets still have the old template, then one storage pod per pass; an operator restart between
    passes changes nothing (the state is on the pods)."""
    kube = FakeKube(factories.nodes())
    base = {"writer": "demo-instance-0", "term": 3, "systemIdentifier": "7", "phase": "Ready"}
    first = factories.body({"instances": {"readers": 1}}, base, resourceVersion="1")
    kube.put(first)
    await loop.reconcile(kube, Settings(), AuroraCluster.model_validate(first), now=MONDAY_NOON)
    instances_fake, storage_fake = FakeInstances(), FakeStorageNodes({})
    pods = [*names.storage_pods(factories.cluster()), "demo-instance-0-0", "demo-instance-1-0"]
    for i, name in enumerate(pods):
        set_name = name.rsplit("-", 1)[0]
        sts = kube.objects["StatefulSet", "db", set_name]
        component = "instance" if "instance" in name else "storage"
        pod = factories.pod(name, {contract.LABEL_CLUSTER: "demo", contract.LABEL_COMPONENT: component})
        pod["metadata"]["annotations"] = {contract.ANNOTATION_REVISION: revision.of_set(sts)}
        pod["status"]["podIP"] = f"10.0.0.{i}"
        kube.put(pod)
        if component == "storage":
            storage_fake.states[f"http://10.0.0.{i}:{contract.STORAGE_HTTP_PORT}"] = {
                "term": 3, "streaming": True, "state": "streaming"}  # fmt: skip
        else:
            role: Role = "writer" if name == "demo-instance-0-0" else "reader"
            instances_fake.reports[f"http://10.0.0.{i}:{contract.INSTANCE_HTTP_PORT}"] = InstanceReport(
                role=role, term=3, ready=True, postmaster_running=True, system_identifier="7"
            )
    roll = {"state": "Rolling", "rollingSince": "2026-11-30T11:59:00Z"}
    patched = factories.body({"instances": {"readers": 1}, "engine": {"image": "quorumdb:next"}},
                             base | {"maintenance": roll}, resourceVersion="2")  # fmt: skip
    kube.put(patched)

    async def one_pass() -> loop.Outcome:
        c = AuroraCluster.model_validate(kube.objects["AuroraCluster", "db", "demo"])
        return await loop.reconcile(kube, Settings(), c, now=MONDAY_NOON, storage=storage_fake,
                                    instances=instances_fake)  # fmt: skip

    templates_only = await one_pass()
    assert not [call for call in kube.calls if call.startswith("delete Pod/")]
    assert templates_only.status is not None and templates_only.status.maintenance is not None
    assert templates_only.status.maintenance.state == "Waiting"
    restarting = await one_pass()
    assert [call for call in kube.calls if call.startswith("delete Pod/")] == ["delete Pod/demo-storage-0-0"]
    assert any(e.reason == "PodRestarted" for e in restarting.events)
    # The pod is gone (its StatefulSet has not re-created it yet): the next pass waits and deletes nothing.
    waiting = await one_pass()
    assert [call for call in kube.calls if call.startswith("delete Pod/")] == ["delete Pod/demo-storage-0-0"]
    assert waiting.status is not None and waiting.status.maintenance is not None
    assert "demo-storage-0-0 missing" in waiting.status.maintenance.message


def test_an_operator_upgrade_restarts_pods_only_when_it_renders_them_differently() -> None:
    c = established()
    before = [revision.of_set(s) for s in storage.all_sets(c, Settings())]
    same = [revision.of_set(s) for s in storage.all_sets(c, Settings(resync_seconds=1, peering="other"))]
    new_default_image = [revision.of_set(s) for s in storage.all_sets(c, Settings(image="quorumdb:0.2.0"))]
    assert same == before
    assert all(a != b for a, b in zip(before, new_default_image, strict=True))
