"""The storage node's HTTP API (aiohttp): status, inventory, WAL by name or LSN range, term, metrics.

Why it exists: promotion, restore, peers' repair and the operator all read a node through these paths
(``contract.StoragePaths``). A completed file is sent with its manifest's sha256 and checked by the
one who receives it (``store.open_sealed`` says why not here); a consumer that refused a copy reports
it (``POST .../verify``) and the file is re-hashed at once, quarantined and repaired when bad. A
partial or a range is hashed as it is sent. Setting a term persists it and kills the receiver before
answering. It must not hold logic beyond translating requests: file work is in ``store``, decisions in
the pure modules.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, BinaryIO

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aurora_api import contract, control

from aurora_storage import checksum, fencing, guarded
from aurora_storage import lsn as lsnmod
from aurora_storage import metrics as metricsmod
from aurora_storage.node import exporter, receiver, runtime, store

log = logging.getLogger(__name__)

SHA_HEADER = "X-Quorumdb-Sha256"
END_HEADER = "X-Quorumdb-End-Lsn"
RT_KEY = web.AppKey("rt", runtime.Runtime)
RX_KEY = web.AppKey("rx", receiver.Receiver)


def _error(status: int, error: str, **detail: Any) -> web.Response:
    return web.json_response({"error": error, **detail}, status=status)


async def _status(rt: runtime.Runtime) -> dict[str, Any]:
    return rt.status(await asyncio.to_thread(rt.store.entries))


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    st = await _status(request.app[RT_KEY])
    return web.json_response(
        {"ready": st["healthy"], "state": st["state"]}, status=200 if st["healthy"] else 503
    )


async def status(request: web.Request) -> web.Response:
    return web.json_response(await _status(request.app[RT_KEY]))


def _entry_json(e: store.Entry) -> dict[str, Any]:
    d = dataclasses.asdict(e)
    d["end_lsn"] = lsnmod.format_lsn(e.end_lsn) if e.end_lsn is not None else None
    if e.kind != "history":
        d["start_lsn"] = lsnmod.format_lsn(lsnmod.segment_start(e.segno))
    return d


async def segments(request: web.Request) -> web.Response:
    rt = request.app[RT_KEY]
    entries = await asyncio.to_thread(rt.store.entries)
    return web.json_response(
        {
            "node": rt.cfg.name,
            "term": rt.state.term,
            "healthy": rt.healthy,
            "files": [_entry_json(e) for e in entries],
        }
    )


def _partial_with_digest(store_: store.WalStore, name: str, acked: int | None) -> tuple[bytes, int, str]:
    data, end = store_.read_partial(name, acked)
    return data, end, checksum.sha256_bytes(data)


async def _read(rt: runtime.Runtime, name: str) -> tuple[bytes, int | None, str]:
    """Bytes, end LSN (None for history files) and sha256 of the bytes (hashed once, in a thread)."""
    wn = lsnmod.parse_wal_name(name)
    if wn.kind is lsnmod.WalKind.PARTIAL:
        return await asyncio.to_thread(_partial_with_digest, rt.store, name, rt.acked_lsn())
    try:
        data, digest = await asyncio.to_thread(rt.store.read_verified, name)
    except checksum.ChecksumError:
        rt.counters.corrupt_detected += 1
        rt.repair.invalidate()  # the hole is refilled by a repair round, which this starts
        raise
    return data, wn.end_lsn() if wn.kind is lsnmod.WalKind.SEGMENT else None, digest


class _VerifiedFile(web.StreamResponse):
    """Body = an open file the store just verified, sent with ``sendfile`` (no copy through Python)."""

    def __init__(self, fh: BinaryIO, size: int, headers: dict[str, str]) -> None:
        super().__init__(headers=headers)
        self._fh = fh
        self._size = size
        self.content_type = "application/octet-stream"
        self.content_length = size

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        try:
            writer = await super().prepare(request)
            if request.method == "HEAD":
                await super().write_eof()
                return writer
            transport = request.transport
            if transport is None:
                raise ConnectionResetError("connection lost")
            # os.sendfile where the transport allows it, else asyncio's own read-and-write fallback.
            await asyncio.get_running_loop().sendfile(transport, self._fh, 0, self._size)
            await super().write_eof()
            return writer
        finally:
            self._fh.close()


async def wal_file(request: web.Request) -> web.StreamResponse:
    rt = request.app[RT_KEY]
    name = request.match_info["name"]
    try:
        wn = lsnmod.parse_wal_name(name)
        if wn.kind is not lsnmod.WalKind.PARTIAL:
            return await _completed_file(rt, wn)
        data, end, digest = await _read(rt, name)
    except lsnmod.LsnError as err:
        return _error(400, "bad WAL file name", name=name, detail=str(err))
    except store.WalMissingError as err:
        return _error(404, "WAL not held by this node", name=name, node=rt.cfg.name, detail=str(err))
    except checksum.ChecksumError as err:
        return _error(500, "corrupt", name=name, node=rt.cfg.name, detail=str(err))
    headers = {SHA_HEADER: digest}  # of exactly these bytes (the written prefix of the .partial)
    if end is not None:
        headers[END_HEADER] = lsnmod.format_lsn(end)
    return web.Response(body=data, headers=headers, content_type="application/octet-stream")


async def _completed_file(rt: runtime.Runtime, wn: lsnmod.WalName) -> web.StreamResponse:
    try:
        fh, digest, size = await asyncio.to_thread(rt.store.open_sealed, wn.filename)
    except checksum.ChecksumError:
        rt.counters.corrupt_detected += 1
        rt.repair.invalidate()
        raise
    headers = {SHA_HEADER: digest}  # the manifest's; the reader checks body == header == its inventory
    if wn.kind is lsnmod.WalKind.SEGMENT:
        headers[END_HEADER] = lsnmod.format_lsn(wn.end_lsn())
    return _VerifiedFile(fh, size, headers)


async def wal_range(request: web.Request) -> web.Response:
    """``GET /v1/wal?timeline=1&start=0/3000000&end=0/3100000``: bytes of one segment's sub-range."""
    rt = request.app[RT_KEY]
    try:
        tli = int(request.query.get("timeline", "1"))
        start = lsnmod.parse_lsn(request.query["start"])
        end = lsnmod.parse_lsn(request.query["end"])
    except (KeyError, ValueError) as err:
        return _error(400, "need timeline, start and end (X/Y)", detail=str(err))
    segno = lsnmod.segment_of(start)
    if end <= start or lsnmod.segment_of(end - 1) != segno:
        return _error(400, "range must be non-empty and inside one segment", start=lsnmod.format_lsn(start))
    seg = lsnmod.segment_name(tli, segno)
    data: bytes | None = None
    for name in (seg, seg + ".partial"):
        try:
            data, _, _ = await _read(rt, name)
            break
        except store.WalMissingError:
            continue
        except checksum.ChecksumError as err:
            return _error(500, "corrupt", name=name, node=rt.cfg.name, detail=str(err))
    off = start - lsnmod.segment_start(segno)
    if data is None or len(data) < end - lsnmod.segment_start(segno):
        held = None if data is None else lsnmod.format_lsn(lsnmod.segment_start(segno) + len(data))
        return _error(404, "WAL range not held by this node", segment=seg, node=rt.cfg.name, held_until=held)
    chunk = data[off : end - lsnmod.segment_start(segno)]
    return web.Response(
        body=chunk,
        headers={SHA_HEADER: await asyncio.to_thread(checksum.sha256_bytes, chunk)},
        content_type="application/octet-stream",
    )


