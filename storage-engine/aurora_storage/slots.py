"""What a writer needs before it accepts writes: the six storage slots and the quorum settings.

Why it exists: replication slots do not follow a promotion in PostgreSQL 15, and a writer without its
storage nodes' slots either loses their WAL or never counts them as synchronous. Whoever creates or
promotes a writer (the instance manager) calls :func:`ensure_slots` before opening it to clients and
renders :func:`writer_settings` into its configuration. It must not start or stop PostgreSQL.
"""

from __future__ import annotations

import psycopg
from aurora_api import contract

from aurora_storage import lsn as lsnmod
from aurora_storage import quorum

DEFAULT_MAX_SLOT_WAL_KEEP = "4GB"


def ensure_slots(
    conn: psycopg.Connection[tuple[object, ...]], count: int = contract.STORAGE_NODES
) -> list[str]:
    """Create the physical slots ``storage_0..5`` that are missing (reserving WAL now); return their names.

    Idempotent. Needs a superuser or REPLICATION role on a writer (not in recovery).
    """
    existing = {row[0] for row in conn.execute("SELECT slot_name FROM pg_replication_slots").fetchall()}
    created = []
    for name in quorum.node_names(count):
        if name not in existing:
            conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (name,))
            created.append(name)
    return created


def writer_settings(
    term: int,
    cluster_name: str | None = None,
    max_slot_wal_keep_size: str = DEFAULT_MAX_SLOT_WAL_KEEP,
) -> dict[str, str]:
    """postgresql.conf parameters of a writer of ``term`` (values as strings, unquoted).

    ``max_slot_wal_keep_size`` bounds what dead storage nodes' slots pin on the writer. It must stay
    above what the quorum needs: the four nodes that acknowledge commits are always within a few
    segments of the writer; a node that falls further behind loses its slot's WAL and rebuilds from
    peers and the archive instead (self-repair). Keep it above the storage nodes' repair window
    (``keep_segments`` x 16 MiB, 1 GiB by default).
    """
    settings = {
        "synchronous_standby_names": quorum.synchronous_standby_names(),
        "synchronous_commit": "on",
        "max_slot_wal_keep_size": max_slot_wal_keep_size,
        contract.WRITER_TERM_GUC: str(term),
    }
    if cluster_name:
        settings[contract.WRITER_CLUSTER_GUC] = cluster_name
    return settings


def slot_positions(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, int | None]:
    """restart_lsn of each storage slot (None when the slot holds no position)."""
    rows = conn.execute(
        "SELECT slot_name, restart_lsn::text FROM pg_replication_slots WHERE slot_name LIKE %s",
        (contract.STORAGE_SLOT_PREFIX.replace("_", r"\_") + "%",),
    ).fetchall()
    return {str(name): lsnmod.parse_lsn(str(lsn)) if lsn else None for name, lsn in rows}
