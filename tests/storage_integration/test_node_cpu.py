"""Measurement (not a check): CPU of the storage node wrapper process itself, idle and under pgbench.

Prose: six real nodes with an S3 archive follow a writer. After every node is healthy, the CPU time of
each node process (``utime + stime`` from ``/proc/<pid>/stat``; the receiver child's time is not in it)
is sampled over a quiet window and over a pgbench run, and printed per node per second and per committed
transaction. Runs only with ``QUORUMDB_MEASURE_NODE_CPU=1`` (it asserts nothing but the setup), e.g.::

    QUORUMDB_MEASURE_NODE_CPU=1 .venv/bin/python -m pytest -s -q tests/storage_integration/test_node_cpu.py
"""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from tests.fixtures.postgres import PG_BIN
from tests.fixtures.s3server import S3Bucket
from tests.fixtures.storage import StorageCluster, StorageFactory

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("QUORUMDB_MEASURE_NODE_CPU") != "1",
        reason="set QUORUMDB_MEASURE_NODE_CPU=1 to measure",
    ),
]

_TICK = os.sysconf("SC_CLK_TCK")
_TPS = re.compile(r"tps = ([\d.]+)")


def _cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` alone (children not included), in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _sample(sc: StorageCluster, seconds: float) -> tuple[list[float], list[float]]:
    """CPU seconds per second of each node process and of each receiver child over ``seconds``."""
    nodes = [sc.procs[i].pid for i in range(6)]
    rx = [sc.receiver_pid(i) for i in range(6)]
    before = [_cpu_s(p) for p in nodes]
    rx_before = [_cpu_s(p) if p else 0.0 for p in rx]
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    node_rate = [(_cpu_s(p) - b) / elapsed for p, b in zip(nodes, before, strict=True)]
    rx_rate = [(_cpu_s(p) - b) / elapsed if p else 0.0 for p, b in zip(rx, rx_before, strict=True)]
    return node_rate, rx_rate


def _fmt(rates: list[float]) -> str:
    ms = sorted(r * 1000 for r in rates)
    return f"median {ms[len(ms) // 2]:.2f} ms/s (min {ms[0]:.2f}, max {ms[-1]:.2f})"


def test_node_wrapper_cpu(storage_factory: StorageFactory, s3_bucket: S3Bucket) -> None:
    seconds = float(os.environ.get("QUORUMDB_MEASURE_SECONDS", "20"))
    sc = storage_factory(s3=s3_bucket)
    w = sc.writer
    conn_args = ["-h", w.host, "-p", str(w.port), "-U", "postgres", "postgres"]
    subprocess.run(
        [str(PG_BIN / "pgbench"), "-i", "-s", "1", "-q", *conn_args], check=True, capture_output=True
    )
    sc.wait(lambda: all(sc.status(i)["healthy"] for i in range(6)), 60, "all nodes healthy")
    time.sleep(3)
    idle, idle_rx = _sample(sc, seconds)
    print(f"\nidle ({seconds:.0f}s): node wrapper {_fmt(idle)}; receiver {_fmt(idle_rx)}")
    bench = subprocess.Popen(
        [str(PG_BIN / "pgbench"), "-n", "-c", "4", "-j", "2", "-T", str(int(seconds) + 2), *conn_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1)
    load, load_rx = _sample(sc, seconds)
    out, err = bench.communicate(timeout=seconds + 60)
    assert bench.returncode == 0, err[-2000:]
    m = _TPS.search(out)
    tps = float(m.group(1)) if m else float("nan")
    per_txn = sorted(r / tps * 1e6 for r in load)
    print(
        f"pgbench -c 4 ({seconds:.0f}s, {tps:.0f} TPS): node wrapper {_fmt(load)} "
        f"= median {per_txn[len(per_txn) // 2]:.1f} us/txn; receiver {_fmt(load_rx)}"
    )
