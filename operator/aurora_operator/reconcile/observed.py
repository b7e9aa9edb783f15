"""The immutable snapshot of the world one reconcile decides on.

Why a snapshot: plan and report must see one consistent view; re-reading mid-decision is how operators end up
acting on half-updated state. Building it is ``observe.observe``; this module only defines the shape, so pure
code can import it without pulling in a client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from aurora_api.reports import InstanceReport, StorageReport

Manifest = dict[str, Any]
Key = tuple[str, str]
"""(kind, name) of a namespaced object."""


@dataclasses.dataclass(frozen=True)
class Observed:
    """What exists now, as far as the cluster at hand is concerned."""

    objects: Mapping[Key, Manifest] = dataclasses.field(default_factory=dict)
    """Objects of the kinds the operator renders that carry the cluster label, by (kind, name)."""
    pods: tuple[Manifest, ...] = ()
    """Pods carrying the cluster label."""
    secrets: frozenset[str] = frozenset()
    """Names of existing Secrets among those the cluster creates or references."""
    accounts: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict, repr=False)
    """The account Secrets that exist, by name: their decoded data (a rotation is asked for there)."""
    control: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    """The control-token Secret's decoded data (empty when it does not exist yet)."""
    control_annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Its annotations (a rotation's ``ANNOTATION_PREVIOUS_TOKEN_UNTIL``)."""
    certificates: Mapping[str, Mapping[str, bytes]] = dataclasses.field(default_factory=dict, repr=False)
    """The operator-issued CA and server certificate Secrets that exist, by name: their decoded data."""
    node_zones: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Node name -> value of the cluster's zone label, for schedulable nodes that have it."""
    instances: Mapping[str, InstanceReport | None] = dataclasses.field(default_factory=dict)
    """Instance name -> its instance manager's report, None when its pod exists but did not answer."""
    instance_urls: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Instance name -> base URL of its HTTP API (the pod IP), for pods that have an IP."""
    silent_seconds: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Instance name -> seconds since its status endpoint last answered (0 when it answered now)."""
    storage: Mapping[str, StorageReport | None] = dataclasses.field(default_factory=dict)
    """Storage pod name -> the node's own report, None when the pod is missing or did not answer."""
    node_allocatable: Mapping[str, tuple[float, int]] = dataclasses.field(default_factory=dict)
    """Node name -> (allocatable cores, allocatable memory bytes), for the nodes in ``node_zones``."""
    node_names: frozenset[str] = frozenset()
    """Every Node object that exists, schedulable or not."""
    claims: Mapping[str, Manifest] = dataclasses.field(default_factory=dict)
    """The cluster's PersistentVolumeClaims by name."""
    volumes: Mapping[str, Manifest] = dataclasses.field(default_factory=dict)
    """PersistentVolumes bound to the claims of pods that are not scheduled, by name (read only then)."""

    @property
    def zones(self) -> frozenset[str]:
        """Zone values that have at least one schedulable node."""
        return frozenset(self.node_zones.values())


def pod_ready(pod: Manifest) -> bool:
    """The Ready condition of a pod that is not being deleted."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    conditions = pod.get("status", {}).get("conditions") or []
    return any(cond.get("type") == "Ready" and cond.get("status") == "True" for cond in conditions)


def container_running(pod: Manifest) -> bool:
    """Every container of the pod has started and is running (a re-created pod is Pending at first; a
    crashed container waits to restart)."""
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return bool(statuses) and all("running" in (s.get("state") or {}) for s in statuses)


def pod_gone(pod: Manifest | None) -> bool:
    """No pod, or a pod being deleted (its containers are or will be killed)."""
    return pod is None or bool(pod.get("metadata", {}).get("deletionTimestamp"))
