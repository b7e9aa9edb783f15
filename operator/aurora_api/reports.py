"""Typed models of the JSON documents the in-pod processes serve and the operator reads.

Why: the operator decides failovers from these documents; a key spelled differently on one side would make
every instance look dead (or, worse, healthy). Both sides import the models from here: the instance manager's
status is checked against ``InstanceReport`` in its unit tests, the operator parses with it. Unknown keys are
ignored (newer pods may report more), missing optional ones are None. It must not import either side.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["writer", "reader", "unknown"]
"""What PostgreSQL is now: out of recovery (writer), in recovery (reader), or not answering."""


class Intent(BaseModel):
    """What the control plane last asked the instance to be."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    role: str
    term: int
    writer: str | None = None


class LoadReport(BaseModel):
    """The instance container's cgroup now: cumulative CPU counters (the operator takes rates between two
    reports), memory in use (without reclaimable inactive file cache) and the limits the kubelet enforces."""

    sampled_at: float
    """The instance manager's monotonic clock, seconds: only differences between its reports mean anything."""
    cpu_seconds: float | None = None
    cpu_throttled_seconds: float | None = None
    cpu_limit_cores: float | None = None
    memory_working_set_bytes: int | None = None
    memory_limit_bytes: int | None = None
    connections: int | None = None
    """Client connections to PostgreSQL (the manager's own not counted)."""


class InstanceReport(BaseModel):
    """``GET InstancePaths.STATUS`` of the instance manager: the manager builds it, the operator parses it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    role: Role = "unknown"
    timeline: int | None = None
    term: int = 0
    """The term the instance manager follows (its intent)."""
    received_lsn: str | None = None
    replayed_lsn: str | None = None
    flushed_lsn: str | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    healthy: bool = False
    ready: bool = False
    postgres_version: str | None = None
    pending_restart: list[str] = Field(default_factory=list)
    """Parameters changed in the configuration that take effect only after a restart."""
    last_decision: str = ""
    """The decision loop's last sentence."""
    action: str | None = None
    """The long action running, e.g. "promote"."""
    intent: Intent | None = None
    last_failure: str | None = None
    last_result: str | None = None
    config_error: str | None = None
    postmaster_running: bool = False
    system_identifier: str | None = None
    data_present: bool = True
    seed_needed: bool = False
    """No data directory while the storage nodes hold the cluster: it waits to be re-seeded as a reader."""
    load: LoadReport | None = None
    paused: bool = False
    """Asked to pause (``InstancePaths.PAUSE``): PostgreSQL stops, or has stopped, until a resume."""
    wakes: int = 0
    """Resumes this manager process has answered: a pause asked with an older count is refused."""


class BackupJobReport(BaseModel):
    """One base backup job of an instance manager (``GET InstancePaths.BACKUPS``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    state: Literal["running", "completed", "failed"]
    reason: str = ""
    bytes_done: int = 0
    """Bytes of the tar uploaded so far: the progress of a running backup."""
    message: str = ""
    """Why it failed, or where it went."""


class StorageReport(BaseModel):
    """The part of ``GET StoragePaths.STATUS`` of a storage node the operator reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    node: str = ""
    ordinal: int | None = None
    term: int = 0
    writer: str | None = None
    system_identifier: str | None = None
    healthy: bool = False
    state: str = ""
    """``streaming``, ``repairing`` or ``idle``."""
    streaming: bool = False
    timeline: int | None = None
    flush_lsn: str | None = None
    lag_bytes: int | None = None
