"""LSN arithmetic and WAL file names."""

from __future__ import annotations

import pytest
from aurora_storage import lsn


def test_parse_and_format_round_trip() -> None:
    for text in ["0/0", "0/3000060", "1/FF", "A/B0000000", "FFFFFFFF/FFFFFFFF"]:
        assert lsn.format_lsn(lsn.parse_lsn(text)) == text
    assert lsn.parse_lsn("1/0") == 1 << 32


def test_parse_rejects_garbage() -> None:
    for bad in ["", "12", "x/1", "0/1/2"]:
        with pytest.raises(lsn.LsnError):
            lsn.parse_lsn(bad)


def test_segment_names_match_postgresql() -> None:
    # 0/3000060 lives in segment 3; 1/0 is segment 256 = xlogid 1, seg 0 (16 MiB segments).
    assert lsn.segment_name(1, lsn.segment_of(lsn.parse_lsn("0/3000060"))) == "000000010000000000000003"
    assert lsn.segment_name(2, lsn.segment_of(lsn.parse_lsn("1/0"))) == "000000020000000100000000"
    assert lsn.segment_name(1, 255) == "0000000100000000000000FF"


def test_parse_wal_names() -> None:
    seg = lsn.parse_wal_name("000000010000000100000002")
    assert (seg.timeline, seg.segno, seg.kind) == (1, 258, lsn.WalKind.SEGMENT)
    part = lsn.parse_wal_name("000000020000000000000004.partial")
    assert part.kind is lsn.WalKind.PARTIAL and part.segment == "000000020000000000000004"
    assert part.filename.endswith(".partial")
    hist = lsn.parse_wal_name("00000002.history")
    assert hist.kind is lsn.WalKind.HISTORY and hist.segment == "00000002.history"
    assert seg.start_lsn() == lsn.parse_lsn("1/2000000") and seg.end_lsn() == lsn.parse_lsn("1/3000000")


def test_wal_names_order_by_timeline_then_segment() -> None:
    names = ["000000020000000000000003", "000000010000000000000005", "000000010000000000000004.partial"]
    ordered = sorted(lsn.parse_wal_name(n) for n in names)
    assert [n.filename for n in ordered] == [
        "000000010000000000000004.partial",
        "000000010000000000000005",
        "000000020000000000000003",
    ]


@pytest.mark.parametrize(
    "bad", ["00000001000000000000000", "000000010000000001000000", "backup_label", "x.partial"]
)
def test_rejects_non_wal_names(bad: str) -> None:
    assert not lsn.is_wal_name(bad)
