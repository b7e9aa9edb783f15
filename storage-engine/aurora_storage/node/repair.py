"""Self-repair driver: fill gaps from peers (checksum-verified), else from the archive, while streaming.

Why it exists: a node that comes back empty or with holes must become a full member again without
stopping the writer. Each round asks peers for their inventories, plans with ``repair_plan.plan`` and
installs what is missing. The node reports ``repairing`` (and is not healthy) until a round finds
nothing missing. It must not decide the plan itself nor write into the receiver's current segment.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
from aurora_api import contract

from aurora_storage import archive_layout, checksum, repair_plan, s3
from aurora_storage.node import runtime

log = logging.getLogger(__name__)

SHA_HEADER = "X-Quorumdb-Sha256"
PARALLEL_FETCHES = 4


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


async def _from_peer(session: aiohttp.ClientSession, url: str, item: repair_plan.Fetch) -> tuple[bytes, str]:
    async with session.get(f"{url}{contract.StoragePaths.WAL}/{item.name}") as r:
        if r.status != 200:
            raise RuntimeError(f"peer {url} answered {r.status} for {item.name}: {(await r.text())[:200]}")
        data = await r.read()
        sha = r.headers.get(SHA_HEADER, "")
    got = checksum.sha256_bytes(data)
    if got != sha or (item.sha256 is not None and got != item.sha256):
        raise checksum.ChecksumError(
            f"{item.name} from {url}: sha256 {got}, header {sha}, inventory {item.sha256}"
        )
    return data, got


async def _fetch(
    session: aiohttp.ClientSession, rt: runtime.Runtime, archive: s3.Archive | None, item: repair_plan.Fetch
) -> None:
    urls = dict(enumerate(rt.cfg.peers))
    errors = []
    for source in item.sources:
        try:
            if source == repair_plan.ARCHIVE:
                if archive is None or rt.cfg.s3 is None:
                    continue
                key = archive_layout.key_for(rt.cfg.s3.prefix, item.name)
                data = await asyncio.to_thread(archive.get_verified, key)
                sha, origin = checksum.sha256_bytes(data), "archive"
                rt.repair.from_archive += 1
            else:
                data, sha = await _from_peer(session, urls[source], item)
                origin = f"peer:{source}"
            await asyncio.to_thread(rt.store.install, item.name, data, sha, origin)
        except Exception as err:  # try the next source; all failures are reported together
            errors.append(f"{source}: {err}")
            if isinstance(err, checksum.ChecksumError):
                rt.counters.corrupt_detected += 1
            continue
        rt.repair.fetched_files += 1
        rt.repair.fetched_bytes += len(data)
        log.info("repaired %s from %s", item.name, origin)
        return
    raise RuntimeError(f"could not repair {item.name}: " + "; ".join(errors))


async def _round(
    session: aiohttp.ClientSession, rt: runtime.Runtime, archive: s3.Archive | None, rotate: int
) -> bool:
    peers = await _inventories(session, rt)
    archived: list[str] = []
    if archive is not None and rt.cfg.s3 is not None:
        try:
            objs = await asyncio.to_thread(archive.list, archive_layout.wal_prefix(rt.cfg.s3.prefix))
            archived = [n for o in objs if (n := archive_layout.name_from_key(o.key))]
        except Exception as err:  # archive down: repair from peers only this round
            log.warning("repair: cannot list archive: %s", err)
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
                await _fetch(session, rt, archive, item)
            except RuntimeError as err:
                rt.repair.last_error = str(err)
                log.warning("%s", err)
                return False
        rt.repair.missing.remove(item.name)
        return True

    if not all(await asyncio.gather(*(one(item) for item in todo))):
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
            await asyncio.sleep(0 if progressed else 0.5 if not complete else 5.0)
