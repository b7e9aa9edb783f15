"""The instance manager's HTTP API at ``contract.InstancePaths``: probes, status, promote, demote, pause,
resume, base backups, a WAL switch, metrics.

Why: the operator and the kubelet learn everything about an instance here, and the control plane changes its
role only here, by term. Promote/demote are idempotent per term and never act directly: they persist the new
``Intent`` and wake the decision loop. It must not run PostgreSQL commands.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from aiohttp import web
from aurora_api import contract, control
from aurora_storage import guarded

from aurora_instance.basebackup import Backups
from aurora_instance.manager import Manager
from aurora_instance.snapshot import Intent

log = logging.getLogger(__name__)
P = contract.InstancePaths
F = contract.PromoteFields
B = contract.BackupFields
RESUME_POLL_SECONDS = 0.02


async def _term_body(request: web.Request) -> tuple[int, dict[str, object]]:
    try:
        body = await request.json()
        term = body[F.TERM]
        if not isinstance(term, int) or isinstance(term, bool) or term < 1:
            raise ValueError("term must be a positive integer")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, RecursionError) as err:
        raise web.HTTPBadRequest(text=f"expected JSON {{'{F.TERM}': <int>, ...}}: {err}") from err
    return term, body


def build(manager: Manager, backups: Backups, tokens: control.Tokens) -> web.Application:
    def status_response(code: int) -> web.Response:
        return web.json_response(manager.status().model_dump(mode="json"), status=code)

    async def liveness(_: web.Request) -> web.Response:
        return web.Response(status=200 if manager.healthy() else 503, text=manager.last_decision)

    async def readiness(_: web.Request) -> web.Response:
        return web.Response(status=200 if manager.ready() else 503, text=manager.last_decision)

    async def status(_: web.Request) -> web.Response:
        return status_response(200)

    async def promote(request: web.Request) -> web.Response:
        term, _ = await _term_body(request)
        current = manager.intent
        if current.role == contract.ROLE_WRITER and term == current.term:
            return status_response(200 if manager.ready() else 202)  # idempotent per term
        if term <= current.term:
            return web.json_response(
                {"error": f"term {term} is not newer than this instance's term {current.term}"}, status=409
            )
        manager.set_intent(Intent(contract.ROLE_WRITER, term, None))
        return status_response(202)

    async def demote(request: web.Request) -> web.Response:
        term, body = await _term_body(request)
        writer = body.get(F.WRITER)
        if not isinstance(writer, str) or ":" not in writer:
            raise web.HTTPBadRequest(text=f"expected '{F.WRITER}': 'host:port'")
        current = manager.intent
        wanted = Intent(contract.ROLE_READER, term, writer)
        if current == wanted:
            return status_response(200 if manager.ready() else 202)
        if term <= current.term:
            return web.json_response(
                {"error": f"term {term} is not newer than this instance's term {current.term}"}, status=409
            )
        manager.set_intent(wanted)
        return status_response(202)

    async def pause(request: web.Request) -> web.Response:
        try:
            wakes = (await request.json())[contract.PauseFields.WAKES]
            if not isinstance(wakes, int) or isinstance(wakes, bool) or wakes < 0:
                raise ValueError("wakes must be a non-negative integer")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, RecursionError) as err:
            expected = f"expected JSON {{'{contract.PauseFields.WAKES}': <int>}}"
            raise web.HTTPBadRequest(text=f"{expected}: {err}") from err
        if not manager.pause(wakes):
            message = f"woken since (wakes {manager.wakes}, not {wakes}): not pausing"
            return web.json_response({"error": message}, status=409)
        return status_response(202)

    async def resume(request: web.Request) -> web.Response:
        """Answers once the instance serves (a proxy holds its client until then), or at once with 202 when
        asked ``?wait=0`` (the operator, which looks again on its next pass)."""
        manager.resume()
        if request.query.get("wait") == "0":
            return status_response(200 if manager.ready() else 202)
        deadline = time.monotonic() + contract.RESUME_WAIT_SECONDS
        while not manager.ready() and time.monotonic() < deadline:
            await asyncio.sleep(RESUME_POLL_SECONDS)
        return status_response(200 if manager.ready() else 503)

    async def start_backup(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            backup_id, reason, sub = body[B.ID], body.get(B.REASON, ""), body.get(B.PREFIX, "")
            if not isinstance(backup_id, str) or not backup_id.isalnum() or not isinstance(reason, str):
                raise ValueError("id must be a non-empty alphanumeric string")
            if not isinstance(sub, str) or ".." in sub.split("/") or sub.startswith("/"):
                raise ValueError("prefix must be a relative key prefix")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, RecursionError) as err:
            expected = f"expected JSON {{'{B.ID}': <str>, '{B.REASON}': <str>}}"
            raise web.HTTPBadRequest(text=f"{expected}: {err}") from err
        st = manager.status()
        if not backups.configured or not st.postmaster_running or st.system_identifier is None:
            why = "no object store (spec.backup)" if not backups.configured else "PostgreSQL is not running"
            return web.json_response({"error": why}, status=412)
        started, why = backups.start(backup_id, reason, st.system_identifier, sub)
        return web.json_response({"message": why}, status=202 if started else 409)

    async def switch_wal(_: web.Request) -> web.Response:
        lsn = await asyncio.to_thread(manager.switch_wal)
        if lsn is None:
            return web.json_response({"error": "not a ready writer"}, status=409)
        return web.json_response({"lsn": lsn})

    async def list_backups(_: web.Request) -> web.Response:
        return web.json_response([job.report().model_dump(mode="json") for job in backups.jobs])

    async def metrics(_: web.Request) -> web.Response:
        st = manager.status()
        lines = [
            f"quorumdb_instance_term {st.term}",
            f"quorumdb_instance_ready {int(st.ready)}",
            f"quorumdb_instance_is_writer {int(st.role == contract.ROLE_WRITER)}",
        ]
        for key, value in (
            ("lag_bytes", st.lag_bytes),
            ("lag_seconds", st.lag_seconds),
            ("timeline", st.timeline),
        ):
            if value is not None:
                lines.append(f"quorumdb_instance_{key} {value}")
        return web.Response(text="\n".join(lines) + "\n")

    app = web.Application(middlewares=[guarded.middleware(tokens)])
    app.add_routes(
        [
            web.get(P.LIVENESS, liveness),
            web.get(P.READINESS, readiness),
            web.get(P.STATUS, status),
            web.post(P.PROMOTE, promote),
            web.post(P.DEMOTE, demote),
            web.post(P.PAUSE, pause),
            web.post(P.RESUME, resume),
            web.post(P.BACKUPS, start_backup),
            web.get(P.BACKUPS, list_backups),
            web.post(P.SWITCH_WAL, switch_wal),
            web.get(P.METRICS, metrics),
        ]
    )
    return app
