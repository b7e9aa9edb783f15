"""Durable file writes: write to a temporary name, fsync, rename, fsync the directory.

Why it exists: a storage node acknowledges nothing itself (pg_receivewal does), but its manifest,
its term and every segment it repairs must survive a power cut exactly as PostgreSQL's own files do.
It must not hold policy (what to write, when): only the one correct way to write.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
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


def aligned_buffer(size: int) -> memoryview:
    """A page-aligned, writable buffer (anonymous ``mmap``): what :class:`DirectWriter` writes without a
    copy. Freed when the last view of it goes."""
    return memoryview(mmap.mmap(-1, size))


class DirectWriter:
    """A new file written with ``O_DIRECT`` where the kernel allows it, buffered otherwise.

    Why it exists: a repair writes gigabytes it will not read back soon. Through the page cache every
    byte is copied once more and written back later, and ``fdatasync`` then waits for all of it
    (``make bench-repair``, idle box: 933 MB/s direct against 742 buffered). A direct write needs an
    aligned buffer, offset and length; the first write that is not (a short tail, a caller's unaligned
    ``bytes``) or a file system that refuses ``O_DIRECT`` switches the file to buffered writes for the
    rest, so every caller works and aligned ones go fast. Durability is still :meth:`sync`'s: a direct
    write may sit in the device's cache.
    """

    def __init__(self, path: Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        direct = getattr(os, "O_DIRECT", 0)
        self.direct = False
        if direct:
            try:
                self.fd = os.open(path, flags | direct, 0o600)
                self.direct = True
                return
            except OSError as err:
                if err.errno != errno.EINVAL:
                    raise
        self.fd = os.open(path, flags, 0o600)

    def write(self, data: memoryview) -> None:
        """Write all of ``data`` (a view of bytes, as ``store.Incoming`` passes them)."""
        view = data
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError as err:
                if not (self.direct and err.errno == errno.EINVAL):
                    raise
                self._buffered()
                continue
            view = view[n:]

    def _buffered(self) -> None:
        fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~os.O_DIRECT)
        self.direct = False

    def sync(self) -> None:
        os.fdatasync(self.fd)

    def close(self) -> None:
        os.close(self.fd)
