"""The audit writer the end-to-end failover tests run inside the cluster (shipped in a ConfigMap by
``e2e/workload.py``; run with the image's ``/opt/quorumdb/bin/python``).

Why: "no acknowledged commit lost" is proven only if every commit the client saw succeed is written down and
every one of them is looked for afterwards, not a sample. ``write`` inserts one row per autocommit
transaction with a strictly increasing id and prints one line per outcome on stdout, which the test host
reads back with ``kubectl logs``::

    start <t> <first id>        conn <t> <server address>
    ack <id> <t>                unsafe <id> <t> <warning>     err <t> <message>
    done <t> <acks> <errors>

``t`` is ``time.time()`` (the kind nodes share the test host's kernel clock). A commit is acknowledged only
when the INSERT returned without error *and* without a warning such as PostgreSQL's "canceling wait for
synchronous replication" (the commit is then only local, not on the storage quorum: ``unsafe``). A commit
whose outcome is unknown (the connection broke during it) is not acknowledged, and its id is never reused.
A statement still running after ``--statement-timeout`` seconds is cancelled from the client (a cancelled
synchronous-replication wait returns with the warning: ``unsafe``). On any failure it reconnects every 0.1 s
with a 1 s connect timeout and never gives up; it stops when the stop file exists or after
``--max-seconds``. ``ids`` prints every id in the table (for the audit).

Connection parameters come from libpq's environment (``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``,
``PGDATABASE``). It must use only the standard library and psycopg, and must never count anything but a
clean return as acknowledged.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from typing import Any

import psycopg
from psycopg.errors import Diagnostic

RECONNECT_INTERVAL = 0.1
CREATE = "CREATE TABLE IF NOT EXISTS audit (id bigint PRIMARY KEY, at double precision)"


def connect(application_name: str) -> psycopg.Connection[tuple[Any, ...]]:
    """One autocommit connection that notices a vanished server within seconds: keepalives for an idle
    wait, ``tcp_user_timeout`` for data a dead peer never acknowledges."""
    return psycopg.connect(
        autocommit=True,
        connect_timeout=1,
        keepalives=1,
        keepalives_idle=2,
        keepalives_interval=1,
        keepalives_count=2,
        tcp_user_timeout=3000,
        application_name=application_name,
    )


def execute(conn: psycopg.Connection[tuple[Any, ...]], timeout: float, query: str, params: Any = None) -> Any:
    """``conn.execute`` cancelled from a timer after ``timeout`` seconds, then fetch all rows.

    Client-side because a server that is alive but lost its quorum keeps a COMMIT waiting for synchronous
    replication for ever, and ``statement_timeout`` does not cover the commit. A cancelled wait returns
    success with the warning: not acknowledged. A cancel that lands on the next statement only makes that
    one fail or warn, which is never counted as acknowledged either."""
    timer = threading.Timer(timeout, _cancel, (conn,))
    timer.daemon = True
    timer.start()
    try:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else None
    finally:
        timer.cancel()


def _cancel(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    with contextlib.suppress(Exception):
        conn.cancel_safe(timeout=1.0)


def emit(*fields: object) -> None:
    """One line in one write (the image sets PYTHONUNBUFFERED: print would write it piecewise)."""
    sys.stdout.write(" ".join(str(f) for f in fields) + "\n")
    sys.stdout.flush()


def short(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:200]


class Notices:
    """Notices received on one connection, kept as text (a ``Diagnostic`` is valid only in the callback)."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def __call__(self, notice: Diagnostic) -> None:
        if is_warning(notice.severity_nonlocalized or notice.severity, notice.message_primary):
            self.warnings.append(str(notice.message_primary))


def is_warning(severity: str | None, message: str | None) -> bool:
    """A notice that makes a commit not acknowledged: any WARNING (or worse), or anything about synchronous
    replication ("canceling wait for synchronous replication ...")."""
    return severity not in ("NOTICE", "INFO", "LOG", "DEBUG") or "synchronous replication" in (message or "")


def close(conn: psycopg.Connection[tuple[Any, ...]] | None) -> None:
    if conn is not None:
        with contextlib.suppress(psycopg.Error):
            conn.close()


def write(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.max_seconds
    timeout = args.statement_timeout
    conn: psycopg.Connection[tuple[Any, ...]] | None = None
    notices = Notices()
    next_id: int | None = None
    acks = errors = 0
    while not os.path.exists(args.stop_file) and time.monotonic() < deadline:
        if conn is None:
            try:
                conn = connect("quorumdb-e2e-audit")
                conn.add_notice_handler(notices)
                if next_id is None:  # once: ids continue above whatever an earlier run left in the table
                    execute(conn, timeout, CREATE)
                    rows = execute(conn, timeout, "SELECT coalesce(max(id), 0) FROM audit")
                    next_id = int(rows[0][0]) + 1
                    emit("start", time.time(), next_id)
                rows = execute(conn, timeout, "SELECT coalesce(host(inet_server_addr()), 'local')")
                emit("conn", time.time(), rows[0][0])
            except psycopg.Error as err:
                errors += 1
                emit("err", time.time(), short(err))
                close(conn)
                conn = None
                time.sleep(RECONNECT_INTERVAL)
                continue
        assert next_id is not None
        row_id, next_id = next_id, next_id + 1  # never reused, whatever the outcome
        notices.warnings.clear()
        try:
            execute(conn, timeout, "INSERT INTO audit (id, at) VALUES (%s, %s)", (row_id, time.time()))
        except psycopg.Error as err:
            errors += 1
            emit("err", time.time(), short(err))
            close(conn)
            conn = None
            time.sleep(RECONNECT_INTERVAL)
            continue
        now = time.time()
        if notices.warnings:
            emit("unsafe", row_id, now, notices.warnings[0][:200])
        else:
            acks += 1
            emit("ack", row_id, now)
    close(conn)
    emit("done", time.time(), acks, errors)
    # Stay up (idle) so the test can still `kubectl exec` the audit query in this container.
    linger_until = time.monotonic() + args.linger_seconds
    while time.monotonic() < linger_until and not os.path.exists(args.exit_file):
        time.sleep(0.5)
    return 0


def ids(args: argparse.Namespace) -> int:
    """Print every id in the table, then ``end <count>``; retries through a failover for ``--timeout``."""
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            with connect("quorumdb-e2e-audit-read") as conn:
                rows = execute(conn, args.statement_timeout * 6, "SELECT id FROM audit ORDER BY id")
            break
        except psycopg.Error as err:
            print(short(err), file=sys.stderr, flush=True)
            if time.monotonic() > deadline:
                return 1
            time.sleep(0.5)
    sys.stdout.write("".join(f"{r[0]}\n" for r in rows) + f"end {len(rows)}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--statement-timeout", type=float, default=5.0, help="client-side, seconds")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="insert audited rows until stopped")
    w.add_argument("--max-seconds", type=float, default=3600.0)
    w.add_argument("--stop-file", default="/tmp/stop")
    w.add_argument("--exit-file", default="/tmp/exit", help="ends the idle wait after `done`")
    w.add_argument("--linger-seconds", type=float, default=0.0, help="idle after `done` (for kubectl exec)")
    r = sub.add_parser("ids", help="print every id in the audit table")
    r.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    return write(args) if args.command == "write" else ids(args)


if __name__ == "__main__":
    sys.exit(main())
