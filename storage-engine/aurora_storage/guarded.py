"""The HTTP side of ``aurora_api.control``: an aiohttp middleware that refuses a request changing anything
(not GET or HEAD) without one of the cluster's control tokens in force (``tokens``, asked per request:
the current one and, during a rotation, the previous one): 401 when missing, 403 when wrong, and nothing is
changed. Shared by the storage node and the instance manager, so both refuse alike and log alike.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aurora_api import control

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(tokens: control.Tokens) -> Any:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            refused = control.verdict(request.headers.get(control.HEADER), tokens())
            if refused is not None:
                why = "missing" if refused == 401 else "wrong"
                log.warning("refused %s %s from %s: %s control token", request.method, request.path,
                            request.remote, why)  # fmt: skip
                return web.json_response({"error": f"{why} control token"}, status=refused)
        return await handler(request)

    return check
