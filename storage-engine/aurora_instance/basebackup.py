"""Base backups of this instance to the object store: ``pg_basebackup`` streamed straight into S3.

Why here: the operator chooses a reader (never loading the writer) and asks its instance manager, which
owns the local PostgreSQL; the backup is read over the private socket and never touches the pod's disk.
It is taken without WAL (``-X none``): the storage nodes' continuous archive holds every segment, and a
backup only counts as usable once the archive covers its start to end LSN (``aurora_api.backups``). The
tar is hashed as it streams; its record (``backup.json``: LSNs, timeline, size, sha256) is written only
after the object's size was read back, so a half-uploaded backup is never listed. One job at a time per
process, in its own thread: the decision loop and promotions never wait for it. It must not decide when to
back up; the operator does.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import subprocess
import threading
from typing import IO

import zstandard
from aurora_api import backups
from aurora_api.reports import BackupJobReport
from aurora_storage import s3

from aurora_instance import tarscan
from aurora_instance.settings import Settings

log = logging.getLogger(__name__)

COMPRESSION = "zstd"
"""The tar is compressed here, level 1 (a fraction of the bytes to hash, encrypt and send for little CPU),
in the thread that reads it (zstd releases the GIL; pg_basebackup and the server run beside it in their
own processes); the record says so, and a restore decompresses. zstd's own worker threads were measured
slower on two cores (``make bench-backup``; docs/backup.md)."""
LEVEL = 1
READ_BLOCK = 1 << 20
PIPE_BYTES = 1 << 20
"""pg_basebackup's stdout pipe: 1 MiB (the kernel's default ceiling for any user) rather than 64 KiB,
so pg_basebackup and this reader switch in and out of the CPU 16 times less often: a base backup ran
about a quarter faster with it (docs/backup.md)."""


class BackupError(RuntimeError):
    pass


def wal_range(manifest: bytes) -> tuple[str, int, str]:
    """``(start LSN, timeline, end LSN)`` from a backup manifest's ``WAL-Ranges`` (the newest timeline's
    end, the oldest's start); BackupError when it has none."""
    try:
        ranges = json.loads(manifest)["WAL-Ranges"]
        first, last = ranges[-1], ranges[0]  # listed newest timeline first
        return str(first["Start-LSN"]), int(last["Timeline"]), str(last["End-LSN"])
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise BackupError(f"backup manifest without a usable WAL-Ranges entry: {err}") from err


class _Tee:
    """A read-only file object over pg_basebackup's plain tar stream, for the upload: it compresses the tar,
    hashes and counts the compressed bytes it hands on, and shows the plain bytes to a ``tarscan.Scanner``
    that keeps the ``backup_manifest`` member pg_basebackup appends to a tar written to stdout (the WAL
    range is in it; pg_basebackup prints the end only when it fetches WAL itself). Compressing here rather
    than in pg_basebackup is what lets the manifest be found without decompressing the whole stream."""

    def __init__(self, source: IO[bytes], job: Job) -> None:
        self._source = source
        self._job = job
        self.digest = hashlib.sha256()
        self._scan = tarscan.Scanner("backup_manifest")
        self._compress = zstandard.ZstdCompressor(level=LEVEL).compressobj()
        self._out = bytearray()
        self._done = False

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._out) < n):
            block = self._source.read(READ_BLOCK)
            if block:
                self._scan.feed(block)
                self._out += self._compress.compress(block)
            else:
                self._out += self._compress.flush()
                self._done = True
        size = len(self._out) if n < 0 else min(n, len(self._out))
        data = bytes(self._out[:size])
        del self._out[:size]
        self.digest.update(data)
        self._job.bytes_done += len(data)
        return data

    def finish(self) -> bytes:
        if self._scan.wanted is None:
            raise BackupError("pg_basebackup's tar stream had no backup_manifest")
        return self._scan.wanted


@dataclasses.dataclass
class Job:
    id: str
    reason: str
    sub: str = ""
    """Under the cluster's prefix: "" for automated backups, ``snapshots/<dir>`` for a snapshot."""
    state: str = "running"
    bytes_done: int = 0
    message: str = ""

    def report(self) -> BackupJobReport:
        return BackupJobReport(
            id=self.id, state=self.state, reason=self.reason, bytes_done=self.bytes_done,  # type: ignore[arg-type]
            message=self.message,
        )  # fmt: skip


