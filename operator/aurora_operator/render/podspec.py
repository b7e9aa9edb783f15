"""Pieces shared by storage and instance pod templates: env, volumes, security, probes.

Why: both pod kinds must spell the contract (``aurora_api.contract``) identically; building env and mounts in
one place is what keeps a storage node and an instance from disagreeing on where secrets live.
"""

from __future__ import annotations

from typing import Any

from aurora_api import contract, secretfiles
from aurora_api.contract import Env, EnvInstance, SecretsLayout
from aurora_api.v1alpha1.cluster import AuroraCluster, ObjectStoreSpec, SecretKeyRef

from ..settings import Settings
from . import meta, names
from .meta import Manifest


def image(c: AuroraCluster, settings: Settings) -> str:
    return c.spec.engine.image or settings.image


def env(name: str, value: str) -> Manifest:
    return {"name": name, "value": value}


def field_env(name: str, path: str) -> Manifest:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def common_env(c: AuroraCluster, settings: Settings) -> list[Manifest]:
    """Variables every QuorumDB pod gets."""
    return [
        env(Env.CLUSTER_NAME, c.metadata.name),
        field_env(Env.NAMESPACE, "metadata.namespace"),
        field_env(Env.POD_NAME, "metadata.name"),
        env(Env.DATA_DIR, contract.PATH_DATA_DIR),
        env(Env.SECRETS_DIR, contract.PATH_SECRETS_DIR),
        env(Env.PODINFO_DIR, contract.PATH_PODINFO_DIR),
        env(Env.STORAGE_NODES, ",".join(names.storage_nodes(c, settings.cluster_domain))),
        env(Env.WRITER_ENDPOINT, names.endpoint(c, names.writer_service(c))),
        *control_tls_env(c),
        *s3_env(c),
    ]


TLS_MOUNT: Manifest = {"name": "tls", "mountPath": contract.PATH_TLS_DIR, "readOnly": True}
CONTROL_TLS_MOUNT: Manifest = {
    "name": "control-tls", "mountPath": contract.PATH_CONTROL_TLS_DIR, "readOnly": True
}


def control_tls_env(c: AuroraCluster) -> list[Manifest]:
    """With TLS on, the control endpoints speak HTTPS and verify each other by the cluster's CA
    (``aurora_api.https``)."""
    return [env(Env.CONTROL_TLS_DIR, contract.PATH_CONTROL_TLS_DIR)] if c.spec.tls.enabled else []


def control_scheme(c: AuroraCluster) -> Manifest:
    """Template metadata saying how this pod's control endpoint is reached: the operator reads it from each
    pod (``observe.pod_url``), so a pod from a template rendered before the control endpoints had TLS (an
    operator upgrade, until the pod rolls) is still called over plain HTTP."""
    return {"annotations": {contract.ANNOTATION_CONTROL_SCHEME: "https"}} if c.spec.tls.enabled else {}


def control_tls_volume(c: AuroraCluster) -> Manifest:
    """The control certificate's Secret (with TLS on): the pod's control endpoint serves it; its CA checks
    the others."""
    secret = {"secretName": names.control_tls_secret(c), "defaultMode": 0o440}
    return {"name": "control-tls", "secret": secret}


def s3_env(c: AuroraCluster) -> list[Manifest]:
    """Object-store settings. Credentials are optional refs: a missing Secret must not block pods."""
    backup = c.spec.backup
    if backup is None:
        return []
    store = backup.object_store
    encryption = [
        env(Env.BACKUP_ENCRYPTED, "1"),
        file_env(Env.BACKUP_KEY, S3_OWN_KEY),
    ] if backup.encryption is not None else []  # fmt: skip
    return [
        *encryption,
        env(Env.S3_ENDPOINT, store.endpoint),
        env(Env.S3_BUCKET, store.bucket),
        env(Env.S3_PREFIX, store.prefix or f"{c.metadata.namespace}/{c.metadata.name}"),
        env(Env.S3_REGION, store.region),
        file_env(Env.S3_ACCESS_KEY_ID, S3_OWN_ID),
        file_env(Env.S3_SECRET_ACCESS_KEY, S3_OWN_SECRET),
        *([env(Env.S3_CA_FILE, f"{contract.PATH_S3_CA_DIR}/{S3_CA_OWN}")] if store.ca_secret else []),
        *([env(Env.S3_SSE, store.server_side_encryption)] if store.server_side_encryption else []),
    ]


S3_CA_OWN = "ca.crt"
S3_CA_RESTORE = "restore/ca.crt"
RESTORE_CA_FILE = f"{contract.PATH_S3_CA_DIR}/{S3_CA_RESTORE}"


