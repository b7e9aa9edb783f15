"""Measurement (not a check): bulk repair throughput of one node from five peers, against a disk copy.

Prose: five real node processes hold the same N sealed 16 MiB segments (no writer, no S3: only the repair
pipeline — peers verify and send, the node receives, verifies and installs). A sixth node starts holding
only a later ``.partial``, so its window asks for all N; the bytes it fetched over the time from its
repair start to its finish are compared with a sequential disk copy measured just before. Runs only with
``QUORUMDB_MEASURE_REPAIR=1`` (``QUORUMDB_MEASURE_SEGMENTS``, default 16), e.g.::

    QUORUMDB_MEASURE_REPAIR=1 .venv/bin/pytest -s tests/storage_integration/test_repair_throughput.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from aurora_storage import lsn as lsnmod

from tests.fixtures import availability
from tests.storage_integration.test_archive_repair import _disk_copy_mb_s

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("QUORUMDB_MEASURE_REPAIR") != "1", reason="set QUORUMDB_MEASURE_REPAIR=1 to measure"
    ),
]


def test_repair_throughput_from_five_peers(tmp_path: Path) -> None:
    n = int(os.environ.get("QUORUMDB_MEASURE_SEGMENTS", "16"))
    victim = 2
    ports = availability.free_ports(6)
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    src = tmp_path / "src"
    src.mkdir()
    for segno in range(1, n + 1):
        (src / lsnmod.segment_name(1, segno)).write_bytes(os.urandom(lsnmod.WAL_SEGMENT_SIZE))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUORUMDB_S3")}
    procs: list[subprocess.Popen[bytes]] = []

    def start(i: int) -> None:
        args = [sys.executable, "-m", "aurora_storage.node.main", "--ordinal", str(i)]
        args += ["--data-dir", str(tmp_path / f"node{i}"), "--listen", "127.0.0.1", "--port", str(ports[i])]
        args += ["--peers", ",".join(urls)]
        log = (tmp_path / f"node{i}.log").open("ab")
        procs.append(subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT))

    http = httpx.Client(timeout=10)

    def wait(pred: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if pred():  # type: ignore[operator]
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def sealed(i: int) -> int:
        files = http.get(urls[i] + "/v1/segments").json()["files"]
        return sum(1 for f in files if f["sha256"])

    try:
        for i in range(6):
            wal = tmp_path / f"node{i}" / "wal"
            wal.mkdir(parents=True)
            if i == victim:
                (wal / (lsnmod.segment_name(1, n + 1) + ".partial")).write_bytes(
                    bytes(lsnmod.WAL_SEGMENT_SIZE)
                )
                continue
            for f in src.iterdir():
                os.link(f, wal / f.name)  # same bytes on every peer, one copy on disk
            start(i)
        wait(lambda: all(sealed(i) == n for i in range(6) if i != victim), 120, "peers sealed")
        disk_mb_s = _disk_copy_mb_s(tmp_path)
        start(victim)
        wait(lambda: http.get(urls[victim] + "/v1/status").json()["healthy"], 300, "repair")
        rep = http.get(urls[victim] + "/v1/status").json()["repair"]
        assert rep["fetched_files"] == n, rep
        seconds = rep["finished_at"] - rep["started_at"]
        mb_s = rep["fetched_bytes"] / seconds / 1e6
        print(
            f"\nrepair: {n} files, {rep['fetched_bytes'] / 1e6:.0f} MB in {seconds:.2f}s = {mb_s:.0f} MB/s; "
            f"disk sequential copy {disk_mb_s:.0f} MB/s; ratio {mb_s / disk_mb_s:.2f}"
        )
    finally:
        for p in procs:
            p.kill()
            p.wait()
        http.close()
