"""Read the world once for one cluster: owned objects, pods, claims, relevant Secrets, nodes and zones.

Why a handful of label-selected lists instead of watches: a reconcile every few seconds on a few clusters is
cheap, and a fresh list can never be stale the way a cache can. Swap for kopf indexes if clusters get many.
"""

from __future__ import annotations

import asyncio
import base64
import time

from aurora_api import contract
from aurora_api.reports import InstanceReport, StorageReport
from aurora_api.v1alpha1.cluster import AuroraCluster
from lightkube.utils.quantity import parse_quantity

from ..instances import Instances
from ..kube import Kube
from ..render import names
from ..storage_nodes import StorageNodes
from . import checks, stranded
from .observed import Manifest, Observed

RENDERED_KINDS = (
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
)

TOKEN_REVIEW_BINDING = ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding")


class Silence:
    """When each instance's status endpoint last answered (monotonic clock), kept across reconciles.

    Why outside ``Observed``: "unreachable for 2 s" needs memory of earlier passes; the pure planner gets the
    derived seconds. Lost on an operator restart, which only delays a detection by the grace period.
    """

    def __init__(self) -> None:
        self._last_answer: dict[str, float] = {}

    def update(self, reports: dict[str, InstanceReport | None], now: float | None = None) -> dict[str, float]:
        now = time.monotonic() if now is None else now
        silent = {}
        for name, report in reports.items():
            if report is not None:
                self._last_answer[name] = now
            silent[name] = now - self._last_answer.setdefault(name, now)
        return silent


def _decoded(secret: Manifest) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


def pod_url(pod: Manifest, port: int) -> str | None:
    """The pod's control endpoint, in the scheme its template says it serves."""
    ip = pod.get("status", {}).get("podIP")
    annotations = pod.get("metadata", {}).get("annotations") or {}
    scheme = annotations.get(contract.ANNOTATION_CONTROL_SCHEME, "http")
    return f"{scheme}://{ip}:{port}" if ip else None


async def observe(
    kube: Kube,
    c: AuroraCluster,
    instances: Instances | None = None,
    storage: StorageNodes | None = None,
    silence: Silence | None = None,
) -> Observed:
    """Everything one pass decides on. Without ``instances``/``storage`` clients, no HTTP is done (and the
    reports are empty: nothing is known about the processes, so nothing is failed over)."""
    ns = c.metadata.namespace
    selector = {contract.LABEL_CLUSTER: c.metadata.name}
    account_names = [names.secret(c, a) for a in names.ACCOUNTS]
    secret_names = account_names + checks.referenced_secrets(c)
    secret_names += [names.data_api_keys(c), names.control_secret(c)]
    # The certificates to renew (the operator's) or to check (the user's ``tls.secretName``).
    tls = c.spec.tls.enabled
    issued = [names.ca_secret(c), names.control_tls_secret(c), names.tls_secret(c)] if tls else []
    secret_names += [n for n in issued if n not in secret_names]
    # One round of concurrent API reads: a failover's decision waits for this pass, so no sequential calls.
    lists_f = asyncio.gather(*(kube.list_objects(v, k, ns, selector) for v, k in RENDERED_KINDS))
    secrets_f = asyncio.gather(*(kube.get("v1", "Secret", ns, name) for name in secret_names))
    lists, pods, secrets, nodes, claims, binding = await asyncio.gather(
        lists_f, kube.list_objects("v1", "Pod", ns, selector), secrets_f, kube.list_nodes(),
        kube.list_objects("v1", "PersistentVolumeClaim", ns, selector),
        kube.get(*TOKEN_REVIEW_BINDING, "", names.token_review_binding(c)),
    )  # fmt: skip
    control_secret = dict(zip(secret_names, secrets, strict=True)).get(names.control_secret(c))
    objects = {(obj["kind"], obj["metadata"]["name"]): obj for (_, kind), found in zip(RENDERED_KINDS, lists,
               strict=True) for obj in ({**o, "kind": kind} for o in found)}  # fmt: skip
    if binding is not None:  # cluster-scoped: read by name, not listed in the namespace
        objects[TOKEN_REVIEW_BINDING[1], names.token_review_binding(c)] = binding
    urls: dict[str, str] = {}
    unreachable: list[str] = []  # instance pods without an IP yet (pending, or re-created)
    storage_urls: dict[str, str | None] = dict.fromkeys(names.storage_pods(c))
    for pod in pods:
        meta = pod["metadata"]
        component = meta.get("labels", {}).get(contract.LABEL_COMPONENT)
        if component == contract.COMPONENT_INSTANCE and not meta.get("deletionTimestamp"):
            ordinal = names.instance_ordinal(c, meta["name"])
            url = pod_url(pod, contract.INSTANCE_HTTP_PORT)
            if ordinal is not None and url:
                urls[names.instance(c, ordinal)] = url
            elif ordinal is not None:
                unreachable.append(names.instance(c, ordinal))
        elif component == contract.COMPONENT_STORAGE and meta["name"] in storage_urls:
            storage_urls[meta["name"]] = pod_url(pod, contract.STORAGE_HTTP_PORT)
    by_name = {claim["metadata"]["name"]: claim for claim in claims}
    reports, found_storage, volumes = await asyncio.gather(
        _instance_reports(instances, urls, unreachable),
        _storage_reports(storage, storage_urls),
        _volumes_of_unscheduled(kube, pods, by_name),
    )
    return Observed(
        objects=objects,
        pods=tuple(pods),
        secrets=frozenset(name for name, obj in zip(secret_names, secrets, strict=True) if obj is not None),
        accounts={
            name: {k: v.decode(errors="replace") for k, v in _decoded(obj).items()}
            for name, obj in zip(secret_names, secrets, strict=True)
            if obj is not None and name in account_names
        },
        control={k: v.decode(errors="replace") for k, v in _decoded(control_secret or {}).items()},
        control_annotations=((control_secret or {}).get("metadata") or {}).get("annotations") or {},
        certificates={
            name: _decoded(obj)
            for name, obj in zip(secret_names, secrets, strict=True)
            if name in issued and obj is not None
        },
        node_zones=node_zones(nodes, c.spec.storage.zones.topology_key),
        node_allocatable=node_allocatable(nodes, c.spec.storage.zones.topology_key),
        instances=reports,
        instance_urls=urls,
        silent_seconds=(silence or Silence()).update(reports),
        storage=found_storage,
        node_names=frozenset(node["metadata"]["name"] for node in nodes),
        claims=by_name,
        volumes=volumes,
    )


