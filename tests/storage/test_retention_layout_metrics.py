"""Retention rule, archive key layout, Prometheus rendering."""

from __future__ import annotations

import pytest
from aurora_storage import archive_layout, metrics, retention
from aurora_storage import lsn as lsnmod


def names(*files: str) -> list[lsnmod.WalName]:
    return [lsnmod.parse_wal_name(f) for f in files]


def seg(n: int) -> str:
    return lsnmod.segment_name(1, n)


def test_retention_keeps_window_and_unarchived() -> None:
    files = names(*(seg(n) for n in range(1, 10)), seg(10) + ".partial", "00000001.history")
    archived = {seg(n) for n in range(1, 9) if n != 3}
    gone = [n.filename for n in retention.deletable(files, archived, keep=5)]
    assert gone == [seg(1), seg(2), seg(4)]


def test_retention_never_deletes_everything() -> None:
    assert retention.deletable(names(seg(1)), {seg(1)}, keep=0) == []


def test_archive_keys() -> None:
    assert archive_layout.key_for("ns/c", seg(3)) == "ns/c/wal/00000001/000000010000000000000003"
    assert archive_layout.key_for("", "00000002.history") == "wal/history/00000002.history"
    with pytest.raises(ValueError):
        archive_layout.key_for("p", seg(3) + ".partial")
    assert archive_layout.name_from_key("p/wal/00000001/" + seg(3)) == seg(3)
    assert archive_layout.name_from_key("p/wal/other.txt") is None
    meta = archive_layout.metadata(seg(3), "abc", 2, "77")
    assert meta == {
        "sha256": "abc",
        "uploaded-by": "2",
        "start-lsn": "0/3000000",
        "end-lsn": "0/4000000",
        "system-identifier": "77",
    }


def test_prometheus_text() -> None:
    text = metrics.render(
        [
            metrics.Sample("q_flush", "Flush.", "gauge", 5, {"node": "storage_1"}),
            metrics.Sample("q_flush", "Flush.", "gauge", 7, {"node": 'a"b'}),
            metrics.Sample("q_none", "Skipped.", "gauge", None),
            metrics.Sample("q_total", "Count.", "counter", 2.5),
        ]
    )
    assert text == (
        "# HELP q_flush Flush.\n# TYPE q_flush gauge\n"
        'q_flush{node="storage_1"} 5\nq_flush{node="a\\"b"} 7\n'
        "# HELP q_total Count.\n# TYPE q_total counter\nq_total 2.5\n"
    )
