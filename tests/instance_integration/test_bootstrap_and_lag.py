"""Bootstrap, then reader lag under pgbench load (acceptance): commit acknowledged on the writer -> visible
on each reader.

Markers are committed every 20 ms on the writer next to a pgbench load; two pollers per reader look for
each marker every 2 ms. Every marker is measured, none sampled away.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest
from aurora_api import contract

from tests.fixtures.postgres import PG_BIN
from tests.instance_integration import workload
from tests.instance_integration.harness import APP, REPLICATION, Bed, Instance

pytestmark = pytest.mark.integration
SECONDS = float(os.environ.get("QUORUMDB_LAG_SECONDS", "6"))


def test_writer_and_readers_bootstrap_and_commit_through_the_quorum(shared_bed: Bed) -> None:
    assert shared_bed.writer is not None
    st = shared_bed.writer.status()
    assert st["role"] == contract.ROLE_WRITER
    assert st["term"] == 1
    assert st["postgres_version"].startswith("15")
    with shared_bed.writer.connect(user=APP) as conn:
        conn.execute("CREATE TABLE t (id int)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SHOW synchronous_standby_names").fetchone() == (
            "ANY 4 (storage_0,storage_1,storage_2,storage_3,storage_4,storage_5)",
        )
        checksums = conn.execute("SHOW data_checksums").fetchone()
    assert checksums == ("on",)
    for r in shared_bed.readers():
        r.wait(
            lambda r=r: r.connect().execute("SELECT count(*) FROM t").fetchone() == (1,), 10, "row on reader"
        )
        rs = r.status()
        assert rs["role"] == contract.ROLE_READER
        r.wait(r.ready, 10, "reader readiness")


def test_reader_lag_p99(shared_bed: Bed, capsys: pytest.CaptureFixture[str]) -> None:
    bed = shared_bed
    writer = bed.writer
    assert writer is not None
    workload.init_schema(writer)
    acked: dict[int, float] = {}
    seen: dict[tuple[str, int], float] = {}
    stop = threading.Event()

    def poll(reader: Instance) -> None:
        with reader.connect() as conn:
            while not stop.is_set():
                row = conn.execute("SELECT coalesce(max(id), 0) FROM audit").fetchone()
                now = time.monotonic()
                top = int(row[0]) if row else 0
                for i in list(acked):
                    if i <= top and (reader.name, i) not in seen:
                        seen[(reader.name, i)] = now
                time.sleep(0.002)

    pollers = [threading.Thread(target=poll, args=(r,), daemon=True) for r in bed.readers()]
    for t in pollers:
        t.start()
    bench = workload.pgbench(writer, SECONDS + 2)
    time.sleep(1)
    with writer.connect() as conn:
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            i = workload.next_id()
            conn.execute("INSERT INTO audit (id) VALUES (%s)", (i,))
            acked[i] = time.monotonic()
            time.sleep(0.02)
    time.sleep(2)
    stop.set()
    for t in pollers:
        t.join(5)
    bench.kill()
    bench.wait()
    lags = [seen[(r.name, i)] - t for r in bed.readers() for i, t in acked.items() if (r.name, i) in seen]
    missing = [(r.name, i) for r in bed.readers() for i in acked if (r.name, i) not in seen]
    assert not missing, f"{len(missing)} acknowledged markers never became visible on a reader"
    lags_ms = [max(0.0, x) * 1000 for x in lags]
    line = workload.summary(
        f"reader visibility lag under pgbench, {len(lags_ms)} marker observations", lags_ms, "ms"
    )
    workload.write_result(line)
    with capsys.disabled():
        print("\n" + line)
    with psycopg.connect(writer.conninfo(), autocommit=True) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_stat_replication WHERE application_name LIKE 'i%'"
        ).fetchone()


def test_reload_parameters_apply_live_and_restart_ones_are_reported(shared_bed: Bed) -> None:
    conf = shared_bed.config_dir / contract.CONFIG_POSTGRESQL_CONF
    conf.write_text("work_mem = '7MB'\nshared_buffers = '160MB'\n")
    for inst in shared_bed.instances:
        inst.wait(
            lambda i=inst: (
                "shared_buffers" in i.status()["pending_restart"]
                and i.connect().execute("SHOW work_mem").fetchone() == ("7MB",)
            ),
            30,
            "work_mem applied and shared_buffers pending restart",
        )
    conf.write_text("")


def _rotate(bed: Bed, account: str, password: str) -> None:
    """What the kubelet does when a Secret changes: the mounted file is replaced."""
    path = bed.secrets / account / contract.SecretsLayout.PASSWORD
    path.write_text(password + "\n")


def _logs_in(inst: Instance, user: tuple[str, str]) -> bool:
    try:
        with inst.connect(user=user) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError as err:
        assert "password authentication failed" in str(err), err
        return False


def _streaming(writer: Instance, name: str) -> bool:
    with writer.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming'",
            (name,),
        ).fetchone()
    return row == (1,)


def test_rotated_passwords_are_applied_by_the_writer_and_followed_by_the_readers(shared_bed: Bed) -> None:
    """A new password in the mounted Secrets: the writer gives it to the role (the old one stops working),
    and a reader whose stream is cut reconnects with the new replication password. Then back again."""
    writer = shared_bed.writer
    assert writer is not None
    L = contract.SecretsLayout
    rotated_app, rotated_replication = ("app", "rotated-app-pw-1"), ("replicator", "rotated-repl-pw-1")
    for (app, replication), old_app in (
        ((rotated_app, rotated_replication), APP),
        ((APP, REPLICATION), rotated_app),
    ):
        _rotate(shared_bed, L.APP, app[1])
        _rotate(shared_bed, L.REPLICATION, replication[1])
        writer.wait(lambda app=app: _logs_in(writer, app), 20, f"{app[1]} accepted")
        assert not _logs_in(writer, old_app)
        for reader in shared_bed.readers():
            with writer.connect() as conn:  # cut the stream: the reader must log in again
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = %s",
                    (reader.name,),
                )
            reader.wait(
                lambda r=reader: _streaming(writer, r.name),
                30,
                f"{reader.name} streaming again with the new replication password",
            )
    log = writer.log_tail(20000)
    assert "rotated-app-pw-1" not in log and "rotated-repl-pw-1" not in log
    assert "new password for replicator, app" in log


def test_sigterm_stops_postgres_cleanly_and_quickly(shared_bed: Bed) -> None:
    reader = shared_bed.readers()[-1]
    t0 = time.monotonic()
    assert reader.stop(timeout=30) == 0
    elapsed = time.monotonic() - t0
    assert reader.postmaster_pid is None or not Path(f"/proc/{reader.postmaster_pid}").exists()
    out = subprocess.run(
        [str(PG_BIN / "pg_controldata"), "-D", str(reader.data_root / "pgdata")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Database cluster state:               shut down in recovery" in out
    assert elapsed < 10, f"SIGTERM took {elapsed:.1f}s"
