"""Pod-level wiring shared by the operator and the in-pod processes: ports, labels, paths, environment
names, HTTP paths and request bodies, storage conventions. Ordered by subject.

Why it exists: the operator renders pods and probes that call the instance manager and the storage nodes;
if either side spelled a path or a variable differently the cluster would silently never become ready.
Everything both sides must agree on lives here (the JSON documents they exchange are typed models in
``aurora_api.reports``) and nowhere else. It must not import either side.
"""

from __future__ import annotations

from typing import Final

# --- API identity ------------------------------------------------------------------------------------
API_GROUP: Final = "quorumdb.io"
API_VERSION: Final = "v1alpha1"

# --- Quorum geometry (Aurora: 6 copies, 2 per zone over 3 zones; W=4, R=3, W+R>N, 2W>N) ---------------
STORAGE_NODES: Final = 6
WRITE_QUORUM: Final = 4
READ_QUORUM: Final = 3
ZONES: Final = 3

# --- Ports -------------------------------------------------------------------------------------------
POSTGRES_PORT: Final = 5432
INSTANCE_HTTP_PORT: Final = 8008
STORAGE_HTTP_PORT: Final = 7000
PROXY_WRITER_PORT: Final = 5432
"""The resume proxy's port for the cluster endpoint (forwards to the writer)."""
PROXY_READER_PORT: Final = 5433
"""The resume proxy's port for the reader endpoint (forwards to the readers in turn)."""
PROXY_HTTP_PORT: Final = 8010
"""The resume proxy's probes."""
DATA_API_PORT: Final = 8080
"""The Data API (HTTP, the RDS Data API's wire format)."""
PATH_DATA_API_KEYS: Final = "/etc/quorumdb/data-api/keys"
"""The Data API's callers' access keys (``accessKeyId``, ``secretAccessKey``)."""
PATH_DATA_API_SECRETS: Final = "/etc/quorumdb/data-api/secrets"
"""One directory per database Secret the Data API's callers may name in ``secretArn``."""

# --- Roles, labels and annotations -------------------------------------------------------------------
ROLE_WRITER: Final = "writer"
ROLE_READER: Final = "reader"
LABEL_CLUSTER: Final = "quorumdb.io/cluster"
LABEL_COMPONENT: Final = "quorumdb.io/component"  # COMPONENT_STORAGE | COMPONENT_INSTANCE
LABEL_ROLE: Final = "quorumdb.io/role"  # ROLE_WRITER | ROLE_READER, set on instance pods by the operator only
LABEL_INSTANCE: Final = "quorumdb.io/instance"  # instance name, on instance pods
ANNOTATION_REVISION: Final = "quorumdb.io/revision"  # pod template revision (role and term excluded)
ANNOTATION_ROTATE_CONTROL_TOKEN: Final = "quorumdb.io/rotate-control-token"  # on an AuroraCluster: a request
ANNOTATION_PREVIOUS_TOKEN_UNTIL: Final = "quorumdb.io/previous-token-until"  # on <cluster>-control: RFC 3339
ANNOTATION_APPLY_NOW: Final = "quorumdb.io/apply-pending-maintenance"  # on an AuroraCluster: roll now
ANNOTATION_TARGET_ACU: Final = "quorumdb.io/target-acu"  # serverless instance pod: the autoscaler's target
ANNOTATION_CONTROL_SCHEME: Final = "quorumdb.io/control-scheme"  # instance/storage pod: "https" or absent
ANNOTATION_TERM: Final = "quorumdb.io/term"  # writer term the operator last set on an instance pod
COMPONENT_STORAGE: Final = "storage"
COMPONENT_INSTANCE: Final = "instance"
COMPONENT_PROXY: Final = "proxy"
COMPONENT_DATA_API: Final = "data-api"

