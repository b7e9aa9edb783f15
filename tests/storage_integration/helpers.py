"""Workload and audit helpers for the storage integration tests (real connections, real pg_waldump).

Why it exists: several tests need "commit rows and remember which commits were acknowledged" and
"which transactions does this WAL contain"; both live here once. pg_waldump (PostgreSQL's own decoder)
is the judge of what WAL holds, never our own parser.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

import psycopg

from tests.fixtures.postgres import PG_BIN

_COMMIT = re.compile(r"tx:\s+(\d+), lsn: [0-9A-F]+/[0-9A-F]+, prev [0-9A-F]+/[0-9A-F]+, desc: COMMIT")


class Committer:
    """Threads inserting one row per transaction; ``acked``: (xid, id) of each COMMIT that returned."""

    def __init__(self, conninfo: str, threads: int = 4, table: str = "audit") -> None:
        self.conninfo = conninfo
        self.table = table
        self.acked: list[tuple[int, int]] = []
        self.ack_times: list[float] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    @staticmethod
    def create_table(conn: psycopg.Connection[tuple[object, ...]], table: str = "audit") -> None:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, worker int, at timestamptz)"
        )

    def start(self) -> Committer:
        for t in self._threads:
            t.start()
        return self

    def _run(self, worker: int) -> None:
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
        except psycopg.Error as err:
            self.errors.append(str(err))
            return
        with conn:
            while not self._stop.is_set():
                try:
                    row = conn.execute(
                        f"INSERT INTO {self.table}(worker, at) VALUES (%s, now())"
                        " RETURNING txid_current(), id",
                        (worker,),
                    ).fetchone()
                except psycopg.Error as err:
                    self.errors.append(str(err))
                    return
                assert row is not None
                with self._lock:
                    self.acked.append((int(str(row[0])), int(str(row[1]))))
                    self.ack_times.append(time.monotonic())

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)

    def acked_between(self, t0: float, t1: float) -> int:
        with self._lock:
            return sum(1 for t in self.ack_times if t0 <= t < t1)


def committed_xids(wal_dir: Path, start_lsn: str, timeline: int = 1) -> tuple[set[int], str]:
    """XIDs of COMMIT records pg_waldump decodes in ``wal_dir`` from ``start_lsn`` on, and its last error."""
    r = subprocess.run(
        [
            str(PG_BIN / "pg_waldump"),
            "-p",
            str(wal_dir),
            "-t",
            str(timeline),
            "-s",
            start_lsn,
            "-r",
            "Transaction",
        ],
        capture_output=True,
        text=True,
    )
    return {int(m.group(1)) for m in _COMMIT.finditer(r.stdout)}, r.stderr.strip()[-300:]
