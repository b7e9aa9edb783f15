"""Seeding storage nodes that missed the writer's fencing: a pure decision plus a small driver.

Why: fencing (raising a node's term) is the writer's act during promotion, with its own ordering guarantees,
and it reaches only the nodes that are up at that moment. A node that was down (a lost zone, a restarted
pod, a new empty volume) comes back at term 0, or at the term of the writer before the failover, and would
wait for that writer for ever: the cluster stayed at 4/6. The operator never invents a term or a writer: it
copies the state (term, writer conninfo, system identifier) that the current writer (``status.term``)
already gave other nodes, and only to nodes at a *lower* term; it never lowers a term, and a node of
another system refuses the copy (its system identifier is pinned).
"""

from __future__ import annotations

from aurora_api import contract
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..storage_nodes import State, StorageNodes
from . import observe
from .observed import Observed

COPIED = ("term", "writer", "system_identifier")


def storage_urls(observed: Observed) -> dict[str, str]:
    """Pod name -> HTTP base URL, for storage pods that have an IP."""
    urls = {}
    for pod in observed.pods:
        labels = pod["metadata"].get("labels", {})
        url = observe.pod_url(pod, contract.STORAGE_HTTP_PORT)
        if labels.get(contract.LABEL_COMPONENT) == contract.COMPONENT_STORAGE and url:
            urls[pod["metadata"]["name"]] = url
    return urls


def seeds(states: dict[str, State | None], term: int) -> dict[str, State]:
    """Node -> body to PUT: nodes below ``term`` get the state of a node the writer already fenced at it."""
    donors = [s for s in states.values() if s and int(s.get("term") or 0) == term and s.get("writer")]
    if term <= 0 or not donors:
        return {}
    body = {key: donors[0][key] for key in COPIED if donors[0].get(key) is not None}
    return {
        name: body
        for name, state in states.items()
        if state is not None and int(state.get("term") or 0) < term
    }


async def seed(nodes: StorageNodes, c: AuroraCluster, observed: Observed) -> list[str]:
    """Seed what ``seeds`` decides from the nodes' reports ``observe`` already read; one sentence per node."""
    urls = storage_urls(observed)
    states: dict[str, State | None] = {
        name: None if rep is None else {key: getattr(rep, key) for key in COPIED}
        for name, rep in observed.storage.items()
        if name in urls
    }
    done = []
    for name, body in seeds(states, max(c.status.term, 1)).items():
        if await nodes.put_term(urls[name], body):
            done.append(
                f"gave storage node {name} term {body['term']} and its writer "
                "(it missed the writer's fencing)"
            )
    return done
