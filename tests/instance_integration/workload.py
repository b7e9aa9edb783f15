"""Client-side load and the audit of acknowledged commits.

Why: "no acknowledged commit lost" is only provable if every commit the client saw succeed is recorded and
checked afterwards, not a sample. A commit counts as acknowledged only when COMMIT returned without error
*and* without PostgreSQL's "canceling wait for synchronous replication" warning (which means the commit is
only local and not on the storage quorum).
"""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

from tests.fixtures.postgres import PG_BIN
from tests.instance_integration.harness import SUPERUSER, Instance

_ids = itertools.count(1)
_ids_lock = threading.Lock()


def next_id() -> int:
    with _ids_lock:
        return next(_ids)


class AuditClient:
    """``threads`` connections inserting one row per autocommit transaction until the writer goes away."""

    def __init__(self, writer: Instance, threads: int = 2) -> None:
        self.writer = writer
        self.acked: set[int] = set()
        self.unsafe: set[int] = set()  # returned with the sync-rep cancel warning: not acknowledged
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> AuditClient:
        for t in self._threads:
            t.start()
        return self

    def _run(self) -> None:
        try:
            conn = self.writer.connect()
        except psycopg.Error:
            return
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
        with conn:
            while not self._stop.is_set():
                i = next_id()
                notices.clear()
                try:
                    conn.execute("INSERT INTO audit (id) VALUES (%s)", (i,))
                except psycopg.Error:
                    with self._lock:
                        self.errors += 1
                    return
                with self._lock:
                    if any("synchronous replication" in n for n in notices):
                        self.unsafe.add(i)
                    else:
                        self.acked.add(i)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)


def missing(instance: Instance, acked: set[int]) -> set[int]:
    with instance.connect() as conn:
        present = {int(r[0]) for r in conn.execute("SELECT id FROM audit").fetchall()}
    return acked - present


def pgbench(writer: Instance, seconds: float, clients: int = 2) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PGPASSWORD": SUPERUSER[1]}
    cmd = [str(PG_BIN / "pgbench"), "-h", "127.0.0.1", "-p", str(writer.pg_port), "-U", SUPERUSER[0],
           "-c", str(clients), "-j", "1", "-T", str(int(seconds) + 1), "-n", "appdb"]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def init_schema(writer: Instance) -> None:
    with writer.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS audit (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")
    env = {**os.environ, "PGPASSWORD": SUPERUSER[1]}
    subprocess.run(
        [str(PG_BIN / "pgbench"), "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", str(writer.pg_port),
         "-U", SUPERUSER[0], "appdb"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip


def audited_commits(writer: Instance, seconds: float = 1.0) -> set[int]:
    """Create the schema, run the audit client for ``seconds``; the ids it got acknowledged (never none)."""
    init_schema(writer)
    audit = AuditClient(writer).start()
    time.sleep(seconds)
    audit.stop()
    assert audit.acked, "the audit client got no commit acknowledged"
    return audit.acked


def first_commit(instance: Instance, timeout: float) -> float:
    """Time (monotonic) of the first successful INSERT on ``instance``, retrying until it works."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(instance.conninfo(), autocommit=True, connect_timeout=1) as conn:
                conn.execute("SET statement_timeout = '2s'")
                conn.execute("INSERT INTO audit (id) VALUES (%s)", (next_id(),))
                return time.monotonic()
        except psycopg.Error:
            time.sleep(0.05)
    raise AssertionError(f"no successful commit on {instance.name} within {timeout}s: {instance.log_tail()}")


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(name: str, values: Sequence[float], unit: str = "s") -> str:
    if not values:
        return f"{name}: no samples"
    return (
        f"{name}: n={len(values)} p50={percentile(values, 50):.3f}{unit} "
        f"p99={percentile(values, 99):.3f}{unit} "
        f"max={max(values):.3f}{unit} mean={statistics.mean(values):.3f}{unit}"
    )


def write_result(line: str) -> None:
    path = os.environ.get("QUORUMDB_RESULTS_FILE")
    if path:
        with Path(path).open("a") as f:
            f.write(line + "\n")
