"""Background loops of a node that are neither receiving, archiving nor repairing.

Why it exists: sealing (checksumming segments as pg_receivewal completes them, then setting aside
old-timeline files a newly held history supersedes: ``node.superseded``), retention (deleting
archived segments outside the repair window), scrubbing (re-verifying stored files), adopting a term
from peers after a wipe and following a rotated replication password are each a few lines around a pure
decision. They must not block the event loop:
file work runs in threads. Sealing waits for the receiver's reports (``rt.wal_changed``; both receivers
report completed segments), with a slow full scan as the fallback: an idle node scans nothing and reads no
manifest (the store caches the records).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from pathlib import Path

import aiohttp
from aurora_api import contract, https

from aurora_storage import lsn as lsnmod
from aurora_storage import quorum, retention
from aurora_storage.node import config, runtime, superseded
from aurora_storage.node import store as storemod

log = logging.getLogger(__name__)


SEAL_FALLBACK_S = 15.0
"""A full scan at least this often, whatever the notifications say (e.g. history files pg_receivewal
wrote without reporting them)."""
FORK_RECHECK_S = 1.0
"""While a fork segment waits for the new timeline's copy to reach the fork point, re-check after this
long, then twice as long each time (up to the fallback)."""


async def seal(rt: runtime.Runtime, fallback: float = SEAL_FALLBACK_S) -> None:
    """Checksum completed files as they appear: on ``rt.wal_changed``, or every ``fallback`` seconds;
    wake the archiver (``rt.sealed_changed``) when something was sealed. Then set aside what the newest
    timeline history supersedes."""
    seen = -1
    recheck = FORK_RECHECK_S
    while True:
        seen = rt.wal_changed.generation  # read before the scan: a notification during it is kept
        waiting = False
        try:
            if await asyncio.to_thread(rt.store.seal_completed):
                rt.sealed_changed.notify()
            _, verdict = await asyncio.to_thread(superseded.set_aside, rt.store)
            waiting = bool(verdict.waiting)
        except OSError as err:
            log.error("sealing failed: %s", err)
        if not waiting:
            recheck = FORK_RECHECK_S
            await rt.wal_changed.wait(seen, fallback)
            continue
        # A fork segment waits for the new timeline's copy: look again soon, then less and less often.
        await rt.wal_changed.wait(seen, recheck)
        recheck = min(recheck * 2, fallback)


def _retain_round(store: storemod.WalStore, keep: int) -> list[str]:
    names = store.names()
    archived = {wn.filename for wn in names if (rec := store.sealed(wn.filename)) and rec.archived}
    deleted = []
    for wn in retention.deletable(names, archived, keep):
        store.delete(wn.filename)
        deleted.append(wn.filename)
    return deleted


async def retain(rt: runtime.Runtime, interval: float = 10.0) -> None:
    """Delete archived segments older than the repair window (only when an archive is configured)."""
    while True:
        await asyncio.sleep(interval)
        if rt.cfg.s3 is None:
            continue
        try:
            deleted = await asyncio.to_thread(_retain_round, rt.store, rt.cfg.keep_segments)
        except OSError as err:
            log.error("retention failed: %s", err)
            continue
        for name in deleted:
            rt.counters.deleted_segments += 1
            log.info("retention: deleted archived segment %s", name)


async def scrub(rt: runtime.Runtime, period: float = 3600.0) -> None:
    """Re-verify every sealed file: all at once at start-up (catching what a crash tore), then paced.

    After start-up one file at a time, spread so that a whole pass takes ``period`` (the repair window
    of 64 segments costs ~1.6 s of hashing: re-hashing it every few minutes was the node's largest
    steady CPU cost). Files are also verified when archived, when a reader reports a copy it refused, and
    by every reader of what a node sends (``store.open_sealed``).
    """
    bad = await asyncio.to_thread(rt.store.verify_all)
    _report_corrupt(rt, bad)
    while True:
        held = await asyncio.to_thread(rt.store.names)
        names = [wn.filename for wn in held if wn.kind is not lsnmod.WalKind.PARTIAL]
        pause = period / max(1, len(names))
        if not names:
            await asyncio.sleep(period)
        for name in names:
            await asyncio.sleep(pause)
            _report_corrupt(rt, await asyncio.to_thread(rt.store.verify_one, name))


def _report_corrupt(rt: runtime.Runtime, bad: list[str]) -> None:
    if bad:
        rt.counters.corrupt_detected += len(bad)
        rt.repair.invalidate()
        log.error("scrub found corrupt files (quarantined, repair will refetch): %s", bad)


def connector() -> aiohttp.TCPConnector:
    """Peers are verified by the cluster's CA when the control endpoints speak HTTPS."""
    return aiohttp.TCPConnector(ssl=https.client_context() or True)


async def adopt_term(rt: runtime.Runtime, interval: float = 1.0) -> None:
    """While the node has no term (fresh or wiped), adopt the newest one if enough peers answer."""
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector()) as session:
        first = True
        while True:
            if not first:  # a wiped node asks at once: repair cannot start before its receiver does
                await asyncio.sleep(interval)
            first = False
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


async def follow_passfile(account: Path, passfile: Path, period: float = 5.0) -> None:
    """Keep the replication password file equal to the mounted Secret, so that a rotated password is used
    from the next connection to the writer on (``config.refresh_passfile``)."""
    while True:
        await asyncio.sleep(period)
        try:
            await asyncio.to_thread(config.refresh_passfile, account, passfile)
        except OSError as err:
            log.warning("password file not refreshed: %s", err)


async def follow_writer_ca(env: MutableMapping[str, str], ca_file: str, period: float = 5.0) -> None:
    """Keep libpq's TLS settings for the writer equal to ``config.writer_tls``: a CA synced into the mount
    after the node started turns ``require`` into ``verify-ca`` from the next connection on."""
    while True:
        await asyncio.sleep(period)
        wanted = await asyncio.to_thread(config.writer_tls, ca_file)
        if any(env.get(k) != v for k, v in wanted.items()):
            env.update(wanted)
            log.info("connections to the writer: sslmode=%s from the next one on", wanted["PGSSLMODE"])
