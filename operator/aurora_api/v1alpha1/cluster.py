"""``AuroraCluster``: one writer, up to fifteen readers, six storage nodes over three zones.

Why: this is the user-facing contract. Every rule a user can break is stated twice on purpose: as a pydantic
constraint (so the operator and the unit tests reject it) and, for the API server, as a schema constraint or a
CEL rule carried in ``json_schema_extra`` (so ``kubectl apply`` rejects it, naming the field). The generator
turns these models into the structural schema; it must not need to know any field by name.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from . import common
from .backup import (  # re-exported: callers import these from here too
    SOURCE_SSE_REFUSED as SOURCE_SSE_REFUSED,
)
from .backup import (
    BackupSpec as BackupSpec,
)
from .backup import (
    CaSecretRef as CaSecretRef,
)
from .backup import (
    CredentialsRef as CredentialsRef,
)
from .backup import (
    EncryptionSpec as EncryptionSpec,
)
from .backup import (
    ObjectStoreSpec as ObjectStoreSpec,
)
from .backup import (
    RestoreSpec as RestoreSpec,
)
from .backup import (
    SecretKeyRef as SecretKeyRef,
)
from .common import ApiModel, Condition, IntOrQuantity, Quantity, SecretName, immutable, nested

KIND = "AuroraCluster"
PLURAL = "auroraclusters"
SINGULAR = "auroracluster"
SHORT_NAMES = ("aurora", "qdb")

MANAGED_PARAMETERS = (
    "port", "listen_addresses", "data_directory", "hba_file", "synchronous_standby_names", "archive_timeout",
)  # fmt: skip
"""PostgreSQL parameters the instance manager owns; users may not set them."""

Tier = Annotated[int, Field(ge=0, le=15)]
ZoneValue = Annotated[str, Field(min_length=1, max_length=63)]
Phase = Literal["Pending", "Provisioning", "Ready", "Degraded", "Paused", "Failed", "Deleting"]


class EngineSpec(ApiModel):
    """Which PostgreSQL runs on the compute instances."""

    version: Literal["15"] = Field(
        default="15",
        description="PostgreSQL major version. Immutable: a major upgrade is a separate, explicit operation.",
        json_schema_extra={"x-kubernetes-validations": [immutable("engine.version")]},
    )
    image: str | None = Field(
        default=None,
        max_length=512,
        description="Container image of every pod of this cluster; default: the operator's image setting.",
    )


class ResourcesSpec(ApiModel):
    """CPU and memory of each compute instance (provisioned mode)."""

    requests: dict[Literal["cpu", "memory"], IntOrQuantity] = Field(default_factory=dict)
    limits: dict[Literal["cpu", "memory"], IntOrQuantity] = Field(default_factory=dict)


ACU_RULES = [
    {"rule": "self.minCapacity <= self.maxCapacity", "message": "minCapacity must not exceed maxCapacity"},
    {
        "rule": "!has(self.secondsUntilAutoPause) || self.minCapacity == 0.0",
        "message": "secondsUntilAutoPause requires minCapacity 0 (auto-pause only exists at 0 ACU)",
    },
]


def _half_steps(value: float) -> float:
    if value * 2 != int(value * 2):
        raise ValueError("must be a multiple of 0.5")
    return value


# Not `multipleOf: 0.5`: the API server's OpenAPI validator truncates a fractional factor to 0 when the
# value is integral (`maxCapacity: 4` fails: "factor MultipleOf ... must be positive: 0"); CEL does the step.
Acu = Annotated[
    float,
    AfterValidator(_half_steps),
    Field(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "double(int(self * 2.0)) == self * 2.0", "message": "ACU must be a multiple of 0.5"}
            ]
        }
    ),
]


DEFAULT_AUTO_PAUSE_SECONDS = 300
"""Aurora's default idle time before a pause."""


