"""Builders for AuroraCluster objects and cluster-side fixtures (nodes, ready pods) for operator tests."""

from __future__ import annotations

import copy
from typing import Any

from aurora_api.v1alpha1.cluster import AuroraCluster

Manifest = dict[str, Any]
ZONES = ["zone-a", "zone-b", "zone-c"]


def body(spec: Manifest | None = None, status: Manifest | None = None, **meta: Any) -> Manifest:
    """An AuroraCluster body as the API server would hand it over (before defaults: pydantic applies them)."""
    base_spec: Manifest = {"instances": {"readers": 2}, "storage": {"zones": {"values": list(ZONES)}}}
    return {
        "apiVersion": "quorumdb.io/v1alpha1",
        "kind": "AuroraCluster",
        "metadata": {"name": "demo", "namespace": "db", "uid": "uid-1", "generation": 1} | meta,
        "spec": _deep_merge(base_spec, spec or {}),
        "status": status or {},
    }


def cluster(spec: Manifest | None = None, status: Manifest | None = None, **meta: Any) -> AuroraCluster:
    return AuroraCluster.model_validate(body(spec, status, **meta))


def nodes(zones: list[str] = ZONES) -> list[Manifest]:
    return [{"metadata": {"name": f"node-{z}", "labels": {"topology.kubernetes.io/zone": z}}} for z in zones]


def pod(name: str, labels: dict[str, str], ready: bool = True, node: str = "node-zone-a") -> Manifest:
    state = "True" if ready else "False"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "db", "labels": labels},
        "spec": {"nodeName": node},
        "status": {
            "conditions": [{"type": "Ready", "status": state}],
            "containerStatuses": [{"name": "main", "state": {"running": {}}}],
        },
    }


def _deep_merge(base: Manifest, extra: Manifest) -> Manifest:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def must(outcome: Any) -> Any:
    """The status a reconcile wrote (it writes none when its recorded decision lost a race)."""
    assert outcome.status is not None, "the pass wrote no status"
    return outcome.status
