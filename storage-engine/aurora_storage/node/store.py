"""The node's WAL directory and its checksum manifest (blocking file I/O; callers use threads).

Why it exists: every byte a node serves or uploads passes through here, so here is where checksums are
recorded when a segment completes, verified on every read, and where a corrupted file is moved aside so
that it is never served and repair fetches it again. ``pg_receivewal`` owns ``wal/``'s newest file; this
module only seals completed files, installs repaired ones below the stream and deletes old ones. It must
not talk to the network.

The manifest files are the durable truth; this process is their only writer, so it keeps every record in
memory (loaded on first use, updated on every write, dropped on delete and quarantine) and inventory,
archive and retention rounds never re-read JSON. Methods may run in several threads at once: record
changes are serialised by a lock, lookups are plain dict reads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from aurora_storage import checksum, fsutil, walfile
from aurora_storage import lsn as lsnmod

log = logging.getLogger(__name__)


class WalMissingError(LookupError):
    """The node does not hold the requested WAL file."""


@dataclass(frozen=True)
class Sealed:
    """Manifest record of a completed segment or history file."""

    name: str
    sha256: str
    size: int
    source: str  # "stream", "peer:<ordinal>", "archive"
    sealed_at: float
    archived: bool = False


@dataclass(frozen=True)
class Entry:
    """One WAL file as the node reports it."""

    name: str
    kind: str
    timeline: int
    segno: int
    size: int
    sha256: str | None
    end_lsn: int | None  # for .partial: end of written data; for segments: segment end
    archived: bool


class WalStore:
    """``<data>/wal`` (receiver target), ``<data>/manifest``, ``<data>/quarantine``, ``<data>/tmp``."""

    def __init__(self, data_dir: Path) -> None:
        self.wal = data_dir / "wal"
        self.manifest = data_dir / "manifest"
        self.quarantine = data_dir / "quarantine"
        self.tmp = data_dir / "tmp"
        for d in (self.wal, self.manifest, self.quarantine, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        for leftover in os.scandir(self.tmp):  # transfers a crash interrupted (only installs write here)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover.path)
        self._lock = threading.RLock()  # serialises record changes (manifest file + cache)
        self._records: dict[str, Sealed] | None = None  # every manifest record, loaded on first use
        self._incoming = itertools.count()  # unique temporary names: two sources may race for one file

    # --- inventory ---------------------------------------------------------------------------------
    def names(self) -> list[lsnmod.WalName]:
        out = []
        for entry in os.scandir(self.wal):
            try:
                out.append(lsnmod.parse_wal_name(entry.name))
            except lsnmod.LsnError:
                continue
        return sorted(out)

    def _cache(self) -> dict[str, Sealed]:
        records = self._records
        if records is None:
            with self._lock:
                if self._records is None:
                    self._records = self._load_manifest()
                records = self._records
        return records

    def _load_manifest(self) -> dict[str, Sealed]:
        out: dict[str, Sealed] = {}
        unreadable = []
        for entry in os.scandir(self.manifest):
            if entry.name.startswith(".") or not entry.name.endswith(".json"):
                continue  # write_atomic's temporary files
            name = entry.name.removesuffix(".json")
            try:
                rec = Sealed(**json.loads(Path(entry.path).read_bytes()))
            except (ValueError, TypeError) as err:
                unreadable.append((name, str(err)))
                continue
            out[name] = rec
        self._records = out
        for name, why in unreadable:  # the file can no longer be verified: never serve it, refetch it
            self._quarantine(name, f"unreadable manifest record ({why})")
        return out

    def sealed(self, name: str) -> Sealed | None:
        return self._cache().get(name)

    def _write_sealed(self, rec: Sealed, sync_dir: bool = True) -> None:
        with self._lock:
            path = self.manifest / f"{rec.name}.json"
            body = json.dumps(asdict(rec)).encode()
            fsutil.write_atomic(path, body, sync_dir)  # without sync_dir: sync_dirs() makes it durable
            self._cache()[rec.name] = rec

    def mark_archived(self, name: str) -> None:
        with self._lock:
            rec = self.sealed(name)
            if rec is not None and not rec.archived:
                self._write_sealed(dataclasses.replace(rec, archived=True))

    def completed(self) -> list[tuple[lsnmod.WalName, Sealed]]:
        """Completed files in ``wal/`` that are sealed, with their records (one directory scan, no JSON)."""
        records = self._cache()
        out = []
        for wn in self.names():
            rec = records.get(wn.filename) if wn.kind is not lsnmod.WalKind.PARTIAL else None
            if rec is not None:
                out.append((wn, rec))
        return out

    def seal_completed(self) -> list[Sealed]:
        """Checksum every completed segment or history file that has no manifest record yet."""
        new = []
        records = self._cache()
        for wn in self.names():
            if wn.kind is lsnmod.WalKind.PARTIAL or wn.filename in records:
                continue
            path = self.wal / wn.filename
            try:
                size = path.stat().st_size
                digest = checksum.sha256_file(path)
            except FileNotFoundError:
                continue
            rec = Sealed(wn.filename, digest, size, "stream", time.time())
            self._write_sealed(rec)
            new.append(rec)
            log.info("sealed %s sha256=%s", wn.filename, digest[:16])
        return new

    def partial_end(self, wn: lsnmod.WalName) -> int:
        """Offset just past the written data of a ``.partial`` file."""
        fd = os.open(self.wal / wn.filename, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            return walfile.data_end_offset(lambda off, n: os.pread(fd, n, off), wn.start_lsn(), size)
        finally:
            os.close(fd)

    def entries(self) -> list[Entry]:
        records = self._cache()
        out = []
        for wn in self.names():
            path = self.wal / wn.filename
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if wn.kind is lsnmod.WalKind.PARTIAL:
                try:
                    end = wn.start_lsn() + self.partial_end(wn)
                except FileNotFoundError:
                    continue
                out.append(Entry(wn.filename, wn.kind.value, wn.timeline, wn.segno, size, None, end, False))
                continue
            rec = records.get(wn.filename)
            end_lsn = wn.end_lsn() if wn.kind is lsnmod.WalKind.SEGMENT else None
            out.append(
                Entry(
                    wn.filename,
                    wn.kind.value,
                    wn.timeline,
                    wn.segno,
                    size,
                    rec.sha256 if rec else None,
                    end_lsn,
                    rec.archived if rec else False,
                )
            )
        return out

    # --- reads ---------------------------------------------------------------------------------------
    def read_verified(self, name: str) -> tuple[bytes, str]:
        """Bytes of a completed segment or history file, verified against the manifest.

        A mismatch moves the file to ``quarantine/`` (so it is never served and repair replaces it) and
        raises :class:`checksum.ChecksumError`.
        """
        path = self.wal / name
        rec = self.sealed(name)
        if rec is None or not path.exists():
            raise WalMissingError(f"{name} is not held (sealed) by this node")
        data = path.read_bytes()
        digest = checksum.sha256_bytes(data)
        if digest != rec.sha256:
            self._quarantine(name, f"sha256 {digest} != manifest {rec.sha256}")
            raise checksum.ChecksumError(f"{name}: stored bytes fail their checksum (quarantined)")
        return data, digest

    def open_sealed(self, name: str) -> tuple[BinaryIO, str, int]:
        """An open file of a completed segment or history file, at offset 0, with its manifest digest.

        For sending with ``sendfile`` without reading it first: every consumer (a repairing peer, an
        instance's ``restore_command``) hashes what it receives and compares it with this digest and with
        the inventory it listed, so a corrupt copy is refused where it arrives; a repairing peer then
        reports it (:meth:`verify_one` through ``POST /v1/wal/<name>/verify``) and the file is quarantined
        here at once, as HDFS clients report bad replicas. Hashing on every send cost the five peers of a
        bulk repair about a third of the CPU of the whole repair (``make bench-repair``). The size is
        checked here (a torn file is quarantined without a read). Returns the file (the caller closes
        it), the manifest's sha256 and the size; :class:`checksum.ChecksumError` when the size is wrong.
        """
        rec = self.sealed(name)
        try:
            if rec is None:
                raise FileNotFoundError(name)
            fh = (self.wal / name).open("rb")
        except FileNotFoundError as err:
            raise WalMissingError(f"{name} is not held (sealed) by this node") from err
        size = os.fstat(fh.fileno()).st_size
        if size != rec.size:
            fh.close()
            self._quarantine(name, f"size {size} != manifest {rec.size}")
            raise checksum.ChecksumError(f"{name}: stored size {size} != manifest {rec.size} (quarantined)")
        return fh, rec.sha256, size

    def read_partial(self, name: str, acked_lsn: int | None = None) -> tuple[bytes, int]:
        """Written prefix of ``<segment>.partial`` and the LSN where it ends.

        The prefix ends at the last non-zero byte, or at ``acked_lsn`` (the flush position this node
        reported to the writer) when that is further: WAL may legitimately end in zero bytes.
        """
        wn = lsnmod.parse_wal_name(name)
        path = self.wal / wn.filename
        try:
            end = self.partial_end(wn)
            if acked_lsn is not None and wn.start_lsn() <= acked_lsn <= wn.end_lsn():
                end = max(end, acked_lsn - wn.start_lsn())
            with path.open("rb") as fh:
                data = fh.read(end)
        except FileNotFoundError as err:
            raise WalMissingError(f"{name} is not held by this node") from err
        return data, wn.start_lsn() + len(data)

    def _quarantine(self, name: str, why: str) -> None:
        log.error("corrupt WAL file %s: %s; moving it to quarantine", name, why)
        with self._lock:
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.wal / name, self.quarantine / f"{name}.{int(time.time())}")
            self._drop_record(name)

    def _drop_record(self, name: str) -> None:
        with self._lock:
            (self.manifest / f"{name}.json").unlink(missing_ok=True)
            self._cache().pop(name, None)

    def verify_all(self) -> list[str]:
        """Re-hash every sealed file; quarantine and return the names that fail (the scrubber)."""
        bad = []
        for wn in self.names():
            if wn.kind is not lsnmod.WalKind.PARTIAL:
                bad += self.verify_one(wn.filename)
        return bad

    def verify_one(self, name: str) -> list[str]:
        """``[name]`` when the sealed file fails its checksum (it is then quarantined), else ``[]``."""
        try:
            self.read_verified(name)
        except checksum.ChecksumError:
            return [name]
        except WalMissingError:
            pass
        return []

    # --- writes by repair and retention ----------------------------------------------------------------
    def receive(self, name: str, source: str) -> Incoming:
        """Start receiving completed file ``name`` from ``source`` ("peer:<ordinal>", "archive").

        The bytes go to ``tmp/`` and are hashed as they are written; :meth:`Incoming.commit` installs them
        only if the digest matches. Use as a context manager: leaving it without a commit discards them.
        """
        lsnmod.parse_wal_name(name)  # never a path outside wal/
        return Incoming(self, name, source, self.tmp / f"{name}.{next(self._incoming)}")

    def install(
        self,
        name: str,
        data: checksum.Buffer,
        sha256: str,
        source: str,
        *,
        also_expected: str | None = None,
        sync_dirs: bool = True,
    ) -> str:
        """Durably add a completed file held in memory, after verifying it (see :meth:`receive`).

        Returns the digest. With ``sync_dirs=False`` the caller must call :meth:`sync_dirs` before relying
        on it (a batch of installs then costs one directory fsync; a crash before it only loses whole
        files, which repair fetches again).
        """
        with self.receive(name, source) as incoming:
            incoming.write(data)
            digest = incoming.commit(sha256, also_expected, replace=True)
        assert digest is not None  # replace=True installs even over an earlier copy
        if sync_dirs:
            self.sync_dirs()
        return digest

    def sync_dirs(self) -> None:
        """Make earlier commits (and ``install(..., sync_dirs=False)``) durable: their renames and records."""
        fsutil.fsync_dir(self.manifest)
        fsutil.fsync_dir(self.wal)

    def set_aside(self, names: list[str], why: str) -> None:
        """Move WAL files that are not part of the cluster's history to ``quarantine/<name>.superseded``."""
        for name in names:
            log.warning("moving %s aside: %s", name, why)
            with self._lock:
                with contextlib.suppress(FileNotFoundError):
                    os.replace(self.wal / name, self.quarantine / f"{name}.superseded")
                self._drop_record(name)
        if names:
            fsutil.fsync_dir(self.wal)

    def read_small(self, name: str, limit: int = 1024 * 1024) -> str:
        """Text of a small WAL file (a timeline history), at most ``limit`` bytes."""
        with (self.wal / name).open("rb") as fh:
            return fh.read(limit).decode(errors="replace")

    def delete(self, name: str) -> None:
        with self._lock:
            (self.wal / name).unlink(missing_ok=True)
            self._drop_record(name)

    def hold_all(self) -> list[str]:
        """Move every WAL file to ``hold/`` (so the receiver starts afresh); return their names."""
        hold = self.wal.parent / "hold"
        hold.mkdir(exist_ok=True)
        moved = []
        for wn in self.names():
            os.replace(self.wal / wn.filename, hold / wn.filename)
            moved.append(wn.filename)
        fsutil.fsync_dir(self.wal)
        return moved

    def release_held(self, below_segno: int) -> None:
        """Return held files older than ``below_segno`` (and history files); quarantine the rest."""
        hold = self.wal.parent / "hold"
        for entry in list(os.scandir(hold)) if hold.exists() else []:
            try:
                wn = lsnmod.parse_wal_name(entry.name)
            except lsnmod.LsnError:
                continue
            keep = wn.kind is lsnmod.WalKind.HISTORY or (
                wn.kind is lsnmod.WalKind.SEGMENT and wn.segno < below_segno
            )
            target = self.wal / entry.name if keep else self.quarantine / f"{entry.name}.superseded"
            os.replace(entry.path, target)
            if not keep:
                self._drop_record(entry.name)  # a same-named file the new stream completes is sealed anew
        fsutil.fsync_dir(self.wal)

    def bytes_stored(self) -> int:
        return sum(e.stat().st_size for e in os.scandir(self.wal) if e.is_file())


class Incoming:
    """A completed WAL file arriving from a peer or the archive, written to ``tmp/`` as it arrives.

    Every byte is hashed as it is written, once; :meth:`commit` compares that digest with the source's
    (and the inventory's), makes the data durable (``fdatasync``), records it in the manifest and renames
    it into ``wal/``. Nothing reaches ``wal/`` unverified. Two transfers of the same file may race (a
    hedged repair): the second commit finds the file installed and discards its copy.
    """

    def __init__(self, store: WalStore, name: str, source: str, path: Path) -> None:
        self.name = name
        self.source = source
        self.size = 0
        self._store = store
        self._path = path
        self._hash = hashlib.sha256()
        self._file: fsutil.DirectWriter | None = fsutil.DirectWriter(path)

    def write(self, data: checksum.Buffer) -> None:
        """Hash and write the next bytes. From an :func:`fsutil.aligned_buffer`, in whole 4 KiB blocks, they
        go to the disk without passing through the page cache (the transfer's receive buffer is one)."""
        if self._file is None:
            raise ValueError(f"{self.name}: write after commit or abort")
        view = memoryview(data).cast("B")
        self._hash.update(view)  # hashlib and os.write release the GIL: transfers proceed in parallel
        self.size += len(view)
        self._file.write(view)

    def commit(self, sha256: str, also_expected: str | None = None, *, replace: bool = False) -> str | None:
        """Install the file if its digest equals ``sha256`` (and ``also_expected``); return the digest.

        Raises :class:`checksum.ChecksumError` (nothing installed) on a mismatch. Returns None when another
        transfer installed the file first (unless ``replace``: then this copy replaces it).
        """
        if self._file is None:
            raise ValueError(f"{self.name}: commit after commit or abort")
        digest = self._hash.hexdigest()
        if digest != sha256 or (also_expected is not None and digest != also_expected):
            want = sha256 if also_expected in (None, sha256) else f"{sha256} / {also_expected}"
            raise checksum.ChecksumError(
                f"{self.name} from {self.source}: sha256 {digest} != expected {want}"
            )
        file, self._file = self._file, None
        try:
            try:
                file.sync()
            finally:
                file.close()
        except BaseException:
            self._path.unlink(missing_ok=True)
            raise
        store = self._store
        with store._lock:
            if not replace and store.sealed(self.name) is not None and (store.wal / self.name).exists():
                self._path.unlink(missing_ok=True)
                return None
            rec = Sealed(self.name, digest, self.size, self.source, time.time())
            store._write_sealed(rec, sync_dir=False)  # the caller's sync_dirs() makes both renames durable
            os.replace(self._path, store.wal / self.name)
        return digest

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._path.unlink(missing_ok=True)

    def __enter__(self) -> Incoming:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()
