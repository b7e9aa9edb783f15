"""Restore: the first writer of a new cluster built from another cluster's base backup and WAL archive.

Why here: the operator checks the target against the source's restorable window and picks the backup
before it creates anything (``status.restore``), and passes both to the instance pods; the instance that
would otherwise initdb a new system recovers the chosen backup instead. Steps: stream the tar from the
store into a side directory, verifying its sha256 and size against the backup's record (a corrupted
object is refused, never restored); archive recovery with ``restore_command`` reading the source's WAL
archive (each segment checked against its sha256), to the target time or to the end of the archive, then
promotion; a recovery that ends before ``min LSN`` (a gap in the archive) is refused. Then this cluster's
credentials, storage slots and stamp, and the directory is renamed into place. A target time after the
archive's last commit makes PostgreSQL stop with "recovery ended before configured recovery target was
reached"; the operator proved the archive complete up to that time, so recovery then goes to the end.
It must not decide whether to restore; ``decide`` does.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import logging
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import zstandard
from aurora_api import backups, contract
from aurora_storage import checksum, envelope
from psycopg import sql as q

from aurora_instance import files, sql
from aurora_instance.actions import ActionError, start
from aurora_instance.context import Context
from aurora_instance.postgres import Postgres, PostgresError
from aurora_instance.restore_source import Source
from aurora_instance.snapshot import Intent

log = logging.getLogger(__name__)
TARGET_NOT_REACHED = "recovery ended before configured recovery target was reached"
RECOVERY_TIMEOUT_S = 6 * 3600.0


class _Verified(io.RawIOBase):
    """The tar object's chunks as a file, hashed and counted as they are read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, out: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self.digest.update(chunk)
            self.size += len(chunk)
            self._buf = chunk
        n = min(len(out), len(self._buf))
        out[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _check_member(member: tarfile.TarInfo) -> None:
    """A base backup holds plain files and directories under relative paths; anything else is refused
    (Debian's Python 3.11 has no ``tarfile`` extraction filters)."""
    parts = Path(member.name).parts
    if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
        raise ActionError(f"restoring: unexpected entry {member.name!r} in the base backup: refused")


def unpack(src: Source, record: backups.BaseBackup, staging: Path) -> None:
    """Stream base backup ``record`` of ``src`` into ``staging``, verified against its record (ActionError
    when it does not match: nothing half-restored is ever used)."""
    _, chunks = src.archive.read_chunks(backups.backup_key(src.prefix, record.id))
    stream = _Verified(chunks)
    raw: IO[bytes] = io.BufferedReader(stream, 1 << 20)
    if record.compression == "zstd":
        raw = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    elif record.compression != "none":
        raise ActionError(
            f"restoring: base backup {record.id} uses unknown compression {record.compression!r}"
        )
    with tarfile.open(fileobj=raw, mode="r|") as tar:
        for member in tar:
            _check_member(member)
            tar.extract(member, staging)
    if stream.size != record.size_bytes or stream.digest.hexdigest() != record.sha256:
        raise ActionError(
            f"restoring: base backup {record.id} is corrupted (read {stream.size} bytes, sha256 "
            f"{stream.digest.hexdigest()}; its record says {record.size_bytes} bytes, {record.sha256})"
        )
    (staging / "pg_wal").mkdir(mode=0o700, exist_ok=True)
    for sub in ("pg_replslot", "pg_wal/archive_status"):
        (staging / sub).mkdir(mode=0o700, exist_ok=True)
    staging.chmod(0o700)


def pg_time(rfc3339: str) -> str:
    """A timestamp recovery_target_time accepts: PostgreSQL checks it before time zone abbreviations are
    loaded, so "Z" (an abbreviation) is refused at start-up; a numeric UTC offset is not."""
    t = datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).astimezone(datetime.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S.%f+00")


def _recovery_conf(ctx: Context, src: Source, staging: Path, target: bool) -> None:
    lines = [
        "# Restore (QuorumDB): archive recovery from the source cluster's object store.",
        f'restore_command = \'{ctx.settings.python} -m aurora_instance.main archive-fetch "%f" "%p"\'',
        "recovery_target_timeline = 'latest'",
        "recovery_target_action = 'promote'",
        "archive_timeout = 0",
    ]
    if target and src.immediate:
        lines += ["recovery_target = 'immediate'"]
    elif target and src.target_time:
        lines += [f"recovery_target_time = '{pg_time(src.target_time)}'", "recovery_target_inclusive = on"]
    with (staging / "postgresql.conf").open("a") as f:
        f.write("\n" + "\n".join(lines) + "\n")


def _recover(ctx: Context, src: Source, staging: Path, intent: Intent) -> str:
    """Run archive recovery until promotion; returns how it ended."""
    s = ctx.settings
    logfile = s.data_root / "restore.log"
    for with_target in (True, False):
        files.write_config(
            s, ctx.creds, role=contract.ROLE_WRITER, term=intent.term, writer=None, params=ctx.params,
            clients=False, synchronous=False, pgdata=staging,
        )  # fmt: skip
        _recovery_conf(ctx, src, staging, with_target)
        (staging / "recovery.signal").touch()
        pg = dataclasses.replace(ctx.pg, pgdata=staging, proc=None)
        s.socket_dir.mkdir(mode=0o700, exist_ok=True)
        with logfile.open("ab") as out:
            proc = subprocess.Popen(
                [str(s.pg_bin / "postgres"), "-D", str(staging)], env=pg.env(), start_new_session=True,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        pg.proc = proc
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        promoted = False
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            try:
                with ctx.connect() as conn:
                    promoted = not sql.in_recovery(conn)
            except Exception:  # not accepting connections yet (replaying to consistency)
                continue
            if promoted:
                break
        if promoted:
            return _finish(ctx, src, pg, staging, with_target)
        tail = logfile.read_text(errors="replace")[-3000:]
        pg.stop("fast")
        if with_target and src.target_time and TARGET_NOT_REACHED in tail:
            log.info("no commit after %s in the archive: recovering to its end instead", src.target_time)
            continue
        raise ActionError(f"restoring: recovery of {src.describe()} failed: {tail[-1500:]}")
    raise ActionError("restoring: recovery did not finish")


def _finish(ctx: Context, src: Source, pg: Postgres, staging: Path, with_target: bool) -> str:
    try:
        with ctx.connect() as conn:
            conn.execute("CHECKPOINT")  # the promotion's new timeline into pg_control
            got = conn.execute(
                "SELECT pg_current_wal_lsn()::text, timeline_id FROM pg_control_checkpoint()"
            ).fetchone()
            assert got is not None
            end, timeline = str(got[0]), int(str(got[1]))
            to_end = not with_target or not (src.target_time or src.immediate)
            if to_end and backups.parse_lsn(end) < src.min_lsn:
                raise ActionError(
                    f"restoring: recovery ended at {end}, before {backups.format_lsn(src.min_lsn)}: the "
                    "archive has a gap; refusing this restore"
                )
            for account, extra in (
                (ctx.creds.superuser, "SUPERUSER"),
                (ctx.creds.replication, "REPLICATION"),
                (ctx.creds.app, ""),
            ):
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (account.username,))
                verb = "ALTER" if exists.fetchone() else "CREATE"
                conn.execute(
                    q.SQL(f"{verb} ROLE {{}} LOGIN {extra} PASSWORD {{}}").format(
                        q.Identifier(account.username), q.Literal(account.password)
                    )
                )
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (ctx.creds.app_database,)
            ).fetchone():
                conn.execute(
                    q.SQL("CREATE DATABASE {} OWNER {}").format(
                        q.Identifier(ctx.creds.app_database), q.Identifier(ctx.creds.app.username)
                    )
                )
            sql.create_storage_slots(conn)
            conn.execute("CHECKPOINT")
    finally:
        pg.stop("fast")
    for leftover in ("recovery.signal", "backup_label.old", "tablespace_map.old"):
        (staging / leftover).unlink(missing_ok=True)
    files.write(staging / files.STAMP, ctx.settings.cluster_name + "\n")
    return f"recovered to {end} on timeline {timeline}"


