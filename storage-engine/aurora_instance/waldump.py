"""Find the last complete WAL record a storage node holds, with ``pg_waldump``.

Why: a node's end position may fall mid-record (the writer streams whole pages), so "replayed >= end" may
never become true. What promotion must wait for is the *last complete record* the quorum holds: once the
reader's replay position is past that record's start, every acknowledged commit has been replayed.
Output parsing is pure (``parse``); ``last_record_start`` runs the binary on a symlink to the file.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from aurora_storage import lsn

_RECORD_RE = re.compile(r"\blsn: ([0-9A-F]+/[0-9A-F]+),")
WINDOW = 512 * 1024  # look this far back from the data end first; records are far smaller


def parse(output: str) -> int | None:
    """Start position of the last record ``pg_waldump`` printed, None when it printed none."""
    found = _RECORD_RE.findall(output)
    return lsn.parse_lsn(found[-1]) if found else None


def _run(pg_waldump: Path, directory: Path, timeline: int, start: int, end: int) -> int | None:
    """Start of the last record lying wholly before ``end`` (``-e``: a local pg_wal file may hold more)."""
    proc = subprocess.run(
        [
            str(pg_waldump),
            "-p",
            str(directory),
            "-t",
            str(timeline),
            "-s",
            lsn.format_lsn(start),
            "-e",
            lsn.format_lsn(end),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return parse(proc.stdout)


def last_record_start(pg_waldump: Path, segment_file: Path, wal: lsn.WalName, data_end: int) -> int | None:
    """Start of the last complete record in ``segment_file`` (holding ``wal``), None if none starts there.

    ``data_end`` is the offset past the file's written data; the scan starts a window before it and falls
    back to the segment start when no record begins inside the window.
    """
    with tempfile.TemporaryDirectory(prefix="quorumdb-waldump-") as tmp:
        (Path(tmp) / wal.segment).symlink_to(segment_file.resolve())
        window_start = max(0, data_end - WINDOW) // lsn.WAL_PAGE_SIZE * lsn.WAL_PAGE_SIZE
        for offset in dict.fromkeys((window_start, 0)):
            found = _run(
                pg_waldump, Path(tmp), wal.timeline, wal.start_lsn() + offset, wal.start_lsn() + data_end
            )
            if found is not None:
                return found
    return None