async def verify_file(request: web.Request) -> web.Response:
    """``POST /v1/wal/<name>/verify``: a consumer refused this node's copy; re-hash it now.

    ``{"name", "corrupt"}``; a corrupt copy is quarantined (never sent again) and a repair round starts.
    Needs the control token, like every request that changes something.
    """
    rt = request.app[RT_KEY]
    name = request.match_info["name"]
    try:
        wn = lsnmod.parse_wal_name(name)
    except lsnmod.LsnError as err:
        return _error(400, "bad WAL file name", name=name, detail=str(err))
    if wn.kind is lsnmod.WalKind.PARTIAL or rt.store.sealed(name) is None:
        return _error(404, "not a completed file held by this node", name=name, node=rt.cfg.name)
    bad = await asyncio.to_thread(rt.store.verify_one, name)
    if bad:
        rt.counters.corrupt_detected += 1
        rt.repair.invalidate()
        log.error("%s reported corrupt by a consumer: confirmed, quarantined", name)
    else:
        log.info("%s reported corrupt by a consumer: the stored copy verifies", name)
    return web.json_response({"name": name, "node": rt.cfg.name, "corrupt": bool(bad)})


async def get_term(request: web.Request) -> web.Response:
    st = request.app[RT_KEY].state
    return web.json_response(dataclasses.asdict(st))


