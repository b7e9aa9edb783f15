"""``StorageQuorum`` over the ``aurora_storage`` HTTP nodes, through the storage engine's own client.

Why: the storage engineer's ``aurora_storage.client`` already reads any three healthy nodes and verifies
checksums; this adapter only maps it onto the instance manager's Protocol and adds fencing
(``PUT StoragePaths.TERM``). It must not re-implement WAL selection.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Sequence
from pathlib import Path

import httpx
from aurora_api import contract
from aurora_storage import client, quorum

from aurora_instance.storage import FenceResult, QuorumUnavailable, WalTail

log = logging.getLogger(__name__)


class HttpStorage:
    def __init__(self, urls: Sequence[str], timeout: float = 3.0) -> None:
        self.client = client.StorageClient(urls, timeout=timeout)
        self.urls = self.client.urls
        self.timeout = timeout

    def _put_term(self, url: str, term: int, writer: str) -> tuple[bool, int]:
        try:
            r = httpx.put(
                url + contract.StoragePaths.TERM, json={"term": term, "writer": writer}, timeout=self.timeout
            )
        except httpx.HTTPError as err:
            log.info("fencing %s at term %d: unreachable (%s)", url, term, err)
            return False, 0
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        node_term = int(body.get("term", 0) or 0)
        if r.status_code == 200:
            return node_term == term, node_term
        log.warning("fencing %s at term %d: %d %s", url, term, r.status_code, body)
        return False, node_term

    def fence(self, term: int, writer: str) -> FenceResult:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.urls)) as pool:
            results = list(pool.map(lambda u: self._put_term(u, term, writer), self.urls))
        return FenceResult(sum(1 for ok, _ in results if ok), max((t for _, t in results), default=0))

    def tail(self, min_term: int = 0) -> WalTail:
        try:
            q = self.client.read_quorum(min_term=min_term)
        except quorum.QuorumError as err:
            raise QuorumUnavailable(str(err)) from err
        if q.flush_lsn is None or q.timeline is None:
            raise QuorumUnavailable(f"storage nodes {q.ordinals} report no flushed WAL")
        return WalTail(q.timeline, q.flush_lsn, f"storage_{q.nodes[0].ordinal}", len(q.nodes))

    def fetch(self, name: str, dest: Path) -> bool:
        try:
            q = self.client.read_quorum()
        except quorum.QuorumError as err:
            raise QuorumUnavailable(str(err)) from err
        return self.client.fetch(name, dest, q)
