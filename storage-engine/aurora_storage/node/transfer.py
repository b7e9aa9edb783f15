"""One repair transfer: a completed WAL file from a peer or the archive into the store (blocking, a thread).

Why it exists: repair spends its time here, so each transfer does the least work per byte: the body is
read in 1 MiB blocks straight into one reused page-aligned buffer and each block is hashed and written
to ``tmp/`` as it arrives, past the page cache (``store.Incoming``, ``fsutil.DirectWriter``: one pass, no
whole-file buffer, no second hash, no copy into the cache); the digest is then
compared with the source's header or metadata and with the peers' inventory before anything is
installed. A peer sends without reading the file first (``store.open_sealed``), so a copy refused here
is reported back to it (``report_refused``): it re-hashes the file at once and quarantines a bad one.
The GIL is released while receiving, hashing and writing, so several transfers proceed in parallel. A
transfer checks its ``stop`` event between blocks, so a hedged duplicate ends as soon as another copy
won. It must not choose sources or decide what to fetch (``repair_plan``,
``repair_attempts``).
"""

from __future__ import annotations

import http.client
import logging
import threading
import urllib.parse

from aurora_api import contract, control, https

from aurora_storage import checksum, fsutil, repair_plan, s3
from aurora_storage.node import store as storemod

log = logging.getLogger(__name__)

SHA_HEADER = "X-Quorumdb-Sha256"
TIMEOUT_S = 30.0
REPORT_TIMEOUT_S = 5.0
MAX_FILE_BYTES = 64 * 1024 * 1024
BLOCK = checksum.CHUNK


class Cancelled(Exception):
    """Another copy of the file was installed first; this transfer stopped and discarded its bytes."""


def _connect(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        host, context = u.hostname or "localhost", https.client_context()
        return http.client.HTTPSConnection(host, u.port, timeout=timeout, context=context), u.path
    return http.client.HTTPConnection(u.hostname or "localhost", u.port, timeout=timeout), u.path


def from_peer(
    store: storemod.WalStore,
    url: str,
    item: repair_plan.Fetch,
    origin: str,
    stop: threading.Event,
    tokens: control.Tokens,
) -> int | None:
    """``GET /v1/wal/<name>`` from the peer at ``url``; install if body == header == inventory.

    Returns the size installed, or None when another transfer installed the file first. A body that fails
    its digest is reported to the peer before :class:`checksum.ChecksumError` is raised.
    """
    try:
        return _from_peer(store, url, item, origin, stop)
    except checksum.ChecksumError:
        report_refused(url, item.name, tokens)
        raise


def report_refused(url: str, name: str, tokens: control.Tokens) -> None:
    """Tell the peer at ``url`` that its copy of ``name`` failed its digest here (best effort: its
    scrubber finds it anyway, within the hour)."""
    conn, path = _connect(url, REPORT_TIMEOUT_S)
    try:
        for headers in control.attempts(tokens()) or [{}]:
            conn.request("POST", f"{path.rstrip('/')}{contract.StoragePaths.WAL}/{name}"
                         f"{contract.StoragePaths.VERIFY}", headers=headers)  # fmt: skip
            r = conn.getresponse()
            answer = r.read(300).decode(errors="replace")
            if r.status != 403:
                log.warning("reported %s refused from %s: %s %s", name, url, r.status, answer)
                return
    except (OSError, http.client.HTTPException) as err:
        log.warning("could not report %s refused from %s: %s", name, url, err)
    finally:
        conn.close()


def _from_peer(
    store: storemod.WalStore, url: str, item: repair_plan.Fetch, origin: str, stop: threading.Event
) -> int | None:
    conn, path = _connect(url, TIMEOUT_S)
    try:
        conn.request("GET", f"{path.rstrip('/')}{contract.StoragePaths.WAL}/{item.name}")
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
        buf = fsutil.aligned_buffer(min(BLOCK, max(length, 1)))
        with store.receive(item.name, origin) as incoming:
            while incoming.size < length:
                if stop.is_set():
                    raise Cancelled(item.name)
                want, got = min(len(buf), length - incoming.size), 0
                while got < want:  # whole blocks: they are written past the page cache
                    n = r.readinto(buf[got:want])
                    if not n:
                        raise RuntimeError(
                            f"{item.name} from {url}: body ended after {incoming.size + got} of {length}"
                        )
                    got += n
                incoming.write(buf[:got])
            return length if incoming.commit(sha, also_expected=item.sha256) else None
    finally:
        conn.close()


def from_archive(
    store: storemod.WalStore, archive: s3.Archive, key: str, item: repair_plan.Fetch, stop: threading.Event
) -> int | None:
    """Stream the object at ``key``; install if body == its metadata digest (== inventory, when known)."""
    sha, length, chunks = archive.stream(key, BLOCK)
    if not 0 <= length <= MAX_FILE_BYTES:
        chunks.close()
        raise RuntimeError(f"{item.name} in the archive: bad size {length}")
    with store.receive(item.name, "archive") as incoming:
        try:
            for block in chunks:
                if stop.is_set():
                    raise Cancelled(item.name)
                incoming.write(block)
        finally:
            chunks.close()
        if incoming.size != length:
            raise RuntimeError(f"{item.name} in the archive: got {incoming.size} of {length} bytes")
        return length if incoming.commit(sha, also_expected=item.sha256) else None
