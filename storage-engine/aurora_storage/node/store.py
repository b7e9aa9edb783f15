"""The node's WAL directory and its checksum manifest (blocking file I/O; callers use threads).

Why it exists: every byte a node serves or uploads passes through here, so here is where checksums are
recorded when a segment completes, verified on every read, and where a corrupted file is moved aside so
that it is never served and repair fetches it again. ``pg_receivewal`` owns ``wal/``'s newest file; this
module only seals completed files, installs repaired ones below the stream and deletes old ones. It must
not talk to the network.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from aurora_storage import checksum, fsutil, walfile
from aurora_storage import lsn as lsnmod

log = logging.getLogger(__name__)


class WalMissingError(LookupError):
    """The node does not hold the requested WAL file."""


@dataclass
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
        self._sealed_names: set[str] = set()  # names known to have a manifest record (saves re-reading)

    # --- inventory ---------------------------------------------------------------------------------
    def names(self) -> list[lsnmod.WalName]:
        out = []
        for entry in os.scandir(self.wal):
            try:
                out.append(lsnmod.parse_wal_name(entry.name))
            except lsnmod.LsnError:
                continue
        return sorted(out)

    def sealed(self, name: str) -> Sealed | None:
        path = self.manifest / f"{name}.json"
        try:
            return Sealed(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None

    def _write_sealed(self, rec: Sealed) -> None:
        fsutil.write_atomic(self.manifest / f"{rec.name}.json", json.dumps(asdict(rec)).encode())
        self._sealed_names.add(rec.name)

    def mark_archived(self, name: str) -> None:
        rec = self.sealed(name)
        if rec is not None and not rec.archived:
            rec.archived = True
            self._write_sealed(rec)

    def seal_completed(self) -> list[Sealed]:
        """Checksum every completed segment or history file that has no manifest record yet."""
        new = []
        for wn in self.names():
            if wn.kind is lsnmod.WalKind.PARTIAL or wn.filename in self._sealed_names:
                continue
            if self.sealed(wn.filename) is not None:
                self._sealed_names.add(wn.filename)
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
        path = self.wal / wn.filename
        st = path.stat()
        start = wn.start_lsn()
        return walfile.data_end_offset(lambda off, n: fsutil.pread(path, off, n), start, st.st_size)

    def entries(self) -> list[Entry]:
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
            rec = self.sealed(wn.filename)
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
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.wal / name, self.quarantine / f"{name}.{int(time.time())}")
        (self.manifest / f"{name}.json").unlink(missing_ok=True)
        self._sealed_names.discard(name)

    def verify_all(self) -> list[str]:
        """Re-hash every sealed file; quarantine and return the names that fail (the scrubber)."""
        bad = []
        for wn in self.names():
            if wn.kind is lsnmod.WalKind.PARTIAL:
                continue
            try:
                self.read_verified(wn.filename)
            except checksum.ChecksumError:
                bad.append(wn.filename)
            except WalMissingError:
                continue
        return bad

    # --- writes by repair and retention ----------------------------------------------------------------
    def install(self, name: str, data: bytes, sha256: str, source: str) -> None:
        """Durably add a completed file fetched from a peer or the archive, after verifying it."""
        digest = checksum.sha256_bytes(data)
        if digest != sha256:
            raise checksum.ChecksumError(f"{name} from {source}: sha256 {digest} != expected {sha256}")
        tmp = self.tmp / name
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        self._write_sealed(Sealed(name, digest, len(data), source, time.time()))
        os.replace(tmp, self.wal / name)
        fsutil.fsync_dir(self.wal)

    def delete(self, name: str) -> None:
        (self.wal / name).unlink(missing_ok=True)
        (self.manifest / f"{name}.json").unlink(missing_ok=True)
        self._sealed_names.discard(name)

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
        fsutil.fsync_dir(self.wal)

    def bytes_stored(self) -> int:
        return sum(e.stat().st_size for e in os.scandir(self.wal) if e.is_file())