class ServerlessSpec(ApiModel):
    """Aurora Capacity Units: 1 ACU is about 2 GiB of memory with matching CPU. 0 ACU means paused."""

    model_config = common.config(*ACU_RULES)

    min_capacity: Acu = Field(
        default=0.5,
        ge=0,
        le=256,
        description="Lowest ACU: 0.5-256, or 0: pause after secondsUntilAutoPause without a client.",
    )
    max_capacity: Acu = Field(
        default=4, ge=0.5, le=256, description="Highest ACU: 0.5-256, at least minCapacity."
    )
    seconds_until_auto_pause: int | None = Field(
        default=None,
        ge=10,
        le=86400,
        description=(
            "Seconds without a client connection before the cluster pauses (default 300); only with "
            "minCapacity 0."
        ),
    )

    @model_validator(mode="after")
    def _ordered(self) -> ServerlessSpec:
        if self.min_capacity > self.max_capacity:
            raise ValueError("minCapacity must not exceed maxCapacity")
        if self.seconds_until_auto_pause is not None and self.min_capacity != 0:
            raise ValueError("secondsUntilAutoPause requires minCapacity 0")
        return self

    @property
    def auto_pause_seconds(self) -> int | None:
        """Idle seconds before a pause; None when the cluster never pauses (minCapacity above 0)."""
        if self.min_capacity != 0:
            return None
        return self.seconds_until_auto_pause or DEFAULT_AUTO_PAUSE_SECONDS


class InstancesSpec(ApiModel):
    """The compute tier: instance 0 starts as the writer, the others are readers."""

    model_config = common.config(
        {
            "rule": "!(has(self.resources) && has(self.serverless))",
            "message": "instances.resources and instances.serverless are mutually exclusive",
        }
    )

    readers: int = Field(default=1, ge=0, le=15, description="Number of reader instances (0-15).")
    promotion_tiers: list[Tier] = Field(
        default_factory=list,
        max_length=16,
        description="Failover priority per instance ordinal (index 0 = instance 0); 0 is promoted first. "
        "Instances without an entry get tier 1.",
    )
    resources: ResourcesSpec | None = Field(default=None, description="Provisioned size of each instance.")
    serverless: ServerlessSpec | None = Field(default=None, description="Serverless scaling in ACU.")
    data_volume: Literal["PersistentVolumeClaim", "EmptyDir"] = Field(
        default="PersistentVolumeClaim",
        description="Where each instance keeps PGDATA. PersistentVolumeClaim (default): a pod deletion or a "
        "node restart keeps its pages and it restarts in seconds. EmptyDir: the data goes with the pod and "
        "the instance is re-seeded from the writer (never bootstrapped: the storage tier holds the cluster).",
    )
    volume_size: Quantity = Field(
        default="2Gi",
        description="Size of each instance's PGDATA volume (the PVC request, or the emptyDir size limit).",
    )

    @model_validator(mode="after")
    def _one_sizing(self) -> InstancesSpec:
        if self.resources is not None and self.serverless is not None:
            raise ValueError("instances.resources and instances.serverless are mutually exclusive")
        return self

    def tier(self, ordinal: int) -> int:
        """Promotion tier of instance ``ordinal``."""
        return self.promotion_tiers[ordinal] if ordinal < len(self.promotion_tiers) else 1


