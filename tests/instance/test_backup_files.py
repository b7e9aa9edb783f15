"""Base backup and restore helpers that need no server: the manifest's WAL range, tar entry checks."""

from __future__ import annotations

import json
import tarfile

import pytest
from aurora_instance import render
from aurora_instance.actions import ActionError
from aurora_instance.basebackup import BackupError, wal_range
from aurora_instance.restore import _check_member, pg_time


def test_wal_range_spans_the_oldest_start_to_the_newest_end() -> None:
    manifest = {
        "PostgreSQL-Backup-Manifest-Version": 1,
        "WAL-Ranges": [
            {"Timeline": 3, "Start-LSN": "0/5000000", "End-LSN": "0/5000100"},
            {"Timeline": 2, "Start-LSN": "0/4000028", "End-LSN": "0/5000000"},
        ],
    }
    assert wal_range(json.dumps(manifest).encode()) == ("0/4000028", 3, "0/5000100")
    with pytest.raises(BackupError):
        wal_range(b'{"Files": []}')


@pytest.mark.parametrize(
    ("name", "kind"),
    [("/etc/passwd", tarfile.REGTYPE), ("base/../../x", tarfile.REGTYPE), ("pg_wal", tarfile.SYMTYPE)],
)
def test_a_base_backup_entry_outside_plain_relative_files_is_refused(name: str, kind: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    with pytest.raises(ActionError, match="refused"):
        _check_member(member)
    ok = tarfile.TarInfo("base/1/1259")
    _check_member(ok)


def test_archive_timeout_and_local_replication_are_rendered() -> None:
    inputs = render.ConfigInputs(
        role="writer", term=1, cluster_name="c", listen_address="*", port=5432, socket_dir="/run",
        restore_command="true", primary_conninfo="", archive_timeout=30,
    )  # fmt: skip
    assert "archive_timeout = 30\n" in render.postgresql_conf(inputs)
    assert "local   replication  all" in render.pg_hba_conf("replicator")


def test_recovery_target_time_carries_a_numeric_offset() -> None:
    assert pg_time("2026-11-30T22:59:18.826376Z") == "2026-11-30 22:59:18.826376+00"
    assert pg_time("2026-11-30T23:59:18+01:00") == "2026-11-30 22:59:18.000000+00"
