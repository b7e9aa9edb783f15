"""Promotion and crash recovery of the writer: the two places where acknowledged commits could be lost.

Why (measured, docs/research dataplane.md): promoting a lagging reader without catching it up from the storage
quorum lost 5,611 of 6,335 acknowledged commits; restarting a crashed writer on its local WAL made commits
visible that only three nodes held. So:

``promote``: fence (nodes refuse the old term; the storage nodes' slots are created meanwhile) -> stop
streaming from the old writer -> read the WAL tail of the first READ_QUORUM fenced nodes to answer (W+R>N so
it holds every acknowledged commit) -> replay through its last complete record via ``restore_command`` ->
``pg_promote`` (the fenced nodes, told to follow this instance, start streaming as soon as it is out of
recovery) -> confirm the term.

``recover_writer``: a crashed writer keeps its term only if the nodes still grant it; it restarts with clients
shut out, lets the storage nodes stream its local tail, and opens only once WRITE_QUORUM nodes hold all of its
WAL. In-doubt commits thus become durable *before* anyone can see them, or the writer never opens.
It must not choose *which* instance to promote: the control plane does, by raising the term.
"""

from __future__ import annotations

import concurrent.futures
import logging
import shutil
import time
from pathlib import Path

import psycopg
from aurora_api import contract
from aurora_storage import lsn, quorum

from aurora_instance import files, sql, waldump
from aurora_instance.actions import ActionError, fence, write_config
from aurora_instance.context import Context
from aurora_instance.snapshot import Intent
from aurora_instance.storage import WalTail

log = logging.getLogger(__name__)
CATCH_UP_TIMEOUT = 120.0
QUORUM_WAIT_TIMEOUT = 60.0
MAX_PREFETCH_SEGMENTS = 8  # beyond this restore_command fetches the rest itself
PROMOTE_TIMEOUT = 60.0
PROMOTE_POLL = 0.005


class PromotionError(ActionError):
    pass


class Laps:
    """Named durations of a promotion's steps, for its result message: where a slow failover spends time."""

    def __init__(self) -> None:
        self.start = self._last = time.monotonic()
        self.items: list[tuple[str, float]] = []

    def lap(self, step: str) -> None:
        now = time.monotonic()
        self.items.append((step, now - self._last))
        self._last = now

    def __str__(self) -> str:
        steps = ", ".join(f"{step} {seconds:.2f}s" for step, seconds in self.items)
        return f"{steps}; total {self._last - self.start:.2f}s"


def _hold(ctx: Context) -> Path:
    """Empty WAL cache with ``.hold``: restore_command answers "absent" at once instead of asking the quorum
    (PostgreSQL then reads its own pg_wal), so no slow fetch is in flight when replay must move."""
    cache = ctx.settings.wal_cache
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(mode=0o700)
    ctx.settings.wal_hold.touch()
    return cache


def _history(ctx: Context, tail: WalTail) -> None:
    """Cache the history file of the quorum's timeline (it names every ancestor: the only one promotion
    reads, as the new timeline's parent) and mark the next timelines' absent, so end-of-recovery probes
    need no round trip. One fetch: fetching every ancestor's, one after another, took 1.9 s at timeline 8
    on a loaded node. None when this reader's pg_wal holds it already (a history file never changes, and
    PostgreSQL reads pg_wal when restore_command answers "absent"): the fetch asks every node for its
    inventory first, 0.3-0.6 s during a switchover. Anything else uncached is "absent" while the hold
    lasts."""
    cache = ctx.settings.wal_cache
    if tail.timeline > 1:
        name = lsn.history_name(tail.timeline)
        held = (ctx.settings.pgdata / "pg_wal" / name).exists()
        if not held and not ctx.storage.fetch(name, cache / name):
            log.warning("the storage quorum is on timeline %d but holds no %s", tail.timeline, name)
    for tli in range(tail.timeline + 1, tail.timeline + 4):
        (cache / f"{lsn.history_name(tli)}.absent").touch()