def take(settings: Settings, superuser: str, archive: s3.Archive, prefix: str, job: Job,
         system_identifier: str) -> backups.BaseBackup:  # fmt: skip
    """Stream one base backup of the local instance into ``P/base/<id>/`` and write its record."""
    started = datetime.datetime.now(datetime.UTC)
    key = backups.backup_key(prefix, job.id)
    cmd = [
        str(settings.pg_bin / "pg_basebackup"), "-h", str(settings.socket_dir),
        "-p", str(settings.postgres_port), "-U", superuser,
        "-D", "-", "-F", "t", "-X", "none", "-c", "fast", "--no-password",
    ]  # fmt: skip
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pipesize=PIPE_BYTES)
    except PermissionError:  # fs.pipe-max-size lowered below 1 MiB on this node: the default pipe
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    err_chunks: list[bytes] = []
    err_reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    err_reader.start()
    stream = _Tee(proc.stdout, job)
    try:
        sealed = archive.upload_stream(key, stream, {"backup-id": job.id})  # type: ignore[arg-type]
    except Exception:
        proc.kill()
        raise
    finally:
        code = proc.wait()
        err_reader.join(10)
        try:
            manifest: bytes | None = stream.finish()
        except (BackupError, tarscan.TarError):
            manifest = None
    stderr = b"".join(err_chunks).decode(errors="replace")
    if code != 0 or manifest is None:
        raise BackupError(f"pg_basebackup exited {code}: {stderr.strip()[-800:]}")
    start_lsn, timeline, end_lsn = wal_range(manifest)
    stored = archive.head(key)
    expected = sealed if sealed is not None else job.bytes_done
    if stored is None or stored.size != expected:
        raise BackupError(f"{key}: stored size {stored and stored.size} != {expected} bytes streamed")
    record = backups.BaseBackup(
        id=job.id, system_identifier=system_identifier, timeline=timeline, start_lsn=start_lsn,
        end_lsn=end_lsn, started_at=started, completed_at=datetime.datetime.now(datetime.UTC),
        size_bytes=job.bytes_done, sha256=stream.digest.hexdigest(), instance=settings.instance_name,
        reason=job.reason, compression=COMPRESSION,
    )  # fmt: skip
    archive.put_json(backups.record_key(prefix, job.id), record.model_dump(mode="json"))
    return record


class Backups:
    """The jobs of this process; at most one runs."""

    def __init__(self, settings: Settings, superuser: str, target: tuple[s3.Archive, str] | None) -> None:
        self._settings = settings
        self._superuser = superuser
        self._target = target
        self._lock = threading.Lock()
        self.jobs: list[Job] = []

    @property
    def configured(self) -> bool:
        return self._target is not None

    def running(self) -> Job | None:
        return next((j for j in self.jobs if j.state == "running"), None)

    def start(self, backup_id: str, reason: str, system_identifier: str, sub: str = "") -> tuple[bool, str]:
        """(True, why) when a job with this id runs or ran; (False, why) when another one runs."""
        if self._target is None:
            return False, "this cluster has no object store (spec.backup)"
        with self._lock:
            if any(j.id == backup_id for j in self.jobs):
                return True, f"backup {backup_id} already known"
            other = self.running()
            if other is not None:
                return False, f"backup {other.id} is running"
            job = Job(backup_id, reason, sub.strip("/"))
            self.jobs.append(job)
            del self.jobs[:-20]
        threading.Thread(target=self._run, args=(job, system_identifier), daemon=True,
                         name=f"backup-{backup_id}").start()  # fmt: skip
        return True, f"backup {backup_id} started"

    def _run(self, job: Job, system_identifier: str) -> None:
        assert self._target is not None
        archive, prefix = self._target
        prefix = "/".join(p for p in (prefix, job.sub) if p)
        log.info("base backup %s (%s) starting", job.id, job.reason)
        try:
            record = take(self._settings, self._superuser, archive, prefix, job, system_identifier)
        except Exception as err:  # reported to the operator, which retries on its schedule
            job.message = str(err)[:1000]
            job.state = "failed"
            log.error("base backup %s failed: %s", job.id, err)
            return
        job.message = (
            f"{record.size_bytes} bytes, WAL {record.start_lsn}..{record.end_lsn} "
            f"on timeline {record.timeline}"
        )
        job.state = "completed"
        log.info("base backup %s completed: %s", job.id, job.message)
