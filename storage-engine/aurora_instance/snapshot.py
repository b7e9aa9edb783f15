"""The immutable view of the world one decision cycle works on.

Why: Patroni's lesson (``ha.py``'s ``_run_cycle``): read everything once, then decide from a frozen value,
so a decision can be replayed in a unit test from a literal and never sees half-updated state. It must not
do I/O; ``manager.observe`` builds it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from aurora_instance.sql import PgObservation
from aurora_instance.storage import StorageIdentity


class DataDir(enum.Enum):
    MISSING = "missing"  # no PostgreSQL data directory yet
    OURS = "ours"  # stamped with this cluster's name


@dataclass(frozen=True)
class Intent:
    """What the control plane wants this instance to be. Changes only with a higher (or equal) term."""

    role: str  # contract.ROLE_WRITER | contract.ROLE_READER
    term: int
    writer: str | None  # host:port of the writer to follow (readers)


@dataclass(frozen=True)
class Local:
    """What the data directory says while PostgreSQL is not running (from pg_control and our state file)."""

    data: DataDir
    cluster_state: str | None  # pg_controldata "Database cluster state"
    last_role: str | None  # role the instance last ran as (state file)
    copy: bool = False
    """A base backup (a copy of the writer, or a seed from the object store) not yet consistent: it holds
    ``backup_label`` (never started; its pg_control says "in production" like a crashed writer's) or
    pg_control still records the backup's start (started, stopped before its end). It has no WAL of its
    own to recover from: it needs restore_command until it is consistent."""


@dataclass(frozen=True)
class World:
    intent: Intent
    local: Local
    postmaster_running: bool
    pg: PgObservation | None  # None when not running or not answering
    user_config_changed: bool  # user parameters or the mounted certificate differ from those in use
    action: str | None  # long action in progress
    last_failure: str | None  # last action's error, if the last action failed
    stalled_seconds: float  # reader: time without a streaming receiver *and* without replay progress
    # What the storage nodes know of the cluster; read only while there is no data directory (and no action
    # runs), so a healthy instance does not poll the nodes every cycle. None: not read this cycle.
    storage_identity: StorageIdentity | None
    restore_from: str | None = None
    """A new cluster restored from another's backups: what to restore (the writer recovers it instead of
    running initdb). None: a new cluster starts empty."""
    object_store: bool = False
    """The cluster has an object store (its own backups): a writer that lost its data can be re-seeded."""
    paused: bool = False
    """Asked to pause (serverless auto-pause): PostgreSQL stops once no client is connected."""

    @property
    def crashed_writer(self) -> bool:
        return self.local.cluster_state == "in production"

    @property
    def was_writer(self) -> bool:
        """Ran as a writer last (state file); without a state file, pg_control says so (a base backup's
        pg_control also says "in production", which is why the state file is written right after copying)."""
        if self.local.last_role is not None:
            return self.local.last_role == "writer"
        return self.local.cluster_state in ("in production", "shut down")
