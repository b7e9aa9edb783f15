"""Mutable run-time facts shared by the node's tasks, and the status document built from them.

Why it exists: the receiver, writer watch, archiver and repair loops each own a few facts; the HTTP API
and metrics read all of them. One object with explicit fields (no module globals) keeps that visible.
It must not perform I/O except through the store it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from aurora_storage import lsn as lsnmod
from aurora_storage.node import config as configmod
from aurora_storage.node import state as statemod
from aurora_storage.node import store as storemod


class Notifier:
    """Broadcast "something changed" to any number of waiting loops, without losing a notification.

    Each waiter remembers the :attr:`generation` it last acted on and waits for a newer one, so a
    notification that arrives while the waiter is busy is seen by its next :meth:`wait` (the
    clear-then-work pattern of one ``asyncio.Event`` per consumer, without one event per consumer).
    """

    def __init__(self) -> None:
        self.generation = 0
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self.generation += 1
        self._changed.set()
        self._changed = asyncio.Event()  # later waiters wait for the next notification

    async def wait(self, seen: int, timeout: float | None) -> int:
        """Return the current generation once it differs from ``seen`` or ``timeout`` s have passed."""
        if self.generation == seen:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        return self.generation


@dataclass
class WriterWatch:
    """Latest observation of the writer (refreshed about once a second while configured)."""

    reachable: bool = False
    term: int | None = None
    system_identifier: str | None = None
    flush_lsn: int | None = None
    storage_flush: dict[str, int | None] = field(default_factory=dict)
    streaming_nodes: int = 0
    durable_lsn: int | None = None
    observed_at: float = 0.0
    error: str | None = None


@dataclass
class RepairProgress:
    repairing: bool = True
    missing: list[str] = field(default_factory=list)
    fetched_files: int = 0
    fetched_bytes: int = 0
    from_archive: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    last_round_ok: bool = False
    last_error: str | None = None
    generation: int = 0
    """Bumped whenever something finds a new hole; a repair round that began earlier cannot clear it."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by :meth:`invalidate` so that a sleeping repair loop starts a round at once."""

    def invalidate(self) -> None:
        self.repairing = True
        self.generation += 1
        self.wake.set()


@dataclass
class Counters:
    segments_archived: int = 0
    archive_confirmed: int = 0
    archive_errors: int = 0
    archived_lsn: int = 0
    corrupt_detected: int = 0
    receiver_starts: int = 0
    deleted_segments: int = 0


@dataclass
class Runtime:
    cfg: configmod.NodeConfig
    store: storemod.WalStore
    state_file: statemod.StateFile
    state: statemod.NodeState
    writer: WriterWatch = field(default_factory=WriterWatch)
    repair: RepairProgress = field(default_factory=RepairProgress)
    counters: Counters = field(default_factory=Counters)
    receiver_pid: int | None = None
    receiver_since: float | None = None
    decision: str = "starting"
    last_receiver_error: str | None = None
    term_changed: asyncio.Event = field(default_factory=asyncio.Event)
    recheck: asyncio.Event = field(default_factory=asyncio.Event)
    """The writer re-declared the same term (a promotion's confirmation): a receiver that is not streaming
    probes it now instead of at its next re-check; a streaming one is left alone."""
    term_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wal_changed: Notifier = field(default_factory=Notifier)
    """A completed WAL file appeared in ``wal/`` (the receiver's reports): sealing wakes on it."""
    sealed_changed: Notifier = field(default_factory=Notifier)
    """A file was sealed or installed (a manifest record appeared): the archiver wakes on it."""

    @property
    def streaming(self) -> bool:
        return self.receiver_pid is not None

    def acked_lsn(self) -> int | None:
        """The flush position this node last reported to the writer (seen in pg_stat_replication)."""
        return self.writer.storage_flush.get(self.cfg.name) if self.writer.reachable else None

    @property
    def healthy(self) -> bool:
        return not self.repair.repairing

    def status(self, entries: list[storemod.Entry]) -> dict[str, Any]:
        segs = [e for e in entries if e.kind != "history"]
        newest = max(segs, key=lambda e: (e.timeline, e.segno, e.kind == "partial"), default=None)
        flush = newest.end_lsn if newest else None
        w = self.writer
        reported = w.storage_flush.get(self.cfg.name) if w.reachable else None
        # The scan stops at the last non-zero byte; the position this node acknowledged is exact.
        if (
            newest is not None
            and flush is not None
            and reported is not None
            and lsnmod.segment_start(newest.segno) <= reported <= lsnmod.segment_start(newest.segno + 1)
        ):
            flush = max(flush, reported)
        lag = w.flush_lsn - flush if (w.flush_lsn is not None and flush is not None and w.reachable) else None
        unquorumed = (
            w.flush_lsn - w.durable_lsn
            if (w.reachable and w.flush_lsn is not None and w.durable_lsn is not None)
            else None
        )
        r = self.repair
        return {
            "node": self.cfg.name,
            "ordinal": self.cfg.ordinal,
            "term": self.state.term,
            "writer": self.state.writer,
            "system_identifier": self.state.system_identifier,
            "healthy": self.healthy,
            "state": "repairing" if r.repairing else ("streaming" if self.streaming else "idle"),
            "streaming": self.streaming,
            "receiver_pid": self.receiver_pid,
            "decision": self.decision,
            "receiver_error": self.last_receiver_error,
            "timeline": newest.timeline if newest else None,
            "flush_lsn": lsnmod.format_lsn(flush) if flush is not None else None,
            "writer_flush_lsn": lsnmod.format_lsn(w.flush_lsn) if w.flush_lsn is not None else None,
            "lag_bytes": lag,
            "writer_durable_lsn": lsnmod.format_lsn(w.durable_lsn) if w.durable_lsn is not None else None,
            "writer_streaming_nodes": w.streaming_nodes if w.reachable else None,
            "unquorumed_bytes": unquorumed,
            "bytes_stored": sum(e.size for e in entries),
            "segments": len([e for e in entries if e.kind == "segment"]),
            "archived_lsn": lsnmod.format_lsn(self.counters.archived_lsn)
            if self.counters.archived_lsn
            else None,
            "segments_archived": self.counters.segments_archived,
            "repair": {
                "repairing": r.repairing,
                "missing": len(r.missing),
                "fetched_files": r.fetched_files,
                "fetched_bytes": r.fetched_bytes,
                "from_archive": r.from_archive,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "last_error": r.last_error,
            },
            "time": time.time(),
        }
