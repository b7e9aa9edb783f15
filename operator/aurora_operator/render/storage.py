"""The storage tier: one StatefulSet per zone, two storage nodes each, plus their headless Service.

Why three StatefulSets instead of one: a StatefulSet has one pod template, so one node affinity. Pinning each
set to a zone value is what guarantees exactly two of the six quorum members per zone, which is the property
the 4-of-6 write / 3-of-6 read quorum needs to survive the loss of a zone (AZ+1). Each pod gets its own
PVC via ``volumeClaimTemplates``; ``podManagementPolicy: Parallel`` starts both at once; ``OnDelete``
leaves restart order to the operator.
"""

from __future__ import annotations

from aurora_api import contract
from aurora_api.contract import COMPONENT_STORAGE, EnvStorage, SecretsLayout, StoragePaths
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..settings import Settings
from . import accounts, meta, names, podspec, revision
from .meta import Manifest

PER_ZONE = contract.STORAGE_NODES // contract.ZONES
ZONE_INDEX_LABEL = "quorumdb.io/zone-index"
RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}}


def headless_service(c: AuroraCluster) -> Manifest:
    """Stable DNS names ``<pod>.<name>-storage`` for the six nodes, published before they are ready."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.metadata(c, names.storage_headless(c), COMPONENT_STORAGE),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": meta.selector(c, COMPONENT_STORAGE),
            "ports": [{"name": "http", "port": contract.STORAGE_HTTP_PORT, "targetPort": "http"}],
        },
    }


def stateful_set(c: AuroraCluster, settings: Settings, zone_index: int) -> Manifest:
    """The two storage nodes of zone ``spec.storage.zones.values[zone_index]``."""
    zone = c.spec.storage.zones.values[zone_index]
    extra = {ZONE_INDEX_LABEL: str(zone_index)}
    select = meta.selector(c, COMPONENT_STORAGE, **extra)
    reclaim = c.spec.storage.reclaim_policy
    tls = c.spec.tls.enabled
    container = {
        "name": "storage",
        "image": podspec.image(c, settings),
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["quorumdb-storage-node"],
        "env": [*podspec.common_env(c, settings), podspec.env(EnvStorage.ZONE, zone), *writer_env(c)],
        "ports": [{"name": "http", "containerPort": contract.STORAGE_HTTP_PORT}],
        "readinessProbe": podspec.http_probe(StoragePaths.READINESS, "http", period=2, failures=3, https=tls),
        "livenessProbe": podspec.http_probe(StoragePaths.LIVENESS, "http", period=10, failures=6, https=tls),
        "volumeMounts": [*podspec.mounts(), podspec.TMP_MOUNT],
        "resources": RESOURCES,
        "securityContext": podspec.container_security(),
    }
    volumes = [
        podspec.secrets_volume(c, (SecretsLayout.REPLICATION,)),
        podspec.podinfo_volume(),
        podspec.tmp_volume(),
    ]
    secrets = podspec.s3_secrets_volume(c)
    if secrets is not None:
        volumes.append(secrets)
        container["volumeMounts"] = [*container["volumeMounts"], podspec.S3_SECRETS_MOUNT]
    ca = podspec.s3_ca_volume(c)
    if ca is not None:
        volumes.append(ca)
        container["volumeMounts"] = [*container["volumeMounts"], podspec.S3_CA_MOUNT]
    if tls:
        volumes += [writer_ca_volume(c), podspec.control_tls_volume(c)]
        container["volumeMounts"] = [*container["volumeMounts"], podspec.TLS_MOUNT, podspec.CONTROL_TLS_MOUNT]
    claim_spec: Manifest = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": c.spec.storage.volume_size}},
    }
    if c.spec.storage.storage_class_name:
        claim_spec["storageClassName"] = c.spec.storage.storage_class_name
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta.metadata(c, names.storage_set(c, zone_index), COMPONENT_STORAGE, **extra),
        "spec": {
            "serviceName": names.storage_headless(c),
            "replicas": PER_ZONE,
            "ordinals": {"start": zone_index * PER_ZONE},
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": reclaim, "whenScaled": "Retain"},
            "selector": {"matchLabels": select},
            "template": {
                "metadata": {
                    "labels": meta.labels(c, COMPONENT_STORAGE, **extra), **podspec.control_scheme(c)
                },
                "spec": {
                    "serviceAccountName": names.service_account(c),
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": podspec.pod_security(settings),
                    "affinity": {
                        "nodeAffinity": podspec.zone_affinity(c, [zone]),
                        "podAntiAffinity": podspec.spread_by_host(select),
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
            "volumeClaimTemplates": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data", "labels": meta.selector(c, COMPONENT_STORAGE)},
                    "spec": claim_spec,
                }
            ],
        },
    }


def writer_env(c: AuroraCluster) -> list[Manifest]:
    """How a storage node reaches the writer before the writer has told it (``PUT StoragePaths.TERM``).

    The default conninfo names the cluster endpoint and the replication account; the password comes from the
    mounted replication Secret through a libpq password file the node writes (``install_passfile``), so no
    conninfo and no environment ever carries it. With TLS, the file of the CA the writer's certificate must
    chain to (``writer_ca_volume``).
    """
    user = accounts.USERNAMES[SecretsLayout.REPLICATION]
    conninfo = f"host={names.writer_service(c)}.{c.metadata.namespace}.svc port={contract.POSTGRES_PORT} "
    conninfo += f"user={user} dbname=postgres"
    found = [podspec.env(EnvStorage.WRITER_CONNINFO, conninfo)]
    if c.spec.tls.enabled:
        found.append(podspec.env(EnvStorage.WRITER_CA_FILE, f"{contract.PATH_TLS_DIR}/{contract.TLS_CA}"))
    return found


def writer_ca_volume(c: AuroraCluster) -> Manifest:
    """Only the CA of the cluster's TLS Secret (never its key): what the writer's certificate must chain to.

    Optional, as a user's Secret may carry no ``ca.crt``: the node then only requires encryption
    (``aurora_storage.node.config.verify_writer``)."""
    item = {"key": contract.TLS_CA, "path": contract.TLS_CA}
    secret = {"secretName": names.tls_secret(c), "items": [item], "optional": True, "defaultMode": 0o444}
    return {"name": "tls", "secret": secret}


def all_sets(c: AuroraCluster, settings: Settings) -> list[Manifest]:
    return [revision.stamp(stateful_set(c, settings, z)) for z in range(contract.ZONES)]
