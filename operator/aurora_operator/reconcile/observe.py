"""Read the world once for one cluster: owned objects, pods, relevant Secrets, node zones.

Why a handful of label-selected lists instead of watches: a reconcile every few seconds on a few clusters is
cheap, and a fresh list can never be stale the way a cache can. Swap for kopf indexes if clusters get many.
"""

from __future__ import annotations

import asyncio

from aurora_api import contract
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..kube import Kube
from ..render import names
from . import checks
from .observed import Manifest, Observed

RENDERED_KINDS = (
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "StatefulSet"),
    ("policy/v1", "PodDisruptionBudget"),
)


async def observe(kube: Kube, c: AuroraCluster) -> Observed:
    ns = c.metadata.namespace
    selector = {contract.LABEL_CLUSTER: c.metadata.name}
    secret_names = [names.secret(c, a) for a in names.ACCOUNTS] + checks.referenced_secrets(c)
    lists = await asyncio.gather(*(kube.list_objects(v, k, ns, selector) for v, k in RENDERED_KINDS))
    pods = await kube.list_objects("v1", "Pod", ns, selector)
    secrets = await asyncio.gather(*(kube.get("v1", "Secret", ns, name) for name in secret_names))
    nodes = await kube.list_nodes()
    objects = {(obj["kind"], obj["metadata"]["name"]): obj for (_, kind), found in zip(RENDERED_KINDS, lists,
               strict=True) for obj in ({**o, "kind": kind} for o in found)}  # fmt: skip
    return Observed(
        objects=objects,
        pods=tuple(pods),
        secrets=frozenset(name for name, obj in zip(secret_names, secrets, strict=True) if obj is not None),
        node_zones=node_zones(nodes, c.spec.storage.zones.topology_key),
    )


def node_zones(nodes: list[Manifest], key: str) -> dict[str, str]:
    """Schedulable nodes that carry the zone label, with its value."""
    found = {}
    for node in nodes:
        zone = node["metadata"].get("labels", {}).get(key)
        if zone is not None and not node.get("spec", {}).get("unschedulable"):
            found[node["metadata"]["name"]] = zone
    return found