# --- Fixed in-pod paths (the matching ``Env``/``EnvInstance`` variables are always set to these) ---------
PATH_DATA_DIR: Final = "/var/lib/quorumdb/data"
PATH_SECRETS_DIR: Final = "/etc/quorumdb/secrets"
PATH_CONFIG_DIR: Final = "/etc/quorumdb/config"
PATH_PODINFO_DIR: Final = "/etc/quorumdb/podinfo"
PATH_TLS_DIR: Final = "/etc/quorumdb/tls"
PATH_CONTROL_TLS_DIR: Final = "/etc/quorumdb/control-tls"
PATH_CLUSTER_CA_DIR: Final = "/etc/quorumdb/cluster-ca"  # the published CA ConfigMap, in client pods
TLS_CERT: Final = "tls.crt"
"""Keys of a ``kubernetes.io/tls`` Secret (the server certificate chain and its key) and of the CA bundle
clients verify it with (in the same Secret, and published in the cluster's CA ConfigMap)."""
TLS_KEY: Final = "tls.key"
TLS_CA: Final = "ca.crt"
PATH_S3_CA_DIR: Final = "/etc/quorumdb/s3-ca"
"""objectStore.caSecret of spec.backup; the restore source's (when another store) under ``restore/``."""
PATH_S3_SECRETS_DIR: Final = "/etc/quorumdb/s3-secrets"
"""The stores' credentials and encryption keys (``own/``, ``restore/``), named by ``<VAR>_FILE`` variables
(``secretfiles``)."""
CONFIG_POSTGRESQL_CONF: Final = "postgresql.conf"
CONFIG_TOKEN_LOGIN: Final = "token-login.json"
"""In the cluster ConfigMap when spec.tokenLogin is set: ``{"audience": str, "roles": {role: [username]}}``,
usernames as a TokenReview reports them (``system:serviceaccount:<namespace>:<name>``)."""


def service_account_username(namespace: str, name: str) -> str:
    """How a TokenReview names a ServiceAccount (the usernames in ``CONFIG_TOKEN_LOGIN``)."""
    return f"system:serviceaccount:{namespace}:{name}"


PATH_KUBE_ACCOUNT_DIR: Final = "/var/run/secrets/kubernetes.io/serviceaccount"
"""An instance's own ServiceAccount token and the API server's CA (Kubernetes mounts them in instance pods);
token login uses them to ask the API server to review a client's token."""
PAM_TOKEN_SERVICE: Final = "quorumdb-token"
"""The PAM service (``/etc/pam.d/quorumdb-token`` in the image) pg_hba names for token roles."""


class SecretsLayout:
    """Layout under ``Env.SECRETS_DIR``: one sub-directory per account, one file per key.

    e.g. ``$QUORUMDB_SECRETS_DIR/replication/password``. The app account also has ``dbname``.
    """

    SUPERUSER: Final = "superuser"
    REPLICATION: Final = "replication"
    APP: Final = "app"
    USERNAME: Final = "username"
    PASSWORD: Final = "password"
    DATABASE: Final = "dbname"
    CONTROL: Final = "control"  # the cluster's control token (``aurora_api.control``)
    TOKEN: Final = "token"
    PREVIOUS: Final = "previous"  # the control token before a rotation, still accepted for a while


# --- Environment -------------------------------------------------------------------------------------


