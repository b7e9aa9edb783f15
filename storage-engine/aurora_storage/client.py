"""Read WAL back from the storage nodes: any three healthy nodes, up to their highest flushed LSN.

Why it exists: promotion and restore need every acknowledged commit, and an acknowledged commit is on at
least four of six nodes, so any three nodes together hold it (W + R > N). This client asks all six for
their status, keeps the healthy ones (at least ``READ_QUORUM``; optionally only those already on a new
term, i.e. fenced from the old writer), and fetches a WAL file by name, verifying checksums:

* a completed segment from any quorum node that holds it sealed (sha256 from its manifest);
* otherwise the ``.partial`` of the quorum node whose written data reaches furthest, zero-padded to the
  segment size (what PostgreSQL expects from ``restore_command``);
* a ``.history`` file from any quorum node holding it.

Usage (the instance manager's restore_command is ``quorumdb-wal-fetch %f %p``, see ``fetch_cli``)::

    c = client.StorageClient(["http://storage-0:7000", ...])
    q = c.read_quorum(min_term=3)          # raises quorum.QuorumError when fewer than 3 qualify
    q.flush_lsn                            # highest flushed LSN among the quorum
    c.fetch("000000010000000000000007", Path("pg_wal/RECOVERYXLOG"), q)  # True, or False if absent

It must not write anywhere but the destination path given to it.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aurora_api import contract, https

from aurora_storage import answers, checksum, quorum
from aurora_storage import lsn as lsnmod

log = logging.getLogger(__name__)

SHA_HEADER = "X-Quorumdb-Sha256"
QUORUM_GRACE = 0.1
"""Seconds a read quorum waits for the other nodes once READ_QUORUM qualifying ones answered: more nodes
may add WAL that was never acknowledged, never an acknowledged commit (W + R > N), so a promotion on a
loaded cluster does not wait for the slowest node's answer."""


def temp_path(dest: Path) -> Path:
    """Where ``fetch`` writes before renaming onto ``dest`` (a caller that abandons a fetch removes it)."""
    return dest.with_name(dest.name + ".quorumdb-tmp")


class FetchError(RuntimeError):
    """A file the quorum lists could not be fetched intact from any quorum node."""


@dataclass(frozen=True)
class NodeFile:
    name: str
    kind: str
    sha256: str | None
    end_lsn: int | None


@dataclass
class NodeReport:
    ordinal: int
    url: str
    status: dict[str, Any]
    files: dict[str, NodeFile] = field(default_factory=dict)

    @property
    def view(self) -> quorum.NodeView:
        s = self.status
        flush = lsnmod.parse_lsn(s["flush_lsn"]) if s.get("flush_lsn") else None
        return quorum.NodeView(
            self.ordinal, bool(s.get("healthy")), int(s.get("term", 0)), flush, s.get("timeline")
        )


@dataclass
class ReadQuorum:
    nodes: list[NodeReport]
    flush_lsn: int | None
    timeline: int | None

    @property
    def ordinals(self) -> list[int]:
        return [n.ordinal for n in self.nodes]

    @classmethod
    def of(cls, nodes: Sequence[NodeReport]) -> ReadQuorum:
        """A quorum of exactly these nodes, without health checks (audits that read a chosen triple)."""
        views = sorted(
            (n.view for n in nodes), key=lambda v: (v.timeline or 0, v.flush_lsn or 0), reverse=True
        )
        return cls(list(nodes), views[0].flush_lsn if views else None, views[0].timeline if views else None)


def urls_from_env() -> list[str]:
    raw = os.environ.get(contract.Env.STORAGE_NODES, "")
    return [https.url(x.strip()) for x in raw.split(",") if x.strip()]


