"""Where the written WAL ends inside a zero-padded segment file, with no I/O of its own.

Why it exists: ``pg_receivewal`` creates each segment as a 16 MiB file of zeros and writes the stream into
it in order, so the flushed position of a ``.partial`` file is not its size. A written WAL page starts
with a header whose ``xlp_pageaddr`` equals the page's own LSN; unwritten pages are zeros. Binary search
over pages finds the first unwritten page in ~11 reads, then the last non-zero byte ends the data.
Serving that prefix (zero-padded) is byte-identical to serving the whole file, and comparing two nodes'
ends tells which holds the longer prefix of the same stream. It must not open files: callers pass a
``read(offset, length)`` function.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from aurora_storage import lsn as lsnmod

ReadAt = Callable[[int, int], bytes]

_PAGEADDR = struct.Struct("<Q")
_PAGEADDR_OFFSET = 8


def page_written(
    read: ReadAt, seg_start_lsn: int, page_index: int, page_size: int = lsnmod.WAL_PAGE_SIZE
) -> bool:
    """True when page ``page_index`` carries a header addressed to its own LSN."""
    head = read(page_index * page_size, 16)
    if len(head) < 16 or head[:2] == b"\0\0":
        return False
    (addr,) = _PAGEADDR.unpack_from(head, _PAGEADDR_OFFSET)
    return bool(addr == seg_start_lsn + page_index * page_size)


def data_end_offset(
    read: ReadAt,
    seg_start_lsn: int,
    file_size: int,
    page_size: int = lsnmod.WAL_PAGE_SIZE,
) -> int:
    """Offset just past the last non-zero byte of the written prefix (0 when nothing was written)."""
    pages = file_size // page_size
    lo, hi = 0, pages  # invariant: pages < lo are written, pages >= hi are not
    while lo < hi:
        mid = (lo + hi) // 2
        if page_written(read, seg_start_lsn, mid, page_size):
            lo = mid + 1
        else:
            hi = mid
    if lo == 0:
        return 0
    last = lo - 1
    page = read(last * page_size, page_size)
    return last * page_size + len(page.rstrip(b"\0"))
