"""The backup pass's decisions, pure: schedule base backups, prove the restorable time, apply retention.

Why its own pass: it reads the object store (slow, and possibly down) and must never delay a failover, so
it runs on its own timer and writes only ``status.backup`` and the ``Backup`` condition. Rules:

- a base backup is taken from a ready reader (the least lagging), from the writer only when the spec asks
  for no reader (a cluster with readers waits for one to be ready); at once when no usable backup
  exists, then on ``spec.backup.schedule`` (UTC cron), and on request (annotation
  ``REQUEST_ANNOTATION``). The job is recorded in status before it is requested,
  so a restarted operator follows the same job instead of starting a second one;
- the latest restorable time only moves forward and only to a proven mark: a time ``t`` and the writer's
  flushed LSN read after ``t``; once the archive is contiguous past that LSN every commit stamped at or
  before ``t`` is archived. The proven mark is also written to the bucket (it outlives the cluster);
- retention keeps every base backup completed within ``retentionDays`` plus the newest one before that
  (so the whole period stays restorable), and the WAL from the oldest kept backup on. Nothing is deleted
  unless a usable backup remains, so the window is never broken.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence

import croniter  # type: ignore[import-untyped]
from aurora_api import backups as bk
from aurora_api.reports import BackupJobReport
from aurora_api.v1alpha1 import cluster as api
from aurora_api.v1alpha1.cluster import AuroraCluster
from aurora_api.v1alpha1.common import Condition

from . import conditions

REQUEST_ANNOTATION = "quorumdb.io/backup-request"
"""Set (any value) to ask for a base backup now; removed when the backup is requested."""
CONDITION = "Backup"
MAX_MARKS = 32
RETRY_SECONDS = 60.0
"""A failed base backup is tried again (from the then best instance) after this long."""
LOST_JOB_SECONDS = 60.0
"""A recorded job its instance does not know (the pod restarted) for this long is given up."""
INCOMPLETE_GRACE = datetime.timedelta(hours=1)
"""Tars without a record older than this, and not running, are abandoned uploads: deleted."""


@dataclasses.dataclass(frozen=True)
class Catalog:
    """The parts of the object store's listing the decisions use (built by ``objectstore``)."""

    backups: Sequence[bk.BaseBackup]
    incomplete: Sequence[str]
    segments: frozenset[int]
    wal_keys: Sequence[str]
    restorable: bk.Restorable | None


@dataclasses.dataclass(frozen=True)
class Inputs:
    now: datetime.datetime
    catalog: Catalog | None
    """None when the store could not be read (``store_error`` says why)."""
    store_error: str = ""
    mark: api.WalMark | None = None
    """This pass's sample: the time before reading the writer's flushed LSN, and that LSN."""
    readers: Sequence[tuple[str, int]] = ()
    """Ready readers and their lag in bytes."""
    writer: str | None = None
    """The writer, when it is ready (used only when the spec asks for no reader)."""
    job: BackupJobReport | None = None
    """The recorded running job as its instance reports it (None: unknown to the instance or unreachable)."""


@dataclasses.dataclass(frozen=True)
class Start:
    backup_id: str
    instance: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: api.BackupStatus
    condition: Condition
    start: Start | None = None
    write_restorable: bk.Restorable | None = None
    delete: tuple[str, ...] = ()
    events: tuple[tuple[str, str, str], ...] = ()
    """(type, reason, message)"""
    clear_request: bool = False


def _iso(t: datetime.datetime) -> str:
    return t.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def _due(c: AuroraCluster, now: datetime.datetime, last_started: datetime.datetime | None) -> str | None:
    """Why a base backup is due now, or None."""
    assert c.spec.backup is not None
    if REQUEST_ANNOTATION in c.metadata.annotations:
        return f"requested ({REQUEST_ANNOTATION})"
    if last_started is None:
        return "no usable base backup yet"
    fire = croniter.croniter(c.spec.backup.schedule, now).get_prev(datetime.datetime)
    if fire > last_started:
        return f"scheduled ({c.spec.backup.schedule}, {_iso(fire)})"
    return None


