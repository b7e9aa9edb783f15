"""Continuous archive (once per cluster, verified) and self-repair from peers and the archive under load.

Prose: with an S3 server, the writer produces several real 16 MiB segments. Each completed segment is
uploaded exactly once for the whole cluster (its owner node), with a sha256 the node's manifest agrees
with, and nodes report the archived LSN. Then one node is SIGKILLed and its volume wiped while clients
keep committing, and one archived segment is corrupted on every other node (so no peer has a good copy).
The wiped node restarts, reports ``repairing`` (not healthy) until it holds every segment again — from
peers, and from S3 for the one no peer could serve — and its repair throughput is reported against the
disk's sequential copy throughput measured in the same run: MB repaired over the time from the moment
the node knew its window (its receiver's first file) to healthy, and, for the whole story, the time from
the node process's start to healthy. A peer whose corrupted copy the node refused was told so and
quarantined it; the others are told by the test as a reader would, and every peer ends with the good copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from aurora_storage import archive_layout
from aurora_storage import lsn as lsnmod

from tests.fixtures.s3server import S3Bucket
from tests.fixtures.storage import StorageCluster, StorageFactory
from tests.storage_integration.helpers import Committer

pytestmark = pytest.mark.integration


def _disk_copy_mb_s(root: Path, size: int = 128 * 1024 * 1024) -> float:
    """Sequential copy (read + write + fsync) throughput of the disk the nodes use, in MB/s."""
    src, dst = root / "copy-src", root / "copy-dst"
    block = os.urandom(1024 * 1024)
    with src.open("wb") as fh:
        for _ in range(size // len(block)):
            fh.write(block)
        fh.flush()
        os.fsync(fh.fileno())
    t0 = time.monotonic()
    with src.open("rb") as fin, dst.open("wb") as fout:
        shutil.copyfileobj(fin, fout, 1024 * 1024)
        fout.flush()
        os.fsync(fout.fileno())
    elapsed = time.monotonic() - t0
    src.unlink()
    dst.unlink()
    return size / elapsed / 1e6


def _segments(sc: StorageCluster, i: int) -> dict[str, str]:
    files = sc.http.get(sc.urls[i] + "/v1/segments").json()["files"]
    return {f["name"]: f["sha256"] for f in files if f["kind"] == "segment" and f["sha256"]}


def _archive_objects(sc: StorageCluster, bucket: S3Bucket) -> dict[str, dict[str, str]]:
    s3 = bucket.server.client()
    prefix = archive_layout.wal_prefix(sc.env["QUORUMDB_S3_PREFIX"])
    out = {}
    for o in s3.list_objects_v2(Bucket=bucket.name, Prefix=prefix).get("Contents", []):  # type: ignore[attr-defined]
        head = s3.head_object(Bucket=bucket.name, Key=o["Key"])  # type: ignore[attr-defined]
        out[o["Key"].rsplit("/", 1)[-1]] = head["Metadata"]
    return out


def test_archive_once_then_repair_wiped_node_from_peers_and_s3(
    storage_factory: StorageFactory, s3_bucket: S3Bucket
) -> None:
    sc = storage_factory(s3=s3_bucket)
    with sc.writer.connect() as conn:
        Committer.create_table(conn)
        conn.execute("CREATE TABLE bulk(x int, pad text)")
        for _ in range(4):
            conn.execute("INSERT INTO bulk SELECT g, repeat('x', 200) FROM generate_series(1, 50000) g")
        conn.execute("SELECT pg_switch_wal()")
        conn.execute("INSERT INTO bulk VALUES (0, '')")
    sc.wait(
        lambda: all(len(_segments(sc, i)) >= 3 for i in range(6)), 30, "three sealed segments on all nodes"
    )

    # --- archive: every completed segment exactly once, verified, archived LSN reported -------------
    held: dict[str, str] = {}

    def all_archived() -> bool:
        # The set checked is the set asserted on below: a segment node 0 seals after this check (the
        # stream goes on) is not expected in the archive yet.
        held.clear()
        held.update(_segments(sc, 0))
        objs = _archive_objects(sc, s3_bucket)
        return all(n in objs for n in held)

    sc.wait(all_archived, 60, "every completed segment archived")
    objs = _archive_objects(sc, s3_bucket)
    for name, sha in held.items():
        assert objs[name]["sha256"] == sha, name
        assert objs[name]["uploaded-by"] == str(lsnmod.parse_wal_name(name).segno % 6), "owner uploads"

    def uploads() -> int:
        return sum(sc.status(i)["segments_archived"] for i in range(6))

    # Exactly once per cluster: uploads counted over all six nodes equal the objects (settled, no writes).
    sc.wait(lambda: uploads() == len(_archive_objects(sc, s3_bucket)), 20, "uploads == objects")
    time.sleep(2)
    assert uploads() == len(_archive_objects(sc, s3_bucket))
    newest = max(lsnmod.parse_wal_name(n).end_lsn() for n in held)
    owner = lsnmod.parse_wal_name(max(held)).segno % 6
    sc.wait(lambda: sc.status(owner)["archived_lsn"] == lsnmod.format_lsn(newest), 10, "archived LSN")

    # --- repair: wipe one node under load; one segment only in S3 ------------------------------------
    committer = Committer(sc.writer.conninfo(), threads=2).start()
    victim = 2
    sc.kill(victim)
    sc.wipe(victim)
    only_in_s3 = sorted(held)[1]
    for i in range(6):
        if i != victim:
            path = sc.data_dir(i) / "wal" / only_in_s3
            raw = bytearray(path.read_bytes())
            raw[4096] ^= 0xFF
            path.write_bytes(bytes(raw))
    with tempfile.TemporaryDirectory(dir=sc.root) as tmp:
        disk_mb_s = _disk_copy_mb_s(Path(tmp))
    started = time.time()
    sc.start(victim)
    first = sc.status(victim)
    assert not first["healthy"] and first["state"] == "repairing"
    sc.wait(lambda: sc.status(victim)["healthy"], 90, "wiped node to finish repairing")
    committer.stop()
    assert len(committer.acked) > 0 and not committer.errors, committer.errors[:3]
    st = sc.status(victim)
    rep = st["repair"]
    mine = _segments(sc, victim)
    for name, sha in held.items():
        assert mine.get(name) == sha, f"{name} not repaired correctly"
    assert rep["from_archive"] >= 1, rep
    seconds = rep["finished_at"] - rep["started_at"]
    repair_mb_s = rep["fetched_bytes"] / seconds / 1e6
    print(
        f"\nrepair: {rep['fetched_files']} files, {rep['fetched_bytes'] / 1e6:.1f} MB in {seconds:.2f}s "
        f"= {repair_mb_s:.0f} MB/s ({rep['from_archive']} from S3); "
        f"disk sequential copy {disk_mb_s:.0f} MB/s; "
        f"ratio {repair_mb_s / disk_mb_s:.2f}; "
        f"node process start to healthy {rep['finished_at'] - started:.2f}s"
    )

    # The corrupted copies were refused where they arrived, and each peer that sent one was told and
    # quarantined it. A peer nobody asked (the archive served the file first) still holds its bad copy
    # until its scrubber or a reader's report: it sends it under the right digest, so any reader refuses
    # it, and a report makes it quarantine and repair the copy.
    counter = "quorumdb_storage_corrupt_detected_total"
    reported = [i for i in range(6) if i != victim and _metric(sc, i, counter)]
    assert reported, "the victim reported the copy it refused"
    for i in range(6):
        if i == victim:
            continue
        r = sc.http.get(f"{sc.urls[i]}/v1/wal/{only_in_s3}")
        assert r.status_code in (200, 404), (i, r.status_code)
        if r.status_code == 200 and hashlib.sha256(r.content).hexdigest() != held[only_in_s3]:
            assert i not in reported, f"node {i} sent a copy it was told is corrupt"
            assert r.headers["X-Quorumdb-Sha256"] == held[only_in_s3], "a reader would refuse the body"
            # Meanwhile a peer repairing its own copy may have reported this one: then it is quarantined
            # (404), or already repaired (the copy verifies; it serves the good bytes).
            v = sc.http.post(f"{sc.urls[i]}/v1/wal/{only_in_s3}/verify")
            if v.status_code != 404 and not v.json()["corrupt"]:
                again = sc.http.get(f"{sc.urls[i]}/v1/wal/{only_in_s3}")
                assert hashlib.sha256(again.content).hexdigest() == held[only_in_s3], (i, v.text)

    def peers_repaired() -> bool:
        for i in range(6):
            r = sc.http.get(f"{sc.urls[i]}/v1/wal/{only_in_s3}")
            if r.status_code != 200 or hashlib.sha256(r.content).hexdigest() != held[only_in_s3]:
                return False
        return True

    sc.wait(peers_repaired, 60, "every peer to repair its quarantined copy from the archive")


def _metric(sc: StorageCluster, i: int, name: str) -> float:
    for line in sc.http.get(sc.urls[i] + "/metrics").text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name} missing on node {i}")