class Env:
    """Environment names set on every pod of a cluster (storage and instance)."""

    CLUSTER_NAME: Final = "QUORUMDB_CLUSTER_NAME"
    NAMESPACE: Final = "QUORUMDB_NAMESPACE"
    POD_NAME: Final = "QUORUMDB_POD_NAME"
    DATA_DIR: Final = "QUORUMDB_DATA_DIR"
    # Comma-separated host:port list of the six storage nodes' HTTP endpoints, in ordinal order.
    STORAGE_NODES: Final = "QUORUMDB_STORAGE_NODES"
    # Directory where Secrets (superuser, replication, app user) are mounted, one file per key.
    SECRETS_DIR: Final = "QUORUMDB_SECRETS_DIR"
    # host:port of the cluster (writer) endpoint Service, for readers and storage nodes following the writer.
    WRITER_ENDPOINT: Final = "QUORUMDB_WRITER_ENDPOINT"
    # Directory of a downward-API volume with files "labels" and "annotations" (kept current by the kubelet).
    PODINFO_DIR: Final = "QUORUMDB_PODINFO_DIR"
    # Directory holding PostgreSQL's binaries (default: Debian's PostgreSQL 15 bin directory).
    PG_BIN_DIR: Final = "QUORUMDB_PG_BIN_DIR"
    S3_ENDPOINT: Final = "QUORUMDB_S3_ENDPOINT"
    S3_BUCKET: Final = "QUORUMDB_S3_BUCKET"
    S3_PREFIX: Final = "QUORUMDB_S3_PREFIX"
    S3_REGION: Final = "AWS_REGION"
    S3_ACCESS_KEY_ID: Final = "AWS_ACCESS_KEY_ID"
    S3_SECRET_ACCESS_KEY: Final = "AWS_SECRET_ACCESS_KEY"
    # A PEM bundle of the CAs to trust for the store's TLS certificate (objectStore.caSecret), instead of
    # the system's; set only with one (then the file is mounted at PATH_S3_CA_DIR).
    S3_CA_FILE: Final = "QUORUMDB_S3_CA_FILE"
    # objectStore.serverSideEncryption ("AES256"): sent with every upload when set.
    S3_SSE: Final = "QUORUMDB_S3_SSE"
    # Client-side encryption of archive objects (spec.backup.encryption): the base64 of a 32-byte key, and
    # a flag that is set whenever encryption is configured, so a missing key refuses uploads instead of
    # writing plaintext.
    BACKUP_KEY: Final = "QUORUMDB_BACKUP_KEY"
    BACKUP_ENCRYPTED: Final = "QUORUMDB_BACKUP_ENCRYPTED"
    # Directory of the control certificate (``TLS_CERT``, ``TLS_KEY``, ``TLS_CA``): set when the cluster
    # serves TLS; then the control endpoints (instance managers, storage nodes, proxy) speak HTTPS and their
    # clients verify each other by ``TLS_CA`` (``aurora_api.https``).
    CONTROL_TLS_DIR: Final = "QUORUMDB_CONTROL_TLS_DIR"


class EnvProxy:
    """Environment of the resume proxy (``quorumdb-proxy``)."""

    # The instances, comma-separated: ``host`` (ports POSTGRES_PORT and INSTANCE_HTTP_PORT) or
    # ``host:postgres_port:http_port``. The proxy asks their managers which one writes.
    INSTANCES: Final = "QUORUMDB_PROXY_INSTANCES"
    LISTEN: Final = "QUORUMDB_PROXY_LISTEN"  # address to listen on (default all)
    WRITER_PORT: Final = "QUORUMDB_PROXY_WRITER_PORT"
    READER_PORT: Final = "QUORUMDB_PROXY_READER_PORT"
    HTTP_PORT: Final = "QUORUMDB_PROXY_HTTP_PORT"


class EnvDataApi:
    """Environment of the Data API (``quorumdb-data-api``); the cluster is ``Env.CLUSTER_NAME``."""

    DATABASE_HOST: Final = "QUORUMDB_DATA_API_DATABASE_HOST"  # default: the cluster endpoint
    DATABASE_PORT: Final = "QUORUMDB_DATA_API_DATABASE_PORT"
    # The cluster CA (``TLS_CA`` file): with it the Data API connects with sslmode=verify-full.
    DATABASE_CA_FILE: Final = "QUORUMDB_DATA_API_DATABASE_CA_FILE"
    # Directory with ``TLS_CERT`` and ``TLS_KEY``: serve HTTPS with them (followed as they are renewed).
    TLS_DIR: Final = "QUORUMDB_DATA_API_TLS_DIR"
    KEYS_DIR: Final = "QUORUMDB_DATA_API_KEYS_DIR"
    SECRETS_DIR: Final = "QUORUMDB_DATA_API_SECRETS_DIR"
    TRANSACTION_IDLE_SECONDS: Final = "QUORUMDB_DATA_API_TRANSACTION_IDLE_SECONDS"
    LISTEN: Final = "QUORUMDB_DATA_API_LISTEN"
    PORT: Final = "QUORUMDB_DATA_API_PORT"


