"""Where a restoring writer reads from: the source cluster's object store, the base backup and the target.

Why apart from ``restore``: ``restore_command`` (``quorumdb-instance archive-fetch``) runs once per WAL
file and must import little; the action itself lives in ``restore``. A segment is served only after its
sha256 matched the object's metadata; a corrupted object or an unreachable store stops recovery (exit 126)
rather than looking like the end of WAL. It must not decide anything.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from aurora_api import backups, contract, secretfiles
from aurora_storage import archive_layout, checksum, s3

E = contract.EnvInstance


@dataclasses.dataclass(frozen=True)
class Source:
    archive: s3.Archive
    prefix: str
    backup_id: str
    target_time: str | None
    """RFC 3339, or None: to the end of the archive."""
    min_lsn: int
    """Recovery to the end must get at least this far, or the archive has a gap."""
    immediate: bool = False
    """A snapshot: recover only to the backup's consistent point."""

    def describe(self) -> str:
        to = "its consistent point" if self.immediate else self.target_time or "the end of the archive"
        return f"backup {self.backup_id} of s3://{self.archive.bucket}/{self.prefix}, recovered to {to}"


def source_from_env(env: Mapping[str, str]) -> Source | None:
    """The restore the operator decided (``status.restore``), from the pod's environment; None if none."""
    backup_id = env.get(E.RESTORE_BACKUP_ID)
    if not backup_id:
        return None
    archive = s3.Archive(
        env.get(E.RESTORE_S3_ENDPOINT, ""), env.get(E.RESTORE_S3_BUCKET, ""),
        secretfiles.read(env, E.RESTORE_S3_ACCESS_KEY_ID),
        secretfiles.read(env, E.RESTORE_S3_SECRET_ACCESS_KEY),
        env.get(E.RESTORE_S3_REGION, "us-east-1"), s3.key_from_env(env, E.RESTORE_KEY),
        ca_file=env.get(E.RESTORE_S3_CA_FILE) or None,
    )  # fmt: skip
    return Source(
        archive, env.get(E.RESTORE_S3_PREFIX, "").strip("/"), backup_id,
        env.get(E.RESTORE_TARGET_TIME) or None, backups.parse_lsn(env.get(E.RESTORE_MIN_LSN) or "0/0"),
        env.get(E.RESTORE_TARGET) == "immediate",
    )  # fmt: skip


def own_from_env(env: Mapping[str, str]) -> Source | None:
    """This cluster's own archive (its backup settings), to seed a reader from and to fall back to for WAL
    the storage quorum no longer holds; None when the cluster has no object store."""
    target = s3.from_env(env)
    if target is None:
        return None
    archive, prefix = target
    return Source(archive, prefix, "", None, 0)


def fetch_wal(src: Source, name: str, dest: Path) -> bool:
    """Copy one archived WAL file to ``dest`` (verified); False when the archive does not hold it."""
    try:
        key = archive_layout.key_for(src.prefix, name)
    except ValueError:
        return False  # partial segments are never archived
    if src.archive.head(key) is None:
        return False
    data = src.archive.get_verified(key)
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_bytes(data)
    tmp.rename(dest)
    return True


def fetch_main(argv: list[str]) -> int:
    """``quorumdb-instance archive-fetch %f %p``: restore_command of a restoring writer (0 found, 1 not)."""
    if len(argv) != 2:
        print("usage: quorumdb-instance archive-fetch %f %p", file=sys.stderr)
        return 2
    src = source_from_env(os.environ)
    if src is None:
        print("archive-fetch: no restore source in the environment", file=sys.stderr)
        return 1
    try:
        return 0 if fetch_wal(src, argv[0], Path(argv[1])) else 1
    except checksum.ChecksumError as err:
        print(f"archive-fetch: {err}", file=sys.stderr)
        return 126  # corrupted: PostgreSQL must stop, not treat it as the end of WAL
    except Exception as err:  # store unreachable: stop recovery (a retry restores again), never "absent"
        print(f"archive-fetch {argv[0]}: {err}", file=sys.stderr)
        return 126
