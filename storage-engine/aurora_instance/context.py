"""Everything a long action needs, built once at start-up and passed explicitly (no module globals).

Why: actions run in the executor thread; giving them one explicit bundle keeps them testable and makes the
shared mutable part (the postmaster handle) visible. It must not contain decision logic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
from aurora_api import control

from aurora_instance import sql
from aurora_instance.accounts import Credentials
from aurora_instance.postgres import Postgres
from aurora_instance.restore_source import Source
from aurora_instance.settings import Settings
from aurora_instance.storage import StorageQuorum


@dataclass
class Context:
    settings: Settings
    creds: Credentials
    pg: Postgres
    storage: StorageQuorum
    params: dict[str, str]  # user parameters currently applied
    token_roles: tuple[str, ...] = ()
    """Roles pg_hba sends to token login, as last applied (none at start-up: the first reload applies them
    and, on the writer, creates the missing roles)."""
    restore: Source | None = None
    """The restore the operator decided for this new cluster (``restore.source_from_env``)."""
    control_tokens: control.Tokens = field(default=control.fixed(), repr=False)
    """What requests that change this instance must carry, as mounted now (``aurora_api.control``)."""
    receiver_timeline: tuple[int, int] | None = None
    """(postmaster pid, timeline) last reported by a running WAL receiver, kept by the manager's observation:
    once the receiver stops (the writer died), PostgreSQL shows only ``min_recovery_end_timeline``, which
    can lag a timeline behind, and a promotion would then fetch WAL it already holds."""

    @contextlib.contextmanager
    def connect(self, timeout: int = 3) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        conn = sql.connect(
            self.settings.socket_dir, self.settings.postgres_port, self.creds.superuser.username, timeout
        )
        try:
            yield conn
        finally:
            conn.close()
