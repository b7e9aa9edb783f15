"""Finding the end of written data in a zero-padded segment."""

from __future__ import annotations

import struct

from aurora_storage import walfile

PAGE = 8192
SEG_START = 3 * 16 * 1024 * 1024


def _segment(pages_written: int, last_page_bytes: int, pages: int = 64) -> bytes:
    buf = bytearray(pages * PAGE)
    for i in range(pages_written):
        hdr = struct.pack("<HHIQI", 0xD110, 0, 1, SEG_START + i * PAGE, 0)
        fill = PAGE if i < pages_written - 1 else last_page_bytes
        buf[i * PAGE : i * PAGE + fill] = (hdr + b"\x07" * PAGE)[:fill]
    return bytes(buf)


def _end(buf: bytes) -> int:
    return walfile.data_end_offset(lambda off, n: buf[off : off + n], SEG_START, len(buf), PAGE)


def test_empty_segment_has_no_data() -> None:
    assert _end(bytes(64 * PAGE)) == 0


def test_end_inside_a_page() -> None:
    assert _end(_segment(5, 1000)) == 4 * PAGE + 1000


def test_full_segment() -> None:
    assert _end(_segment(64, PAGE)) == 64 * PAGE


def test_page_addressed_elsewhere_is_not_written() -> None:
    buf = bytearray(_segment(3, PAGE))
    # A stale page from another segment (wrong xlp_pageaddr) at page 3 does not extend the data.
    buf[3 * PAGE : 3 * PAGE + 16] = struct.pack("<HHIQ", 0xD110, 0, 1, 0)
    assert _end(bytes(buf)) == 3 * PAGE


def test_trailing_zero_bytes_of_data_do_not_count() -> None:
    buf = bytearray(_segment(2, 600))
    buf[PAGE + 500 : PAGE + 600] = bytes(100)
    assert _end(bytes(buf)) == PAGE + 500
