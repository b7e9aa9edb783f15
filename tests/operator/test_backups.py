"""Backup decisions, pure: the restorable window, proving marks, scheduling, retention, restore checks."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from aurora_api import backups as bk
from aurora_api import contract
from aurora_api.reports import BackupJobReport, InstanceReport
from aurora_api.v1alpha1 import cluster as api
from aurora_api.v1alpha1 import snapshot as snap
from aurora_operator.instances import FakeInstances
from aurora_operator.kube import FakeKube
from aurora_operator.reconcile import backup_pass, backups, restore, snapshots
from aurora_operator.render import instances
from aurora_operator.settings import Settings

from tests.operator import factories
from tests.operator.factories import cluster

T0 = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
SEG = bk.SEGMENT_SIZE
STORE = {"endpoint": "http://minio:9000", "bucket": "quorumdb", "credentialsSecret": {"name": "s3"}}
STORE_SPEC = api.ObjectStoreSpec.model_validate(STORE)


def backup(bid: str, start_seg: int, end_seg: int, done: datetime.datetime) -> bk.BaseBackup:
    return bk.BaseBackup(
        id=bid,
        system_identifier="7",
        timeline=1,
        start_lsn=bk.format_lsn(start_seg * SEG + 40),
        end_lsn=bk.format_lsn(end_seg * SEG + 100),
        started_at=done - datetime.timedelta(seconds=5),
        completed_at=done,
        size_bytes=1000,
        sha256="ab",
    )


def wal_key(segno: int, tli: int = 1) -> str:
    return f"db/demo/wal/{tli:08X}/{tli:08X}{segno // 256:08X}{segno % 256:08X}"


def catalog(bks: list[bk.BaseBackup], segs: range, mark: bk.Restorable | None = None) -> backups.Catalog:
    keys = [wal_key(s) for s in segs]
    return backups.Catalog(bks, (), frozenset(bk.archived_segments(keys)), keys, mark)


def with_backup(status: dict[str, Any] | None = None, **spec: Any) -> api.AuroraCluster:
    return cluster({"backup": {"objectStore": STORE} | spec}, status or {})


def test_segments_are_read_from_keys_of_any_timeline() -> None:
    keys = [wal_key(3), wal_key(4, tli=2), wal_key(300), "db/demo/wal/history/00000002.history"]
    assert bk.archived_segments(keys) == {3, 4, 300}


def test_window_needs_the_backups_own_wal_and_stops_at_a_gap() -> None:
    b = backup("a", 3, 4, T0)
    assert bk.window([b], {3}, None) is None  # its end segment is not archived yet
    w = bk.window(
        [b], {3, 4, 5}, bk.Restorable(time=T0 + datetime.timedelta(minutes=5), lsn=bk.format_lsn(6 * SEG))
    )
    assert w is not None and w.earliest == T0 and w.latest == T0 + datetime.timedelta(minutes=5)
    # A mark past a gap is not believed: the latest time falls back to the backup's completion.
    gap = bk.window(
        [b], {3, 4, 6, 7}, bk.Restorable(time=T0 + datetime.timedelta(minutes=5), lsn=bk.format_lsn(7 * SEG))
    )
    assert gap is not None and gap.latest == T0


def test_choose_takes_the_newest_backup_completed_by_the_target() -> None:
    a, b = backup("a", 3, 3, T0), backup("b", 8, 8, T0 + datetime.timedelta(hours=1))
    segs = set(range(3, 10))
    assert bk.choose([a, b], segs, None).id == "b"
    assert bk.choose([a, b], segs, T0 + datetime.timedelta(minutes=30)).id == "a"
    with pytest.raises(LookupError):
        bk.choose([a, b], segs, T0 - datetime.timedelta(minutes=1))


def test_first_backup_is_taken_at_once_from_the_least_lagging_reader() -> None:
    c = with_backup()
    out = backups.decide(
        c,
        backups.Inputs(
            now=T0, catalog=catalog([], range(0)), readers=[("demo-instance-1", 900), ("demo-instance-2", 10)]
        ),
    )
    assert out.start is not None and out.start.instance == "demo-instance-2"
    assert out.status.running is not None and out.status.running.id == out.start.backup_id
    assert out.condition.reason == "FirstBackupRunning"


def test_the_writer_only_when_the_cluster_has_no_reader() -> None:
    single = cluster({"backup": {"objectStore": STORE}, "instances": {"readers": 0}})
    out = backups.decide(single, backups.Inputs(now=T0, catalog=catalog([], range(0)), writer="w"))
    assert out.start is not None and out.start.instance == "w" and "has no reader" in out.start.reason
    # With readers in the spec, none ready yet: wait rather than load the writer.
    wait = backups.decide(with_backup(), backups.Inputs(now=T0, catalog=catalog([], range(0)), writer="w"))
    assert wait.start is None and "waiting for a ready reader" in wait.condition.message


def test_the_schedule_decides_after_the_first_backup() -> None:
    b = backup("a", 3, 3, T0 + datetime.timedelta(minutes=1))  # started just after the 12:00 fire
    c = with_backup(schedule="0 */6 * * *")
    early = backups.decide(
        c,
        backups.Inputs(
            now=T0 + datetime.timedelta(hours=1), catalog=catalog([b], range(3, 5)), readers=[("r", 0)]
        ),
    )
    assert early.start is None and early.status.next_backup_time == T0 + datetime.timedelta(hours=6)
    late = backups.decide(
        c,
        backups.Inputs(
            now=T0 + datetime.timedelta(hours=6, seconds=1),
            catalog=catalog([b], range(3, 5)),
            readers=[("r", 0)],
        ),
    )
    assert late.start is not None and "scheduled" in late.start.reason


def test_a_request_annotation_starts_one_and_is_cleared() -> None:
    b = backup("a", 3, 3, T0)
    c = cluster({"backup": {"objectStore": STORE}}, annotations={backups.REQUEST_ANNOTATION: "1"})
    out = backups.decide(
        c,
        backups.Inputs(
            now=T0 + datetime.timedelta(minutes=1), catalog=catalog([b], range(3, 5)), readers=[("r", 0)]
        ),
    )
    assert out.start is not None and out.clear_request


def test_a_failed_job_is_retried_only_after_a_pause() -> None:
    running = {"id": "x", "instance": "r", "startedAt": T0.isoformat()}
    c = with_backup({"backup": {"running": running}})
    failed = BackupJobReport(id="x", state="failed", message="disk full")
    out = backups.decide(
        c,
        backups.Inputs(
            now=T0 + datetime.timedelta(seconds=5),
            catalog=catalog([], range(0)),
            readers=[("r", 0)],
            job=failed,
        ),
    )
    assert (
        out.start is None
        and out.status.last_failure is not None
        and "disk full" in out.status.last_failure.message
    )
    assert [e[1] for e in out.events] == ["BackupFailed"]
    c2 = with_backup({"backup": out.status.model_dump(by_alias=True, mode="json")})
    later = backups.decide(
        c2,
        backups.Inputs(
            now=T0 + datetime.timedelta(seconds=70), catalog=catalog([], range(0)), readers=[("r", 0)]
        ),
    )
    assert later.start is not None


def test_marks_are_proven_only_once_the_archive_passes_their_lsn() -> None:
    b = backup("a", 3, 3, T0)
    marks = [
        {"time": (T0 + datetime.timedelta(seconds=s)).isoformat(), "lsn": bk.format_lsn(lsn)}
        for s, lsn in ((10, 4 * SEG + 10), (20, 5 * SEG + 10), (30, 9 * SEG))
    ]
    c = with_backup({"backup": {"pendingMarks": marks}})
    out = backups.decide(
        c,
        backups.Inputs(
            now=T0 + datetime.timedelta(seconds=40), catalog=catalog([b], range(3, 6)), readers=[("r", 0)]
        ),
    )
    assert out.write_restorable is not None and out.write_restorable.time == T0 + datetime.timedelta(
        seconds=20
    )
    assert out.status.latest_restorable_time == T0 + datetime.timedelta(seconds=20)
    assert [m.lsn for m in out.status.pending_marks] == [bk.format_lsn(9 * SEG)]
    assert out.condition.status == "True" and out.condition.reason == "Restorable"


def test_an_unreadable_store_is_a_condition_and_changes_nothing() -> None:
    out = backups.decide(
        with_backup(), backups.Inputs(now=T0, catalog=None, store_error="connection refused")
    )
    assert out.condition.reason == "ObjectStoreUnavailable" and out.start is None and not out.delete


def test_retention_keeps_the_period_restorable_and_deletes_what_is_older() -> None:
    old = backup("20261101T000000Z", 1, 1, T0 - datetime.timedelta(days=29))
    edge = backup("20261120T000000Z", 5, 5, T0 - datetime.timedelta(days=10))
    new = backup("20261129T000000Z", 9, 9, T0 - datetime.timedelta(days=1))
    c = with_backup(retentionDays=7)
    out = backups.decide(
        c, backups.Inputs(now=T0, catalog=catalog([old, edge, new], range(1, 12)), readers=[("r", 0)])
    )
    deleted = set(out.delete)
    # "edge" is the newest backup before the cutoff: kept, so seven days back stay restorable.
    assert bk.record_key("db/demo", old.id) in deleted and bk.backup_key("db/demo", old.id) in deleted
    assert not any(edge.id in k or new.id in k for k in deleted)
    assert {wal_key(s) for s in range(1, 5)} <= deleted and wal_key(5) not in deleted


def test_retention_never_deletes_without_a_usable_backup() -> None:
    old = backup("20261101T000000Z", 1, 1, T0 - datetime.timedelta(days=29))
    out = backups.decide(
        with_backup(retentionDays=1), backups.Inputs(now=T0, catalog=catalog([old], range(2, 4)))
    )
    assert out.delete == ()


def restoring(target: datetime.datetime | None) -> api.AuroraCluster:
    r: dict[str, Any] = {"sourceCluster": "src", "objectStore": STORE}
    if target is not None:
        r["pointInTime"] = target.isoformat()
    return cluster({"restore": r})


def test_restore_refuses_a_target_outside_the_window_naming_it() -> None:
    cat = catalog(
        [backup("a", 3, 3, T0)],
        range(3, 6),
        bk.Restorable(time=T0 + datetime.timedelta(hours=1), lsn=bk.format_lsn(5 * SEG)),
    )
    refused = restore.check(restoring(T0 - datetime.timedelta(minutes=1)), cat, STORE_SPEC, "db/src")
    assert (
        isinstance(refused, str)
        and "outside the restorable window" in refused
        and "2026-11-30T12:00:00Z" in refused
    )
    ok = restore.check(restoring(T0 + datetime.timedelta(minutes=30)), cat, STORE_SPEC, "db/src")
    assert isinstance(ok, api.RestoreStatus) and ok.backup_id == "a" and ok.target == "2026-11-30T12:30:00Z"
    latest = restore.check(restoring(None), cat, STORE_SPEC, "db/src")
    assert isinstance(latest, api.RestoreStatus) and latest.min_lsn == bk.format_lsn(5 * SEG)


def test_restore_of_an_empty_archive_is_refused() -> None:
    assert isinstance(restore.check(restoring(None), catalog([], range(0)), STORE_SPEC, "db/src"), str)


def test_restore_needs_an_object_store() -> None:
    with pytest.raises(ValueError, match="restore needs"):
        cluster({"restore": {"sourceCluster": "src"}})


def test_restore_source_reaches_the_instances_only_once_decided() -> None:
    settings = Settings()
    undecided = restoring(None)

    def env_names(c: api.AuroraCluster) -> set[str]:
        sts = instances.stateful_set(c, settings, 0, contract.ROLE_WRITER, 1)
        return {e["name"] for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}

    assert contract.EnvInstance.RESTORE_BACKUP_ID not in env_names(undecided)
    chosen = api.RestoreStatus(
        source="s3://quorumdb/db/src",
        object_store=STORE_SPEC,
        prefix="db/src",
        target="latest",
        backup_id="b1",
        window="w",
        min_lsn="0/5000000",
    )
    decided = undecided.model_copy(update={"status": undecided.status.model_copy(update={"restore": chosen})})
    names = env_names(decided)
    assert {contract.EnvInstance.RESTORE_BACKUP_ID, contract.EnvInstance.RESTORE_S3_PREFIX} <= names


def test_a_complete_backup_waiting_for_its_wal_is_not_taken_again() -> None:
    b = backup("a", 3, 4, T0)
    out = backups.decide(
        with_backup(),
        backups.Inputs(
            now=T0 + datetime.timedelta(seconds=20), catalog=catalog([b], range(3, 4)), readers=[("r", 0)]
        ),
    )
    assert out.start is None and out.condition.reason == "WaitingForWal"


def snapshot_of(status: dict[str, Any] | None = None) -> snap.AuroraSnapshot:
    return snap.AuroraSnapshot.model_validate(
        {
            "metadata": {"name": "before", "namespace": "db", "uid": "0123abcd-ffff", "generation": 1},
            "spec": {"clusterName": "demo"},
            "status": status or {},
        }
    )


READY_READER = {
    "instances": [{"name": "demo-instance-1", "role": "reader", "ready": True, "lagBytes": 0}],
    "writer": "demo-instance-0",
}


def test_snapshot_reads_a_reader_into_its_own_prefix_then_copies_its_wal() -> None:
    c = with_backup(READY_READER)
    first = snapshots.step(snapshot_of(), snapshots.Inputs(now=T0, cluster=c))
    assert first.request == "demo-instance-1" and first.status.phase == "Running"
    assert first.status.prefix == "db/demo/snapshots/before-0123abcd"
    running = snapshot_of(first.status.model_dump(by_alias=True, mode="json"))
    rec = backup(first.status.backup_id, 3, 4, T0 + datetime.timedelta(seconds=30))
    waiting = snapshots.step(
        running,
        snapshots.Inputs(
            now=T0 + datetime.timedelta(seconds=31), cluster=c, record=rec, segments=frozenset({3})
        ),
    )
    assert waiting.status.phase == "Running" and waiting.status.conditions[0].reason == "WaitingForWal"
    done = snapshots.step(
        running,
        snapshots.Inputs(
            now=T0 + datetime.timedelta(seconds=40), cluster=c, record=rec, segments=frozenset({3, 4, 5})
        ),
    )
    assert done.status.phase == "Completed" and done.copy_segments == (3, 4)
    assert done.status.lsn == rec.end_lsn and done.status.completed_at == rec.completed_at


def test_snapshot_of_a_missing_or_unbacked_cluster_fails_clearly() -> None:
    gone = snapshots.step(snapshot_of(), snapshots.Inputs(now=T0, cluster=None))
    assert gone.status.phase == "Failed" and gone.status.conditions[0].reason == "ClusterNotFound"
    bare = snapshots.step(snapshot_of(), snapshots.Inputs(now=T0, cluster=cluster()))
    assert bare.status.phase == "Failed" and bare.status.conditions[0].reason == "NoObjectStore"
    waiting = snapshots.step(snapshot_of(), snapshots.Inputs(now=T0, cluster=with_backup()))
    assert waiting.status.phase == "Pending" and waiting.request is None


def test_encryption_key_reaches_storage_and_instances_and_a_restore_reads_with_it() -> None:
    enc = {"keySecret": {"name": "backup-key"}}
    c = with_backup(encryption=enc)
    pod = instances.stateful_set(c, Settings(), 0, contract.ROLE_WRITER, 1)["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env[contract.Env.BACKUP_ENCRYPTED]["value"] == "1"
    assert env[contract.Env.BACKUP_KEY + "_FILE"]["value"] == "/etc/quorumdb/s3-secrets/own/key"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "s3-secrets"]
    assert {"name": "backup-key", "items": [{"key": "key", "path": "own/key"}], "optional": True} in [
        source["secret"] for source in volume["projected"]["sources"]
    ]
    r = cluster({"backup": {"objectStore": STORE, "encryption": enc}, "restore": {"sourceCluster": "src"}})
    decided = r.model_copy(
        update={
            "status": r.status.model_copy(
                update={
                    "restore": api.RestoreStatus(
                        source="s3://quorumdb/db/src",
                        object_store=STORE_SPEC,
                        prefix="db/src",
                        target="latest",
                        backup_id="b1",
                        window="w",
                        min_lsn="0/5000000",
                    )
                }
            )
        }
    )
    sts = instances.stateful_set(decided, Settings(), 0, contract.ROLE_WRITER, 1)
    names = {e["name"] for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert contract.EnvInstance.RESTORE_KEY + "_FILE" in names
    (volume,) = [v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == "s3-secrets"]
    paths = {item["path"] for source in volume["projected"]["sources"] for item in source["secret"]["items"]}
    assert {"restore/key", "restore/access-key-id", "restore/secret-access-key", "own/key"} <= paths


def test_a_deletion_mark_is_proven_only_once_the_archive_passes_it_and_it_is_newer() -> None:
    t = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
    base = [backup("b1", 2, 3, t)]
    mark = bk.Restorable(time=t + datetime.timedelta(minutes=5), lsn=bk.format_lsn(9 * SEG + 10))
    # The archive ends inside the mark's segment (not switched and archived yet): not proven.
    assert backups.archived_through(catalog(base, range(2, 9))) == 9 * SEG
    assert not backups.final_mark_proven(catalog(base, range(2, 9)), mark)
    # Once segment 9 is archived too, it is; not when a newer mark is already recorded, nor with a gap.
    assert backups.final_mark_proven(catalog(base, range(2, 10)), mark)
    later = bk.Restorable(time=mark.time + datetime.timedelta(seconds=1), lsn=mark.lsn)
    assert not backups.final_mark_proven(catalog(base, range(2, 10), later), mark)
    gap = catalog(base, [*range(2, 6), *range(7, 10)])  # type: ignore[arg-type]
    assert not backups.final_mark_proven(gap, mark)
    assert backups.archived_through(catalog([], range(2, 10))) is None


async def test_a_deletion_does_not_wait_for_a_mark_when_the_writer_pod_is_going_away() -> None:
    c = with_backup({"writer": "demo-instance-0", "systemIdentifier": "7"})
    kube = FakeKube()
    labels = {contract.LABEL_CLUSTER: "demo", contract.LABEL_INSTANCE: "demo-instance-0"}
    pod = factories.pod("demo-instance-0-0", labels)
    pod["status"]["podIP"] = "10.0.0.1"
    pod["metadata"]["deletionTimestamp"] = "2026-12-01T12:00:00Z"  # its namespace is being deleted
    kube.put(pod)
    url = f"http://10.0.0.1:{contract.INSTANCE_HTTP_PORT}"
    writer = InstanceReport(role="writer", term=1, flushed_lsn="0/5000000", ready=True)
    kind, message = await backup_pass.final_mark(kube, FakeInstances({url: writer}), c, timeout=1)
    assert kind == "Warning" and "being deleted" in message and "stays the last recorded" in message
    kind, message = await backup_pass.final_mark(FakeKube(), FakeInstances({}), c, timeout=1)
    assert kind == "Warning" and "unreachable" in message