def next_fire(schedule: str, now: datetime.datetime) -> datetime.datetime:
    nxt: datetime.datetime = croniter.croniter(schedule, now).get_next(datetime.datetime)
    return nxt


def _retention(
    c: AuroraCluster, now: datetime.datetime, cat: Catalog, running: str | None
) -> tuple[list[str], list[bk.BaseBackup]]:
    """Keys to delete and the backups kept."""
    assert c.spec.backup is not None
    good = bk.usable(cat.backups, set(cat.segments))
    if not good:
        return [], list(cat.backups)
    cutoff = now - datetime.timedelta(days=c.spec.backup.retention_days)
    before = [b for b in good if b.completed_at < cutoff]
    keep = [b for b in good if b.completed_at >= cutoff] + before[-1:]
    keep_ids = {b.id for b in keep}
    prefix = _prefix(c)
    doomed = [b for b in cat.backups if b.id not in keep_ids and b.completed_at < cutoff]
    keys = [k for b in doomed for k in (bk.record_key(prefix, b.id), bk.backup_key(prefix, b.id))]
    for backup_id in cat.incomplete:
        if backup_id == running:
            continue
        try:
            started = datetime.datetime.strptime(backup_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        except ValueError:
            continue
        if now - started > INCOMPLETE_GRACE:
            keys.append(bk.backup_key(prefix, backup_id))
    oldest_start = min(b.start for b in keep)
    first_segment = bk.segment_of(oldest_start)
    for key in cat.wal_keys:
        segno = bk.archived_segments([key])
        if segno and min(segno) < first_segment:
            keys.append(key)
    return keys, keep


def _prefix(c: AuroraCluster) -> str:
    assert c.spec.backup is not None
    return (c.spec.backup.object_store.prefix or f"{c.metadata.namespace}/{c.metadata.name}").strip("/")


def decide(c: AuroraCluster, inp: Inputs) -> Outcome:
    assert c.spec.backup is not None
    gen = c.metadata.generation
    prev = c.status.backup or api.BackupStatus()
    events: list[tuple[str, str, str]] = []
    running = prev.running
    failure = prev.last_failure
    # The recorded job: follow it to its end.
    if running is not None:
        job = inp.job
        why = None
        if job is not None and job.state == "completed":
            text = f"base backup {running.id} from {running.instance}: {job.message}"
            events.append(("Normal", "BackupCompleted", text))
            running = None
        elif job is not None and job.state == "failed":
            why = f"base backup {running.id} from {running.instance} failed: {job.message}"
        elif job is not None:
            running = running.model_copy(update={"bytes_done": job.bytes_done})
        elif (inp.now - running.started_at).total_seconds() > LOST_JOB_SECONDS:
            why = f"base backup {running.id}: {running.instance} no longer knows it (restarted?)"
        if why is not None and running is not None:
            events.append(("Warning", "BackupFailed", f"{why}; retrying in {RETRY_SECONDS:.0f}s"))
            failure = api.BackupFailure(id=running.id, time=inp.now, message=why[:1024])
            running = None
    marks = list(prev.pending_marks)
    if inp.mark is not None:
        marks.append(inp.mark)
    marks = marks[-MAX_MARKS:]
    cat = inp.catalog
    if cat is None:
        cond = conditions.make(CONDITION, False, "ObjectStoreUnavailable",
                               f"cannot read the object store: {inp.store_error}", gen)  # fmt: skip
        status = prev.model_copy(update={"running": running, "pending_marks": marks, "last_failure": failure})
        return Outcome(status, cond, events=tuple(events))
    segments = set(cat.segments)
    good = bk.usable(cat.backups, segments)
    archived_end = archived_through(cat)
    # Prove marks: every mark whose LSN the contiguous archive passed.
    restorable = cat.restorable
    write = None
    if archived_end is not None:
        proven = [m for m in marks if bk.parse_lsn(m.lsn) <= archived_end]
        marks = [m for m in marks if bk.parse_lsn(m.lsn) > archived_end]
        if proven:
            best = max(proven, key=lambda m: m.time)
            if restorable is None or best.time > restorable.time:
                restorable = bk.Restorable(time=best.time, lsn=best.lsn)
                write = restorable
    window = bk.window(good, segments, restorable)
    # Retention (never while nothing usable exists; ``_retention`` keeps the window whole).
    delete, _ = _retention(c, inp.now, cat, running.id if running else None)
    # Schedule.
    start = None
    # Every complete backup counts for the schedule, usable or not yet (its WAL may still be sealing).
    last_started = max((b.started_at for b in cat.backups), default=None)
    if running is not None:
        last_started = max(last_started or running.started_at, running.started_at)
    backing_off = failure is not None and (inp.now - failure.time).total_seconds() < RETRY_SECONDS
    due = _due(c, inp.now, last_started) if running is None and not backing_off else None
    clear = False
    if due is not None:
        if inp.readers:
            source: str | None = min(inp.readers, key=lambda r: r[1])[0]
        else:
            source = inp.writer if c.spec.instances.readers == 0 else None
        if source is not None:
            why = due if inp.readers else f"{due}; from the writer: the cluster has no reader"
            start = Start(bk.new_id(inp.now), source, why)
            running = api.RunningBackup(id=start.backup_id, instance=source, reason=why, started_at=inp.now)
            clear = REQUEST_ANNOTATION in c.metadata.annotations
    newest = good[-1] if good else None
    status = api.BackupStatus(
        earliest_restorable_time=window.earliest if window else None,
        latest_restorable_time=window.latest if window else None,
        archived_lsn=bk.format_lsn(archived_end) if archived_end is not None else None,
        base_backups=len(good),
        last_backup=(
            api.BackupRef(
                id=newest.id,
                completed_at=newest.completed_at,
                lsn=newest.end_lsn,
                size_bytes=newest.size_bytes,
                instance=newest.instance,
            )
            if newest
            else None
        ),
        running=running,
        last_failure=failure,
        next_backup_time=next_fire(c.spec.backup.schedule, inp.now),
        pending_marks=marks,
    )
    if window is not None:
        text = f"restorable from {window.describe()}; {len(good)} base backups"
        cond = conditions.make(CONDITION, True, "Restorable", text, gen)
    elif cat.backups:
        text = "base backup done; waiting for the archive to hold its WAL (sealed within archive_timeout)"
        cond = conditions.make(CONDITION, False, "WaitingForWal", text, gen)
    elif running is not None:
        text = (
            f"base backup {running.id} from {running.instance} in progress; nothing is restorable until it "
            "completes and its WAL is archived"
        )
        cond = conditions.make(CONDITION, False, "FirstBackupRunning", text, gen)
    else:
        text = (
            "no usable base backup yet: waiting for a ready reader to take it from (never the writer "
            "while the cluster has readers)"
            if c.spec.instances.readers
            else "no usable base backup yet"
        )
        cond = conditions.make(CONDITION, False, "NoBaseBackup", text, gen)
    return Outcome(status, cond, start, write, tuple(delete), tuple(events), clear)


def archived_through(cat: Catalog) -> int | None:
    """The LSN up to which the archive holds every segment from the oldest usable backup's start (every
    commit below it is restorable); None while no backup is usable."""
    segments = set(cat.segments)
    good = bk.usable(cat.backups, segments)
    return bk.contiguous_end(segments, good[0].start) if good else None


def final_mark_proven(cat: Catalog, mark: bk.Restorable) -> bool:
    """The deletion's last mark is proven (the archive passed its LSN) and moves the window forward."""
    end = archived_through(cat)
    newer = cat.restorable is None or mark.time > cat.restorable.time
    return end is not None and end >= bk.parse_lsn(mark.lsn) and newer


def reader_lags(c: AuroraCluster) -> list[tuple[str, int]]:
    """Ready readers from the last status, with their lag in bytes (unknown lag counts as large)."""
    writer = c.status.writer
    return [
        (i.name, i.lag_bytes if i.lag_bytes is not None else 1 << 62)
        for i in c.status.instances
        if i.name != writer and i.role == "reader" and i.ready
    ]


def job_of(
    jobs: Mapping[str, Sequence[BackupJobReport] | None], running: api.RunningBackup
) -> BackupJobReport | None:
    found = jobs.get(running.instance)
    return next((j for j in found or () if j.id == running.id), None)