async def put_term(request: web.Request) -> web.Response:
    """Set the term (and the writer to follow). Persisted, and the old receiver is dead, before 200.

    The answer carries the node's status as of that moment: fenced, its WAL no longer grows until the
    writer of this term streams, so a promotion reads the quorum's tail from its fence answers instead of
    asking every node again."""
    rt = request.app[RT_KEY]
    try:
        body = await request.json()
        term = body["term"]
        if not isinstance(term, int) or isinstance(term, bool) or term < 0:
            raise ValueError("term must be a non-negative integer")
        for optional in ("writer", "system_identifier"):
            if not isinstance(body.get(optional), (str, type(None))):
                raise ValueError(f"{optional} must be a string")
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        return _error(
            400, 'body must be {"term": int, "writer": conninfo?, "system_identifier": str?}',
            detail=str(err)[:300],
        )  # fmt: skip
    async with rt.term_lock:
        d = fencing.accept_term(rt.state.term, term)
        if not d.stream:
            return _error(409, "stale term", detail=d.reason, term=rt.state.term)
        sysid = body.get("system_identifier")
        if sysid and rt.state.system_identifier and str(sysid) != rt.state.system_identifier:
            return _error(409, "wrong cluster identity", pinned=rt.state.system_identifier, given=str(sysid))
        new = rt.state.with_term(term, body.get("writer"), str(sysid) if sysid else None)
        changed = new != rt.state
        if changed:
            await asyncio.to_thread(rt.state_file.save, new)
            rt.state = new
            rt.term_changed.set()
            await request.app[RX_KEY].fence()
            log.warning("%s", d.reason)
        else:
            rt.recheck.set()
    return web.json_response(
        {**dataclasses.asdict(rt.state), "changed": changed, "status": await _status(rt)}
    )


async def metrics(request: web.Request) -> web.Response:
    rt = request.app[RT_KEY]
    text = metricsmod.render(exporter.samples(rt, await _status(rt)))
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def make_app(rt: runtime.Runtime, rx: receiver.Receiver, tokens: control.Tokens) -> web.Application:
    """The routes; a term change needs the cluster's control token (``guarded``), reads do not."""
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[guarded.middleware(tokens)])
    app[RT_KEY] = rt
    app[RX_KEY] = rx
    p = contract.StoragePaths
    app.router.add_get(p.LIVENESS, healthz)
    app.router.add_get(p.READINESS, readyz)
    app.router.add_get(p.STATUS, status)
    app.router.add_get(p.SEGMENTS, segments)
    app.router.add_get(p.WAL, wal_range)
    app.router.add_get(p.WAL + "/{name}", wal_file)
    app.router.add_post(p.WAL + "/{name}" + p.VERIFY, verify_file)
    app.router.add_get(p.TERM, get_term)
    app.router.add_put(p.TERM, put_term)
    app.router.add_get(p.METRICS, metrics)
    return app
