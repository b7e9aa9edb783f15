"""``StorageQuorum`` over the ``aurora_storage`` HTTP nodes, through the storage engine's own client.

Why: the storage engineer's ``aurora_storage.client`` already reads any three healthy nodes and verifies
checksums; this adapter only maps it onto the instance manager's Protocol and adds fencing
(``PUT StoragePaths.TERM``) and the cluster's identity (``GET StoragePaths.TERM``). It must not re-implement
WAL selection.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import httpx
from aurora_api import contract, control, https
from aurora_storage import answers, client, quorum

from aurora_instance import storage
from aurora_instance.storage import FenceResult, QuorumUnavailable, StorageIdentity, WalTail

log = logging.getLogger(__name__)
REUSE_SECONDS = 10.0
FENCE_GRACE = 0.02
"""After FENCE_QUORUM confirmations, how long a fence waits for the other nodes' answers (they still get the
request): shorter than a read's grace, since three fenced nodes are all a promotion reads."""


class _Fenced(NamedTuple):
    """One node's answer to a fence."""

    confirmed: bool
    term: int
    view: quorum.NodeView | None
    """Its status as it confirmed (None when it did not, or sent none)."""


class HttpStorage:
    def __init__(
        self, urls: Sequence[str], timeout: float = 3.0, tokens: control.Tokens | None = None
    ) -> None:
        self.client = client.StorageClient(urls, timeout=timeout)
        self.urls = self.client.urls
        self.timeout = timeout
        self._last: tuple[float, client.ReadQuorum] | None = None
        self._fenced: tuple[int, list[quorum.NodeView]] = (0, [])
        """The term of the last fence and the status of each node that confirmed it."""
        # One pooled client for fencing and identity (thread-safe): a client per request rebuilt its TLS
        # context and connection each time, which cost a promotion hundreds of ms on a loaded node.
        self._http = httpx.Client(
            timeout=timeout, limits=httpx.Limits(max_connections=2 * len(urls)),
            verify=https.client_context() or True,
        )  # fmt: skip
        self._tokens = tokens or control.fixed()

    def _put_term(self, ordinal: int, url: str, term: int, writer: str | None) -> _Fenced:
        body: dict[str, object] = {"term": term} if writer is None else {"term": term, "writer": writer}
        try:
            for headers in control.attempts(self._tokens()) or [{}]:  # the next token only after a 403
                r = self._http.put(url + contract.StoragePaths.TERM, json=body, headers=headers)
                if r.status_code != 403:
                    break
        except httpx.HTTPError as err:
            log.info("fencing %s at term %d: unreachable (%s)", url, term, err)
            return _Fenced(False, 0, None)
        answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        node_term = int(answer.get("term", 0) or 0)
        if r.status_code == 200:
            status = answer.get("status")
            view = client.NodeReport(ordinal, url, status).view if isinstance(status, dict) else None
            return _Fenced(node_term == term, node_term, view)
        log.warning("fencing %s at term %d: %d %s", url, term, r.status_code, answer)
        return _Fenced(False, node_term, None)

    def fence(self, term: int, writer: str | None = None) -> FenceResult:
        """Every node is asked; the answer comes once ``FENCE_QUORUM`` confirmed (and a short grace for the
        rest): with that many at ``term`` the old writer can no longer gather a write quorum, and the slower
        nodes still get the request. The confirming nodes' status, taken as they confirmed, is kept for
        :meth:`tail`."""

        def enough(got: list[_Fenced]) -> bool:
            return sum(1 for f in got if f.confirmed) >= storage.FENCE_QUORUM

        calls = [functools.partial(self._put_term, i, u, term, writer) for i, u in enumerate(self.urls)]
        results = answers.gather(calls, enough, FENCE_GRACE)
        self._fenced = (term, [f.view for f in results if f.confirmed and f.view is not None])
        return FenceResult(sum(1 for f in results if f.confirmed), max((f.term for f in results), default=0))

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
        """From the answers of the last fence at ``min_term`` when READ_QUORUM healthy nodes confirmed it
        (their WAL stopped growing as they confirmed: nothing newer can be acknowledged by an older writer,
        and the new one has not promoted), else by asking every node."""
        term, views = self._fenced
        if min_term > 0 and term == min_term:
            try:
                best = quorum.pick_read_quorum(views, min_term=min_term)[0]
            except quorum.QuorumError:
                pass
            else:
                if best.flush_lsn is not None and best.timeline is not None:
                    return WalTail(best.timeline, best.flush_lsn, f"storage_{best.ordinal}", len(views))
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

    def trimmed(self, name: str) -> bool:
        return client.trimmed(name, [f for node in self._quorum().nodes for f in node.files])

    def fetch(self, name: str, dest: Path) -> bool:
        """Within a few seconds of ``tail`` (a promotion, nodes fenced) reuse its quorum view."""
        return self.client.fetch(name, dest, self._quorum())
