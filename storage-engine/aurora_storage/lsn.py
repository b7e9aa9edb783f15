"""LSN arithmetic and WAL file naming, with no I/O.

Why it exists: every other module compares positions ("0/3000060"), turns them into segment names
("000000010000000000000003") and back. Getting this wrong silently serves the wrong bytes, so it lives
in one pure, unit-tested place. It must not touch files or sockets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

WAL_SEGMENT_SIZE = 16 * 1024 * 1024
WAL_PAGE_SIZE = 8192

_SEGMENT_RE = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
_HISTORY_RE = re.compile(r"^([0-9A-F]{8})\.history$")


class LsnError(ValueError):
    """An LSN or WAL file name that cannot be parsed."""


def parse_lsn(text: str) -> int:
    """Parse PostgreSQL's ``X/Y`` notation into a 64-bit integer."""
    try:
        hi, lo = text.strip().split("/")
        return (int(hi, 16) << 32) | int(lo, 16)
    except ValueError as err:
        raise LsnError(f"not an LSN: {text!r}") from err


def format_lsn(lsn: int) -> str:
    """Format a 64-bit position as PostgreSQL does (``0/3000060``)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def segments_per_xlogid(seg_size: int = WAL_SEGMENT_SIZE) -> int:
    return 0x100000000 // seg_size


def segment_name(timeline: int, segno: int, seg_size: int = WAL_SEGMENT_SIZE) -> str:
    """File name of segment number ``segno`` on ``timeline`` (PostgreSQL's ``XLogFileName``)."""
    per = segments_per_xlogid(seg_size)
    return f"{timeline:08X}{segno // per:08X}{segno % per:08X}"


def segment_of(lsn: int, seg_size: int = WAL_SEGMENT_SIZE) -> int:
    """Segment number holding the byte at ``lsn``."""
    return lsn // seg_size


def segment_start(segno: int, seg_size: int = WAL_SEGMENT_SIZE) -> int:
    return segno * seg_size


def history_name(timeline: int) -> str:
    return f"{timeline:08X}.history"


class WalKind(Enum):
    """What a file in a WAL directory is."""

    SEGMENT = "segment"
    PARTIAL = "partial"
    HISTORY = "history"


@dataclass(frozen=True, order=True)
class WalName:
    """A parsed WAL file name. Ordering is by (timeline, segno): the order PostgreSQL writes them."""

    timeline: int
    segno: int
    kind: WalKind

    @property
    def segment(self) -> str:
        """The plain segment name (without ``.partial``); for history files, the history name."""
        if self.kind is WalKind.HISTORY:
            return history_name(self.timeline)
        return segment_name(self.timeline, self.segno)

    @property
    def filename(self) -> str:
        if self.kind is WalKind.PARTIAL:
            return self.segment + ".partial"
        return self.segment

    def start_lsn(self, seg_size: int = WAL_SEGMENT_SIZE) -> int:
        return segment_start(self.segno, seg_size)

    def end_lsn(self, seg_size: int = WAL_SEGMENT_SIZE) -> int:
        return segment_start(self.segno + 1, seg_size)


def parse_wal_name(name: str, seg_size: int = WAL_SEGMENT_SIZE) -> WalName:
    """Parse a segment, ``.partial`` or ``.history`` file name; raise :class:`LsnError` for anything else."""
    hist = _HISTORY_RE.match(name)
    if hist:
        return WalName(int(hist.group(1), 16), -1, WalKind.HISTORY)
    kind = WalKind.SEGMENT
    base = name
    if name.endswith(".partial"):
        kind = WalKind.PARTIAL
        base = name[: -len(".partial")]
    m = _SEGMENT_RE.match(base)
    if not m:
        raise LsnError(f"not a WAL file name: {name!r}")
    tli, log, seg = (int(g, 16) for g in m.groups())
    per = segments_per_xlogid(seg_size)
    if seg >= per:
        raise LsnError(f"segment field out of range in {name!r}")
    return WalName(tli, log * per + seg, kind)


def is_wal_name(name: str) -> bool:
    try:
        parse_wal_name(name)
    except LsnError:
        return False
    return True
