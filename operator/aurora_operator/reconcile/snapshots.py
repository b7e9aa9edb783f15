"""An ``AuroraSnapshot``'s next step, pure: Pending → Running → Completed (or Failed), decided from what the
cluster, its instance and its object store report.

Why a state machine on the object: taking a snapshot spans minutes and operator restarts; each pass reads
the recorded phase and the world and moves one step. Steps: pick the instance (the least lagging ready
reader; the writer only when the cluster has no reader) and ask it for a base backup into the snapshot's
prefix (the id is derived from the snapshot's uid, so repeating the request after a restart is the same
job); follow the job; once its record exists and the cluster's archive holds the WAL from its start to
its end, copy those segments next to it. Then the snapshot is self-contained and Completed.
"""

from __future__ import annotations

import dataclasses
import datetime

from aurora_api import backups as bk
from aurora_api.reports import BackupJobReport
from aurora_api.v1alpha1 import snapshot as snap
from aurora_api.v1alpha1.cluster import AuroraCluster

from . import conditions
from .backups import reader_lags

CONDITION = "Completed"
LOST_JOB_SECONDS = 60.0


def snapshot_dir(s: snap.AuroraSnapshot) -> str:
    """``snapshots/<name>-<uid>``: a name reused after a Retain delete never lands on the old objects."""
    return f"snapshots/{s.metadata.name}-{(s.metadata.uid or '')[:8]}"


def backup_id(s: snap.AuroraSnapshot) -> str:
    return "s" + "".join(ch for ch in (s.metadata.uid or s.metadata.name) if ch.isalnum())[:16]


@dataclasses.dataclass(frozen=True)
class Inputs:
    now: datetime.datetime
    cluster: AuroraCluster | None
    job: BackupJobReport | None = None
    """The snapshot's job as its instance reports it (None: unknown there or unreachable)."""
    record: bk.BaseBackup | None = None
    """Its base backup's record, once written."""
    segments: frozenset[int] = frozenset()
    """Segments in the cluster's archive."""


@dataclasses.dataclass(frozen=True)
class Step:
    status: snap.AuroraSnapshotStatus
    request: str | None = None
    """Instance to ask for the base backup now."""
    copy_segments: tuple[int, ...] = ()
    """Segments to copy from the cluster's archive into the snapshot (then it is Completed)."""
    event: tuple[str, str, str] | None = None


def _status(s: snap.AuroraSnapshot, phase: snap.SnapshotPhase, ok: bool | None, reason: str, message: str,
            now: datetime.datetime, **changes: object) -> snap.AuroraSnapshotStatus:  # fmt: skip
    cond = conditions.make(CONDITION, ok, reason, message, s.metadata.generation)
    return s.status.model_copy(update={
        "phase": phase, "observed_generation": s.metadata.generation,
        "conditions": conditions.merge(s.status.conditions, [cond], now.replace(microsecond=0)), **changes,
    })  # fmt: skip


def step(s: snap.AuroraSnapshot, inp: Inputs) -> Step:
    st, now, c = s.status, inp.now, inp.cluster
    if st.phase in ("Completed", "Failed"):
        return Step(st)
    if st.phase != "Running":
        if c is None:
            msg = f"AuroraCluster {s.spec.cluster_name!r} not found in this namespace"
            return Step(
                _status(s, "Failed", False, "ClusterNotFound", msg, now),
                event=("Warning", "SnapshotFailed", msg),
            )
        if c.spec.backup is None:
            msg = (
                f"AuroraCluster {s.spec.cluster_name!r} has no spec.backup object store to keep a snapshot in"
            )
            return Step(
                _status(s, "Failed", False, "NoObjectStore", msg, now),
                event=("Warning", "SnapshotFailed", msg),
            )
        readers = reader_lags(c)
        writer = next((i for i in c.status.instances if i.name == c.status.writer and i.ready), None)
        source = min(readers, key=lambda r: r[1])[0] if readers else None
        if source is None and c.spec.instances.readers == 0 and writer is not None:
            source = writer.name
        if source is None:
            msg = "waiting for a ready reader to read the snapshot from"
            return Step(_status(s, "Pending", False, "WaitingForInstance", msg, now))
        prefix = (c.spec.backup.object_store.prefix or f"{c.metadata.namespace}/{c.metadata.name}").strip("/")
        full = f"{prefix}/{snapshot_dir(s)}"
        store = c.spec.backup.object_store
        running = _status(
            s, "Running", False, "BaseBackupRunning", f"base backup from {source}", now, started_at=now,
            instance=source, backup_id=backup_id(s), prefix=full, object_store=store,
            location=f"s3://{store.bucket}/{full}/",
        )  # fmt: skip
        return Step(
            running, request=source, event=("Normal", "SnapshotStarted", f"reading {source} into {full}")
        )
    # Running: follow the job, then the WAL.
    job = inp.job
    if inp.record is None:
        if job is not None and job.state == "failed":
            msg = f"base backup from {st.instance} failed: {job.message}"
            return Step(
                _status(s, "Failed", False, "BackupFailed", msg, now),
                event=("Warning", "SnapshotFailed", msg),
            )
        if (
            job is None
            and st.started_at is not None
            and (now - st.started_at).total_seconds() > LOST_JOB_SECONDS
        ):
            msg = f"{st.instance} no longer knows the snapshot's base backup (restarted?)"
            return Step(
                _status(s, "Failed", False, "BackupLost", msg, now), event=("Warning", "SnapshotFailed", msg)
            )
        done = job.bytes_done if job is not None else st.bytes_done
        msg = f"base backup from {st.instance}: {done} bytes uploaded"
        return Step(_status(s, "Running", False, "BaseBackupRunning", msg, now, bytes_done=done))
    rec = inp.record
    needed = tuple(range(bk.segment_of(rec.start), bk.segment_of(rec.end - 1) + 1))
    missing = [n for n in needed if n not in inp.segments]
    if missing:
        msg = f"base backup done; waiting for the archive to hold its WAL (segments {len(missing)} missing)"
        return Step(_status(s, "Running", False, "WaitingForWal", msg, now, bytes_done=rec.size_bytes))
    msg = f"consistent at {rec.end_lsn} on timeline {rec.timeline}"
    done_status = _status(
        s, "Completed", True, "Completed", msg, now, completed_at=rec.completed_at, lsn=rec.end_lsn,
        timeline=rec.timeline, size_bytes=rec.size_bytes, bytes_done=rec.size_bytes,
    )  # fmt: skip
    return Step(done_status, copy_segments=needed, event=("Normal", "SnapshotCompleted", msg))