class EnvInstance:
    """Environment names of instance pods, read by the instance manager (``quorumdb-instance``)."""

    # Role the pod was created with: ``ROLE_WRITER`` or ``ROLE_READER``. Only the role at first start-up: the
    # operator changes a running instance's role through ``InstancePaths.PROMOTE``/``DEMOTE``.
    ROLE: Final = "QUORUMDB_ROLE"
    # Writer term the pod starts with when the podinfo annotation ``ANNOTATION_TERM`` is absent (decimal).
    TERM: Final = "QUORUMDB_TERM"
    # Stable instance name (= the per-instance Service name and StatefulSet name), e.g. "demo-instance-1".
    INSTANCE_NAME: Final = "QUORUMDB_INSTANCE_NAME"
    # Directory of the mounted cluster ConfigMap: file ``CONFIG_POSTGRESQL_CONF`` (PostgreSQL parameters).
    CONFIG_DIR: Final = "QUORUMDB_CONFIG_DIR"
    # PostgreSQL parameters that need a restart, as postgresql.conf lines. In the pod template and not in the
    # ConfigMap, so a pod runs with the values of the template it was created from (a rolling restart
    # applies a change); a container restart never picks up a value that is still pending.
    STATIC_PARAMETERS: Final = "QUORUMDB_STATIC_PARAMETERS"
    # "true" on serverless clusters: the settings that follow memory (``capacity.live_parameters``) are
    # derived from the container's cgroup memory limit and reloaded when an in-place resize changes it.
    SERVERLESS: Final = "QUORUMDB_SERVERLESS"
    # Directory with tls.crt / tls.key / ca.crt when TLS is enabled; unset otherwise.
    TLS_DIR: Final = "QUORUMDB_TLS_DIR"
    # Promotion tier of this instance (0 = promoted first), decimal string.
    PROMOTION_TIER: Final = "QUORUMDB_PROMOTION_TIER"
    # Overrides of ``POSTGRES_PORT`` / ``INSTANCE_HTTP_PORT`` and of the listen address ("*" in pods); local
    # test beds run several instances on one host. The operator never sets them.
    POSTGRES_PORT: Final = "QUORUMDB_POSTGRES_PORT"
    HTTP_PORT: Final = "QUORUMDB_INSTANCE_HTTP_PORT"
    LISTEN_ADDRESS: Final = "QUORUMDB_LISTEN_ADDRESS"
    # A reader is ready only while its replay lag is within this bound (seconds, decimal; default 10).
    READER_MAX_LAG_SECONDS: Final = "QUORUMDB_READER_MAX_LAG_SECONDS"
    # Host storage nodes use to reach this instance once it is the writer (default: the instance name,
    # i.e. its per-instance Service). Storage nodes authenticate as the replication account themselves.
    ADVERTISE_HOST: Final = "QUORUMDB_ADVERTISE_HOST"
    # Restore (set from status.restore when the cluster is created from another one's backups): the source's
    # object store, the base backup to restore, the target time (RFC 3339; unset: the end of the archive)
    # and the LSN a recovery to the end must reach (else the archive has a gap).
    RESTORE_S3_ENDPOINT: Final = "QUORUMDB_RESTORE_S3_ENDPOINT"
    RESTORE_S3_BUCKET: Final = "QUORUMDB_RESTORE_S3_BUCKET"
    RESTORE_S3_PREFIX: Final = "QUORUMDB_RESTORE_S3_PREFIX"
    RESTORE_S3_REGION: Final = "QUORUMDB_RESTORE_S3_REGION"
    RESTORE_S3_ACCESS_KEY_ID: Final = "QUORUMDB_RESTORE_S3_ACCESS_KEY_ID"
    RESTORE_S3_SECRET_ACCESS_KEY: Final = "QUORUMDB_RESTORE_S3_SECRET_ACCESS_KEY"
    RESTORE_S3_CA_FILE: Final = "QUORUMDB_RESTORE_S3_CA_FILE"
    RESTORE_BACKUP_ID: Final = "QUORUMDB_RESTORE_BACKUP_ID"
    RESTORE_KEY: Final = "QUORUMDB_RESTORE_KEY"  # the source's encryption key (base64), when it has one
    RESTORE_TARGET_TIME: Final = "QUORUMDB_RESTORE_TARGET_TIME"
    RESTORE_MIN_LSN: Final = "QUORUMDB_RESTORE_MIN_LSN"
    # "immediate": recover only to the backup's consistent point (a snapshot), not to a time or the end.
    RESTORE_TARGET: Final = "QUORUMDB_RESTORE_TARGET"
    # Seconds of PostgreSQL's archive_timeout on a writer when the cluster has an object store (default 30).
    ARCHIVE_TIMEOUT: Final = "QUORUMDB_ARCHIVE_TIMEOUT"


