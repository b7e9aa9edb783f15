"""The Data API's HTTP service: authenticate, parse, run on a pooled (or a transaction's pinned) connection,
answer in the wire format.

Why one pool per secret and a pinned connection per transaction: a statement without a transaction runs on
any pooled connection of its credentials (autocommit), while a transaction must see its own earlier
statements, so its id maps to one connection taken from the pool at ``BeginTransaction`` and given back at
commit, rollback, or when idle past ``idle_seconds`` (rolled back). A connection that breaks (a failover, a
pause being resumed) fails the call with ``ServiceUnavailableError``, which boto3 retries; a transaction on
it is gone, and says so, rather than answering from a different session.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from aurora_data_api import auth, wire
from aurora_data_api.wire import Column, DataApiError, bad_request

log = logging.getLogger(__name__)
Conn = psycopg.AsyncConnection[tuple[Any, ...]]
POOL_MAX = 10
POOL_WAIT_SECONDS = 20.0
"""How long a call waits for a connection (a paused cluster resumes well within it)."""


@dataclass(frozen=True)
class Config:
    cluster: str
    host: str
    port: int
    keys: dict[str, str]
    """Access key id -> secret access key of the callers allowed."""
    secrets_dir: Path
    """One directory per database Secret callers may name (``username``, ``password``, ``dbname``)."""
    idle_seconds: float = 180.0
    statement_timeout: float = wire.STATEMENT_TIMEOUT_SECONDS
    ca_file: Path | None = None
    """The cluster CA: connect with ``sslmode=verify-full`` (None: libpq's default, ``prefer``)."""
    tls_dir: Path | None = None
    """The certificate and key to serve HTTPS with (``aurora_api.https``); None: plain HTTP."""


@dataclass
class Transaction:
    conn: Conn
    secret: str
    pool: AsyncConnectionPool[Conn]
    last_used: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class DataApi:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.pools: dict[str, AsyncConnectionPool[Conn]] = {}
        self.transactions: dict[str, Transaction] = {}

    # --- credentials and pools ------------------------------------------------------------------------
    def _credentials(self, secret: str) -> dict[str, str]:
        folder = self.config.secrets_dir / secret
        if "/" in secret or secret.startswith(".") or not folder.is_dir():
            raise DataApiError(
                "ForbiddenException", f"secret {secret!r} is not allowed for this cluster", 403
            )
        try:
            return {k: (folder / k).read_text().strip() for k in ("username", "password", "dbname")}
        except FileNotFoundError as err:
            raise DataApiError("InvalidSecretException", f"secret {secret!r} lacks {err.filename}") from err

    def _tls(self) -> dict[str, str]:
        ca = self.config.ca_file
        return {"sslmode": "verify-full", "sslrootcert": str(ca)} if ca is not None else {}

    async def _pool(self, secret: str, database: str | None) -> AsyncConnectionPool[Conn]:
        creds = self._credentials(secret)
        key = f"{secret}/{database or creds['dbname']}"
        pool = self.pools.get(key)
        if pool is None:
            info = psycopg.conninfo.make_conninfo(
                host=self.config.host, port=self.config.port, user=creds["username"],
                dbname=database or creds["dbname"], connect_timeout=15,
                application_name="quorumdb-data-api", **self._tls(),
            )  # fmt: skip

            def login() -> dict[str, Any]:
                """The password as mounted now, read per new connection: a rotated one is used at once."""
                return {"autocommit": True, "password": self._credentials(secret)["password"]}

            pool = AsyncConnectionPool(
                info, min_size=0, max_size=POOL_MAX, open=False, timeout=POOL_WAIT_SECONDS,
                kwargs=login, connection_class=psycopg.AsyncConnection,
            )  # fmt: skip
            await pool.open()
            self.pools[key] = pool
        return pool

    # --- statements -----------------------------------------------------------------------------------
    async def _run(
        self, conn: Conn, sql: str, params: dict[str, Any], continue_after: bool
    ) -> tuple[list[Column] | None, list[tuple[Any, ...]], int]:
        async def statement() -> tuple[list[Column] | None, list[tuple[Any, ...]], int]:
            async with conn.cursor() as cur:
                await cur.execute(sql, params)
                if cur.description is None:
                    return None, [], max(cur.rowcount, 0)
                columns = [
                    Column(d.name, _type_name(conn, d.type_code), d.precision, d.scale)
                    for d in cur.description
                ]
                return columns, await cur.fetchall(), 0

        task = asyncio.ensure_future(statement())
        done, _ = await asyncio.wait({task}, timeout=self.config.statement_timeout)
        if task in done:
            return task.result()
        if not continue_after:
            with contextlib.suppress(psycopg.Error):
                await conn.cancel_safe(timeout=5)
            with contextlib.suppress(Exception):
                await task
        timeout = f"{self.config.statement_timeout:.0f}"
        more = " (it keeps running: continueAfterTimeout)" if continue_after else " and was cancelled"
        raise DataApiError("StatementTimeoutException", f"the statement ran past {timeout}s{more}")

    @contextlib.asynccontextmanager
    async def _connection(self, body: dict[str, Any], secret: str) -> AsyncIterator[Conn]:
        tx_id = body.get("transactionId")
        if tx_id:
            tx = self._transaction(tx_id, secret)
            async with tx.lock:
                tx.last_used = time.monotonic()
                try:
                    yield tx.conn
                except psycopg.OperationalError:
                    await self._end(tx_id, None)
                    raise
                tx.last_used = time.monotonic()
            return
        database = body.get("database")
        if database is not None and not isinstance(database, str):
            raise bad_request("database must be a string")
        pool = await self._pool(secret, database)
        async with pool.connection() as conn:
            yield conn

    def _transaction(self, tx_id: object, secret: str) -> Transaction:
        if not isinstance(tx_id, str):
            raise bad_request("transactionId must be a string")
        tx = self.transactions.get(str(tx_id))
        if tx is None or tx.secret != secret:
            raise DataApiError("TransactionNotFoundException", f"transaction {tx_id} is not found", 404)
        return tx

    async def execute(self, body: dict[str, Any], secret: str) -> dict[str, Any]:
        sql = body.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            raise bad_request("sql is required")
        text, params = wire.bind(sql, wire.parameters(body.get("parameters")))
        as_json = wire.records_as_json(body.get("formatRecordsAs"))
        options = wire.ResultOptions.parse(body.get("resultSetOptions"))
        metadata = wire.flag(body, "includeResultMetadata")
        continue_after = wire.flag(body, "continueAfterTimeout")
        async with self._connection(body, secret) as conn:
            columns, rows, updated = await self._run(conn, text, params, continue_after)
        return wire.result(columns, rows, updated, metadata=metadata, as_json=as_json, options=options)

    async def batch(self, body: dict[str, Any], secret: str) -> dict[str, Any]:
        sql = body.get("sql")
        sets = body.get("parameterSets") or [[]]
        if not isinstance(sql, str) or not isinstance(sets, list):
            raise bad_request("sql and parameterSets are required")
        bound = [wire.bind(sql, wire.parameters(s)) for s in sets]
        async with self._connection(body, secret) as conn:
            own = "transactionId" not in body
            if own:
                await conn.execute("BEGIN")
            try:
                for text, params in bound:
                    await self._run(conn, text, params, False)
                if own:
                    await conn.execute("COMMIT")
            except BaseException:
                if own and not conn.closed:
                    with contextlib.suppress(psycopg.Error):
                        await conn.execute("ROLLBACK")
                raise
        return {"updateResults": [{"generatedFields": []} for _ in bound]}

    async def begin(self, body: dict[str, Any], secret: str) -> dict[str, Any]:
        database = body.get("database")
        if database is not None and not isinstance(database, str):
            raise bad_request("database must be a string")
        pool = await self._pool(secret, database)
        conn = await pool.getconn()
        try:
            await conn.execute("BEGIN")
        except BaseException:
            await pool.putconn(conn)
            raise
        tx_id = secrets.token_urlsafe(24)
        self.transactions[tx_id] = Transaction(conn, secret, pool, time.monotonic())
        return {"transactionId": tx_id}

    async def finish(self, body: dict[str, Any], secret: str, commit: bool) -> dict[str, Any]:
        tx_id = body.get("transactionId")
        tx = self._transaction(tx_id, secret)
        async with tx.lock:
            await self._end(str(tx_id), "COMMIT" if commit else "ROLLBACK")
        return {"transactionStatus": "Transaction Committed" if commit else "Rollback Complete"}

    async def _end(self, tx_id: str, verb: str | None) -> None:
        tx = self.transactions.pop(tx_id, None)
        if tx is None:
            return
        try:
            if verb is not None:
                await tx.conn.execute(verb)
        finally:
            await tx.pool.putconn(tx.conn)

    async def expire(self, stop: asyncio.Event) -> None:
        """Roll back transactions idle longer than ``idle_seconds`` (AWS: three minutes)."""
        while not stop.is_set():
            now = time.monotonic()
            for tx_id, tx in list(self.transactions.items()):
                if now - tx.last_used > self.config.idle_seconds and not tx.lock.locked():
                    log.info("transaction %s idle for %.0fs: rolled back", tx_id[:6], now - tx.last_used)
                    with contextlib.suppress(psycopg.Error):
                        await self._end(tx_id, "ROLLBACK")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def close(self) -> None:
        for tx_id in list(self.transactions):
            with contextlib.suppress(psycopg.Error):
                await self._end(tx_id, "ROLLBACK")
        for pool in self.pools.values():
            await pool.close()


def _type_name(conn: Conn, oid: int) -> str:
    """PostgreSQL's name of a result type (arrays as ``_<element>``, as in ``pg_type``)."""
    info = conn.adapters.types.get(oid)
    if info is None:
        return str(oid)
    return f"_{info.name}" if info.array_oid == oid else info.name


def _error(err: DataApiError) -> web.Response:
    return web.json_response(err.body(), status=err.status, headers={"x-amzn-ErrorType": err.code})


def app(api: DataApi) -> web.Application:
    """Routes as boto3 calls them (``requestUri`` of each operation in the service model)."""

    def route(fn: Callable[[dict[str, Any], str], Awaitable[dict[str, Any]]]) -> Any:
        async def handle(request: web.Request) -> web.Response:
            raw = await request.read()
            try:
                url = f"{request.scheme}://{request.host}{request.raw_path}"
                now = datetime.datetime.now(datetime.UTC)
                auth.verify(request.method, url, request.headers, raw, api.config.keys, now)
                try:
                    body = json.loads(raw or b"{}")
                except (ValueError, RecursionError) as err:  # RecursionError: nested beyond reason
                    raise bad_request(f"malformed JSON body: {str(err)[:200]}") from err
                if not isinstance(body, dict):
                    raise bad_request("the body must be a JSON object")
                cluster = wire.arn_name(body.get("resourceArn"), "cluster")
                if cluster != api.config.cluster:
                    raise DataApiError("NotFoundException", f"cluster {cluster!r} is not served here", 404)
                secret = wire.arn_name(body.get("secretArn"), "secret")
                return web.json_response(await fn(body, secret))
            except DataApiError as err:
                return _error(err)
            except (PoolTimeout, psycopg.OperationalError) as err:
                message = f"the database is unavailable (failover or resume in progress?); retry: {err}"
                return _error(DataApiError("ServiceUnavailableError", message[:1000], 503))
            except psycopg.Error as err:
                state = f"; SQLState: {err.sqlstate}" if err.sqlstate else ""
                return _error(DataApiError("DatabaseErrorException", f"{err}{state}"[:2000]))

        return handle

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    application = web.Application(client_max_size=2 << 20)
    application.add_routes([
        web.post("/Execute", route(api.execute)),
        web.post("/BatchExecute", route(api.batch)),
        web.post("/BeginTransaction", route(api.begin)),
        web.post("/CommitTransaction", route(lambda b, s: api.finish(b, s, True))),
        web.post("/RollbackTransaction", route(lambda b, s: api.finish(b, s, False))),
        web.get("/healthz", healthz),
    ])  # fmt: skip
    return application
