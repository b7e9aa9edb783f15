"""Bad input on the read path: missing WAL answers a clear 404, a flipped byte is never accepted.

Prose: after a segment completes on all six nodes, one byte of node 0's copy is flipped. Node 0 sends
completed files without re-reading them (its manifest's digest in the header), so the reader's check is
what catches it: the body's sha256 differs from the header. The reader's report (``POST .../verify``,
control token required) makes node 0 re-hash the file at once: it answers "corrupt", quarantines the copy,
counts it, and repairs the segment from its peers, serving the correct bytes again. A copy of the wrong
size (node 1's, truncated) is refused by the node itself, 500 "corrupt". Names and ranges a node lacks
answer 404 with what it holds.
"""

from __future__ import annotations

import hashlib

import httpx
import pytest
from aurora_storage import lsn as lsnmod

from tests.fixtures.storage import StorageFactory

pytestmark = pytest.mark.integration


def test_flipped_byte_is_refused_by_the_reader_reported_and_repaired(storage_factory: StorageFactory) -> None:
    sc = storage_factory()
    with sc.writer.connect() as conn:
        conn.execute("CREATE TABLE t(x int)")
        conn.execute("INSERT INTO t SELECT generate_series(1, 1000)")
        seg_lsn = str(conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])  # type: ignore[index]
        conn.execute("SELECT pg_switch_wal()")
        conn.execute("INSERT INTO t VALUES (1)")
    name = lsnmod.segment_name(1, lsnmod.segment_of(lsnmod.parse_lsn(seg_lsn)))

    def sealed_everywhere() -> bool:
        for i in range(6):
            files = {f["name"]: f for f in sc.http.get(sc.urls[i] + "/v1/segments").json()["files"]}
            if not (name in files and files[name]["sha256"]):
                return False
        return True

    sc.wait(sealed_everywhere, 20, f"{name} sealed on all nodes")
    good = sc.http.get(f"{sc.urls[1]}/v1/wal/{name}")
    assert good.status_code == 200
    path = sc.data_dir(0) / "wal" / name
    raw = bytearray(path.read_bytes())
    raw[12345] ^= 0x01
    path.write_bytes(bytes(raw))

    sent = sc.http.get(f"{sc.urls[0]}/v1/wal/{name}")
    header = sent.headers["X-Quorumdb-Sha256"]
    assert sent.status_code == 200 and header == good.headers["X-Quorumdb-Sha256"]
    assert hashlib.sha256(sent.content).hexdigest() != header, "the reader's check refuses this body"

    verify = f"{sc.urls[0]}/v1/wal/{name}/verify"
    assert httpx.post(verify, verify=False).status_code == 401, "a report needs the control token"
    assert not any((sc.data_dir(0) / "quarantine").glob("*")), "nothing set aside on a refused report"
    assert sc.http.post(f"{sc.urls[2]}/v1/wal/{name}/verify").json()["corrupt"] is False
    report = sc.http.post(verify)
    assert report.status_code == 200 and report.json()["corrupt"] is True, report.text
    assert list((sc.data_dir(0) / "quarantine").iterdir()), "corrupt copy moved aside"
    metrics = sc.http.get(sc.urls[0] + "/metrics").text
    assert 'quorumdb_storage_corrupt_detected_total{node="storage_0"} 1' in metrics

    torn = sc.data_dir(1) / "wal" / name
    torn.write_bytes(torn.read_bytes()[:-1])
    refused = sc.http.get(f"{sc.urls[1]}/v1/wal/{name}")
    assert refused.status_code == 500 and refused.json()["error"] == "corrupt", refused.text

    def repaired() -> bool:
        r = sc.http.get(f"{sc.urls[0]}/v1/wal/{name}")
        return r.status_code == 200 and r.content == good.content

    sc.wait(repaired, 20, "node 0 to repair the corrupted segment from peers")
    sc.wait(lambda: sc.http.get(f"{sc.urls[1]}/v1/wal/{name}").content == good.content, 20, "node 1 too")
    assert sc.status(0)["healthy"]
    assert sc.status(0)["repair"]["fetched_files"] >= 1


def test_missing_wal_answers_clear_errors(storage_factory: StorageFactory) -> None:
    sc = storage_factory()
    missing = lsnmod.segment_name(1, 4000)
    r = sc.http.get(f"{sc.urls[2]}/v1/wal/{missing}")
    assert r.status_code == 404
    assert r.json()["error"] == "WAL not held by this node" and r.json()["name"] == missing
    assert sc.http.get(f"{sc.urls[2]}/v1/wal/not-a-wal-file").status_code == 400
    st = sc.status(2)
    flush = lsnmod.parse_lsn(st["flush_lsn"])
    seg_end = lsnmod.segment_start(lsnmod.segment_of(flush) + 1)
    r = sc.http.get(
        f"{sc.urls[2]}/v1/wal",
        params={"timeline": 1, "start": lsnmod.format_lsn(flush - 100), "end": lsnmod.format_lsn(seg_end)},
    )
    assert r.status_code == 404 and r.json()["held_until"]
    r = sc.http.get(
        f"{sc.urls[2]}/v1/wal",
        params={"timeline": 1, "start": lsnmod.format_lsn(flush - 100), "end": lsnmod.format_lsn(flush)},
    )
    assert r.status_code == 200 and len(r.content) == 100
