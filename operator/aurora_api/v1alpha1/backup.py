"""Where a cluster's backups go and where a restore reads them: the object store, encryption, schedule.

Why a module of its own: these models are shared by ``AuroraCluster`` (spec.backup, spec.restore,
status.restore) and ``AuroraSnapshot`` (status.objectStore), and they carry their own CEL rules.
"""

from __future__ import annotations

import datetime
from typing import Literal

import croniter  # type: ignore[import-untyped]
from pydantic import Field, model_validator

from . import common
from .common import ApiModel, SecretName


class CredentialsRef(ApiModel):
    """A Secret in the cluster's namespace holding object-store credentials."""

    name: SecretName
    access_key_id_key: str = Field(default="accessKeyId", max_length=253)
    secret_access_key_key: str = Field(default="secretAccessKey", max_length=253)


class CaSecretRef(ApiModel):
    """A Secret key holding PEM certificates of the certificate authorities to trust."""

    name: SecretName
    key: str = Field(default="ca.crt", min_length=1, max_length=253)


class ObjectStoreSpec(ApiModel):
    """An S3-compatible bucket (MinIO and friends: path-style addressing is always used)."""

    model_config = common.config(
        {
            "rule": "!has(self.caSecret) || self.endpoint.startsWith('https://')",
            "message": "caSecret needs an https:// endpoint",
        }
    )

    endpoint: str = Field(pattern=r"^https?://[^\s]+$", max_length=2048, description="e.g. http://minio:9000")
    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
    prefix: str = Field(default="", max_length=512, description="Key prefix; defaults to <namespace>/<name>.")
    region: str = Field(default="us-east-1", max_length=64)
    credentials_secret: CredentialsRef
    ca_secret: CaSecretRef | None = Field(
        default=None,
        description="CA bundle (PEM) that signs the store's TLS certificate, for a private CA; trusted "
        "instead of the system's. Absent: the system's CAs.",
    )
    server_side_encryption: Literal["AES256"] | None = Field(
        default=None,
        description="Ask the store to encrypt at rest, with its own keys (SSE-S3: "
        "x-amz-server-side-encryption AES256), every object the cluster writes (WAL, base backups, "
        "snapshots, records), on top of backup.encryption. A store that cannot (MinIO without a KMS) "
        "refuses those uploads with its own answer, which a BackupFailed Event and "
        "status.backup.lastFailure carry. Absent: not asked.",
    )

    @model_validator(mode="after")
    def _ca_needs_tls(self) -> ObjectStoreSpec:
        if self.ca_secret is not None and not self.endpoint.startswith("https://"):
            raise ValueError("caSecret needs an https:// endpoint")
        return self


class SecretKeyRef(ApiModel):
    """One key of a Secret in the cluster's namespace."""

    name: SecretName
    key: str = Field(default="key", min_length=1, max_length=253)


class EncryptionSpec(ApiModel):
    """Client-side encryption of every archive object (WAL segments, base backups, snapshots) with
    AES-256-GCM before it leaves the pod. The Secret's key holds the base64 of 32 random bytes
    (``openssl rand -base64 32``). Keep it: backups cannot be read without it."""

    key_secret: SecretKeyRef


class BackupSpec(ApiModel):
    """Continuous backup to an object store: the storage nodes archive every WAL segment; base backups are
    taken from a reader on ``schedule`` (and at once when the cluster has none)."""

    object_store: ObjectStoreSpec
    retention_days: int = Field(default=7, ge=1, le=35, description="Days of recoverability kept (1-35).")
    encryption: EncryptionSpec | None = Field(
        default=None,
        description="Encrypt archive objects client-side. Changing the key applies to new objects only; "
        "older ones still need the old key.",
    )
    schedule: str = Field(
        default="0 3 * * *",
        pattern=r"^(\S+\s+){4}\S+$",
        max_length=128,
        description="Cron schedule (5 fields, UTC) of base backups.",
    )

    @model_validator(mode="after")
    def _cron(self) -> BackupSpec:
        if not croniter.croniter.is_valid(self.schedule):
            raise ValueError(f"schedule {self.schedule!r} is not a valid 5-field cron expression")
        return self


SOURCE_SSE_REFUSED = (
    "restore.objectStore.serverSideEncryption: a restore only reads its source; server-side encryption "
    "of what this cluster writes is set in backup.objectStore"
)


class RestoreSpec(ApiModel):
    """Create this cluster from another cluster's backups (the source may have been deleted since). The
    target is checked against the source's restorable window before anything is created. Immutable."""

    model_config = common.config(
        {
            "rule": "!(has(self.snapshot) && has(self.pointInTime))",
            "message": "restore.snapshot and restore.pointInTime are mutually exclusive",
        },
        {
            "rule": "!has(self.objectStore) || !has(self.objectStore.serverSideEncryption)",
            "message": SOURCE_SSE_REFUSED,
        },
    )

    source_cluster: str = Field(
        min_length=1, max_length=63, pattern=common.DNS_LABEL_PATTERN,
        description="Name of the AuroraCluster whose backups are restored (for a snapshot: its cluster).",
    )  # fmt: skip
    source_namespace: str | None = Field(
        default=None, max_length=63, pattern=common.DNS_LABEL_PATTERN,
        description="Its namespace; default: this cluster's.",
    )  # fmt: skip
    object_store: ObjectStoreSpec | None = Field(
        default=None,
        description="Where the source's backups are; default: this cluster's spec.backup.objectStore with "
        "the prefix <sourceNamespace>/<sourceCluster>.",
    )
    point_in_time: datetime.datetime | None = Field(
        default=None, description="RFC 3339 time to restore to; absent: the latest restorable time."
    )
    key_secret: SecretKeyRef | None = Field(
        default=None,
        description="The source's encryption key, if its backups are encrypted; default: this cluster's "
        "spec.backup.encryption.keySecret.",
    )
    snapshot: str | None = Field(
        default=None, min_length=1, max_length=253,
        description="An AuroraSnapshot (Completed, in this namespace) to restore instead of a time.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _one_target(self) -> RestoreSpec:
        if self.snapshot is not None and self.point_in_time is not None:
            raise ValueError("restore.snapshot and restore.pointInTime are mutually exclusive")
        if self.object_store is not None and self.object_store.server_side_encryption is not None:
            raise ValueError(SOURCE_SSE_REFUSED)
        return self