class ZonesSpec(ApiModel):
    """Where the six storage nodes go: two on nodes carrying each of three values of one node label."""

    topology_key: str = Field(
        default="topology.kubernetes.io/zone", min_length=1, max_length=316, description="Node label key."
    )
    values: list[ZoneValue] = Field(
        min_length=3,
        max_length=3,
        description="Exactly three distinct values of the label, one per zone.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )

    @model_validator(mode="after")
    def _distinct(self) -> ZonesSpec:
        if len(set(self.values)) != len(self.values):
            raise ValueError("zone values must be distinct")
        return self


class StorageSpec(ApiModel):
    """The quorum-replicated storage tier (6 nodes, write quorum 4, read quorum 3)."""

    zones: ZonesSpec = Field(
        description="Zone label and values. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [immutable("storage.zones")]},
    )
    volume_size: Quantity = Field(
        default="1Gi",
        description="PVC size of each storage node. Immutable for now.",
        json_schema_extra={"x-kubernetes-validations": [immutable("storage.volumeSize")]},
    )
    storage_class_name: str = Field(
        default="",
        max_length=253,
        description="StorageClass of the storage PVCs; empty means the cluster default. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [immutable("storage.storageClassName")]},
    )
    reclaim_policy: Literal["Delete", "Retain"] = Field(
        default="Delete",
        description="What happens to storage PVCs when the cluster is deleted (see docs/operator.md).",
    )


DAY = "(mon|tue|wed|thu|fri|sat|sun)"
WINDOW_PATTERN = rf"^{DAY}:([01][0-9]|2[0-3]):[0-5][0-9]-{DAY}:([01][0-9]|2[0-3]):[0-5][0-9]$"


class MaintenanceSpec(ApiModel):
    """When pod restarts (rolling updates for a new image, restart-only parameters, resources) may start.

    Annotation ``quorumdb.io/apply-pending-maintenance`` on the AuroraCluster starts them at once; a rolling
    update that started continues past the end of the window."""

    window: str = Field(
        default="sun:03:00-sun:04:00",
        pattern=WINDOW_PATTERN,
        description="Weekly window ddd:hh:mm-ddd:hh:mm, UTC, in which rolling updates start.",
    )


class PostgresSpec(ApiModel):
    """PostgreSQL configuration."""

    parameters: dict[str, str] = Field(
        default_factory=dict,
        max_length=200,
        description="postgresql.conf parameters; those QuorumDB manages (port, ...) are refused.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    # Constant-cost map lookups: a rule iterating user keys would blow the CEL cost budget.
                    "rule": " && ".join(f"!('{name}' in self)" for name in MANAGED_PARAMETERS),
                    "message": "parameters " + ", ".join(MANAGED_PARAMETERS) + " are managed by QuorumDB",
                }
            ]
        },
    )

    @model_validator(mode="after")
    def _unmanaged(self) -> PostgresSpec:
        bad = sorted(set(self.parameters) & set(MANAGED_PARAMETERS))
        if bad:
            raise ValueError(f"parameters {', '.join(bad)} are managed by QuorumDB")
        return self


class TLSSpec(ApiModel):
    """TLS for every TCP connection to PostgreSQL (clients, readers, storage nodes), the Data API and the
    control endpoints; on by default."""

    enabled: bool = Field(
        default=True,
        description="Serve TLS and refuse unencrypted TCP connections, on PostgreSQL, the Data API and the "
        "control endpoints. Off: plain TCP (not for production). Immutable: every pod and every internal "
        "caller would change scheme at once, which a rolling restart cannot do.",
        json_schema_extra={"x-kubernetes-validations": [immutable("tls.enabled")]},
    )
    secret_name: SecretName | None = Field(
        default=None,
        description="A kubernetes.io/tls Secret to serve (tls.crt, tls.key, optional ca.crt) instead of the "
        "certificate the operator issues from the cluster's own CA (published in ConfigMap <cluster>-ca) "
        "and renews before it expires.",
    )


class ClientSelector(ApiModel):
    """Pods allowed to connect: those matching ``podLabels`` in namespaces matching ``namespaceLabels``."""

    namespace_labels: dict[str, str] | None = Field(
        default=None,
        description="Labels of the clients' namespaces (absent: the cluster's own; {}: every namespace).",
    )
    pod_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels of the client pods ({}: every pod of those namespaces)."
    )


class NetworkSpec(ApiModel):
    """Who may reach the cluster (the Kubernetes counterpart of a security group), as NetworkPolicies."""

    policies: bool = Field(
        default=True,
        description="Render NetworkPolicies: PostgreSQL, the resume proxy and the Data API only from "
        "allowedClients and the cluster's own pods; storage nodes and control endpoints only from the "
        "cluster's own pods and the operator. Off: no policy, any pod may connect.",
    )
    allowed_clients: list[ClientSelector] = Field(
        default_factory=list,
        max_length=32,
        description="Clients of PostgreSQL and the Data API (empty: every pod in the cluster's namespace).",
    )


TOKEN_LOGIN_RESERVED = ("postgres", "replicator", "app")
"""Roles QuorumDB manages with passwords; a token role may not be one of them."""
RoleName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z_][a-z0-9_]*$")]
ServiceAccountRef = Annotated[
    str,
    Field(
        min_length=3,
        max_length=317,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$",
        description="namespace/name of a ServiceAccount",
    ),
]


