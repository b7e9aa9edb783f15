"""NetworkPolicies of a cluster: who may reach PostgreSQL, the storage nodes and the control endpoints.

Why these rules: PostgreSQL (instances, and the resume proxy that stands in for them while paused) and the
Data API serve the clients the spec allows (``spec.network.allowedClients``; by default the pods of the
cluster's namespace); storage nodes and the HTTP control endpoints (instance managers, storage nodes, the
proxy's own) serve only the cluster's own pods and the operator. The control token still guards every
state-changing request: the policy narrows who can even try. Ingress only: the cluster's pods call object
storage and the API server, whose addresses a policy could not name portably.
"""

from __future__ import annotations

from typing import Any

from aurora_api import contract
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..settings import Settings
from . import meta, names
from .meta import Manifest

OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "quorumdb-operator"}


def own_pods(c: AuroraCluster) -> Manifest:
    """Every pod of this cluster (storage, instances, proxy, Data API), in its namespace."""
    return {"podSelector": {"matchLabels": meta.selector(c)}}


def operator_pods(settings: Settings) -> Manifest:
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": settings.operator_namespace}},
        "podSelector": {"matchLabels": OPERATOR_POD_LABELS},
    }


def clients(c: AuroraCluster) -> list[Manifest]:
    """The allowed clients as NetworkPolicy peers (the cluster's namespace when none are listed)."""
    allowed = c.spec.network.allowed_clients
    if not allowed:
        return [{"podSelector": {}}]
    peers = []
    for a in allowed:
        peer: Manifest = {"podSelector": {"matchLabels": a.pod_labels} if a.pod_labels else {}}
        if a.namespace_labels is not None:
            peer["namespaceSelector"] = {"matchLabels": a.namespace_labels} if a.namespace_labels else {}
        peers.append(peer)
    return peers


def _rule(ports: list[int], peers: list[Manifest]) -> Manifest:
    return {"ports": [{"protocol": "TCP", "port": p} for p in ports], "from": peers}


def _policy(c: AuroraCluster, name: str, component: str, rules: list[Manifest]) -> Manifest:
    spec: dict[str, Any] = {
        "podSelector": {"matchLabels": meta.selector(c, component)},
        "policyTypes": ["Ingress"],
        "ingress": rules,
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta.metadata(c, name, component),
        "spec": spec,
    }


def policies(c: AuroraCluster, settings: Settings) -> list[Manifest]:
    """One policy per component (none with ``spec.network.policies: false``)."""
    if not c.spec.network.policies:
        return []
    inside, operator, outside = own_pods(c), operator_pods(settings), clients(c)
    return [
        _policy(c, names.network_policy(c, contract.COMPONENT_INSTANCE), contract.COMPONENT_INSTANCE, [
            _rule([contract.POSTGRES_PORT], [inside, *outside]),
            _rule([contract.INSTANCE_HTTP_PORT], [inside, operator]),
        ]),
        _policy(c, names.network_policy(c, contract.COMPONENT_STORAGE), contract.COMPONENT_STORAGE, [
            _rule([contract.STORAGE_HTTP_PORT], [inside, operator]),
        ]),
        _policy(c, names.network_policy(c, contract.COMPONENT_PROXY), contract.COMPONENT_PROXY, [
            _rule([contract.PROXY_WRITER_PORT, contract.PROXY_READER_PORT], [inside, *outside]),
            _rule([contract.PROXY_HTTP_PORT], [inside, operator]),
        ]),
        _policy(c, names.network_policy(c, contract.COMPONENT_DATA_API), contract.COMPONENT_DATA_API, [
            _rule([contract.DATA_API_PORT], [inside, *outside]),
        ]),
    ]  # fmt: skip
