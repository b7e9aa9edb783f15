"""PodDisruptionBudgets: voluntary evictions (drains) may never cost the storage quorum or the writer.

Why these numbers: with 6 storage nodes and a write quorum of 4, two may be lost; allowing only one voluntary
eviction keeps one failure of margin. The writer budget blocks draining the writer's node until a switchover
moves it (the rolling-patching work will do that switchover itself); readers go one at a time.
"""

from __future__ import annotations

from aurora_api import contract
from aurora_api.contract import COMPONENT_INSTANCE, COMPONENT_STORAGE
from aurora_api.v1alpha1.cluster import AuroraCluster

from . import meta, names
from .meta import Manifest


def _pdb(c: AuroraCluster, name: str, selector: dict[str, str], budget: Manifest) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta.metadata(c, name),
        "spec": {"selector": {"matchLabels": selector}, **budget},
    }


def storage(c: AuroraCluster) -> Manifest:
    allowed = contract.STORAGE_NODES - contract.WRITE_QUORUM - 1
    return _pdb(c, names.pdb(c, "storage"), meta.selector(c, COMPONENT_STORAGE), {"maxUnavailable": allowed})


def writer(c: AuroraCluster) -> Manifest:
    select = meta.selector(c, COMPONENT_INSTANCE, **{contract.LABEL_ROLE: contract.ROLE_WRITER})
    return _pdb(c, names.pdb(c, "writer"), select, {"minAvailable": 1})


def readers(c: AuroraCluster) -> Manifest:
    select = meta.selector(c, COMPONENT_INSTANCE, **{contract.LABEL_ROLE: contract.ROLE_READER})
    return _pdb(c, names.pdb(c, "readers"), select, {"maxUnavailable": 1})