class TokenRole(ApiModel):
    """A database role that logs in with ServiceAccount tokens instead of a password."""

    role: RoleName = Field(
        description="The PostgreSQL role (created with LOGIN and no password if missing; grant it what it "
        "needs). Only tokens can log in as it.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": " && ".join(f"self != '{r}'" for r in TOKEN_LOGIN_RESERVED),
                    "message": "roles " + ", ".join(TOKEN_LOGIN_RESERVED) + " are managed by QuorumDB",
                }
            ]
        },
    )
    service_accounts: list[ServiceAccountRef] = Field(
        min_length=1, max_length=64, description="ServiceAccounts (namespace/name) whose tokens log in as it."
    )

    @model_validator(mode="after")
    def _unmanaged(self) -> TokenRole:
        if self.role in TOKEN_LOGIN_RESERVED:
            raise ValueError(f"role {self.role} is managed by QuorumDB")
        return self


class TokenLoginSpec(ApiModel):
    """Log in with a Kubernetes ServiceAccount token as the password (the counterpart of IAM database
    authentication), verified by the instance with a TokenReview."""

    audience: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="The audience a token must be issued for (default: quorumdb:<namespace>:<cluster>).",
    )
    roles: list[TokenRole] = Field(
        min_length=1,
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["role"]},
    )

    @model_validator(mode="after")
    def _unique(self) -> TokenLoginSpec:
        seen = [r.role for r in self.roles]
        if len(set(seen)) != len(seen):
            raise ValueError("tokenLogin.roles: each role once")
        return self

    def audience_for(self, namespace: str, cluster: str) -> str:
        return self.audience or f"quorumdb:{namespace}:{cluster}"


class DataApiSpec(ApiModel):
    """SQL over HTTP in the RDS Data API's wire format (boto3's ``rds-data`` client works unchanged)."""

    enabled: bool = True
    secrets: list[SecretName] = Field(
        default_factory=list,
        max_length=16,
        description="Secrets (username, password, dbname) callers may name in secretArn; default: the "
        "generated app Secret.",
    )
    transaction_idle_seconds: int = Field(
        default=180, ge=5, le=86400, description="An idle transaction is rolled back after this long."
    )


class AuroraClusterSpec(ApiModel):
    """Desired state of an AuroraCluster."""

    model_config = common.config(
        {
            "rule": "!has(self.restore) || has(self.restore.objectStore) || has(self.backup)",
            "message": "restore needs restore.objectStore or backup.objectStore",
        },
        {
            "rule": "!has(self.tokenLogin) || !has(self.tls) || self.tls.enabled",
            "message": "tokenLogin needs tls.enabled: a token is a bearer credential",
        },
    )

    engine: EngineSpec = Field(default_factory=EngineSpec, json_schema_extra=nested())
    instances: InstancesSpec = Field(default_factory=InstancesSpec, json_schema_extra=nested())
    storage: StorageSpec
    backup: BackupSpec | None = None
    restore: RestoreSpec | None = Field(
        default=None,
        description="Create this cluster from another cluster's backups. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [immutable("restore")]},
    )
    maintenance: MaintenanceSpec = Field(default_factory=MaintenanceSpec, json_schema_extra=nested())
    postgresql: PostgresSpec = Field(default_factory=PostgresSpec, json_schema_extra=nested())
    tls: TLSSpec = Field(default_factory=TLSSpec, json_schema_extra=nested())
    network: NetworkSpec = Field(default_factory=NetworkSpec, json_schema_extra=nested())
    token_login: TokenLoginSpec | None = Field(
        default=None, description="ServiceAccount-token login for some roles (absent: none). Needs TLS."
    )
    data_api: DataApiSpec | None = Field(default=None, description="The Data API (absent: none).")
    deletion_protection: bool = Field(
        default=False, description="When true, deleting the AuroraCluster is refused."
    )

    @model_validator(mode="after")
    def _restore_store(self) -> AuroraClusterSpec:
        if self.restore is not None and self.restore.object_store is None and self.backup is None:
            raise ValueError("restore needs restore.objectStore or backup.objectStore")
        return self

    @model_validator(mode="after")
    def _token_login_tls(self) -> AuroraClusterSpec:
        if self.token_login is not None and not self.tls.enabled:
            raise ValueError("tokenLogin needs tls.enabled: a token is a bearer credential")
        return self


