"""Base backups and the restorable window in object storage, with no I/O.

Why it exists: the instance manager writes base backups, the operator schedules them, reports the window
and checks restore targets, and a restoring instance picks one; all of them must agree on the layout and on
what "restorable" means, so both are small pure functions here. Layout under the cluster's prefix ``P``
(next to the WAL archive of ``archive_layout``):

    P/base/<id>/base.tar        pg_basebackup's tar of PGDATA, taken without WAL (``-X none``)
    P/base/<id>/backup.json     its ``BaseBackup`` record, written last: a backup without one is incomplete
    P/restorable.json           the ``Restorable`` mark: the latest time whose commits are all archived

A base backup is usable once the archive holds every segment from its start LSN to its end LSN; a time T
is restorable when some usable backup completed at or before T, the archive is contiguous from that
backup's start, and T is no later than the latest proven mark. The mark is proven by the operator (a time
``t`` and the writer's flushed LSN read just after ``t``: once the archive is contiguous past that LSN,
every commit stamped at or before ``t`` is archived) and written to the bucket, so a cluster's window can
be read after the cluster itself is deleted. It must not talk to S3.

It lives in ``aurora_api`` because the operator and the storage engine meet only here; the little LSN
arithmetic it needs is spelled out below rather than imported from ``aurora_storage.lsn``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

BACKUP_FILE = "base.tar"
RECORD_FILE = "backup.json"
RESTORABLE_FILE = "restorable.json"
SEGMENT_SIZE = 16 * 1024 * 1024
_SEGMENT_KEY = re.compile(r"/wal/[0-9A-F]{8}/[0-9A-F]{8}([0-9A-F]{8})([0-9A-F]{8})$")
_SEGMENTS_PER_ID = 0x1_0000_0000 // SEGMENT_SIZE


def parse_lsn(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def segment_of(lsn: int) -> int:
    return lsn // SEGMENT_SIZE


def segment_start(segno: int) -> int:
    return segno * SEGMENT_SIZE


def _base(prefix: str) -> str:
    return f"{prefix}/base/" if prefix else "base/"


def backups_prefix(prefix: str) -> str:
    return _base(prefix)


def backup_key(prefix: str, backup_id: str) -> str:
    return f"{_base(prefix)}{backup_id}/{BACKUP_FILE}"


def record_key(prefix: str, backup_id: str) -> str:
    return f"{_base(prefix)}{backup_id}/{RECORD_FILE}"


def restorable_key(prefix: str) -> str:
    return f"{prefix}/{RESTORABLE_FILE}" if prefix else RESTORABLE_FILE


def new_id(at: datetime.datetime) -> str:
    """Sortable and readable: the UTC start time to the second."""
    return at.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


class BaseBackup(BaseModel):
    """What one base backup holds; written as ``backup.json`` after its tar is uploaded and verified."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    system_identifier: str
    timeline: int
    start_lsn: str
    end_lsn: str
    started_at: datetime.datetime
    completed_at: datetime.datetime
    size_bytes: int
    sha256: str
    instance: str = ""
    """Instance the backup was read from (a reader unless the cluster had none)."""
    compression: str = "none"
    """How the tar is compressed (``zstd`` or ``none``); ``size_bytes`` and ``sha256`` are of the stored
    (compressed, unencrypted) stream."""
    reason: str = ""

    @property
    def start(self) -> int:
        return parse_lsn(self.start_lsn)

    @property
    def end(self) -> int:
        return parse_lsn(self.end_lsn)


class Restorable(BaseModel):
    """The latest proven restorable time: every commit stamped at or before ``time`` is archived."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    time: datetime.datetime
    lsn: str
    """The writer's flushed LSN read after ``time``; the archive is contiguous past it."""


def archived_segments(keys: Iterable[str]) -> set[int]:
    """Segment numbers present in the archive (any timeline: a failover's new timeline continues the
    same segment numbers, and a segment is archived under the timeline that completed it)."""
    out = set()
    for key in keys:
        m = _SEGMENT_KEY.search("/" + key)
        if m:
            out.add(int(m.group(1), 16) * _SEGMENTS_PER_ID + int(m.group(2), 16))
    return out


def contiguous_end(segments: set[int], from_lsn: int) -> int | None:
    """The LSN up to which the archive holds every segment from ``from_lsn``'s segment on, or None when
    that first segment is missing."""
    segno = segment_of(from_lsn)
    if segno not in segments:
        return None
    while segno + 1 in segments:
        segno += 1
    return segment_start(segno + 1)


def usable(backups: Iterable[BaseBackup], segments: set[int]) -> list[BaseBackup]:
    """Backups whose own WAL (start to end) is archived, oldest first."""
    out = []
    for b in backups:
        end = contiguous_end(segments, b.start)
        if end is not None and end >= b.end:
            out.append(b)
    return sorted(out, key=lambda b: b.completed_at)


@dataclass(frozen=True)
class Window:
    earliest: datetime.datetime
    latest: datetime.datetime
    """Latest proven restorable time (the mark), or the newest usable backup's completion when no mark
    reaches past it."""

    def __contains__(self, t: datetime.datetime) -> bool:
        return self.earliest <= t <= self.latest

    def describe(self) -> str:
        return f"{_iso(self.earliest)} to {_iso(self.latest)}"


def _iso(t: datetime.datetime) -> str:
    return t.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def window(backups: Sequence[BaseBackup], segments: set[int], mark: Restorable | None) -> Window | None:
    """The restorable window, or None when no backup is usable yet.

    The earliest time is the oldest usable backup's completion; the latest is the mark when the archive is
    contiguous from that backup past the mark's LSN (it always is for a mark the operator proved, unless
    objects were deleted behind it), else the newest usable backup's completion.
    """
    good = usable(backups, segments)
    if not good:
        return None
    oldest = good[0]
    latest = good[-1].completed_at
    if mark is not None:
        end = contiguous_end(segments, oldest.start)
        if end is not None and end >= parse_lsn(mark.lsn) and mark.time > latest:
            latest = mark.time
    return Window(oldest.completed_at, latest)


def choose(backups: Sequence[BaseBackup], segments: set[int], target: datetime.datetime | None) -> BaseBackup:
    """The newest usable backup completed at or before ``target`` (None: the newest usable one).
    Raises LookupError when there is none."""
    good = [b for b in usable(backups, segments) if target is None or b.completed_at <= target]
    if not good:
        raise LookupError(
            "no usable base backup" + ("" if target is None else f" completed by {_iso(target)}")
        )
    return good[-1]
