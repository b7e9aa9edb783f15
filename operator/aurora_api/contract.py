"""Pod-level wiring shared by the operator and the in-pod processes: ports, HTTP paths, environment names.

Why it exists: the operator renders pods and probes that call the instance manager and the storage nodes;
if either side spelled a path or a variable differently the cluster would silently never become ready.
Everything both sides must agree on lives here and nowhere else. It must not import either side.
"""

from __future__ import annotations

from typing import Final

API_GROUP: Final = "quorumdb.io"
API_VERSION: Final = "v1alpha1"

# --- Ports -------------------------------------------------------------------------------------------
POSTGRES_PORT: Final = 5432
INSTANCE_HTTP_PORT: Final = 8008
STORAGE_HTTP_PORT: Final = 7000

# --- Quorum geometry (Aurora: 6 copies, 2 per zone over 3 zones; W=4, R=3, W+R>N, 2W>N) ---------------
STORAGE_NODES: Final = 6
WRITE_QUORUM: Final = 4
READ_QUORUM: Final = 3
ZONES: Final = 3


class InstancePaths:
    """HTTP paths served by the in-pod PostgreSQL instance manager (port ``INSTANCE_HTTP_PORT``)."""

    LIVENESS: Final = "/healthz"
    READINESS: Final = "/readyz"
    STATUS: Final = "/v1/status"
    PROMOTE: Final = "/v1/promote"
    DEMOTE: Final = "/v1/demote"
    METRICS: Final = "/metrics"


class StoragePaths:
    """HTTP paths served by a storage node (port ``STORAGE_HTTP_PORT``)."""

    LIVENESS: Final = "/healthz"
    READINESS: Final = "/readyz"
    STATUS: Final = "/v1/status"
    TERM: Final = "/v1/term"
    SEGMENTS: Final = "/v1/segments"
    WAL: Final = "/v1/wal"
    METRICS: Final = "/metrics"


class Env:
    """Environment variable names the operator sets on pods and the in-pod processes read."""

    CLUSTER_NAME: Final = "QUORUMDB_CLUSTER_NAME"
    NAMESPACE: Final = "QUORUMDB_NAMESPACE"
    POD_NAME: Final = "QUORUMDB_POD_NAME"
    DATA_DIR: Final = "QUORUMDB_DATA_DIR"
    # Comma-separated host:port list of the six storage nodes' HTTP endpoints, in ordinal order.
    STORAGE_NODES: Final = "QUORUMDB_STORAGE_NODES"
    # Directory where Secrets (superuser, replication, app user) are mounted, one file per key.
    SECRETS_DIR: Final = "QUORUMDB_SECRETS_DIR"
    S3_ENDPOINT: Final = "QUORUMDB_S3_ENDPOINT"
    S3_BUCKET: Final = "QUORUMDB_S3_BUCKET"
    S3_PREFIX: Final = "QUORUMDB_S3_PREFIX"
    S3_ACCESS_KEY_ID: Final = "AWS_ACCESS_KEY_ID"
    S3_SECRET_ACCESS_KEY: Final = "AWS_SECRET_ACCESS_KEY"
