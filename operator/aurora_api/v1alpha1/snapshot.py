"""``AuroraSnapshot``: a named, point-in-time copy of an AuroraCluster's storage volume in the object store.

Why now: provisioning does not take snapshots yet (backup/PITR is a later issue), but the kind exists so the
API group is complete, clusters can later be restored "from snapshot", and the CRD shape is reviewed early.
The operator currently only validates snapshots and reports that taking them is not implemented.
"""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import Field

from . import common
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


class AuroraSnapshot(ApiModel):
    """The custom resource as stored."""

    model_config = common.config(extra="ignore")

    api_version: str = Field(default="quorumdb.io/v1alpha1", alias="apiVersion")
    kind: Literal["AuroraSnapshot"] = "AuroraSnapshot"
    metadata: common.ObjectMeta
    spec: AuroraSnapshotSpec
    status: AuroraSnapshotStatus = Field(default_factory=AuroraSnapshotStatus)