def _prefetch(ctx: Context, tail: WalTail, replayed: int) -> Path:
    """Copy the quorum's WAL from the replay position to its tail into the cache; return the tail segment.

    The hold stays when the cache covers the whole range: PostgreSQL retries restore_command for the segment
    after the tail every ``wal_retrieve_retry_interval`` until promoted, and each of those would otherwise
    start an interpreter and ask six nodes for a file that cannot exist (it delayed pg_promote by a second).
    Only when more than MAX_PREFETCH_SEGMENTS are missing is the hold lifted, for restore_command to fetch
    the older ones itself."""
    cache = ctx.settings.wal_cache
    last = lsn.segment_of(max(tail.end - 1, 0))
    needed = lsn.segment_of(replayed)
    first = max(needed, last - MAX_PREFETCH_SEGMENTS + 1)
    for segno in range(first, last + 1):
        name = lsn.segment_name(tail.timeline, segno)
        if not ctx.storage.fetch(name, cache / name):
            raise PromotionError(f"storage quorum lists WAL up to {lsn.format_lsn(tail.end)} but not {name}")
    if first > needed:
        ctx.settings.wal_hold.unlink(missing_ok=True)
    return cache / lsn.segment_name(tail.timeline, last)


def _local_copy(ctx: Context, tail: WalTail, timeline: int | None, received: int | None) -> Path | None:
    """The quorum's tail segment built from this instance's own pg_wal, without fetching the 16 MiB
    partial (1.2 s on a loaded node). Both copies came from the same writer and WAL positions are unique
    within a timeline, so what this reader's receiver wrote is byte for byte what the quorum holds:

    * it wrote through the quorum's end: its pg_wal file is the tail segment (typical: readers stream in
      step with the storage nodes);
    * it stopped short inside that segment: its bytes up to ``received`` plus the quorum's
      ``[received, end)`` (a range request of a few KiB) make the segment, cached for restore_command.

    None when the receiver was on another timeline or in an earlier segment: the caller fetches."""
    segno = lsn.segment_of(max(tail.end - 1, 0))
    name = lsn.segment_name(tail.timeline, segno)
    local = ctx.settings.pgdata / "pg_wal" / name
    if (
        timeline != tail.timeline
        or received is None
        or received <= lsn.segment_start(segno)
        or not local.exists()
    ):
        log.info(
            "fetching the quorum's tail segment: this reader received %s on timeline %s, the quorum holds %s "
            "on timeline %d", lsn.format_lsn(received) if received is not None else "nothing", timeline,
            lsn.format_lsn(tail.end), tail.timeline,
        )  # fmt: skip
        return None
    if received >= tail.end:
        return local
    missing = ctx.storage.fetch_range(tail.timeline, received, tail.end)
    if missing is None:
        return None
    have = received - lsn.segment_start(segno)
    data = local.read_bytes()[:have] + missing
    built = ctx.settings.wal_cache / name
    built.write_bytes(data + b"\0" * (lsn.WAL_SEGMENT_SIZE - len(data)))
    log.info("tail segment %s: %d bytes of pg_wal + %d from the quorum", name, have, len(missing))
    return built


def quorum_target(
    ctx: Context,
    term: int,
    replayed: int,
    timeline: int | None,
    laps: Laps | None = None,
    received: int | None = None,
) -> tuple[WalTail, int | None]:
    """The quorum's tail (nodes fenced at ``term``) and the start of its last complete record; None when this
    instance has already replayed everything the quorum holds (same timeline, replayed >= its end).
    ``received``: how far this instance's own receiver wrote WAL on ``timeline`` (see ``_local_copy``)."""
    laps = laps or Laps()
    tail = ctx.storage.tail(min_term=term)
    laps.lap("tail")
    _history(ctx, tail)
    laps.lap("history")
    if timeline == tail.timeline and replayed >= tail.end:
        log.info(
            "already replayed %s, at or past the storage quorum's end %s (%d nodes answered)",
            lsn.format_lsn(replayed), lsn.format_lsn(tail.end), tail.answered,
        )  # fmt: skip
        return tail, None
    tail_file = _local_copy(ctx, tail, timeline, received)
    if tail_file is None:
        tail_file = _prefetch(ctx, tail, replayed)
        laps.lap("prefetch")
    segno = lsn.segment_of(max(tail.end - 1, 0))
    candidates = [(tail_file, segno, tail.end - lsn.segment_start(segno))]
    previous = tail_file.with_name(lsn.segment_name(tail.timeline, segno - 1))
    if not previous.exists():  # a tail segment built from pg_wal: the reader's own previous segment
        previous = ctx.settings.pgdata / "pg_wal" / previous.name
    if previous.exists():  # the tail segment may hold only the end of a record that began before it
        candidates.append((previous, segno - 1, lsn.WAL_SEGMENT_SIZE))
    for path, n, end in candidates:
        wal = lsn.WalName(tail.timeline, n, lsn.WalKind.SEGMENT)
        last = waldump.last_record_start(ctx.settings.pg_bin / "pg_waldump", path, wal, end)
        laps.lap("waldump")
        if last is not None:
            log.info(
                "storage quorum tail: timeline %d, end %s on %s (%d nodes answered), last record at %s",
                tail.timeline, lsn.format_lsn(tail.end), tail.node, tail.answered, lsn.format_lsn(last),
            )  # fmt: skip
            return tail, last
    raise PromotionError(
        f"no complete WAL record found at the storage quorum's tail {lsn.format_lsn(tail.end)}"
    )


