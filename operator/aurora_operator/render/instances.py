"""Compute instances: one single-replica StatefulSet per instance (writer or reader).

Why one StatefulSet per instance (as Crunchy PGO does) rather than one with N replicas: scaling readers down
must remove readers, never the writer, and after a failover the writer can be any ordinal; a single set can
only drop its highest ordinals. One set per instance also gives each instance its own promotion tier and a
stable name, and ``OnDelete`` leaves the restart order (readers first, writer last) to the operator.
"""

from __future__ import annotations

from aurora_api import capacity, contract
from aurora_api.contract import COMPONENT_INSTANCE, EnvInstance, InstancePaths, SecretsLayout
from aurora_api.v1alpha1.cluster import AuroraCluster, InstancesSpec

from ..settings import Settings
from . import config, meta, names, podspec, revision
from .meta import Manifest

DEFAULT_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}}
ALL_ACCOUNTS = (SecretsLayout.SUPERUSER, SecretsLayout.REPLICATION, SecretsLayout.APP)


def resources(spec: InstancesSpec) -> Manifest:
    """Provisioned resources as given; serverless: a pod starts at minCapacity (``capacity.resources``) and
    the autoscaler resizes it in place from there."""
    if spec.resources is not None:
        return spec.resources.model_dump(exclude_defaults=True)
    if spec.serverless is not None:
        return capacity.resources(max(spec.serverless.min_capacity, capacity.SMALLEST))
    return DEFAULT_RESOURCES


RESIZE_POLICY = [
    {"resourceName": "cpu", "restartPolicy": "NotRequired"},
    {"resourceName": "memory", "restartPolicy": "NotRequired"},
]
"""In-place resizes never restart the container (PostgreSQL keeps running, connections stay)."""


def headless_service(c: AuroraCluster) -> Manifest:
    """Pod DNS for instances (``<instance>-0.<name>-instances``), the StatefulSets' governing Service."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.metadata(c, f"{c.metadata.name}-instances", COMPONENT_INSTANCE),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": meta.selector(c, COMPONENT_INSTANCE),
            "ports": [{"name": "postgres", "port": contract.POSTGRES_PORT, "targetPort": "postgres"}],
        },
    }


def stateful_set(c: AuroraCluster, settings: Settings, ordinal: int, role: str, term: int) -> Manifest:
    """Instance ``ordinal``; ``role`` and writer ``term`` are what a pod from this template starts with."""
    name = names.instance(c, ordinal)
    ident = {contract.LABEL_INSTANCE: name}
    zones = c.spec.storage.zones
    tls = c.spec.tls.enabled
    container = {
        "name": "postgres",
        "image": podspec.image(c, settings),
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["quorumdb-instance"],
        "env": [
            *podspec.common_env(c, settings),
            podspec.env(EnvInstance.ROLE, role),
            podspec.env(EnvInstance.TERM, str(term)),
            podspec.env(EnvInstance.INSTANCE_NAME, name),
            podspec.env(EnvInstance.CONFIG_DIR, contract.PATH_CONFIG_DIR),
            *config.static_env(c),
            *([podspec.env(EnvInstance.SERVERLESS, "true")] if c.spec.instances.serverless else []),
            podspec.env(EnvInstance.PROMOTION_TIER, str(c.spec.instances.tier(ordinal))),
            *([podspec.env(EnvInstance.TLS_DIR, contract.PATH_TLS_DIR)] if c.spec.tls.enabled else []),
            *podspec.restore_env(c),
        ],
        "ports": [
            {"name": "postgres", "containerPort": contract.POSTGRES_PORT},
            {"name": "http", "containerPort": contract.INSTANCE_HTTP_PORT},
        ],
        "startupProbe": podspec.http_probe(InstancePaths.LIVENESS, "http", period=2, failures=150, https=tls),
        # Every second: after a promotion the writer Service gains its endpoint at the first success.
        "readinessProbe": podspec.http_probe(
            InstancePaths.READINESS, "http", period=1, failures=2, https=tls
        ),
        "livenessProbe": podspec.http_probe(InstancePaths.LIVENESS, "http", period=10, failures=3, https=tls),
        "volumeMounts": [
            *podspec.mounts(config=True, tls=c.spec.tls.enabled),
            {"name": "shm", "mountPath": "/dev/shm"},
            podspec.TMP_MOUNT,
        ],
        "resources": resources(c.spec.instances),
        **({"resizePolicy": RESIZE_POLICY} if c.spec.instances.serverless else {}),
        "securityContext": podspec.container_security(),
    }
    volumes: list[Manifest] = [
        podspec.secrets_volume(c, ALL_ACCOUNTS),
        podspec.podinfo_volume(),
        {"name": "config", "configMap": {"name": names.config(c)}},
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}},
        podspec.tmp_volume(),
    ]
    secrets = podspec.s3_secrets_volume(c, restore=True)
    if secrets is not None:
        volumes.append(secrets)
        container["volumeMounts"] = [*container["volumeMounts"], podspec.S3_SECRETS_MOUNT]
    ca = podspec.s3_ca_volume(c, restore=True)
    if ca is not None:
        volumes.append(ca)
        container["volumeMounts"] = [*container["volumeMounts"], podspec.S3_CA_MOUNT]
    if tls:
        server = {"name": "tls", "secret": {"secretName": names.tls_secret(c), "defaultMode": 0o440}}
        volumes += [server, podspec.control_tls_volume(c)]
        container["volumeMounts"] = [*container["volumeMounts"], podspec.CONTROL_TLS_MOUNT]
    claims: list[Manifest] = []
    if c.spec.instances.data_volume == "EmptyDir":
        volumes.append({"name": "data", "emptyDir": {"sizeLimit": c.spec.instances.volume_size}})
    else:
        claim = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": c.spec.instances.volume_size}},
        }
        labels = meta.selector(c, COMPONENT_INSTANCE)
        claims.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "labels": labels},
            }
            | {"spec": claim}
        )
    spread = {
        "maxSkew": 1,
        "topologyKey": zones.topology_key,
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": meta.selector(c, COMPONENT_INSTANCE)},
    }
    spec: Manifest = {
        "serviceName": f"{c.metadata.name}-instances",
        "replicas": 1,
        "podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "OnDelete"},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"},
        "selector": {"matchLabels": meta.selector(c, COMPONENT_INSTANCE, **ident)},
        # No role label in the template: the operator labels running pods from its current decision, so a
        # pod the StatefulSet re-creates from a template written before a failover is never selected by the
        # cluster endpoint as a second writer.
        "template": {
            "metadata": {
                "labels": meta.labels(c, COMPONENT_INSTANCE, **ident), **podspec.control_scheme(c)
            },
            "spec": {
                "serviceAccountName": names.service_account(c),
                "automountServiceAccountToken": True,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": 30,
                "securityContext": podspec.pod_security(settings),
                "affinity": {"nodeAffinity": podspec.zone_affinity(c, list(zones.values))},
                "topologySpreadConstraints": [spread],
                "containers": [container],
                "volumes": volumes,
            },
        },
    }
    if claims:
        spec["volumeClaimTemplates"] = claims
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta.metadata(c, name, COMPONENT_INSTANCE, **ident),
        "spec": spec,
    }
    return revision.stamp(manifest)
