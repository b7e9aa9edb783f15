"""Restore from a read quorum: a base backup replays WAL served by ``quorumdb-wal-fetch`` / the client.

Prose: a base backup is taken without WAL (``-X none``): everything it needs must come from the storage
nodes. Clients commit; the writer is SIGKILLed. The CLI fetches files with restore_command's exit codes
(0 found, 1 absent, 126 no quorum). The storage client copies what three nodes hold into the backup's
``pg_wal``; the backup is started in recovery and promoted at the end of WAL, and every acknowledged row
is present. (restore_command itself runs as user postgres, who cannot run this checkout's interpreter
here, so the test drives the same client code from the test process.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest
from aurora_storage import lsn as lsnmod

from tests.fixtures.postgres import basebackup
from tests.fixtures.storage import StorageFactory
from tests.storage_integration.helpers import Committer

pytestmark = pytest.mark.integration


def _cli(nodes: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aurora_storage.fetch_cli", "--nodes", ",".join(nodes), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_backup_plus_quorum_wal_recovers_every_acknowledged_commit(storage_factory: StorageFactory) -> None:
    sc = storage_factory()
    with sc.writer.connect() as conn:
        Committer.create_table(conn)
    backup = basebackup(sc.writer, wal="none")
    committer = Committer(sc.writer.conninfo(), threads=3).start()
    time.sleep(2.0)
    with sc.writer.connect() as conn:
        conn.execute("SELECT pg_switch_wal()")
    time.sleep(1.0)
    sc.writer.kill()
    committer.stop()
    acked_ids = {rid for _, rid in committer.acked}
    assert len(acked_ids) > 20, committer.errors[:3]

    # The CLI: exit 0 with the file, 1 for a file nobody has, 126 without a read quorum.
    with sc.client() as c:
        q = c.read_quorum()
        newest = max((n for n in c.names(q) if not n.endswith(".history")), key=lsnmod.parse_wal_name)
    dest = sc.root / "fetched"
    r = _cli(sc.urls, newest, str(dest))
    assert r.returncode == 0, r.stderr
    assert dest.stat().st_size == lsnmod.WAL_SEGMENT_SIZE
    assert _cli(sc.urls, lsnmod.segment_name(1, 9999), str(dest)).returncode == 1
    assert _cli(sc.urls, "00000002.history", str(dest)).returncode == 1
    for i in (0, 1, 2, 3):
        sc.kill(i)
    r = _cli(sc.urls, newest, str(dest))
    assert r.returncode == 126 and "read quorum" in r.stderr
    for i in (0, 1, 2, 3):
        sc.start(i, set_term=False)
    sc.wait(lambda: all(sc.status(i)["healthy"] for i in range(6)), 30, "nodes healthy again")

    # Recovery: the quorum's WAL into pg_wal, then archive recovery to the end of WAL and promotion.
    with sc.client() as c:
        q = c.read_quorum()
        names = c.fetch_all(backup.datadir / "pg_wal", q)
    assert names
    subprocess.run(["chown", "-R", "postgres:postgres", str(backup.datadir)], check=True)
    (backup.datadir / "recovery.signal").touch()
    backup.configure(
        {"synchronous_standby_names": "", "restore_command": "false", "recovery_target_timeline": "latest"}
    )
    backup.start(timeout=120)
    try:
        # hot_standby is on, so pg_ctl returns once the backup is consistent, mid-replay: wait for the
        # promotion at the end of WAL before counting rows (counting early missed rows in CI).
        deadline = time.monotonic() + 120
        with backup.connect() as conn:
            while conn.execute("SELECT pg_is_in_recovery()").fetchone() != (False,):
                assert time.monotonic() < deadline, backup.logfile.read_text()[-3000:]
                time.sleep(0.1)
            rows = conn.execute("SELECT id FROM audit").fetchall()
        present = {int(str(r[0])) for r in rows}
        missing = acked_ids - present
        log_tail = backup.logfile.read_text()[-3000:]
        assert not missing, f"{len(missing)} acknowledged rows missing after restore: {log_tail}"
    finally:
        backup.stop("immediate")
        shutil.rmtree(backup.root, ignore_errors=True)