def _wait_replayed(ctx: Context, target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with ctx.connect() as conn:
        while True:
            replayed = sql.replay_lsn(conn)
            if replayed is not None and replayed > target:
                return
            if time.monotonic() > deadline:
                shown = lsn.format_lsn(replayed) if replayed is not None else "nothing"
                raise PromotionError(
                    f"catching up from the storage quorum: replayed {shown}, "
                    f"need past {lsn.format_lsn(target)} after {timeout:.0f}s"
                )
            time.sleep(0.005)


def promote(ctx: Context, intent: Intent) -> str:
    laps = Laps()
    term = intent.term
    _hold(ctx)
    # From here on the old writer cannot gather a write quorum. The nodes are told to follow this instance
    # at once: they stream only from a writer declaring ``term`` out of recovery, so they wait (polling it)
    # and start the moment it has promoted, without a second round of fencing on the way. The fence runs
    # while this server is observed and prepared: nothing here depends on its outcome until it returns.
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fence") as pool:
        fencing = pool.submit(fence, ctx, term)
        if not ctx.pg.running():
            write_config(ctx, Intent(contract.ROLE_READER, term, None))
            ctx.pg.start()
        with ctx.connect() as conn:
            before = sql.observe(conn)
            if before.in_recovery:
                # The slots exist before the nodes (already told to follow) can connect: a node finding no
                # slot would re-seed itself. Physical slots can be created in recovery and survive promotion.
                sql.create_storage_slots(conn)
        fencing.result()
    laps.lap("fence, slots")
    if not before.in_recovery:  # already the writer: only the declared term changes
        write_config(ctx, intent)
        ctx.pg.reload()
        fence(ctx, term)
        files.save_state(ctx.settings, files.State(contract.ROLE_WRITER, term, None))
        return f"writer now declares term {term}"
    # Stop streaming from the deposed writer; from here on WAL comes only from the storage quorum.
    write_config(ctx, Intent(contract.ROLE_READER, term, None))
    ctx.pg.reload()
    laps.lap("stop streaming")
    try:
        return _catch_up_and_promote(ctx, intent, laps, before)
    finally:
        shutil.rmtree(ctx.settings.wal_cache, ignore_errors=True)


def _received_timeline(
    before: sql.PgObservation, after: sql.PgObservation, remembered: int | None
) -> int | None:
    """The timeline this reader's own WAL was received on. While its receiver runs that is what the receiver
    reports; once stopped (by this promotion, or when the writer died), PostgreSQL only offers
    ``min_recovery_end_timeline``, which can lag a timeline behind (a former writer that rejoined as a
    reader), and the tail would then be fetched for nothing. ``remembered``: the timeline the manager last
    saw this postmaster's receiver on. Each is a lower bound of the timeline the received WAL is on (a
    receiver only moves forward), and none can exceed the storage quorum's, so the highest is exact when it
    equals the quorum's."""
    if before.receiver_status is not None and before.timeline is not None:
        return before.timeline
    known = [t for t in (after.timeline, remembered) if t is not None]
    return max(known) if known else None


def _catch_up_and_promote(ctx: Context, intent: Intent, laps: Laps, before: sql.PgObservation) -> str:
    term = intent.term
    with ctx.connect() as conn:
        obs = sql.observe(conn)
    remembered = ctx.receiver_timeline
    pid = ctx.pg.proc.pid if ctx.pg.proc is not None else None
    timeline = _received_timeline(before, obs, remembered[1] if remembered and remembered[0] == pid else None)
    tail, target = quorum_target(ctx, term, obs.replayed_lsn or 0, timeline, laps, obs.received_lsn)
    if target is not None:
        _wait_replayed(ctx, target, CATCH_UP_TIMEOUT)
    laps.lap("catch-up")
    with ctx.connect() as conn:
        _pg_promote(conn, term)
        obs = sql.observe(conn)
    laps.lap("pg_promote")
    # At once, before rewriting the configuration (only its role comment changes; synchronous_standby_names
    # and the declared term are already in place): no newer term appeared meanwhile (else Deposed), and the
    # nodes, woken by the term update, probe this writer now instead of at their next re-check.
    fence(ctx, term)
    laps.lap("confirm")
    write_config(ctx, intent)
    ctx.pg.reload()
    files.save_state(ctx.settings, files.State(contract.ROLE_WRITER, term, None))
    # No CHECKPOINT here: it would wait for the end-of-recovery checkpoint (seconds of spread writes) and keep
    # the writer unready meanwhile; a former writer's rejoin asks this writer for one before pg_rewind.
    return (
        f"promoted at term {term} to timeline {obs.timeline} after replaying the quorum's WAL through "
        f"{lsn.format_lsn(tail.end if target is None else target)} (timeline {tail.timeline}); {laps}"
    )


def _pg_promote(conn: psycopg.Connection[tuple[object, ...]], term: int) -> None:
    """``pg_promote`` without its own wait, which looks every 100 ms: the end of recovery is polled here
    every few milliseconds, since the storage nodes and every client wait for it."""
    conn.execute("SELECT pg_promote(false)")
    deadline = time.monotonic() + PROMOTE_TIMEOUT
    while sql.in_recovery(conn):
        if time.monotonic() > deadline:
            raise PromotionError(f"pg_promote did not complete within {PROMOTE_TIMEOUT:.0f}s at term {term}")
        time.sleep(PROMOTE_POLL)


def _quorum_flushed(ctx: Context, target: int) -> int:
    with ctx.connect() as conn:
        rows = conn.execute(
            "SELECT flush_lsn::text FROM pg_stat_replication WHERE application_name = ANY(%s)",
            (quorum.node_names(),),
        ).fetchall()
    return sum(1 for (f,) in rows if f and lsn.parse_lsn(str(f)) >= target)


def recover_writer(ctx: Context, intent: Intent) -> str:
    term = intent.term
    fence(ctx, term)  # Deposed if a newer writer exists: then the control plane must demote us
    write_config(ctx, intent, clients=False)
    ctx.pg.start()
    try:
        local_end = _wait_quorum_holds_local_wal(ctx, term)
    except BaseException:
        ctx.pg.stop("immediate")  # stays "in production": the next cycle recovers again, never opens
        raise
    write_config(ctx, intent, clients=True)
    ctx.pg.reload()
    files.save_state(ctx.settings, files.State(contract.ROLE_WRITER, term, None))
    end = lsn.format_lsn(local_end)
    return f"writer recovered at term {term}: WAL through {end} is on the write quorum; open"


def _wait_quorum_holds_local_wal(ctx: Context, term: int) -> int:
    with ctx.connect(timeout=10) as conn:
        row = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
        assert row is not None
        local_end = lsn.parse_lsn(str(row[0]))
    deadline = time.monotonic() + QUORUM_WAIT_TIMEOUT
    while (have := _quorum_flushed(ctx, local_end)) < contract.WRITE_QUORUM:
        if time.monotonic() > deadline:
            raise ActionError(
                f"recovering the writer at term {term}: only {have} storage nodes hold its WAL end "
                f"{lsn.format_lsn(local_end)} after {QUORUM_WAIT_TIMEOUT:.0f}s; staying closed"
            )
        time.sleep(0.02)
    return local_end