def s3_ca_volume(c: AuroraCluster, *, restore: bool = False) -> Manifest | None:
    """The object stores' private CA bundles (``objectStore.caSecret``) as files under PATH_S3_CA_DIR:
    this cluster's store's, and with ``restore`` the restore source's. None when neither has one. The
    Secrets are optional, as credentials are: a missing one fails the store's calls, which are reported."""
    sources: list[Manifest] = []
    if c.spec.backup is not None and c.spec.backup.object_store.ca_secret is not None:
        ref = c.spec.backup.object_store.ca_secret
        sources.append(_ca_source(ref.name, ref.key, S3_CA_OWN))
    decided = c.status.restore
    if restore and c.spec.restore is not None and decided is not None and decided.object_store.ca_secret:
        ref = decided.object_store.ca_secret
        sources.append(_ca_source(ref.name, ref.key, S3_CA_RESTORE))
    if not sources:
        return None
    return {"name": "s3-ca", "projected": {"sources": sources, "defaultMode": 0o444}}


def _ca_source(secret: str, key: str, path: str) -> Manifest:
    return {"secret": {"name": secret, "items": [{"key": key, "path": path}], "optional": True}}


S3_CA_MOUNT: Manifest = {"name": "s3-ca", "mountPath": contract.PATH_S3_CA_DIR, "readOnly": True}
S3_SECRETS_MOUNT: Manifest = {
    "name": "s3-secrets",
    "mountPath": contract.PATH_S3_SECRETS_DIR,
    "readOnly": True,
}
S3_OWN_ID, S3_OWN_SECRET, S3_OWN_KEY = "own/access-key-id", "own/secret-access-key", "own/key"
S3_RESTORE_ID, S3_RESTORE_SECRET, S3_RESTORE_KEY = (
    "restore/access-key-id",
    "restore/secret-access-key",
    "restore/key",
)


def file_env(name: str, path: str) -> Manifest:
    """``<name>_FILE``: the mounted Secret key that holds the value (``aurora_api.secretfiles``), so no
    secret is in the process's environment."""
    return env(name + secretfiles.FILE_SUFFIX, f"{contract.PATH_S3_SECRETS_DIR}/{path}")


def _restore_key(c: AuroraCluster) -> SecretKeyRef | None:
    if c.spec.restore is None:
        return None
    return c.spec.restore.key_secret or (
        c.spec.backup.encryption.key_secret if c.spec.backup and c.spec.backup.encryption else None
    )


def s3_secrets_volume(c: AuroraCluster, *, restore: bool = False) -> Manifest | None:
    """The object stores' credentials and encryption keys as files under PATH_S3_SECRETS_DIR (``file_env``):
    this cluster's store's, and with ``restore`` the restore source's once decided. None when there are
    none. Optional like the CA: a missing Secret fails the store's calls, which are reported."""
    sources: list[Manifest] = []

    def add(secret: str, items: list[tuple[str, str]]) -> None:
        files = [{"key": key, "path": path} for key, path in items]
        sources.append({"secret": {"name": secret, "items": files, "optional": True}})

    backup = c.spec.backup
    if backup is not None:
        creds = backup.object_store.credentials_secret
        add(creds.name, [(creds.access_key_id_key, S3_OWN_ID), (creds.secret_access_key_key, S3_OWN_SECRET)])
        if backup.encryption is not None:
            add(backup.encryption.key_secret.name, [(backup.encryption.key_secret.key, S3_OWN_KEY)])
    decided = c.status.restore
    if restore and c.spec.restore is not None and decided is not None:
        creds = decided.object_store.credentials_secret
        add(creds.name, [(creds.access_key_id_key, S3_RESTORE_ID),
                         (creds.secret_access_key_key, S3_RESTORE_SECRET)])  # fmt: skip
        key = _restore_key(c)
        if key is not None:
            add(key.name, [(key.key, S3_RESTORE_KEY)])
    if not sources:
        return None
    return {"name": "s3-secrets", "projected": {"sources": sources, "defaultMode": 0o440}}


def secret_env(name: str, secret: str, key: str) -> Manifest:
    """A variable from a Secret's key; optional, so a missing Secret never blocks a pod (the operator
    reports it in a condition instead)."""
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": True}}}


def restore_source(c: AuroraCluster) -> tuple[ObjectStoreSpec, str] | None:
    """The object store and key prefix of the cluster a new cluster is restored from (``spec.restore``)."""
    r = c.spec.restore
    if r is None:
        return None
    store = r.object_store or (c.spec.backup.object_store if c.spec.backup else None)
    if store is None:
        return None
    own_prefix = r.object_store.prefix if r.object_store is not None else ""
    prefix = own_prefix or f"{r.source_namespace or c.metadata.namespace}/{r.source_cluster}"
    return store, prefix.strip("/")