class InstanceStatus(ApiModel):
    """One compute instance as its instance manager last reported it (``unknown`` when it did not answer)."""

    name: str
    role: Literal["writer", "reader", "unknown"] = "unknown"
    ready: bool = False
    zone: str = ""
    node: str = ""
    promotion_tier: int = 1
    term: int | None = Field(default=None, description="Writer term the instance follows.")
    timeline: int | None = None
    received_lsn: str | None = Field(default=None, description="WAL received (readers) or flushed (writer).")
    replayed_lsn: str | None = None
    lag_bytes: int | None = None
    decision: str = Field(default="", description="The instance manager's last decision, in words.")
    acu: float | None = Field(
        default=None,
        description="Serverless: capacity the pod holds now (its memory limit as applied; 0 while paused).",
    )
    target_acu: float | None = Field(default=None, description="Serverless: the autoscaler's last target.")
    resize: str = Field(default="", description="A resize the kubelet has not finished: its state and why.")


class ZoneStatus(ApiModel):
    """Storage nodes ready in one zone."""

    zone: str
    ready: int = 0


class StorageStatus(ApiModel):
    """Health of the storage quorum, from the storage nodes' own reports (not pod readiness)."""

    nodes: int = 6
    nodes_ready: int = Field(default=0, description="Nodes streaming from the writer at the current term.")
    reachable: int = Field(default=0, description="Nodes whose status endpoint answered.")
    write_quorum: bool = False
    read_quorum: bool = False
    repairing: list[str] = Field(default_factory=list, description="Storage pods rebuilding from peers.")
    summary: str = Field(default="", description="e.g. 6/6, or 5/6, repairing demo-storage-1-3")
    zones: list[ZoneStatus] = Field(default_factory=list)


class WriterChange(ApiModel):
    """A change of writer (a failover, or a switchover on request: AWS calls both "failover"), decided and
    recorded in status before the operator acts on it, so a restarted operator resumes the same one."""

    kind: Literal["failover", "switchover"]
    from_writer: str | None = Field(default=None, alias="from", description="Writer before the change.")
    to: str = Field(description="Instance promoted.")
    term: int = Field(ge=1, description="Term the new writer holds.")
    reason: str = Field(default="", max_length=1024)
    started_at: datetime.datetime
    completed_at: datetime.datetime | None = None
    seconds: float | None = Field(default=None, description="Decision to the new writer ready, measured.")


class Endpoints(ApiModel):
    """host:port of the cluster (writer) and reader endpoints."""

    writer: str = ""
    reader: str = ""
    data_api: str = Field(default="", description="The Data API's URL (with spec.dataApi).")


class SecretsStatus(ApiModel):
    """Names of the generated credential Secrets."""

    superuser: str = ""
    replication: str = ""
    app: str = ""
    data_api_keys: str = Field(default="", description="The Data API callers' key Secret (spec.dataApi).")


class BackupRef(ApiModel):
    """A completed base backup."""

    id: str
    completed_at: datetime.datetime
    lsn: str = Field(description="WAL position the backup is consistent at (its end LSN).")
    size_bytes: int = 0
    instance: str = Field(default="", description="Instance it was read from.")


class RunningBackup(ApiModel):
    """The base backup in progress, recorded before it was requested (an operator restart resumes it)."""

    id: str
    instance: str
    reason: str = ""
    started_at: datetime.datetime
    bytes_done: int = 0


class BackupFailure(ApiModel):
    """The last base backup that failed; the next attempt waits ``RETRY`` seconds after it."""

    id: str
    time: datetime.datetime
    message: str = Field(default="", max_length=1024)


class WalMark(ApiModel):
    """A time and the writer's flushed LSN read just after it: once the archive is contiguous past
    ``lsn``, every commit stamped at or before ``time`` is archived."""

    time: datetime.datetime
    lsn: str


class BackupStatus(ApiModel):
    """Continuous backup as proven from the object store's contents."""

    earliest_restorable_time: datetime.datetime | None = None
    latest_restorable_time: datetime.datetime | None = None
    archived_lsn: str | None = Field(
        default=None, description="The archive holds every WAL segment from the oldest base backup to here."
    )
    base_backups: int = Field(default=0, description="Base backups whose own WAL is archived.")
    last_backup: BackupRef | None = None
    running: RunningBackup | None = None
    last_failure: BackupFailure | None = None
    next_backup_time: datetime.datetime | None = Field(
        default=None, description="Next scheduled base backup."
    )
    pending_marks: list[WalMark] = Field(
        default_factory=list, max_length=32, description="Marks not yet proven archived, oldest first."
    )