def restore_writer(ctx: Context, intent: Intent) -> str:
    s, src = ctx.settings, ctx.restore
    if src is None:
        raise ActionError("restoring: no restore source configured")
    record_doc = src.archive.get_json(backups.record_key(src.prefix, src.backup_id))
    if record_doc is None:
        where = f"s3://{src.archive.bucket}/{src.prefix}"
        raise ActionError(f"restoring: base backup {src.backup_id} not found in {where}")
    record = backups.BaseBackup.model_validate(record_doc)
    staging = s.data_root / "pgdata.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700, parents=True)
    t0 = time.monotonic()
    try:
        unpack(src, record, staging)
        unpacked = time.monotonic() - t0
        how = _recover(ctx, src, staging, intent)
    except envelope.EnvelopeError as err:
        raise ActionError(f"restoring {src.describe()}: the backup cannot be decrypted: {err}") from err
    except (PostgresError, OSError, tarfile.TarError, checksum.ChecksumError) as err:
        raise ActionError(f"restoring {src.describe()}: {err}") from err
    staging.rename(s.pgdata)
    started = start(ctx, intent)
    return (
        f"{started} (restored from {src.describe()}: base backup unpacked in {unpacked:.0f}s, "
        f"{how}, {time.monotonic() - t0:.0f}s in all)"
    )
