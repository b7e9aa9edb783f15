"""Names and DNS addresses of everything a cluster owns.

Why one module: the same name is computed by the renderer that creates an object, the planner that looks for
it and the status that reports it; spelling it once keeps them from drifting apart.
"""

from __future__ import annotations

from collections.abc import Iterable

from aurora_api import contract
from aurora_api.v1alpha1.cluster import AuroraCluster

INSTANCE_INFIX = "-instance-"


def writer_service(c: AuroraCluster) -> str:
    """The cluster endpoint (always routes to the writer)."""
    return c.metadata.name


def reader_service(c: AuroraCluster) -> str:
    """The reader endpoint (ready readers only)."""
    return f"{c.metadata.name}-ro"


def instance(c: AuroraCluster, ordinal: int) -> str:
    """Instance name = its StatefulSet and its own Service."""
    return f"{c.metadata.name}{INSTANCE_INFIX}{ordinal}"


def instance_pod(c: AuroraCluster, ordinal: int) -> str:
    return f"{instance(c, ordinal)}-0"


def instance_ordinal(c: AuroraCluster, name: str) -> int | None:
    """Ordinal of an instance (or its pod) name belonging to ``c``, else None."""
    prefix = f"{c.metadata.name}{INSTANCE_INFIX}"
    if not name.startswith(prefix):
        return None
    digits = name[len(prefix) :].removesuffix("-0")
    return int(digits) if digits.isdigit() else None


def storage_set(c: AuroraCluster, zone_index: int) -> str:
    """StatefulSet of the two storage nodes of zone ``zone_index`` (0-2, ``spec.storage.zones`` order)."""
    return f"{c.metadata.name}-storage-{zone_index}"


def storage_headless(c: AuroraCluster) -> str:
    return f"{c.metadata.name}-storage"


def storage_pods(c: AuroraCluster) -> list[str]:
    """The six storage pod names in storage-node ordinal order (zone-major).

    Each zone's StatefulSet starts its ordinals at ``2 * zone`` (``spec.ordinals.start``), so the pod name's
    numeric suffix is the storage-node ordinal 0-5 the storage engine derives from ``POD_NAME``.
    """
    per_zone = contract.STORAGE_NODES // contract.ZONES
    return [f"{storage_set(c, z)}-{z * per_zone + k}" for z in range(contract.ZONES) for k in range(per_zone)]


def storage_nodes(c: AuroraCluster, cluster_domain: str) -> list[str]:
    """``host:port`` of the six storage nodes, fully qualified, in ordinal order."""
    svc = f"{storage_headless(c)}.{c.metadata.namespace}.svc.{cluster_domain}"
    return [f"{pod}.{svc}:{contract.STORAGE_HTTP_PORT}" for pod in storage_pods(c)]


def endpoint(c: AuroraCluster, service: str) -> str:
    """``host:port`` of a PostgreSQL Service in the cluster's namespace."""
    return f"{service}.{c.metadata.namespace}.svc:{contract.POSTGRES_PORT}"


def secret(c: AuroraCluster, account: str) -> str:
    """Secret of a ``contract.SecretsLayout`` account (superuser, replication, app)."""
    return f"{c.metadata.name}-{account}"


ACCOUNTS = (contract.SecretsLayout.SUPERUSER, contract.SecretsLayout.REPLICATION, contract.SecretsLayout.APP)


def config(c: AuroraCluster) -> str:
    return f"{c.metadata.name}-config"


def data_api(c: AuroraCluster) -> str:
    """The Data API's Deployment and Service."""
    return f"{c.metadata.name}-data-api"


def data_api_keys(c: AuroraCluster) -> str:
    """The Secret with the Data API callers' access key (``accessKeyId``, ``secretAccessKey``)."""
    return f"{c.metadata.name}-data-api-keys"


def control_secret(c: AuroraCluster) -> str:
    """The cluster's control token (``aurora_api.control``), projected into its own pods."""
    return control_secret_of(c.metadata.name)


def control_secret_of(cluster: str) -> str:
    return f"{cluster}-control"


def proxy(c: AuroraCluster) -> str:
    """The resume proxy's Deployment (serverless clusters that pause)."""
    return f"{c.metadata.name}-proxy"


def service_account(c: AuroraCluster) -> str:
    return f"{c.metadata.name}-pods"


def token_review_binding(c: AuroraCluster) -> str:
    """Cluster-scoped, so the namespace is part of the name."""
    return f"quorumdb-token-review:{c.metadata.namespace}:{c.metadata.name}"


def pdb(c: AuroraCluster, what: str) -> str:
    return f"{c.metadata.name}-{what}"


def ca_secret(c: AuroraCluster) -> str:
    """The cluster CA's certificate and key (operator-issued TLS); only the operator reads it."""
    return ca_secret_of(c.metadata.name)


def ca_secret_of(cluster: str) -> str:
    return f"{cluster}-ca"


def ca_config_map(c: AuroraCluster) -> str:
    """The cluster CA's certificate alone (``ca.crt``), published for clients (``sslrootcert``)."""
    return f"{c.metadata.name}-ca"


def control_tls_secret(c: AuroraCluster) -> str:
    """The control endpoints' certificate (always operator-issued, from the cluster's CA)."""
    return f"{c.metadata.name}-control-tls"


def control_tls_name(c: AuroraCluster) -> str:
    """The one name the control certificate carries; nobody checks it (peers are reached by address and
    verified by the CA), but a certificate without a name is refused by some clients."""
    return f"{c.metadata.name}.{c.metadata.namespace}.control.quorumdb.internal"


def tls_secret(c: AuroraCluster) -> str:
    """PostgreSQL's server certificate: the user's ``spec.tls.secretName``, else the operator-issued one."""
    return c.spec.tls.secret_name or f"{c.metadata.name}-tls"


TLS_NAMED_ORDINALS = 16
"""Instance endpoints the server certificate names up front (ordinals 0-15: one writer and fifteen readers
fit), so adding a reader does not re-issue it; an instance beyond them does."""


def tls_dns_names(c: AuroraCluster, cluster_domain: str, ordinals: Iterable[int] = ()) -> list[str]:
    """Every name a client may reach PostgreSQL at (cluster, reader and instance endpoints) or the Data API
    at, in each of the forms a namespace's DNS search path allows."""
    ns = c.metadata.namespace
    services = [writer_service(c), reader_service(c), data_api(c)]
    services += [instance(c, o) for o in sorted(set(range(TLS_NAMED_ORDINALS)) | set(ordinals))]
    return [n for s in services for n in (s, f"{s}.{ns}", f"{s}.{ns}.svc", f"{s}.{ns}.svc.{cluster_domain}")]


def network_policy(c: AuroraCluster, component: str) -> str:
    return f"{c.metadata.name}-{component}"