class EnvStorage:
    """Environment names of storage pods, read by the storage node (``quorumdb-storage-node``)."""

    # Zone value of the pod's StatefulSet.
    ZONE: Final = "QUORUMDB_ZONE"
    # The replication account's password for libpq (quorumdb-walrecv, pg_receivewal, psycopg) when a local
    # process sets it; in pods the node writes a password file from the mounted Secret (``PGPASSFILE``).
    # Either way conninfos pushed by the writer (``PUT StoragePaths.TERM``) need no secret in them.
    LIBPQ_PASSWORD: Final = "PGPASSWORD"
    # Ordinal 0..5 of this node (in pods derived from the pod name suffix when unset).
    ORDINAL: Final = "QUORUMDB_STORAGE_ORDINAL"
    # Override of ``STORAGE_HTTP_PORT`` and the listen address (local test beds run six nodes on one host).
    HTTP_PORT: Final = "QUORUMDB_STORAGE_HTTP_PORT"
    LISTEN_ADDRESS: Final = "QUORUMDB_STORAGE_LISTEN_ADDRESS"
    # libpq conninfo of the writer (without application_name); overrides ``Env.WRITER_ENDPOINT``.
    WRITER_CONNINFO: Final = "QUORUMDB_STORAGE_WRITER_CONNINFO"
    # Which WAL receiver the node runs: "walrecv" (quorumdb-walrecv, the default) or "pg_receivewal".
    RECEIVER: Final = "QUORUMDB_STORAGE_RECEIVER"
    # Path of the quorumdb-walrecv binary (default: found on PATH).
    WALRECV_BIN: Final = "QUORUMDB_WALRECV_BIN"
    # quorumdb-walrecv --linger-us: group-flush wait while the stream is busy, microseconds (default 0).
    LINGER_US: Final = "QUORUMDB_STORAGE_LINGER_US"
    # Completed segments kept locally after they are archived (the repair window), decimal; default 64.
    KEEP_SEGMENTS: Final = "QUORUMDB_STORAGE_KEEP_SEGMENTS"
    # Set when the cluster serves TLS: the CA bundle the writer's certificate must chain to (libpq
    # sslmode=verify-ca); a path that does not exist (a user's Secret without ca.crt) means sslmode=require.
    WRITER_CA_FILE: Final = "QUORUMDB_STORAGE_WRITER_CA_FILE"


# --- HTTP APIs (documents: ``aurora_api.reports``) ---------------------------------------------------


