"""Entry point ``quorumdb-proxy``: listen for the cluster endpoint (writer) and the reader endpoint, serve
probes and counters over HTTP, re-read the roles in the background.

Why it validates first: a bad instance list is a rendering bug, and an exit with the reason (code 2) shows
up in the pod's status, where a proxy that accepted clients and could forward none would not.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
from pathlib import Path

import aiohttp
from aiohttp import web
from aurora_api import contract, control, https

from aurora_proxy import directory
from aurora_proxy.relay import Proxy

log = logging.getLogger("aurora_proxy")
EXIT_CONFIG = 2
E = contract.EnvProxy


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


async def serve(instances: list[directory.Address], tokens: control.Tokens) -> None:
    listen = os.environ.get(E.LISTEN) or None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The managers are verified by the cluster's CA when the control endpoints speak HTTPS.
    connector = aiohttp.TCPConnector(ssl=https.client_context() or True)
    async with aiohttp.ClientSession(connector=connector) as session:
        proxy = Proxy(instances, session, tokens)

        async def writer_side(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await proxy.handle(False, r, w)

        async def reader_side(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await proxy.handle(True, r, w)

        async def healthz(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        async def status(_: web.Request) -> web.Response:
            roles = proxy.roles
            return web.json_response(
                {
                    "writer": str(roles.writer) if roles.writer else None,
                    "readers": [str(a) for a in roles.readers],
                    **dataclasses.asdict(proxy.counters),
                }
            )

        app = web.Application()
        app.add_routes([web.get("/healthz", healthz), web.get("/v1/status", status)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        served = https.control_server()  # its status is the cluster's business: HTTPS like the managers'
        listener = served.front if served is not None else None
        port = _port(E.HTTP_PORT, contract.PROXY_HTTP_PORT)
        await web.TCPSite(runner, listen, port, ssl_context=listener).start()
        if served is not None:
            served.follow()
        servers = [
            await asyncio.start_server(writer_side, listen, _port(E.WRITER_PORT, contract.PROXY_WRITER_PORT)),
            await asyncio.start_server(reader_side, listen, _port(E.READER_PORT, contract.PROXY_READER_PORT)),
        ]
        log.info("proxy for %s listening", ", ".join(map(str, instances)))
        await proxy.keep_fresh(stop)
        for server in servers:
            server.close()
        await runner.cleanup()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        instances = directory.parse_instances(os.environ.get(E.INSTANCES, ""))
        tokens = control.mounted(Path(os.environ.get(contract.Env.SECRETS_DIR) or contract.PATH_SECRETS_DIR))
    except ValueError as err:
        log.error("fatal: %s", err)
        sys.exit(EXIT_CONFIG)
    asyncio.run(serve(instances, tokens))


if __name__ == "__main__":
    main()
