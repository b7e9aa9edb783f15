"""What a running PostgreSQL says about itself, read over the private Unix socket.

Why: the decision loop needs one consistent observation per cycle (role, timeline, positions, lag, pending
restarts); the queries live here so the snapshot is built from one round trip. It must not change anything
except through the explicit helpers at the bottom (slots, promotion), used by actions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from aurora_storage import lsn, quorum
from psycopg import sql as q

from aurora_instance.accounts import Account, scram_matches

_PRIMARY = """
SELECT pg_current_wal_flush_lsn()::text,
       ('x' || substr(pg_walfile_name(pg_current_wal_flush_lsn()), 1, 8))::bit(32)::int,
       current_setting('server_version'),
       (SELECT coalesce(array_agg(name ORDER BY name), '{}') FROM pg_settings WHERE pending_restart),
       (SELECT count(*) FROM pg_replication_slots WHERE slot_name = ANY(%s)),
       (SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')),
       current_setting('quorumdb.term', true),
       (SELECT system_identifier::text FROM pg_control_system())
"""
_STANDBY = """
SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8,
       coalesce(r.received_tli, (SELECT min_recovery_end_timeline FROM pg_control_recovery()),
                (SELECT timeline_id FROM pg_control_checkpoint())),
       current_setting('server_version'),
       (SELECT coalesce(array_agg(name ORDER BY name), '{}') FROM pg_settings WHERE pending_restart),
       r.status, r.latest_end_lsn::text, current_setting('quorumdb.term', true),
       (SELECT system_identifier::text FROM pg_control_system())
FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true
"""


@dataclass(frozen=True)
class PgObservation:
    """One cycle's view of the running server."""

    in_recovery: bool
    timeline: int | None
    version: str
    pending_restart: tuple[str, ...]
    flushed_lsn: int | None = None  # writer
    storage_slots: int = 0  # writer: how many storage_N slots exist
    sync_nodes: int = 0  # writer: storage nodes currently acknowledging commits
    received_lsn: int | None = None  # reader
    replayed_lsn: int | None = None  # reader
    replay_age_seconds: float | None = None  # reader: now - last replayed commit timestamp
    receiver_status: str | None = None  # reader: pg_stat_wal_receiver.status (None = no receiver)
    upstream_lsn: int | None = None  # reader: writer's end as last reported to the receiver
    declared_term: int = 0  # quorumdb.term of the running configuration
    system_identifier: str | None = None  # pg_control_system(): which PostgreSQL system this data dir is
    connections: int = 0  # client backends, the observing connection not counted
    verifiers: tuple[
        tuple[str, str | None], ...
    ] = ()  # writer: (role, stored password) of the accounts asked

    @property
    def lag_bytes(self) -> int | None:
        if self.in_recovery:
            ahead = max(
                x for x in (self.received_lsn, self.upstream_lsn, self.replayed_lsn, 0) if x is not None
            )
            return ahead - (self.replayed_lsn or 0)
        return 0

    @property
    def lag_seconds(self) -> float | None:
        if not self.in_recovery:
            return 0.0
        if self.lag_bytes == 0:
            return 0.0
        return self.replay_age_seconds


def _lsn(text: str | None) -> int | None:
    return lsn.parse_lsn(text) if text else None


def _term(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def connect(
    socket_dir: Path, port: int, user: str, timeout: int = 3
) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=str(socket_dir),
        port=port,
        user=user,
        dbname="postgres",
        autocommit=True,
        connect_timeout=timeout,
    )


_CONNECTIONS = """
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND usename IS DISTINCT FROM %s
"""


def observe(
    conn: psycopg.Connection[tuple[object, ...]],
    internal_user: str | None = None,
    accounts: Sequence[str] = (),
) -> PgObservation:
    """What PostgreSQL says of itself; ``connections`` counts clients, not the cluster's own components
    (storage nodes probing the writer, readers, backups: they use the replication account ``internal_user``),
    so that they neither keep a cluster from pausing nor count as load. On a writer, the stored passwords
    (SCRAM verifiers) of the roles ``accounts`` too, so that a rotated password is noticed and applied."""
    row = conn.execute(_CONNECTIONS, (internal_user,)).fetchone()
    found = dataclasses.replace(_observe(conn), connections=int(str(row[0])) if row else 0)
    if found.in_recovery or not accounts:
        return found
    rows = conn.execute(
        "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s) ORDER BY rolname",
        (list(accounts),),
    ).fetchall()
    return dataclasses.replace(
        found, verifiers=tuple((str(r[0]), None if r[1] is None else str(r[1])) for r in rows)
    )


def _observe(conn: psycopg.Connection[tuple[object, ...]]) -> PgObservation:
    if not in_recovery(conn):
        p = conn.execute(_PRIMARY, (quorum.node_names(),)).fetchone()
        assert p is not None
        return PgObservation(
            in_recovery=False, flushed_lsn=_lsn(str(p[0])), timeline=int(str(p[1])), version=str(p[2]),
            pending_restart=tuple(str(x) for x in p[3] or ()),  # type: ignore[attr-defined]
            storage_slots=int(str(p[4])), sync_nodes=int(str(p[5])), declared_term=_term(p[6]),
            system_identifier=str(p[7]),
        )  # fmt: skip
    s = conn.execute(_STANDBY).fetchone()
    assert s is not None
    return PgObservation(
        in_recovery=True, received_lsn=_lsn(s[0]), replayed_lsn=_lsn(s[1]),  # type: ignore[arg-type]
        replay_age_seconds=float(s[2]) if s[2] is not None else None,  # type: ignore[arg-type]
        timeline=int(str(s[3])) if s[3] is not None else None, version=str(s[4]),
        pending_restart=tuple(str(x) for x in s[5] or ()),  # type: ignore[attr-defined]
        receiver_status=str(s[6]) if s[6] is not None else None, upstream_lsn=_lsn(s[7]),  # type: ignore[arg-type]
        declared_term=_term(s[8]), system_identifier=str(s[9]),
    )  # fmt: skip


def create_storage_slots(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Create the storage nodes' physical slots that are missing (reserving WAL from now)."""
    for name in quorum.node_names():
        conn.execute(
            "SELECT pg_create_physical_replication_slot(%s, true) "
            "WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)",
            (name, name),
        )


def create_login_roles(conn: psycopg.Connection[tuple[object, ...]], roles: Sequence[str]) -> list[str]:
    """Create the roles that do not exist, with LOGIN and no password; return those created. An existing
    role is left as it is (its privileges are the user's)."""
    rows = conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (list(roles),)).fetchall()
    missing = sorted(set(roles) - {str(r[0]) for r in rows})
    for role in missing:
        conn.execute(q.SQL("CREATE ROLE {} LOGIN").format(q.Identifier(role)))
    return missing


def sync_passwords(conn: psycopg.Connection[tuple[object, ...]], accounts: Sequence[Account]) -> list[str]:
    """Give each existing role the password of its account where PostgreSQL stores another; return the roles
    changed. The new password is sent as a SCRAM verifier computed client-side (libpq's
    ``PQencryptPasswordConn``), so no statement or server log ever holds it in clear."""
    changed = []
    for account in accounts:
        row = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (account.username,)
        ).fetchone()
        if row is None or (row[0] is not None and scram_matches(str(row[0]), account.password)):
            continue
        verifier = conn.pgconn.encrypt_password(
            account.password.encode(), account.username.encode(), b"scram-sha-256"
        ).decode()
        conn.execute(
            q.SQL("ALTER ROLE {} PASSWORD {}").format(q.Identifier(account.username), q.Literal(verifier))
        )
        changed.append(account.username)
    return changed


def in_recovery(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def replay_lsn(conn: psycopg.Connection[tuple[object, ...]]) -> int | None:
    row = conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
    return _lsn(row[0]) if row else None  # type: ignore[arg-type]
