"""Labels, owner references and metadata common to every rendered object.

Why: ownership (garbage collection on delete) and selection (Services, PDBs, the operator's own lists) all
hinge on the same few labels; they are built here so no renderer invents its own.
"""

from __future__ import annotations

from typing import Any

from aurora_api import contract
from aurora_api.v1alpha1.cluster import AuroraCluster

Manifest = dict[str, Any]

MANAGED_BY = {"app.kubernetes.io/managed-by": "quorumdb-operator", "app.kubernetes.io/name": "quorumdb"}


def selector(c: AuroraCluster, component: str | None = None, **extra: str) -> dict[str, str]:
    """The minimal label set that identifies this cluster's objects (of one component)."""
    labels = {contract.LABEL_CLUSTER: c.metadata.name}
    if component is not None:
        labels[contract.LABEL_COMPONENT] = component
    return labels | extra


def labels(c: AuroraCluster, component: str | None = None, **extra: str) -> dict[str, str]:
    """Selector labels plus the recommended app.kubernetes.io ones."""
    return MANAGED_BY | {"app.kubernetes.io/instance": c.metadata.name} | selector(c, component, **extra)


def owner(c: AuroraCluster) -> Manifest:
    """Controller owner reference: the garbage collector removes the object with the cluster."""
    return {
        "apiVersion": f"{contract.API_GROUP}/{contract.API_VERSION}",
        "kind": "AuroraCluster",
        "name": c.metadata.name,
        "uid": c.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(c: AuroraCluster, name: str, component: str | None = None, **extra: str) -> Manifest:
    return {
        "name": name,
        "namespace": c.metadata.namespace,
        "labels": labels(c, component, **extra),
        "ownerReferences": [owner(c)],
    }