async def _volumes_of_unscheduled(
    kube: Kube, pods: list[Manifest], claims: dict[str, Manifest]
) -> dict[str, Manifest]:
    """The PersistentVolumes behind the claims of pods no node was assigned to (``stranded`` reads their
    node affinity); no API call while every pod is scheduled."""
    unscheduled = [pod for pod in pods if not pod.get("spec", {}).get("nodeName")]
    wanted = sorted({bound for pod in unscheduled for _, bound in stranded.bound_volumes(pod, claims)})
    found = await asyncio.gather(*(kube.get_volume(name) for name in wanted))
    return {name: volume for name, volume in zip(wanted, found, strict=True) if volume is not None}


async def _instance_reports(
    instances: Instances | None, urls: dict[str, str], unreachable: list[str]
) -> dict[str, InstanceReport | None]:
    if instances is None:
        return {}
    answers = await asyncio.gather(*(instances.status(url) for url in urls.values()))
    return dict(zip(urls, answers, strict=True)) | dict.fromkeys(unreachable)


async def _storage_reports(
    storage: StorageNodes | None, urls: dict[str, str | None]
) -> dict[str, StorageReport | None]:
    if storage is None:
        return {}
    client = storage

    async def one(url: str | None) -> StorageReport | None:
        return None if url is None else await client.status(url)

    answered = await asyncio.gather(*(one(url) for url in urls.values()))
    return dict(zip(urls, answered, strict=True))


def node_allocatable(nodes: list[Manifest], key: str) -> dict[str, tuple[float, int]]:
    """(cores, memory bytes) each zoned, schedulable node offers to pods."""
    zoned = node_zones(nodes, key)
    found = {}
    for node in nodes:
        name = node["metadata"]["name"]
        offer = node.get("status", {}).get("allocatable", {})
        if name in zoned and "cpu" in offer and "memory" in offer:
            found[name] = (
                float(parse_quantity(offer["cpu"]) or 0),
                int(parse_quantity(offer["memory"]) or 0),
            )
    return found


def node_zones(nodes: list[Manifest], key: str) -> dict[str, str]:
    """Schedulable nodes that carry the zone label, with its value."""
    found = {}
    for node in nodes:
        zone = node["metadata"].get("labels", {}).get(key)
        if zone is not None and not node.get("spec", {}).get("unschedulable"):
            found[node["metadata"]["name"]] = zone
    return found
