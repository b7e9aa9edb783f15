"""The Data API of a cluster with ``spec.dataApi``: a Deployment, its Service, and its callers' key.

Why the database Secrets are mounted rather than read through the API server: the Data API then needs no
Kubernetes credentials at all, and the only Secrets a caller can name in ``secretArn`` are the ones the
cluster's owner listed (``spec.dataApi.secrets``): naming any other is refused (``ForbiddenException``).
They are mounted as optional, so one listed but missing fails only the calls that name it (and is flagged
in the condition ``SecretsAvailable``), not the whole service.
The callers' access key is generated once into ``<cluster>-data-api-keys`` (never re-rendered), like the
database passwords; the caller signs requests with it (SigV4), as boto3 does with AWS keys. With TLS on
(the default) it serves HTTPS with the cluster's certificate, which names its Service, so callers verify it
like the database endpoints, with the published CA.
"""

from __future__ import annotations

import secrets

from aurora_api import contract
from aurora_api.contract import COMPONENT_DATA_API, EnvDataApi
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..settings import Settings
from . import meta, names, podspec
from .meta import Manifest

RESOURCES = {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
DATABASE_KEYS = (
    contract.SecretsLayout.USERNAME,
    contract.SecretsLayout.PASSWORD,
    contract.SecretsLayout.DATABASE,
)


def wanted(c: AuroraCluster) -> bool:
    return c.spec.data_api is not None and c.spec.data_api.enabled


def allowed_secrets(c: AuroraCluster) -> list[str]:
    assert c.spec.data_api is not None
    return c.spec.data_api.secrets or [names.secret(c, contract.SecretsLayout.APP)]


def keys_secret(c: AuroraCluster) -> Manifest:
    """Created once (random): an access key id that says which cluster it is for, and its secret key."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta.metadata(c, names.data_api_keys(c), COMPONENT_DATA_API),
        "type": "Opaque",
        "stringData": {
            "accessKeyId": f"QDB{secrets.token_hex(8).upper()}",
            "secretAccessKey": secrets.token_urlsafe(30),
        },
    }


def deployment(c: AuroraCluster, settings: Settings) -> Manifest:
    assert c.spec.data_api is not None
    allowed = allowed_secrets(c)
    mounts = [
        podspec.TMP_MOUNT,
        {"name": "keys", "mountPath": contract.PATH_DATA_API_KEYS, "readOnly": True},
    ] + [
        {"name": f"db-{i}", "mountPath": f"{contract.PATH_DATA_API_SECRETS}/{name}", "readOnly": True}
        for i, name in enumerate(allowed)
    ]
    volumes = [
        podspec.tmp_volume(),
        {"name": "keys", "secret": {"secretName": names.data_api_keys(c), "defaultMode": 0o440}},
    ] + [
        {
            "name": f"db-{i}",
            "secret": {
                "secretName": name,
                "defaultMode": 0o440,
                "optional": True,
                "items": [{"key": k, "path": k} for k in DATABASE_KEYS],
            },
        }
        for i, name in enumerate(allowed)
    ]
    tls_env = []
    https = c.spec.tls.enabled
    if https:  # served with the cluster's certificate, which names this Service too
        mounts.append({"name": "tls", "mountPath": contract.PATH_TLS_DIR, "readOnly": True})
        volumes.append({"name": "tls", "secret": {"secretName": names.tls_secret(c), "defaultMode": 0o440}})
        tls_env.append(podspec.env(EnvDataApi.TLS_DIR, contract.PATH_TLS_DIR))
    if c.spec.tls.enabled and not c.spec.tls.secret_name:  # the operator's CA is published: verify by it
        mounts.append({"name": "cluster-ca", "mountPath": contract.PATH_CLUSTER_CA_DIR, "readOnly": True})
        volumes.append({"name": "cluster-ca", "configMap": {"name": names.ca_config_map(c)}})
        tls_env.append(
            podspec.env(EnvDataApi.DATABASE_CA_FILE, f"{contract.PATH_CLUSTER_CA_DIR}/{contract.TLS_CA}")
        )
    container = {
        "name": "data-api",
        "image": podspec.image(c, settings),
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["quorumdb-data-api"],
        "env": [
            podspec.env(contract.Env.CLUSTER_NAME, c.metadata.name),
            podspec.env(EnvDataApi.DATABASE_HOST, names.writer_service(c)),
            podspec.env(EnvDataApi.TRANSACTION_IDLE_SECONDS, str(c.spec.data_api.transaction_idle_seconds)),
            *tls_env,
        ],
        "ports": [{"name": port_name(c), "containerPort": contract.DATA_API_PORT}],
        "readinessProbe": podspec.http_probe("/healthz", port_name(c), period=2, failures=2, https=https),
        "livenessProbe": podspec.http_probe("/healthz", port_name(c), period=10, failures=3, https=https),
        "volumeMounts": mounts,
        "resources": RESOURCES,
        "securityContext": podspec.container_security(),
    }
    name = names.data_api(c)
    return podspec.stateless_deployment(c, settings, name, COMPONENT_DATA_API, container, volumes)


def service(c: AuroraCluster) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.metadata(c, names.data_api(c), COMPONENT_DATA_API),
        "spec": {
            "type": "ClusterIP",
            "selector": meta.selector(c, COMPONENT_DATA_API),
            "ports": [{"name": port_name(c), "port": contract.DATA_API_PORT, "targetPort": port_name(c)}],
        },
    }


def port_name(c: AuroraCluster) -> str:
    return "https" if c.spec.tls.enabled else "http"


def url(c: AuroraCluster) -> str:
    """Where callers reach it: over HTTPS whenever the cluster serves TLS (verified with the published CA)."""
    return f"{port_name(c)}://{names.data_api(c)}.{c.metadata.namespace}.svc:{contract.DATA_API_PORT}"
