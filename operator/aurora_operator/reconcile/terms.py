"""Seeding storage nodes that missed the writer's fencing: a pure decision plus a small driver.

Why only nodes at term 0, and only by copying: fencing (raising a node's term) is the writer's act during
promotion, with its own ordering guarantees. The operator never invents a term or a writer: it copies the
state (term, writer conninfo, system identifier) that the current writer already gave other nodes, and only
to nodes that never had a term. Everything else is left to the instance manager and the storage engine.
"""

from __future__ import annotations

import asyncio

from aurora_api import contract
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..storage_nodes import State, StorageNodes
from .observed import Observed

COPIED = ("term", "writer", "system_identifier")


def storage_urls(observed: Observed) -> dict[str, str]:
    """Pod name -> HTTP base URL, for storage pods that have an IP."""
    urls = {}
    for pod in observed.pods:
        labels = pod["metadata"].get("labels", {})
        ip = pod.get("status", {}).get("podIP")
        if labels.get(contract.LABEL_COMPONENT) == contract.COMPONENT_STORAGE and ip:
            urls[pod["metadata"]["name"]] = f"http://{ip}:{contract.STORAGE_HTTP_PORT}"
    return urls


def seeds(states: dict[str, State | None], term: int) -> dict[str, State]:
    """Node -> body to PUT: term-0 nodes get the state of a node the writer already fenced at ``term``."""
    donors = [s for s in states.values() if s and int(s.get("term") or 0) == term and s.get("writer")]
    if term <= 0 or not donors:
        return {}
    body = {key: donors[0][key] for key in COPIED if donors[0].get(key) is not None}
    return {
        name: body for name, state in states.items() if state is not None and int(state.get("term") or 0) == 0
    }


async def seed(nodes: StorageNodes, c: AuroraCluster, observed: Observed) -> list[str]:
    """Seed what ``seeds`` decides; returns one sentence per node seeded."""
    urls = storage_urls(observed)
    answers = await asyncio.gather(*(nodes.get_term(url) for url in urls.values()))
    states = dict(zip(urls, answers, strict=True))
    done = []
    for name, body in seeds(states, max(c.status.term, 1)).items():
        if await nodes.put_term(urls[name], body):
            done.append(
                f"seeded storage node {name} with term {body['term']} (it missed the writer's fencing)"
            )
    return done
