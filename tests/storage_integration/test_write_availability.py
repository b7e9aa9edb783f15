"""Write availability: any two storage nodes may die with commits continuing; a third blocks them.

Prose: pgbench writes through a writer with ``ANY 4`` of six storage nodes while a probe client records
when each of its commits is acknowledged. Two storage nodes are SIGKILLed: commits continue. A third is
SIGKILLed: commits wait (none acknowledged). One of them is restarted: commits resume.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from tests.fixtures.postgres import PG_BIN
from tests.fixtures.storage import StorageFactory
from tests.storage_integration.helpers import Committer

pytestmark = pytest.mark.integration

_PROGRESS = re.compile(r"progress: ([\d.]+) s, ([\d.]+) tps")


def test_two_nodes_lost_commits_continue_third_lost_commits_wait(storage_factory: StorageFactory) -> None:
    sc = storage_factory()
    w = sc.writer
    conn_args = ["-h", w.host, "-p", str(w.port), "-U", "postgres", "postgres"]
    subprocess.run(
        [str(PG_BIN / "pgbench"), "-i", "-s", "1", "-q", *conn_args], check=True, capture_output=True
    )
    with w.connect() as conn:
        Committer.create_table(conn)
    bench = subprocess.Popen(
        [str(PG_BIN / "pgbench"), "-n", "-c", "2", "-j", "1", "-T", "16", "-P", "1", *conn_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    probe = Committer(w.conninfo(), threads=1).start()
    t0 = time.monotonic()
    time.sleep(1.5)
    sc.kill(4)
    sc.kill(5)
    t_two = time.monotonic()
    time.sleep(2.5)
    two_down = probe.acked_between(t_two + 0.5, time.monotonic())
    sc.kill(3)
    t_three = time.monotonic()
    time.sleep(3.0)
    three_down = probe.acked_between(t_three + 0.5, time.monotonic())
    blocked_since = probe.ack_times[-1] if probe.ack_times else t0
    t_restart = time.monotonic()
    sc.start(3)
    t_back = time.monotonic()
    sc.wait(lambda: probe.acked_between(t_restart, time.monotonic()) > 0, 10, "commits to resume")
    # The node may acknowledge before its HTTP answers (it keeps its term and writer across restarts).
    resumed_after = min(t for t in probe.ack_times if t >= t_restart) - t_restart
    _out, err = bench.communicate(timeout=30)
    probe.stop()
    progress = [(float(a), float(b)) for a, b in _PROGRESS.findall(err)]
    print(
        f"probe commits with 2 nodes down: {two_down}; with 3 down: {three_down}; "
        f"stall {t_back - blocked_since:.2f}s; node restart took {t_back - t_restart:.2f}s, first commit "
        f"{resumed_after * 1000:.0f} ms after its restart began; "
        f"pgbench progress {progress}"
    )
    assert two_down > 20, "commits must continue with two storage nodes lost"
    assert three_down == 0, "no commit may be acknowledged by only three storage nodes"
    assert bench.returncode == 0, err[-2000:]
    tps_two = [tps for s, tps in progress if t_two - t0 + 1 <= s <= t_three - t0]
    tps_three = [tps for s, tps in progress if t_three - t0 + 1 < s <= t_restart - t0]
    assert tps_two and min(tps_two) > 0, progress
    assert tps_three and max(tps_three) == 0, progress
    tps_back = [tps for s, tps in progress if s > t_back - t0 + 1.5]
    assert tps_back and max(tps_back) > 0, f"pgbench must resume after a third node returns: {progress}"
