"""Background loops of a node that are neither receiving, archiving nor repairing.

Why it exists: sealing (checksumming segments as pg_receivewal completes them), retention (deleting
archived segments outside the repair window), scrubbing (re-verifying stored files) and adopting a term
from peers after a wipe are each a few lines around a pure decision. They must not block the event loop:
file work runs in threads.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aurora_api import contract

from aurora_storage import quorum, retention
from aurora_storage.node import runtime

log = logging.getLogger(__name__)


async def seal(rt: runtime.Runtime, interval: float = 0.5) -> None:
    while True:
        try:
            await asyncio.to_thread(rt.store.seal_completed)
        except OSError as err:
            log.error("sealing failed: %s", err)
        await asyncio.sleep(interval)


async def retain(rt: runtime.Runtime, interval: float = 10.0) -> None:
    """Delete archived segments older than the repair window (only when an archive is configured)."""
    while True:
        await asyncio.sleep(interval)
        if rt.cfg.s3 is None:
            continue
        names = await asyncio.to_thread(rt.store.names)
        archived = set()
        for wn in names:
            rec = await asyncio.to_thread(rt.store.sealed, wn.filename)
            if rec is not None and rec.archived:
                archived.add(wn.filename)
        for wn in retention.deletable(names, archived, rt.cfg.keep_segments):
            await asyncio.to_thread(rt.store.delete, wn.filename)
            rt.counters.deleted_segments += 1
            log.info("retention: deleted archived segment %s", wn.filename)


async def scrub(rt: runtime.Runtime, interval: float = 300.0) -> None:
    while True:
        bad = await asyncio.to_thread(rt.store.verify_all)
        if bad:
            rt.counters.corrupt_detected += len(bad)
            rt.repair.invalidate()
            log.error("scrub found corrupt files (quarantined, repair will refetch): %s", bad)
        await asyncio.sleep(interval)


async def adopt_term(rt: runtime.Runtime, interval: float = 1.0) -> None:
    """While the node has no term (fresh or wiped), adopt the newest one if enough peers answer."""
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            await asyncio.sleep(interval)
            if rt.state.term != 0:
                continue
            answers = []
            for url in rt.cfg.peer_urls().values():
                try:
                    async with session.get(url + contract.StoragePaths.TERM) as r:
                        if r.status == 200:
                            answers.append(await r.json())
                except (aiohttp.ClientError, TimeoutError):
                    continue
            terms = [int(a["term"]) for a in answers if int(a["term"]) > 0]
            term = quorum.adoptable_term(terms, rt.state.term) if len(terms) == len(answers) else None
            if term and len(terms) >= contract.STORAGE_NODES - contract.READ_QUORUM + 1:
                best = max(answers, key=lambda a: int(a["term"]))
                async with rt.term_lock:
                    if rt.state.term == 0:
                        rt.state = rt.state.with_term(term, best.get("writer"), best.get("system_identifier"))
                        await asyncio.to_thread(rt.state_file.save, rt.state)
                        rt.term_changed.set()
                        log.warning("adopted term %s from %d peers", term, len(terms))
