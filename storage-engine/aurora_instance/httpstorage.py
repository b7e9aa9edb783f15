"""``StorageQuorum`` over the ``aurora_storage`` HTTP nodes, through the storage engine's own client.

Why: the storage engineer's ``aurora_storage.client`` already reads any three healthy nodes and verifies
checksums; this adapter only maps it onto the instance manager's Protocol and adds fencing
(``PUT StoragePaths.TERM``) and the cluster's identity (``GET StoragePaths.TERM``). It must not re-implement
WAL selection.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from aurora_api import contract
from aurora_storage import client, quorum

from aurora_instance import storage
from aurora_instance.storage import FenceResult, QuorumUnavailable, StorageIdentity, WalTail

log = logging.getLogger(__name__)
REUSE_SECONDS = 10.0


class HttpStorage:
    def __init__(self, urls: Sequence[str], timeout: float = 3.0) -> None:
        self.client = client.StorageClient(urls, timeout=timeout)
        self.urls = self.client.urls
        self.timeout = timeout
        self._last: tuple[float, client.ReadQuorum] | None = None
        # One pooled client for fencing and identity (thread-safe): a client per request rebuilt its TLS
        # context and connection each time, which cost a promotion hundreds of ms on a loaded node.
        self._http = httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=2 * len(urls)))

    def _put_term(self, url: str, term: int, writer: str | None) -> tuple[bool, int]:
        body: dict[str, object] = {"term": term} if writer is None else {"term": term, "writer": writer}
        try:
            r = self._http.put(url + contract.StoragePaths.TERM, json=body)
        except httpx.HTTPError as err:
            log.info("fencing %s at term %d: unreachable (%s)", url, term, err)
            return False, 0
        answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        node_term = int(answer.get("term", 0) or 0)
        if r.status_code == 200:
            return node_term == term, node_term
        log.warning("fencing %s at term %d: %d %s", url, term, r.status_code, answer)
        return False, node_term

    def fence(self, term: int, writer: str | None = None) -> FenceResult:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.urls)) as pool:
            results = list(pool.map(lambda u: self._put_term(u, term, writer), self.urls))
        return FenceResult(sum(1 for ok, _ in results if ok), max((t for _, t in results), default=0))

    def _get_term(self, url: str) -> tuple[int, str | None] | None:
        try:
            r = self._http.get(url + contract.StoragePaths.TERM)
            r.raise_for_status()
            answer = r.json()
            sysid = answer.get("system_identifier")
            return int(answer.get("term") or 0), str(sysid) if sysid else None
        except (httpx.HTTPError, ValueError, TypeError, AttributeError) as err:
            log.info("reading the term of %s: no usable answer (%s)", url, err)
            return None

    def identity(self) -> StorageIdentity:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.urls)) as pool:
            answers = list(pool.map(self._get_term, self.urls))
        return storage.identity_of(a for a in answers if a is not None)

    def tail(self, min_term: int = 0) -> WalTail:
        try:
            q = self.client.read_quorum(min_term=min_term)
        except quorum.QuorumError as err:
            raise QuorumUnavailable(str(err)) from err
        self._last = (time.monotonic(), q)
        if q.flush_lsn is None or q.timeline is None:
            raise QuorumUnavailable(f"storage nodes {q.ordinals} report no flushed WAL")
        return WalTail(q.timeline, q.flush_lsn, f"storage_{q.nodes[0].ordinal}", len(q.nodes))

    def _quorum(self) -> client.ReadQuorum:
        if self._last is not None and time.monotonic() - self._last[0] < REUSE_SECONDS:
            return self._last[1]
        try:
            return self.client.read_quorum()
        except quorum.QuorumError as err:
            raise QuorumUnavailable(str(err)) from err

    def fetch_range(self, timeline: int, start: int, end: int) -> bytes | None:
        return self.client.fetch_range(timeline, start, end, self._quorum())

    def fetch(self, name: str, dest: Path) -> bool:
        """Within a few seconds of ``tail`` (a promotion, nodes fenced) reuse its quorum view."""
        return self.client.fetch(name, dest, self._quorum())
