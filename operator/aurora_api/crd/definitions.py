"""The CustomResourceDefinitions of the ``quorumdb.io`` group, assembled from the models.

Why: the CRD is more than a schema (printer columns, subresources, short names, root-level CEL rules that
need ``metadata.name``). Those are stated here, next to each other, so ``kubectl get aurora`` output and
``kubectl scale`` support are reviewed in one place.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .. import contract
from ..v1alpha1 import cluster, snapshot
from . import schema

Manifest = dict[str, Any]

MAX_CLUSTER_NAME = 40
"""Longest AuroraCluster name: pod names are ``<name>-instance-15-0`` and must stay DNS labels (<=63)."""


def _root(spec: type[BaseModel], status: type[BaseModel], description: str) -> Manifest:
    return {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": schema.structural(spec),
            "status": schema.structural(status),
        },
    }


def _crd(
    *, kind: str, plural: str, singular: str, short_names: tuple[str, ...], root: Manifest, version: Manifest
) -> Manifest:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{contract.API_GROUP}",
            "labels": {"app.kubernetes.io/part-of": "quorumdb"},
        },
        "spec": {
            "group": contract.API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": list(short_names),
                "categories": ["quorumdb"],
            },
            "versions": [
                {
                    "name": contract.API_VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                }
                | version
            ],
        },
    }


def cluster_crd() -> Manifest:
    """The AuroraCluster CRD."""
    root = _root(
        cluster.AuroraClusterSpec,
        cluster.AuroraClusterStatus,
        "Aurora-style PostgreSQL: one writer, 0-15 readers, six quorum storage nodes in three zones.",
    )
    root["x-kubernetes-validations"] = [
        {
            "rule": f"size(self.metadata.name) <= {MAX_CLUSTER_NAME}",
            "message": f"metadata.name must be at most {MAX_CLUSTER_NAME} characters (it prefixes pod names)",
        }
    ]
    columns = [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Writer", "type": "string", "jsonPath": ".status.writer"},
        {"name": "Readers", "type": "integer", "jsonPath": ".status.readersReady", "description": "ready"},
        {"name": "ACU", "type": "number", "jsonPath": ".status.acu"},
        {"name": "Storage", "type": "string", "jsonPath": ".status.storage.summary", "priority": 1},
        {"name": "Term", "type": "integer", "jsonPath": ".status.term", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    subresources = {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.instances.readers",
            "statusReplicasPath": ".status.readersReady",
        },
    }
    return _crd(
        kind=cluster.KIND,
        plural=cluster.PLURAL,
        singular=cluster.SINGULAR,
        short_names=cluster.SHORT_NAMES,
        root=root,
        version={"subresources": subresources, "additionalPrinterColumns": columns},
    )


def snapshot_crd() -> Manifest:
    """The AuroraSnapshot CRD."""
    root = _root(
        snapshot.AuroraSnapshotSpec, snapshot.AuroraSnapshotStatus, "A point-in-time copy of a cluster."
    )
    columns = [
        {"name": "Cluster", "type": "string", "jsonPath": ".spec.clusterName"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "LSN", "type": "string", "jsonPath": ".status.lsn", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd(
        kind=snapshot.KIND,
        plural=snapshot.PLURAL,
        singular=snapshot.SINGULAR,
        short_names=snapshot.SHORT_NAMES,
        root=root,
        version={"subresources": {"status": {}}, "additionalPrinterColumns": columns},
    )


def peering_crd(*, clusterwide: bool) -> Manifest:
    """kopf's (Cluster)KopfPeering, through which operator replicas agree that only one is active."""
    kind = "ClusterKopfPeering" if clusterwide else "KopfPeering"
    plural = kind.lower() + "s"
    open_object = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev", "labels": {"app.kubernetes.io/part-of": "quorumdb"}},
        "spec": {
            "group": "kopf.dev",
            "scope": "Cluster" if clusterwide else "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": open_object, "status": open_object},
                        }
                    },
                }
            ],
        },
    }


def all_crds() -> dict[str, Manifest]:
    """File name -> CRD, for everything ``crds/`` holds."""
    return {
        f"{contract.API_GROUP}_{cluster.PLURAL}.yaml": cluster_crd(),
        f"{contract.API_GROUP}_{snapshot.PLURAL}.yaml": snapshot_crd(),
        "kopf.dev_clusterkopfpeerings.yaml": peering_crd(clusterwide=True),
        "kopf.dev_kopfpeerings.yaml": peering_crd(clusterwide=False),
    }