class RestoreStatus(ApiModel):
    """What this cluster was (or is being) restored from, as decided before anything was created."""

    source: str = Field(description="s3://bucket/prefix of the source cluster's backups.")
    object_store: ObjectStoreSpec = Field(description="The store read (its credentials Secret included).")
    prefix: str = Field(description="Key prefix of the backups read.")
    target: str = Field(description="RFC 3339 time, 'latest', or 'snapshot <name>' (its consistent point).")
    backup_id: str = Field(description="Base backup restored.")
    window: str = Field(description="The source's restorable window when the target was checked.")
    min_lsn: str = Field(description="Recovery must replay at least this far (the archive's end).")


class MaintenanceStatus(ApiModel):
    """Pods whose template changed (image, restart-only parameters, resources, ...) and the rolling update
    that restarts them."""

    state: Literal["UpToDate", "Pending", "Starting", "Rolling", "Waiting", "Stopped"] = "UpToDate"
    message: str = Field(default="", max_length=2048, description="The roll's last step or wait, in words.")
    pending_pods: list[str] = Field(
        default_factory=list, description="Pods still running an older template revision."
    )
    pods: int = Field(default=0, description="Pods of the cluster (storage and instances).")
    next_window: datetime.datetime | None = Field(
        default=None, description="When the maintenance window next opens (while changes are pending)."
    )
    rolling_since: datetime.datetime | None = Field(
        default=None, description="Start of the rolling update in progress; it continues past the window."
    )
    last_completed: datetime.datetime | None = Field(
        default=None, description="When the last rolling update finished."
    )


class PauseStatus(ApiModel):
    """Serverless auto-pause in progress or in force. While present, the cluster and reader endpoints lead
    to the resume proxy, which wakes the cluster when a client connects."""

    state: Literal["Pausing", "Paused", "Resuming"]
    since: datetime.datetime = Field(description="When this state began.")
    message: str = Field(default="", max_length=1024, description="What the pause is doing or waiting for.")
    wakes: dict[str, int] = Field(
        default_factory=dict,
        description="Each instance's wake count when it was judged idle: a pause asked with it is refused "
        "by an instance a client woke since.",
    )


class AuroraClusterStatus(ApiModel):
    """Observed state, written only by the operator."""

    phase: Phase | None = None
    observed_generation: int = 0
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    writer: str | None = Field(default=None, description="Instance currently serving writes.")
    target_writer: str | None = Field(
        default=None, description="Instance being promoted while a failover or switchover is in progress."
    )
    term: int = Field(
        default=0, ge=0, description="Writer term; raised (and recorded here) before every promotion."
    )
    timeline: int | None = Field(default=None, ge=1, description="PostgreSQL timeline the writer reports.")
    system_identifier: str | None = Field(
        default=None, description="PostgreSQL system identifier, recorded once from the first writer."
    )
    failover: WriterChange | None = Field(default=None, description="The writer change in progress.")
    last_failover: WriterChange | None = Field(default=None, description="The last completed writer change.")
    instances: list[InstanceStatus] = Field(default_factory=list)
    readers: int = 0
    readers_ready: int = 0
    acu: float | None = Field(
        default=None, description="Serverless: the writer's capacity in ACU, as its pod holds it now."
    )
    endpoints: Endpoints = Field(default_factory=Endpoints)
    storage: StorageStatus = Field(default_factory=StorageStatus)
    secrets: SecretsStatus = Field(default_factory=SecretsStatus)
    backup: BackupStatus | None = Field(default=None, description="Continuous backup (with spec.backup).")
    restore: RestoreStatus | None = Field(default=None, description="The restore this cluster came from.")
    maintenance: MaintenanceStatus | None = Field(
        default=None, description="Pending template changes and the rolling update that applies them."
    )
    pause: PauseStatus | None = Field(
        default=None, description="Serverless: the auto-pause in progress or in force (absent: running)."
    )


class AuroraCluster(ApiModel):
    """The custom resource as stored (metadata trimmed to what the operator reads)."""

    model_config = common.config(extra="ignore")

    api_version: str = Field(default="quorumdb.io/v1alpha1", alias="apiVersion")
    kind: Literal["AuroraCluster"] = "AuroraCluster"
    metadata: common.ObjectMeta
    spec: AuroraClusterSpec
    status: AuroraClusterStatus = Field(default_factory=AuroraClusterStatus)
