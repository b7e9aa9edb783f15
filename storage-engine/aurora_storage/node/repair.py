"""Self-repair driver: fill gaps from peers (checksum-verified), else from the archive, while streaming.

Why it exists: a node that comes back empty or with holes must become a full member again without
stopping the writer. Each round asks peers for their inventories, plans with ``repair_plan.plan`` and
installs what is missing, running the transfers ``repair_attempts.Batch`` chooses (``transfer`` moves the
bytes). The node reports ``repairing`` (and is not healthy) until a round finds nothing missing or
installs everything it found missing. While healthy, rounds are rare (``HEALTHY_INTERVAL_S``); anything
that finds a hole calls ``rt.repair.invalidate()``, which starts a round at once. It must not decide the
plan itself nor write into the receiver's current segment.

Where a small repair's time went (wiped node under load, four 16 MiB files, measured with py-spy and
timestamps), and what this loop does about each: the first round found the directory empty and slept
0.5 s (now it lists peers while it waits for the receiver's first file, polling every 20 ms); a file
corrupt on every peer was tried on five peers in turn before the archive (now the archive starts at the
first failure); each file was buffered, then hashed, then written (now hashed and written as it
arrives); a second round re-listed every peer to confirm (now a round that installed all it planned is
complete: what it did not see is newer than the receiver's start and the receiver has it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time

import aiohttp
from aurora_api import contract

from aurora_storage import archive_layout, checksum, repair_attempts, repair_plan, s3
from aurora_storage import history as historymod
from aurora_storage import lsn as lsnmod
from aurora_storage.node import housekeeping, runtime, superseded, transfer

log = logging.getLogger(__name__)

PARALLEL_FETCHES = 6
"""Transfers at once. Sources rotate per file (``repair_plan.plan``), so these go to different peers;
receiving, hashing and writing run in threads (they release the GIL)."""
REPAIRING_INTERVAL_S = 0.5
"""Between rounds while repairing and not progressing."""
HEALTHY_INTERVAL_S = 30.0
"""Between rounds while healthy; :meth:`runtime.RepairProgress.invalidate` starts one at once."""
FIRST_FILE_WAIT_S = 2.0
"""How long a round waits for the receiver's first file when the node holds none (its window is unknown
until then); peers and the archive are listed meanwhile."""
FIRST_FILE_POLL_S = 0.02

# Threads of their own: six 16 MiB transfers must not occupy the default executor, which serves the API's,
# sealing's and the receiver's short file operations.
_FETCH_POOL = concurrent.futures.ThreadPoolExecutor(PARALLEL_FETCHES, thread_name_prefix="repair-fetch")


async def _inventories(
    session: aiohttp.ClientSession, rt: runtime.Runtime
) -> dict[int, list[repair_plan.PeerFile]]:
    async def one(ordinal: int, url: str) -> tuple[int, list[repair_plan.PeerFile] | None]:
        try:
            async with session.get(url + contract.StoragePaths.SEGMENTS) as r:
                if r.status != 200:
                    return ordinal, None
                body = await r.json()
        except (aiohttp.ClientError, TimeoutError):
            return ordinal, None
        return ordinal, [
            repair_plan.PeerFile(f["name"], f.get("sha256")) for f in body["files"] if f["kind"] != "partial"
        ]

    results = await asyncio.gather(*(one(o, u) for o, u in rt.cfg.peer_urls().items()))
    return {o: inv for o, inv in results if inv is not None}


async def _archive_names(rt: runtime.Runtime, archive: s3.Archive | None) -> list[str] | None:
    if archive is None or rt.cfg.s3 is None:
        return None
    try:
        objs = await asyncio.to_thread(archive.list, archive_layout.wal_prefix(rt.cfg.s3.prefix))
    except Exception as err:  # archive down: repair from peers only this round
        log.warning("repair: cannot list archive: %s", err)
        return None
    return [n for o in objs if (n := archive_layout.name_from_key(o.key))]


async def _first_file(rt: runtime.Runtime, timeout: float) -> float | None:
    """Wait until ``wal/`` holds a segment file (the receiver's first); return when it was seen."""
    deadline = time.monotonic() + timeout
    while True:
        names = await asyncio.to_thread(rt.store.names)
        if any(n.kind is not lsnmod.WalKind.HISTORY for n in names):
            return time.time()
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(FIRST_FILE_POLL_S)


def _attempt(
    rt: runtime.Runtime,
    archive: s3.Archive | None,
    item: repair_plan.Fetch,
    source: int,
    stop: threading.Event,
) -> int | None:
    """One transfer (blocking). The size installed, or None when another copy won."""
    if source == repair_plan.ARCHIVE:
        if archive is None or rt.cfg.s3 is None:
            raise RuntimeError("no archive this round")
        key = archive_layout.key_for(rt.cfg.s3.prefix, item.name)
        return transfer.from_archive(rt.store, archive, key, item, stop)
    url = rt.cfg.peers[source]
    return transfer.from_peer(rt.store, url, item, f"peer:{source}", stop, rt.cfg.control_tokens)


async def _fetch_all(rt: runtime.Runtime, archive: s3.Archive | None, todo: list[repair_plan.Fetch]) -> bool:
    """Install every file of ``todo`` (hedged, cancelling losers); True when all were installed."""
    batch = repair_attempts.Batch(todo, PARALLEL_FETCHES)
    items = {f.name: f for f in todo}
    errors: dict[str, list[str]] = {}
    running: dict[asyncio.Future[int | None], tuple[repair_attempts.Attempt, threading.Event]] = {}
    stops: dict[repair_attempts.Attempt, threading.Event] = {}
    loop = asyncio.get_running_loop()

    def launch() -> None:
        for a in batch.launch():
            stop = threading.Event()
            fut = loop.run_in_executor(_FETCH_POOL, _attempt, rt, archive, items[a.name], a.source, stop)
            running[fut] = (a, stop)
            stops[a] = stop

    launch()
    try:
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                a, _ = running.pop(fut)
                stops.pop(a, None)
                ok = _outcome(rt, a, fut, errors)
                for loser in batch.outcome(a, ok):
                    if loser in stops:
                        stops[loser].set()
                if ok and a.name in batch.installed and a.name in rt.repair.missing:
                    rt.repair.missing.remove(a.name)
            launch()
    finally:
        for stop in stops.values():  # cancelled round: stop the threads at their next block
            stop.set()
    for name in batch.failed:
        rt.repair.last_error = f"could not repair {name}: " + "; ".join(errors.get(name, []))
        log.warning("%s", rt.repair.last_error)
    return not batch.failed


def _outcome(
    rt: runtime.Runtime,
    a: repair_attempts.Attempt,
    fut: asyncio.Future[int | None],
    errors: dict[str, list[str]],
) -> bool:
    origin = "archive" if a.source == repair_plan.ARCHIVE else f"peer:{a.source}"
    err = fut.exception()
    if isinstance(err, transfer.Cancelled):
        return False
    if err is not None:
        errors.setdefault(a.name, []).append(f"{origin}: {err}")
        if isinstance(err, checksum.ChecksumError):
            rt.counters.corrupt_detected += 1
        return False
    size = fut.result()
    if size is not None:  # None: a copy from another source was installed first
        rt.repair.fetched_files += 1
        rt.repair.fetched_bytes += size
        if a.source == repair_plan.ARCHIVE:
            rt.repair.from_archive += 1
        log.info("repaired %s from %s", a.name, origin)
    return True


async def _round(
    session: aiohttp.ClientSession, rt: runtime.Runtime, archive: s3.Archive | None, rotate: int
) -> bool:
    began = time.time()
    listing = asyncio.ensure_future(asyncio.gather(_inventories(session, rt), _archive_names(rt, archive)))
    try:
        seen = await _first_file(rt, FIRST_FILE_WAIT_S)  # at once unless the node is empty
        peers, listed = await listing
    finally:
        listing.cancel()  # only when this round itself was cancelled
    if seen is None:
        rt.repair.missing = ["<waiting for the receiver's first segment>"]
        return False
    if listed is None:
        archive = None

    async def plan() -> tuple[list[repair_plan.Fetch], historymod.History | None]:
        hist, _ = await asyncio.to_thread(superseded.set_aside, rt.store)
        local = [wn.filename for wn in await asyncio.to_thread(rt.store.names)]
        todo = repair_plan.plan(local, peers, listed or [], rt.cfg.keep_segments, rotate, hist)
        assert todo is not None  # the node holds a segment file
        return todo, hist

    todo, _ = await plan()
    rt.repair.missing = [f.name for f in todo]
    if todo and rt.repair.started_at is None:
        rt.repair.started_at = max(began, seen)  # from when the window was known (the first file)
    ok = True
    histories: list[repair_plan.Fetch] = []
    try:
        # History files first: a newer timeline's history may supersede segments this plan wants.
        histories = [f for f in todo if lsnmod.parse_wal_name(f.name).kind is lsnmod.WalKind.HISTORY]
        if histories:
            ok = await _fetch_all(rt, archive, histories)
            todo, _ = await plan()
            rt.repair.missing = [f.name for f in todo]
        if todo:
            ok = await _fetch_all(rt, archive, todo) and ok
    finally:
        if histories or todo:  # commits skipped the directory fsyncs: one for the whole round
            await asyncio.to_thread(rt.store.sync_dirs)
            rt.sealed_changed.notify()  # the archiver may owe some of them (it checks the archive first)
    if not ok:
        return False
    enough = len(peers) >= contract.READ_QUORUM - 1 or archive is not None
    if not enough:
        rt.repair.last_error = f"only {len(peers)} peers answered; cannot rule out gaps"
    return enough


async def run(rt: runtime.Runtime, archive: s3.Archive | None) -> None:
    timeout = aiohttp.ClientTimeout(total=30, sock_connect=2)
    rotate = rt.cfg.ordinal
    async with aiohttp.ClientSession(timeout=timeout, connector=housekeeping.connector()) as session:
        while True:
            rt.repair.wake.clear()  # before the round: an invalidate() during it wakes the next wait
            fetched_before = rt.repair.fetched_files
            generation = rt.repair.generation
            try:
                complete = await _round(session, rt, archive, rotate)
            except Exception as err:  # keep repairing; report why the round failed
                log.exception("repair round failed")
                rt.repair.last_error = str(err)
                complete = False
            rotate += 1
            progressed = rt.repair.fetched_files != fetched_before
            if rt.repair.generation != generation:
                continue  # a hole appeared during the round: repair again before claiming health
            if complete and rt.repair.repairing:
                rt.repair.finished_at = time.time()
                log.info(
                    "repair complete: %d files, %d bytes", rt.repair.fetched_files, rt.repair.fetched_bytes
                )
            rt.repair.repairing = not complete
            if progressed and not complete:
                continue
            delay = REPAIRING_INTERVAL_S if not complete else HEALTHY_INTERVAL_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.repair.wake.wait(), delay)