class InstancePaths:
    """HTTP paths served by the in-pod PostgreSQL instance manager (port ``INSTANCE_HTTP_PORT``)."""

    LIVENESS: Final = "/healthz"
    READINESS: Final = "/readyz"
    STATUS: Final = "/v1/status"  # reports.InstanceReport
    PROMOTE: Final = "/v1/promote"
    DEMOTE: Final = "/v1/demote"
    METRICS: Final = "/metrics"
    BACKUPS: Final = "/v1/backups"  # POST BackupRequest: start one; GET: reports.BackupJobReport list
    PAUSE: Final = "/v1/pause"  # POST PauseFields
    RESUME: Final = "/v1/resume"  # POST (no body)
    SWITCH_WAL: Final = "/v1/switch-wal"  # POST (no body), writer only: {"lsn": "X/Y"}, the switch point


class PauseFields:
    """JSON body of ``InstancePaths.PAUSE`` (POST): {"wakes": int}, the ``InstanceReport.wakes`` the caller
    saw when it judged the instance idle. Refused with 409 when a client woke the instance since (its wakes
    moved on): a pause never races a resume. 202: PostgreSQL stops once it has no client connection and
    stays stopped, across restarts of the manager, until ``InstancePaths.RESUME``.

    ``InstancePaths.RESUME`` (POST): start PostgreSQL again if paused, counted in ``wakes``; answers once
    the instance is ready (200 with the status) or after ``RESUME_WAIT_SECONDS`` (503); with ``?wait=0``
    at once (202 while not ready). Idempotent: on a running instance it answers at once."""

    WAKES: Final = "wakes"


RESUME_WAIT_SECONDS: Final = 30.0


class BackupFields:
    """JSON body of ``InstancePaths.BACKUPS`` (POST): {"id": str, "reason": str, "prefix": str}. Starts a
    base backup of this instance to the cluster's object store under ``aurora_api.backups`` ids; 202 when
    started (or already running or done with that id), 409 while another one runs, 412 when the pod has no
    object store or PostgreSQL is not running. GET answers every job this process ran, newest last."""

    ID: Final = "id"
    REASON: Final = "reason"
    PREFIX: Final = "prefix"  # optional: under the cluster's prefix (a snapshot's "snapshots/<dir>")


class PromoteFields:
    """JSON body of ``InstancePaths.PROMOTE`` (POST): {"term": int}. Idempotent per term: repeating the call
    with the term already promoted returns 200 with the status; a lower term is refused with 409. 202 while
    the promotion runs. ``InstancePaths.DEMOTE`` (POST): {"term": int, "writer": "host:port"}: become a
    reader of ``writer`` (pg_rewind or a fresh copy), never a second writer."""

    TERM: Final = "term"
    WRITER: Final = "writer"


class StoragePaths:
    """HTTP paths served by a storage node (port ``STORAGE_HTTP_PORT``)."""

    LIVENESS: Final = "/healthz"
    READINESS: Final = "/readyz"
    STATUS: Final = "/v1/status"  # reports.StorageReport (a subset)
    TERM: Final = "/v1/term"
    SEGMENTS: Final = "/v1/segments"
    WAL: Final = "/v1/wal"
    VERIFY: Final = "/verify"  # POST WAL + "/<name>" + VERIFY: re-hash a completed file a consumer refused
    METRICS: Final = "/metrics"


# --- Storage conventions on the writer (see docs/storage-engine.md) ----------------------------------

# Storage node ``i`` uses replication slot and application_name ``f"{STORAGE_SLOT_PREFIX}{i}"``.
STORAGE_SLOT_PREFIX: Final = "storage_"
# Custom GUC the writer declares its term in (``quorumdb.term = '3'``); storage nodes read it with SHOW.
WRITER_TERM_GUC: Final = "quorumdb.term"
# Custom GUC naming the cluster on the writer; a storage node of another cluster refuses to stream.
WRITER_CLUSTER_GUC: Final = "quorumdb.cluster_name"