def restore_env(c: AuroraCluster) -> list[Manifest]:
    """What a restoring writer needs, once the operator decided it (``status.restore``)."""
    decided = c.status.restore
    if c.spec.restore is None or decided is None:
        return []
    store, prefix = decided.object_store, decided.prefix
    e = EnvInstance
    snapshot = c.spec.restore.snapshot is not None
    return [
        *([file_env(e.RESTORE_KEY, S3_RESTORE_KEY)] if _restore_key(c) is not None else []),
        env(e.RESTORE_S3_ENDPOINT, store.endpoint),
        env(e.RESTORE_S3_BUCKET, store.bucket),
        env(e.RESTORE_S3_PREFIX, prefix),
        env(e.RESTORE_S3_REGION, store.region),
        file_env(e.RESTORE_S3_ACCESS_KEY_ID, S3_RESTORE_ID),
        file_env(e.RESTORE_S3_SECRET_ACCESS_KEY, S3_RESTORE_SECRET),
        *([env(e.RESTORE_S3_CA_FILE, RESTORE_CA_FILE)] if store.ca_secret else []),
        env(e.RESTORE_BACKUP_ID, decided.backup_id),
        env(e.RESTORE_TARGET_TIME, "" if decided.target == "latest" or snapshot else decided.target),
        env(e.RESTORE_MIN_LSN, decided.min_lsn),
        *([env(e.RESTORE_TARGET, "immediate")] if snapshot else []),
    ]


def control_sources(c: AuroraCluster) -> list[Manifest]:
    """``control/token``, and ``control/previous`` while a rotation's grace lasts (an optional key: absent
    otherwise). The kubelet swaps a projected volume's files together, so a pod sees both or neither."""
    name, control = names.control_secret(c), SecretsLayout.CONTROL
    token, previous = SecretsLayout.TOKEN, SecretsLayout.PREVIOUS
    return [
        {"secret": {"name": name, "items": [{"key": token, "path": f"{control}/{token}"}]}},
        {"secret": {"name": name, "optional": True,
                    "items": [{"key": previous, "path": f"{control}/{previous}"}]}},
    ]  # fmt: skip


def secrets_volume(c: AuroraCluster, accounts: tuple[str, ...]) -> Manifest:
    """One projected volume: ``<account>/<key>`` files for each account's Secret, and the control tokens."""
    sources = control_sources(c)
    for account in accounts:
        keys = [SecretsLayout.USERNAME, SecretsLayout.PASSWORD]
        if account == SecretsLayout.APP:
            keys.append(SecretsLayout.DATABASE)
        items = [{"key": key, "path": f"{account}/{key}"} for key in keys]
        sources.append({"secret": {"name": names.secret(c, account), "items": items}})
    return {"name": "secrets", "projected": {"sources": sources, "defaultMode": 0o440}}


def podinfo_volume() -> Manifest:
    """Live labels and annotations (role, term) as files, refreshed by the kubelet."""
    items = [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
    ]
    return {"name": "podinfo", "downwardAPI": {"items": items}}


def mounts(*, config: bool = False, tls: bool = False) -> list[Manifest]:
    found: list[Manifest] = [
        {"name": "data", "mountPath": contract.PATH_DATA_DIR},
        {"name": "secrets", "mountPath": contract.PATH_SECRETS_DIR, "readOnly": True},
        {"name": "podinfo", "mountPath": contract.PATH_PODINFO_DIR, "readOnly": True},
    ]
    if config:
        found.append({"name": "config", "mountPath": contract.PATH_CONFIG_DIR, "readOnly": True})
    if tls:
        found.append(TLS_MOUNT)
    return found



def http_probe(path: str, port: str, *, period: int, failures: int, https: bool = False) -> Manifest:
    """The kubelet's probe (over HTTPS it checks no certificate: it asks whether the server answers)."""
    return {
        "httpGet": {"path": path, "port": port, **({"scheme": "HTTPS"} if https else {})},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": min(2, period),
    }


def pod_security(settings: Settings) -> Manifest:
    uid = settings.run_as_user
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> Manifest:
    """Every QuorumDB container: no privilege, no capability, and an image it cannot change (what it writes
    goes to its volumes, scratch files to ``TMP_MOUNT``)."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


TMP_MOUNT: Manifest = {"name": "tmp", "mountPath": "/tmp"}
"""Scratch space of a read-only container (``tempfile``, tools' temporary files)."""


def tmp_volume() -> Manifest:
    return {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}


def zone_affinity(c: AuroraCluster, values: list[str]) -> Manifest:
    """Required node affinity: only nodes whose zone label is one of ``values``."""
    term = {
        "matchExpressions": [{"key": c.spec.storage.zones.topology_key, "operator": "In", "values": values}]
    }
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}


def spread_by_host(match: dict[str, str]) -> Manifest:
    """Prefer different nodes for pods matching ``match`` (a soft rule: kind may have one node per zone)."""
    term: dict[str, Any] = {"labelSelector": {"matchLabels": match}, "topologyKey": "kubernetes.io/hostname"}
    return {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]}


def stateless_deployment(
    c: AuroraCluster,
    settings: Settings,
    name: str,
    component: str,
    container: Manifest,
    volumes: list[Manifest] | None = None,
) -> Manifest:
    """One replica of a component that holds no data (the resume proxy, the Data API): re-created anywhere,
    with no Kubernetes credentials (it talks only to the cluster's own pods)."""
    pod: Manifest = {
        "automountServiceAccountToken": False,
        "securityContext": pod_security(settings),
        "containers": [container],
    }
    if volumes:
        pod["volumes"] = volumes
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta.metadata(c, name, component),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": meta.selector(c, component)},
            "template": {"metadata": {"labels": meta.labels(c, component)}, "spec": pod},
        },
    }
