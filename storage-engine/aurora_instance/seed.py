"""A new reader (or one that lost its data directory) seeded from the cluster's newest base backup in the
object store instead of a copy of the writer.

Why: ``pg_basebackup`` from the writer reads every data file through the writer's disk and network while it
serves the workload; a base backup already in the store costs the writer nothing, and the WAL since that
backup comes from the storage quorum (or, past the quorum's retention, from the archive: the reader's
``restore_command`` falls back to it). The copy is checked like a copy of the writer (this cluster's stamp,
the system the storage nodes hold) before it is renamed into place. When there is no object store, no
usable backup, or anything fails, the reader is copied from the writer as before: seeding never makes a
reader fail that a copy would have brought up.
"""

from __future__ import annotations

import logging
import os
import shutil

from aurora_api import backups, contract
from aurora_storage import archive_layout

from aurora_instance import actions, files, promotion
from aurora_instance.actions import ActionError
from aurora_instance.context import Context
from aurora_instance.postgres import PostgresError
from aurora_instance.restore import unpack
from aurora_instance.restore_source import Source, own_from_env
from aurora_instance.snapshot import Intent

log = logging.getLogger(__name__)
CONSISTENT_TIMEOUT = 300.0
"""How long a re-seeded writer's standby may take to replay its backup's WAL (quorum or archive)."""


def newest_usable(src: Source, system_identifier: str | None) -> backups.BaseBackup | None:
    """The newest base backup of this system whose own WAL is archived (None when there is none)."""
    keys = [o.key for o in src.archive.list(backups.backups_prefix(src.prefix))]
    records = []
    for key in keys:
        if key.endswith("/" + backups.RECORD_FILE):
            record = backups.BaseBackup.model_validate(src.archive.get_json(key))
            if system_identifier is None or record.system_identifier == system_identifier:
                records.append(record)
    if not records:
        return None
    wal = [o.key for o in src.archive.list(archive_layout.wal_prefix(src.prefix))]
    good = backups.usable(records, backups.archived_segments(wal))
    return good[-1] if good else None


def _unpack_newest(ctx: Context, src: Source, role: str, intent: Intent) -> backups.BaseBackup | None:
    """The newest usable backup unpacked, checked and renamed into place, the state file saying ``role``
    (written before the rename). None when the store holds no usable backup of this system."""
    record = newest_usable(src, ctx.storage.identity().system_identifier)
    if record is None:
        return None
    s = ctx.settings
    staging = s.data_root / "pgdata.new"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        unpack(src, record, staging)
        for leftover in ("standby.signal", "recovery.signal", "postmaster.pid"):
            (staging / leftover).unlink(missing_ok=True)
        actions.check_copy(ctx, f"base backup {record.id}", staging)
    except (ActionError, PostgresError):
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files.save_state(s, files.State(role, intent.term, intent.writer))
    if s.pgdata.exists():
        shutil.rmtree(s.pgdata)
    staging.rename(s.pgdata)
    return record


def _describe(record: backups.BaseBackup) -> str:
    return (
        f"base backup {record.id} in the object store, {record.size_bytes / 1e6:.0f} MB, taken "
        f"{record.completed_at:%Y-%m-%dT%H:%M:%SZ}"
    )


def seed_reader(ctx: Context, intent: Intent) -> str | None:
    """Seed from the store; a sentence, or None when there is nothing to seed from (no store, no backup)."""
    src = own_from_env(os.environ)
    if src is None or not intent.writer:
        return None
    record = _unpack_newest(ctx, src, contract.ROLE_READER, intent)
    if record is None:
        return None
    started = actions.start(ctx, intent)
    return f"{started} (seeded from {_describe(record)}; WAL since then from the storage quorum)"


def seed_writer(ctx: Context, intent: Intent) -> str:
    """A writer that lost its data, chosen again at a newer term (no reader could take over): the newest
    backup becomes a stopped standby of nobody, then ``promote`` fences the nodes at the new term, replays
    the quorum's WAL to its last complete record (every acknowledged commit: W + R > N) and opens on a new
    timeline. The WAL between the backup and the quorum's window comes from the archive (restore_command)."""
    src = own_from_env(os.environ)
    if src is None:
        raise ActionError("re-seeding the writer: the cluster has no object store")
    # Recorded as the writer it is told to be: a restart before the promotion finds a copy (backup_label)
    # with the writer's intent and promotes it (``decide``), never recovers it as a crashed writer.
    record = _unpack_newest(ctx, src, contract.ROLE_WRITER, intent)
    if record is None:
        raise ActionError(
            "re-seeding the writer: the object store holds no usable base backup of this system; "
            "it cannot come back without one (never initdb an existing cluster)"
        )
    log.info("writer re-seeded from %s; promoting through the storage quorum's WAL", _describe(record))
    return f"re-seeded from {_describe(record)}; " + promote_copy(ctx, intent)


def promote_copy(ctx: Context, intent: Intent) -> str:
    """Promote a base backup that never ran (``backup_label``): first a standby of nobody, which reaches
    consistency with the backup's own WAL from restore_command (the quorum, else the archive; a backup is
    taken without WAL), then ``promote``, which holds restore_command and replays the quorum's tail."""
    standby = Intent(contract.ROLE_READER, intent.term, None)
    actions.write_config(ctx, standby, clients=False)
    ctx.pg.start(timeout=CONSISTENT_TIMEOUT)
    return promotion.promote(ctx, intent)


def bootstrap_reader(ctx: Context, intent: Intent) -> str:
    """Seed from the store when it can, else copy the writer (``actions.bootstrap_reader``)."""
    try:
        seeded = seed_reader(ctx, intent)
    except Exception as err:  # any failure of the store path: the writer copy still works
        log.warning("seeding from the object store failed, copying the writer instead: %s", err)
        if ctx.pg.running():
            ctx.pg.stop("fast")
        shutil.rmtree(ctx.settings.data_root / "pgdata.new", ignore_errors=True)
        seeded = None
    if seeded is not None:
        return seeded
    return actions.bootstrap_reader(ctx, intent)
