"""Durable file writes: write to a temporary name, fsync, rename, fsync the directory.

Why it exists: a storage node acknowledges nothing itself (pg_receivewal does), but its manifest,
its term and every segment it repairs must survive a power cut exactly as PostgreSQL's own files do.
It must not hold policy (what to write, when): only the one correct way to write.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new content.

    ``sync_dir=False`` leaves the directory fsync (which makes the rename durable) to the caller, who
    batches it over many files.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)


def pread(path: Path, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)
