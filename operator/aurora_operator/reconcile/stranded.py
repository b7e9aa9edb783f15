"""Volumes stranded on a node that no longer exists: their claims are re-created so the pod runs elsewhere.

Why: PGDATA and the storage nodes' WAL live on PersistentVolumeClaims. With node-local storage (local-path,
local PersistentVolumes, TopoLVM, ...) a volume is pinned to one node by its required node affinity; when
that node is deleted (a failed machine, a node group scaled down) the StatefulSet re-creates the pod and the
scheduler can never place it. The data on that volume went with the node, so the way back is a new claim:
the pod is then scheduled on another node (an instance re-seeds from the writer and never runs initdb; a
storage node repairs from its peers and the archive). A node that is only down (NotReady, or its machine
rebooting) keeps its Node object, and its volumes come back with it: nothing is done then.

It must not touch a claim whose volume could still be reached: only a volume whose required node affinity
names hosts that are all absent from the API, claimed by a pod that has been unschedulable for
``GRACE_SECONDS``. Pure: the caller passes the observation and the time.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping

from .observed import Manifest, Observed

GRACE_SECONDS = 30.0
"""How long a pod must have been unschedulable before its claim is given up (a node object briefly absent
while its kubelet re-registers must not cost a volume)."""
HOSTNAME_KEY = "kubernetes.io/hostname"


@dataclasses.dataclass(frozen=True)
class Stranded:
    pod: str
    claim: str
    nodes: tuple[str, ...]
    """The hosts the claim's volume is pinned to, none of which exists."""


def bound_volumes(pod: Manifest, claims: Mapping[str, Manifest]) -> list[tuple[str, str]]:
    """(claim, PersistentVolume name) for each claim the pod mounts that is bound to a volume."""
    found = []
    for volume in pod.get("spec", {}).get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        bound = claims.get(str(claim), {}).get("spec", {}).get("volumeName") if claim else None
        if bound:
            found.append((str(claim), str(bound)))
    return found


def pinned_hosts(volume: Manifest) -> tuple[str, ...] | None:
    """The hosts a PersistentVolume's required node affinity allows, when every term names hosts by
    ``kubernetes.io/hostname In``; None when any term allows nodes by something else (a zone: reachable)."""
    required = (volume.get("spec", {}).get("nodeAffinity") or {}).get("required") or {}
    terms = required.get("nodeSelectorTerms") or []
    hosts: list[str] = []
    for term in terms:
        named = [
            e for e in term.get("matchExpressions") or []
            if e.get("key") == HOSTNAME_KEY and e.get("operator") == "In"
        ]  # fmt: skip
        if not named:
            return None
        for expression in named:
            hosts += [str(v) for v in expression.get("values") or []]
    return tuple(sorted(set(hosts))) if hosts else None


def _unschedulable_since(pod: Manifest) -> datetime.datetime | None:
    status = pod.get("status", {})
    if pod.get("spec", {}).get("nodeName") or status.get("phase") not in (None, "Pending"):
        return None
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            since = cond.get("lastTransitionTime")
            if isinstance(since, datetime.datetime):
                return since
            if isinstance(since, str):
                return datetime.datetime.fromisoformat(since.replace("Z", "+00:00"))
    return None


def find(observed: Observed, now: datetime.datetime) -> list[Stranded]:
    """Claims of the cluster's unschedulable pods whose volumes are pinned to hosts that no longer exist."""
    found = []
    for pod in observed.pods:
        if pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        since = _unschedulable_since(pod)
        if since is None or (now - since).total_seconds() < GRACE_SECONDS:
            continue
        for claim, bound in bound_volumes(pod, observed.claims):
            volume = observed.volumes.get(bound)
            hosts = pinned_hosts(volume) if volume is not None else None
            if hosts and not set(hosts) & observed.node_names:
                found.append(Stranded(pod["metadata"]["name"], claim, hosts))
    return found
