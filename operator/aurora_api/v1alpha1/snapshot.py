"""``AuroraSnapshot``: a manual, named copy of an AuroraCluster in its object store, kept until deleted.

Why a kind of its own: automated base backups expire with ``retentionDays``; a snapshot is a fact a user
asked for ("before the upgrade") and outlives retention and even the cluster. It is a base backup taken
from a reader plus the WAL segments that make it consistent, copied under the snapshot's own prefix
(``<cluster prefix>/snapshots/<name>-<uid>/``, laid out like a cluster archive), so retention never has
to know about it and deleting it is deleting a prefix. ``AuroraCluster.spec.restore.snapshot`` restores it.
"""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import Field

from . import common
from .cluster import ObjectStoreSpec
from .common import ApiModel, Condition

KIND = "AuroraSnapshot"
PLURAL = "aurorasnapshots"
SINGULAR = "aurorasnapshot"
SHORT_NAMES = ("asnap",)

SnapshotPhase = Literal["Pending", "Running", "Completed", "Failed"]


class AuroraSnapshotSpec(ApiModel):
    """What to snapshot. The whole spec is immutable: a snapshot is a fact, not a desire."""

    model_config = common.config(common.immutable("spec"))

    cluster_name: str = Field(
        min_length=1, max_length=63, pattern=common.DNS_LABEL_PATTERN, description="AuroraCluster to copy."
    )
    deletion_policy: Literal["Delete", "Retain"] = Field(
        default="Retain", description="Whether deleting this object deletes the snapshot data."
    )


class AuroraSnapshotStatus(ApiModel):
    """Progress and result."""

    phase: SnapshotPhase | None = None
    observed_generation: int = 0
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    started_at: datetime.datetime | None = None
    completed_at: datetime.datetime | None = None
    timeline: int = 0
    lsn: str = Field(default="", description="Consistent end LSN, e.g. 0/3000060.")
    location: str = Field(default="", description="Object-store URL of the snapshot.")
    size_bytes: int = 0
    instance: str = Field(default="", description="Instance the snapshot was read from.")
    backup_id: str = Field(default="", description="Its base backup's id.")
    bytes_done: int = Field(default=0, description="Bytes uploaded so far while Running.")
    prefix: str = Field(default="", description="Key prefix of the snapshot in the bucket.")
    object_store: ObjectStoreSpec | None = Field(
        default=None, description="The store it lives in (copied from the cluster: it outlives the cluster)."
    )


class AuroraSnapshot(ApiModel):
    """The custom resource as stored."""

    model_config = common.config(extra="ignore")

    api_version: str = Field(default="quorumdb.io/v1alpha1", alias="apiVersion")
    kind: Literal["AuroraSnapshot"] = "AuroraSnapshot"
    metadata: common.ObjectMeta
    spec: AuroraSnapshotSpec
    status: AuroraSnapshotStatus = Field(default_factory=AuroraSnapshotStatus)
