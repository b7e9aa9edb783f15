"""Self-repair driver: fill gaps from peers (checksum-verified), else from the archive, while streaming.

Why it exists: a node that comes back empty or with holes must become a full member again without
stopping the writer. Each round asks peers for their inventories, plans with ``repair_plan.plan`` and
installs what is missing. The node reports ``repairing`` (and is not healthy) until a round finds
nothing missing. While healthy, rounds are rare (``HEALTHY_INTERVAL_S``); anything that finds a hole
calls ``rt.repair.invalidate()``, which starts a round at once. It must not decide the plan itself nor
write into the receiver's current segment.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import logging
import time
import urllib.parse

import aiohttp
from aurora_api import contract

from aurora_storage import archive_layout, checksum, repair_plan, s3
from aurora_storage.node import runtime
from aurora_storage.node import store as storemod

log = logging.getLogger(__name__)

SHA_HEADER = "X-Quorumdb-Sha256"
PARALLEL_FETCHES = 6
FETCH_TIMEOUT_S = 30.0
MAX_FILE_BYTES = 64 * 1024 * 1024
"""Files fetched at once. Sources rotate per file (``repair_plan.plan``), so these go to different peers;
hashing and fsync run in threads (hashlib releases the GIL)."""
REPAIRING_INTERVAL_S = 0.5
"""Between rounds while repairing and not progressing."""
HEALTHY_INTERVAL_S = 30.0
"""Between rounds while healthy; :meth:`runtime.RepairProgress.invalidate` starts one at once."""


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


def _from_peer(store: storemod.WalStore, url: str, item: repair_plan.Fetch, origin: str) -> int:
    """Fetch ``item`` from the peer at ``url`` and install it; return its size. Blocking (a thread).

    One thread does the whole file: the body is received straight into one buffer (``readinto``, no
    per-chunk work in Python), hashed once and installed only if body == header == inventory. A plain
    blocking connection here moves bytes at a multiple of the event loop's rate; the GIL is released
    while receiving, hashing and writing, so several files proceed in parallel.
    """
    u = urllib.parse.urlsplit(url)
    conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(u.hostname or "localhost", u.port, timeout=FETCH_TIMEOUT_S)
    try:
        conn.request("GET", f"{u.path.rstrip('/')}{contract.StoragePaths.WAL}/{item.name}")
        r = conn.getresponse()
        if r.status != 200:
            detail = r.read(200).decode(errors="replace")
            raise RuntimeError(f"peer {url} answered {r.status} for {item.name}: {detail}")
        sha = r.getheader(SHA_HEADER)
        if not sha:
            raise checksum.ChecksumError(f"{item.name} from {url}: no {SHA_HEADER} header")
        length = int(r.getheader("Content-Length") or "-1")
        if not 0 <= length <= MAX_FILE_BYTES:
            raise RuntimeError(f"{item.name} from {url}: bad Content-Length {length}")
        body = bytearray(length)
        view = memoryview(body)
        got = 0
        while got < length:
            n = r.readinto(view[got:])
            if not n:
                raise RuntimeError(f"{item.name} from {url}: body ended after {got} of {length} bytes")
            got += n
    finally:
        conn.close()
    store.install(item.name, body, sha, origin, also_expected=item.sha256, sync_dirs=False)
    return length


# Fetch threads of their own: six 16 MiB transfers must not occupy the default executor, which serves the
# API's, sealing's and the receiver's short file operations.
_FETCH_POOL = concurrent.futures.ThreadPoolExecutor(PARALLEL_FETCHES, thread_name_prefix="repair-fetch")


async def _fetch(rt: runtime.Runtime, archive: s3.Archive | None, item: repair_plan.Fetch) -> None:
    urls = dict(enumerate(rt.cfg.peers))
    errors = []
    for source in item.sources:
        try:
            if source == repair_plan.ARCHIVE:
                if archive is None or rt.cfg.s3 is None:
                    continue
                key = archive_layout.key_for(rt.cfg.s3.prefix, item.name)
                data = await asyncio.to_thread(archive.get_verified, key)  # verified against its metadata
                origin = "archive"
                # Peers' manifests (when they list it) are an independent check of the install.
                sha = item.sha256 if item.sha256 else await asyncio.to_thread(checksum.sha256_bytes, data)
                await asyncio.to_thread(rt.store.install, item.name, data, sha, origin, sync_dirs=False)
                rt.repair.from_archive += 1
                size = len(data)
            else:
                origin = f"peer:{source}"
                size = await asyncio.get_running_loop().run_in_executor(
                    _FETCH_POOL, _from_peer, rt.store, urls[source], item, origin
                )
        except Exception as err:  # try the next source; all failures are reported together
            errors.append(f"{source}: {err}")
            if isinstance(err, checksum.ChecksumError):
                rt.counters.corrupt_detected += 1
            continue
        rt.repair.fetched_files += 1
        rt.repair.fetched_bytes += size
        log.info("repaired %s from %s", item.name, origin)
        return
    raise RuntimeError(f"could not repair {item.name}: " + "; ".join(errors))


async def _round(
    session: aiohttp.ClientSession, rt: runtime.Runtime, archive: s3.Archive | None, rotate: int
) -> bool:
    async def archive_names() -> list[str] | None:
        if archive is None or rt.cfg.s3 is None:
            return None
        try:
            objs = await asyncio.to_thread(archive.list, archive_layout.wal_prefix(rt.cfg.s3.prefix))
        except Exception as err:  # archive down: repair from peers only this round
            log.warning("repair: cannot list archive: %s", err)
            return None
        return [n for o in objs if (n := archive_layout.name_from_key(o.key))]

    peers, listed = await asyncio.gather(_inventories(session, rt), archive_names())  # concurrently
    archived = listed or []
    if listed is None:
        archive = None
    local = [wn.filename for wn in await asyncio.to_thread(rt.store.names)]
    todo = repair_plan.plan(local, peers, archived, rt.cfg.keep_segments, rotate)
    if todo is None:
        rt.repair.missing = ["<waiting for the receiver's first segment>"]
        return False
    rt.repair.missing = [f.name for f in todo]
    if todo and rt.repair.started_at is None:
        rt.repair.started_at = time.time()
    gate = asyncio.Semaphore(PARALLEL_FETCHES)

    async def one(item: repair_plan.Fetch) -> bool:
        async with gate:
            try:
                await _fetch(rt, archive, item)
            except RuntimeError as err:
                rt.repair.last_error = str(err)
                log.warning("%s", err)
                return False
        rt.repair.missing.remove(item.name)
        return True

    try:
        results = await asyncio.gather(*(one(item) for item in todo))
    finally:
        if todo:  # installs skipped the directory fsyncs: one for the whole batch
            await asyncio.to_thread(rt.store.sync_dirs)
    if any(results):
        rt.sealed_changed.notify()  # the archiver may owe some of them (it checks the archive first)
    if not all(results):
        return False
    if todo:
        return False  # confirm with a fresh round (immediately) that nothing is missing any more
    enough = len(peers) >= contract.READ_QUORUM - 1 or archive is not None
    if not enough:
        rt.repair.last_error = f"only {len(peers)} peers answered; cannot rule out gaps"
    return enough


async def run(rt: runtime.Runtime, archive: s3.Archive | None) -> None:
    timeout = aiohttp.ClientTimeout(total=30, sock_connect=2)
    rotate = rt.cfg.ordinal
    async with aiohttp.ClientSession(timeout=timeout) as session:
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
            if progressed:
                continue
            delay = REPAIRING_INTERVAL_S if not complete else HEALTHY_INTERVAL_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.repair.wake.wait(), delay)