class StorageClient:
    def __init__(self, urls: Sequence[str], timeout: float = 3.0, memoize: bool = False) -> None:
        """``memoize`` keeps verified file bodies per (node, name): for reading frozen WAL repeatedly
        (audits comparing many read sets after the writer stopped); never use it while nodes receive."""
        self.urls = [https.url(u).rstrip("/") for u in urls]
        verify = https.client_context() or True
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, read=30.0), verify=verify)
        self._memo: dict[tuple[str, str], bytes] | None = {} if memoize else None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StorageClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _report(self, ordinal: int, url: str) -> NodeReport | None:
        try:
            st = self._http.get(url + contract.StoragePaths.STATUS)
            inv = self._http.get(url + contract.StoragePaths.SEGMENTS)
            st.raise_for_status()
            inv.raise_for_status()
        except httpx.HTTPError as err:
            log.info("storage node %s (%s) unavailable: %s", ordinal, url, err)
            return None
        files = {}
        for f in inv.json()["files"]:
            end = lsnmod.parse_lsn(f["end_lsn"]) if f.get("end_lsn") else None
            files[f["name"]] = NodeFile(f["name"], f["kind"], f.get("sha256"), end)
        return NodeReport(ordinal, url, st.json(), files)

    def reports(self) -> list[NodeReport]:
        """Status and inventory of every node that answers (queried in parallel)."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.urls) or 1) as pool:
            results = list(pool.map(lambda iu: self._report(*iu), enumerate(self.urls)))
        return [r for r in results if r is not None]

    def _quorum_reports(self, min_term: int) -> list[NodeReport]:
        """Reports as they arrive, until every node answered or QUORUM_GRACE after READ_QUORUM qualifying
        ones did (healthy, at ``min_term`` or later). Stragglers finish in the background, unread."""

        def enough(got: list[NodeReport | None]) -> bool:
            qualified = [r for r in got if r is not None and r.view.healthy and r.view.term >= min_term]
            return len(qualified) >= contract.READ_QUORUM

        calls = [functools.partial(self._report, i, u) for i, u in enumerate(self.urls)]
        return [r for r in answers.gather(calls, enough, QUORUM_GRACE) if r is not None]

    def read_quorum(self, min_term: int = 0) -> ReadQuorum:
        """The healthy nodes at ``min_term`` or later that answered in time (at least ``READ_QUORUM``; see
        QUORUM_GRACE), and their highest flush."""
        reports = {r.ordinal: r for r in self._quorum_reports(min_term)}
        views = quorum.pick_read_quorum([r.view for r in reports.values()], min_term=min_term)
        nodes = [reports[v.ordinal] for v in views]
        best = views[0]
        return ReadQuorum(nodes, best.flush_lsn, best.timeline)

    def _get(self, node: NodeReport, name: str) -> bytes:
        if self._memo is not None and (node.url, name) in self._memo:
            return self._memo[(node.url, name)]
        r = self._http.get(f"{node.url}{contract.StoragePaths.WAL}/{name}")
        if r.status_code != 200:
            raise FetchError(f"{node.status.get('node')} answered {r.status_code} for {name}: {r.text[:200]}")
        data = r.content
        got = checksum.sha256_bytes(data)
        if got != r.headers.get(SHA_HEADER):
            raise checksum.ChecksumError(f"{name} from {node.url}: body sha256 {got} != header")
        if self._memo is not None:
            self._memo[(node.url, name)] = data
        return data

    def fetch_bytes(self, name: str, q: ReadQuorum) -> bytes | None:
        """Bytes of WAL file ``name`` as recovery should see it, or None when no quorum node has it."""
        wn = lsnmod.parse_wal_name(name)
        plain = wn.segment
        errors: list[str] = []
        sealed = [(n, n.files[plain]) for n in q.nodes if plain in n.files and n.files[plain].sha256]
        for node, f in sealed:
            try:
                data = self._get(node, plain)
            except (FetchError, checksum.ChecksumError, httpx.HTTPError) as err:
                errors.append(str(err))
                continue
            if checksum.sha256_bytes(data) != f.sha256:
                errors.append(f"{plain} from node {node.ordinal}: sha256 differs from its inventory")
                continue
            return data
        if wn.kind is lsnmod.WalKind.HISTORY:
            if errors:
                raise FetchError("; ".join(errors))
            return None
        partials = [(n, n.files[plain + ".partial"]) for n in q.nodes if plain + ".partial" in n.files]
        partials.sort(key=lambda nf: nf[1].end_lsn or 0, reverse=True)
        for node, _ in partials:
            try:
                data = self._get(node, plain + ".partial")
            except (FetchError, checksum.ChecksumError, httpx.HTTPError) as err:
                errors.append(str(err))
                continue
            return data + b"\0" * (lsnmod.WAL_SEGMENT_SIZE - len(data))
        if errors:
            raise FetchError(f"{name}: listed by the quorum but unreadable: " + "; ".join(errors))
        return None

    def fetch_range(self, timeline: int, start: int, end: int, q: ReadQuorum) -> bytes | None:
        """WAL bytes ``[start, end)`` of one segment on ``timeline`` from a quorum node whose flush reaches
        ``end`` (checksum-verified), or None when none serves them. For a reader that already holds the
        segment up to ``start`` (a promotion), instead of the whole partial."""
        holders = [n for n in q.nodes if n.view.timeline == timeline and (n.view.flush_lsn or 0) >= end]
        params = {"timeline": str(timeline), "start": lsnmod.format_lsn(start), "end": lsnmod.format_lsn(end)}
        for node in sorted(holders, key=lambda n: n.view.flush_lsn or 0, reverse=True):
            try:
                r = self._http.get(node.url + contract.StoragePaths.WAL, params=params)
            except httpx.HTTPError as err:
                log.info("WAL range from node %s: %s", node.ordinal, err)
                continue
            if r.status_code == 200 and checksum.sha256_bytes(r.content) == r.headers.get(SHA_HEADER):
                return r.content
            log.info("WAL range from node %s: %d %s", node.ordinal, r.status_code, r.text[:200])
        return None

    def fetch(self, name: str, dest: Path, q: ReadQuorum | None = None) -> bool:
        """Write WAL file ``name`` to ``dest`` (atomically); False when the quorum does not hold it."""
        q = q or self.read_quorum()
        data = self.fetch_bytes(name, q)
        if data is None:
            return False
        tmp = temp_path(dest)
        tmp.write_bytes(data)
        os.replace(tmp, dest)
        return True

    def names(self, q: ReadQuorum) -> list[str]:
        """Every WAL file name (plain segment names and histories) the quorum holds, in WAL order."""
        out = {lsnmod.parse_wal_name(name).segment for n in q.nodes for name in n.files}
        return sorted(
            out,
            key=lambda s: (
                lsnmod.parse_wal_name(s).kind is not lsnmod.WalKind.HISTORY,
                lsnmod.parse_wal_name(s),
            ),
        )

    def fetch_all(self, dest_dir: Path, q: ReadQuorum | None = None) -> list[str]:
        """Copy everything the quorum holds into ``dest_dir`` (partials as full segments); return names."""
        q = q or self.read_quorum()
        dest_dir.mkdir(parents=True, exist_ok=True)
        done = []
        for name in self.names(q):
            if self.fetch(name, dest_dir / name, q):
                done.append(name)
        return done


def trimmed(name: str, held: Sequence[str]) -> bool:
    """``name`` is a plain segment older than every segment in ``held`` (what the nodes hold): retention
    removed it, so only the archive can have it. A history file, or a segment at or past the oldest held
    (the one a reader waits for while the writer is down), is never "trimmed"."""
    try:
        wanted = lsnmod.parse_wal_name(name)
    except lsnmod.LsnError:
        return False
    if wanted.kind is not lsnmod.WalKind.SEGMENT:
        return False
    segments = []
    for other in held:
        try:
            parsed = lsnmod.parse_wal_name(other)
        except lsnmod.LsnError:
            continue
        if parsed.kind is not lsnmod.WalKind.HISTORY:
            segments.append(parsed.segno)
    return bool(segments) and wanted.segno < min(segments)
