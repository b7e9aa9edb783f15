"""Continuous archive: every completed segment uploaded to S3 once per cluster, off the commit path.

Why it exists: six nodes hold the same segments; uploading from all six would cost six times the
bandwidth and race on the same keys. The owner of segment ``n`` is node ``n % 6``
(``quorum.archive_owner``); another node uploads only when the segment has been complete for
``archive_takeover_s`` and the object is still missing (owner down). Segments are stored zstd-compressed
when that pays (``s3.Archive.put``). Uploads carry a Content-MD5 the server verifies and a sha256 (of the
segment itself) in metadata; failures back off exponentially. It runs in its own task and
threads, so it never blocks the receiver or commits. It must not delete anything (retention does).
Rounds are event-driven (a file was sealed), plus the next takeover deadline and a slow fallback timer;
a round is one directory scan and in-memory manifest records, so an idle node costs next to nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aurora_storage import archive_layout, quorum, s3
from aurora_storage import lsn as lsnmod
from aurora_storage.node import runtime

log = logging.getLogger(__name__)


def _archive_one(rt: runtime.Runtime, archive: s3.Archive, name: str, sha256: str) -> bool:
    """Make sure ``name`` is in the archive; return True when this call uploaded it."""
    assert rt.cfg.s3 is not None
    key = archive_layout.key_for(rt.cfg.s3.prefix, name)
    existing = archive.head(key)
    if existing is not None and existing.sha256 == sha256:
        rt.store.mark_archived(name)
        return False
    if existing is not None:
        log.error(
            "archive object %s has sha256 %s, ours is %s; re-uploading verified copy",
            key,
            existing.sha256,
            sha256,
        )
    data, digest = rt.store.read_verified(name)
    if digest != sha256:
        raise RuntimeError(f"{name}: sealed checksum changed while archiving")
    meta = archive_layout.metadata(name, digest, rt.cfg.ordinal, rt.state.system_identifier)
    stored = archive.put(key, data, meta, compress=True)
    after = archive.head(key)
    if after is None or after.sha256 != digest or after.size != stored:
        raise RuntimeError(f"archive read-back of {key} does not match what was uploaded")
    rt.store.mark_archived(name)
    return True


FALLBACK_S = 15.0
"""A round at least this often even without a notification (nothing depends on notifications alone)."""


async def run(rt: runtime.Runtime, archive: s3.Archive, fallback: float = FALLBACK_S) -> None:
    """Archive rounds when something was sealed (``rt.sealed_changed``), when a takeover delay of a
    segment another node owns expires, and every ``fallback`` seconds."""
    backoff = 1.0
    seen = -1
    wait = 0.0
    while True:
        seen = await rt.sealed_changed.wait(seen, wait)  # read before the round: none is lost
        try:
            due = await _round(rt, archive)
            backoff = 1.0
            wait = fallback if due is None else min(fallback, due)
        except Exception as err:  # any S3 or file error: count, log, back off, retry
            rt.counters.archive_errors += 1
            log.warning("archive round failed (retrying in %.0fs): %s", backoff, err)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)
            wait = 0.0


async def _round(rt: runtime.Runtime, archive: s3.Archive) -> float | None:
    """Archive what this node should; return seconds until a takeover delay expires (None: none pending)."""
    now = time.time()
    due: float | None = None
    for wn, rec in await asyncio.to_thread(rt.store.completed):
        if rec.archived:
            if wn.kind is lsnmod.WalKind.SEGMENT:
                rt.counters.archived_lsn = max(rt.counters.archived_lsn, wn.end_lsn())
            continue
        owner = quorum.archive_owner(wn.segno if wn.kind is lsnmod.WalKind.SEGMENT else wn.timeline)
        if owner != rt.cfg.ordinal and now - rec.sealed_at < rt.cfg.archive_takeover_s:
            left = rec.sealed_at + rt.cfg.archive_takeover_s - now
            due = left if due is None else min(due, left)
            continue
        uploaded = await asyncio.to_thread(_archive_one, rt, archive, wn.filename, rec.sha256)
        if uploaded:
            rt.counters.segments_archived += 1
            log.info("archived %s", wn.filename)
        else:
            rt.counters.archive_confirmed += 1
        if wn.kind is lsnmod.WalKind.SEGMENT:
            rt.counters.archived_lsn = max(rt.counters.archived_lsn, wn.end_lsn())
    return None if due is None else max(due, 0.05)
