"""The e2e workload's clients against a real local PostgreSQL 15 (no Kubernetes): the audit writer survives
a SIGKILLed postmaster by reconnecting, every id it printed as ``ack`` is in the table afterwards, a commit
that returns with the "canceling wait for synchronous replication" warning is printed ``unsafe`` and not
``ack``, and ``e2e/workload.py`` parses and measures what it printed. The pgbench loop restarts pgbench
after the same kill.

Marked ``integration``: run with ``pytest -m integration e2e/test_audit_client.py`` (needs PostgreSQL 15
server binaries, ``QUORUMDB_PG_BIN_DIR`` or ``/usr/lib/postgresql/15/bin``; as root the server runs as
``postgres``). Skips locally and fails in CI when they are missing.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from workload import AuditLog

pytestmark = pytest.mark.integration
HERE = pathlib.Path(__file__).resolve().parent
PG_BIN = pathlib.Path(os.environ.get("QUORUMDB_PG_BIN_DIR", "/usr/lib/postgresql/15/bin"))
Spawn = Callable[..., "subprocess.Popen[str]"]


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups", *cmd]
    return cmd


class Server:
    """One throwaway PostgreSQL 15 on 127.0.0.1, database and user ``app`` (password ``secret``)."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.data = root / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = _as_postgres(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), *args]
        )
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=60)

    def init(self) -> None:
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                                     "--auth=trust", "-N"]), check=True, capture_output=True)  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = ''\n"
                       "fsync = off\n")  # fmt: skip
        self.start()
        with self.admin() as conn:
            conn.execute("CREATE ROLE app LOGIN PASSWORD 'secret'")
            conn.execute("CREATE DATABASE app OWNER app")

    def start(self) -> None:
        """Start, retrying while the killed server's backends still hold the old shared memory."""
        deadline = time.monotonic() + 60
        while self.pg_ctl("start", "-w", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError((self.root / "log").read_text()[-3000:])
            time.sleep(0.5)

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def env(self) -> dict[str, str]:
        return {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": "app",
                "PGPASSWORD": "secret", "PGDATABASE": "app"}  # fmt: skip


@pytest.fixture
def server() -> Iterator[Server]:
    if not (PG_BIN / "initdb").exists():
        problem = f"PostgreSQL 15 server binaries not found in {PG_BIN} (apt-get install postgresql-15)"
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    root = pathlib.Path(tempfile.mkdtemp(prefix="audit-client-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    srv = Server(root)
    try:
        srv.init()
        yield srv
    finally:
        srv.pg_ctl("stop", "-m", "immediate", check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def work() -> Iterator[pathlib.Path]:
    """A private directory (not pytest's ``work``: concurrent pytest runs prune each other's)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="audit-client-work-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Popen that kills what it started at teardown (a failed test must not leave a client running)."""
    started: list[subprocess.Popen[str]] = []

    def popen(cmd: list[str], **kw: Any) -> subprocess.Popen[str]:
        started.append(subprocess.Popen(cmd, text=True, stderr=subprocess.STDOUT, **kw))
        return started[-1]

    yield popen
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_client(spawn: Spawn, server: Server, tmp: pathlib.Path, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(HERE / "audit_client.py"), *args]
    return spawn(cmd, env=server.env(), stdout=(tmp / "out").open("w"))


def wait_log(tmp: pathlib.Path, predicate: Callable[[AuditLog], bool], timeout: float) -> AuditLog:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = AuditLog.parse((tmp / "out").read_text())
        if predicate(log):
            return log
        time.sleep(0.1)
    raise AssertionError(f"not reached in {timeout}s: {(tmp / 'out').read_text()[-2000:]}")


def table_ids(server: Server) -> set[int]:
    with server.admin("app") as conn:
        return {int(r[0]) for r in conn.execute("SELECT id FROM audit").fetchall()}


def test_audit_writer_reconnects_after_sigkill_and_every_ack_is_stored(
    server: Server, work: pathlib.Path, spawn: Spawn
) -> None:
    stop = work / "stop"
    proc = run_client(spawn, server, work, "write", "--stop-file", str(stop), "--max-seconds", "120")
    wait_log(work, lambda log: len(log.acks) >= 200, 30)
    t_kill = time.time()
    os.kill(server.postmaster_pid(), signal.SIGKILL)
    wait_log(work, lambda log: log.disruption_after(t_kill) is not None, 15)
    time.sleep(1.0)  # a second of refused connections
    server.start()
    wait_log(work, lambda log: log.recovered_after(t_kill), 30)
    time.sleep(0.5)
    stop.touch()
    assert proc.wait(30) == 0
    log = AuditLog.parse((work / "out").read_text())
    assert log.complete and log.first_id == 1
    assert len(log.connects) >= 2, "it did not reconnect"
    assert all(b > a for a, b in itertools.pairwise(log.acks)), "ids not strictly increasing in log order"
    missing = set(log.acks) - table_ids(server)
    assert not missing, sorted(missing)[:20]
    outage = log.outage_after(t_kill)
    assert 1.0 <= outage < 30, outage
    print(f"{len(log.acks)} acknowledged, {len(log.errors)} errors, outage {outage:.2f}s, none missing")

    # A second run continues above the first run's ids.
    stop.unlink()
    proc = run_client(spawn, server, work, "write", "--stop-file", str(stop), "--max-seconds", "1")
    assert proc.wait(30) == 0
    again = AuditLog.parse((work / "out").read_text())
    assert again.first_id is not None and again.first_id > max(log.acks)

    # `ids` lists the table for the audit, ending with the count.
    cmd = [sys.executable, str(HERE / "audit_client.py"), "ids", "--timeout", "5"]
    out = subprocess.run(cmd, env=server.env(), capture_output=True, text=True, check=True).stdout.split()
    assert out[-2:] == ["end", str(len(out) - 2)] and set(log.acks) <= {int(i) for i in out[:-2]}


def test_commit_with_cancelled_sync_replication_wait_is_not_acknowledged(
    server: Server, work: pathlib.Path, spawn: Spawn
) -> None:
    # A synchronous standby that never comes: every commit waits until the statement timeout cancels the
    # wait, and PostgreSQL returns success with the warning. The client must not call that acknowledged.
    with server.admin() as conn:
        conn.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
        conn.execute("SELECT pg_reload_conf()")
    stop = work / "stop"
    proc = run_client(spawn, server, work, "--statement-timeout", "0.3", "write", "--stop-file", str(stop))
    log = wait_log(work, lambda log: len(log.unsafe) >= 3, 30)
    stop.touch()
    assert proc.wait(30) == 0
    log = AuditLog.parse((work / "out").read_text())
    assert log.unsafe and not log.acks, (log.acks, log.unsafe)
    assert "synchronous replication" in (work / "out").read_text()
    assert set(log.unsafe) <= table_ids(server)  # committed locally: exactly why it is not acknowledged


def test_pgbench_loop_restarts_after_the_server_is_killed(
    server: Server, work: pathlib.Path, spawn: Spawn
) -> None:
    if shutil.which("pgbench") is None and not (PG_BIN / "pgbench").exists():
        pytest.skip("pgbench not found")
    env = {**server.env(), "PATH": f"{PG_BIN}:{os.environ.get('PATH', '')}"}
    stop = work / "stop"
    out = (work / "pgbench").open("w")
    cmd = [sys.executable, str(HERE / "pgbench_loop.py"), "--scale", "1", "--stop-file", str(stop)]
    proc = spawn(cmd, env=env, stdout=out)

    def text() -> str:
        return (work / "pgbench").read_text()

    deadline = time.monotonic() + 60
    while "progress:" not in text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "progress:" in text(), text()[-2000:]
    os.kill(server.postmaster_pid(), signal.SIGKILL)
    time.sleep(1)
    server.start()
    mark = len(text())
    deadline = time.monotonic() + 60
    while "progress:" not in text()[mark:] and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.touch()
    assert proc.wait(30) == 0
    assert "progress:" in text()[mark:], text()[-3000:]
    assert "rc=" in text() and "done" in text()
