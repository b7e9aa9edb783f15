"""Accept a client, wake the instance it is for, forward the connection once PostgreSQL answers.

Why wake through the instance manager (``InstancePaths.RESUME``) and not by retrying PostgreSQL: the
manager answers when the instance is ready, so the proxy connects once, at the right moment, and a client
never sees "the database system is starting up". A resume of a running instance answers at once, so a
client that reaches the proxy while the cluster runs (the endpoints are switched back a moment after a
resume) pays one local HTTP round trip and is served like the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass

import aiohttp
from aurora_api import contract, control
from aurora_api.reports import InstanceReport

from aurora_proxy import directory
from aurora_proxy.directory import Address, Roles

log = logging.getLogger(__name__)
REFRESH_SECONDS = 2.0
"""How often the proxy re-reads who writes (between clients too, so a client finds it known)."""
TARGET_WAIT_SECONDS = 15.0
"""How long a client waits for a writer (or reader) to be known before its connection is closed."""
STATUS_TIMEOUT_SECONDS = 1.0
CHUNK = 256 * 1024


@dataclass
class Counters:
    clients: int = 0
    forwarded: int = 0
    failed: int = 0
    last_wait_seconds: float | None = None


class Proxy:
    def __init__(
        self, instances: list[Address], session: aiohttp.ClientSession, tokens: control.Tokens
    ) -> None:
        self.instances = instances
        self.session = session
        self.tokens = tokens  # a resume changes the instance: it needs a control token
        self.roles = Roles(None, ())
        self.counters = Counters()
        self._turn = itertools.count()

    async def _status(self, a: Address) -> InstanceReport | None:
        timeout = aiohttp.ClientTimeout(total=STATUS_TIMEOUT_SECONDS)
        try:
            async with self.session.get(a.manager + contract.InstancePaths.STATUS, timeout=timeout) as r:
                return InstanceReport.model_validate(await r.json()) if r.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def refresh(self) -> Roles:
        answers = await asyncio.gather(*(self._status(a) for a in self.instances))
        self.roles = directory.roles(dict(zip(self.instances, answers, strict=True)))
        return self.roles

    async def keep_fresh(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REFRESH_SECONDS)

    def _pick(self, roles: Roles, readers: bool) -> Address | None:
        if not readers:
            return roles.writer
        if not roles.readers:
            return None
        return roles.readers[next(self._turn) % len(roles.readers)]

    async def _target(self, readers: bool) -> Address | None:
        deadline = time.monotonic() + TARGET_WAIT_SECONDS
        roles = self.roles
        while (chosen := self._pick(roles, readers)) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            roles = await self.refresh()
        return chosen

    async def _resume(self, a: Address) -> bool:
        timeout = aiohttp.ClientTimeout(total=contract.RESUME_WAIT_SECONDS + 5)
        try:
            url = a.manager + contract.InstancePaths.RESUME
            for headers in control.attempts(self.tokens()):  # the next token only after a 403 (a rotation)
                async with self.session.post(url, timeout=timeout, headers=headers) as r:
                    if r.status == 403:
                        continue
                    if r.status != 200:
                        log.warning("resume of %s answered %d: %s", a, r.status, (await r.text())[:300])
                        return False
                    report = InstanceReport.model_validate(await r.json())
                    break
            else:
                log.warning("resume of %s refused every control token", a)
                return False
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            log.warning("resume of %s failed: %s", a, err)
            return False
        return report.ready

    async def _ready_target(self, readers: bool) -> Address | None:
        """A target that answers its resume as ready; once more after a fresh look at the roles (the
        writer may have changed since the last refresh)."""
        for attempt in range(2):
            if attempt:
                await self.refresh()
            target = await self._target(readers)
            if target is not None and await self._resume(target):
                return target
        return None

    async def _connect(self, target: Address) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await asyncio.open_connection(target.host, target.postgres_port)
        except OSError as err:
            log.warning("connecting to %s failed: %s", target, err)
            return None

    async def handle(
        self, readers: bool, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        self.counters.clients += 1
        peer = client_w.get_extra_info("peername")
        started = time.monotonic()
        target = await self._ready_target(readers)
        upstream = await self._connect(target) if target is not None else None
        if target is None or upstream is None:
            self.counters.failed += 1
            log.warning("client %s: no %s could be woken; closing", peer, "reader" if readers else "writer")
            client_w.close()
            return
        waited = time.monotonic() - started
        self.counters.forwarded += 1
        self.counters.last_wait_seconds = waited
        log.info("client %s -> %s after %.3fs", peer, target, waited)
        up_r, up_w = upstream
        await asyncio.gather(_pump(client_r, up_w), _pump(up_r, client_w))


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until either side ends; then close the sink (PostgreSQL's protocol has no half-close)."""
    try:
        while data := await source.read(CHUNK):
            sink.write(data)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        sink.close()
