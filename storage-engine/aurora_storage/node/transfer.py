"""One repair transfer: a completed WAL file from a peer or the archive into the store (blocking, a thread).

Why it exists: repair spends its time here, so each transfer does the least work per byte: the body is
read in 1 MiB blocks straight into one reused buffer and each block is hashed and written to ``tmp/``
as it arrives (``store.Incoming``: one pass, no whole-file buffer, no second hash); the digest is then
compared with the source's header or metadata and with the peers' inventory before anything is
installed. The GIL is released while receiving, hashing and writing, so several transfers proceed in
parallel. A transfer checks its ``stop`` event between blocks, so a hedged duplicate ends as soon as
another copy won. It must not choose sources or decide what to fetch (``repair_plan``,
``repair_attempts``).
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse

from aurora_api import contract, https

from aurora_storage import checksum, repair_plan, s3
from aurora_storage.node import store as storemod

SHA_HEADER = "X-Quorumdb-Sha256"
TIMEOUT_S = 30.0
MAX_FILE_BYTES = 64 * 1024 * 1024
BLOCK = checksum.CHUNK


class Cancelled(Exception):
    """Another copy of the file was installed first; this transfer stopped and discarded its bytes."""


def from_peer(
    store: storemod.WalStore, url: str, item: repair_plan.Fetch, origin: str, stop: threading.Event
) -> int | None:
    """``GET /v1/wal/<name>`` from the peer at ``url``; install if body == header == inventory.

    Returns the size installed, or None when another transfer installed the file first.
    """
    u = urllib.parse.urlsplit(url)
    conn: http.client.HTTPConnection
    if u.scheme == "https":
        host, context = u.hostname or "localhost", https.client_context()
        conn = http.client.HTTPSConnection(host, u.port, timeout=TIMEOUT_S, context=context)
    else:
        conn = http.client.HTTPConnection(u.hostname or "localhost", u.port, timeout=TIMEOUT_S)
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
        buf = memoryview(bytearray(min(BLOCK, max(length, 1))))
        with store.receive(item.name, origin) as incoming:
            while incoming.size < length:
                if stop.is_set():
                    raise Cancelled(item.name)
                n = r.readinto(buf[: min(len(buf), length - incoming.size)])
                if not n:
                    raise RuntimeError(
                        f"{item.name} from {url}: body ended after {incoming.size} of {length}"
                    )
                incoming.write(buf[:n])
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
