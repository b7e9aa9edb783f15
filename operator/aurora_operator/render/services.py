"""Endpoints: cluster endpoint ``<name>`` (writer), reader endpoint ``<name>-ro``, one per instance.

Why label selection: the role label on instance pods is the single switch a failover flips; Services follow it
without being rewritten, and only ready pods receive traffic (readiness = ``InstancePaths.READINESS``).

A serverless cluster that pauses switches its cluster and reader endpoints to the resume proxy while
``status.pause`` is set (from the start of a pause until the writer serves again after a resume): a client
that connects meanwhile is held and forwarded, never refused; the rest of the time traffic goes straight to
the instances and pays nothing for the proxy.
"""

from __future__ import annotations

from aurora_api import contract
from aurora_api.contract import COMPONENT_INSTANCE, COMPONENT_PROXY
from aurora_api.v1alpha1.cluster import AuroraCluster

from . import meta, names
from .meta import Manifest

POSTGRES = {"name": "postgres", "port": contract.POSTGRES_PORT, "targetPort": "postgres"}
PROXIED_READERS = {"name": "postgres", "port": contract.POSTGRES_PORT, "targetPort": "readers"}


def proxied(c: AuroraCluster) -> bool:
    """The endpoints lead to the resume proxy (a pause is in progress or in force)."""
    return c.status.pause is not None


def _service(
    c: AuroraCluster, name: str, selector: dict[str, str], ports: list[Manifest], *, unready: bool = False
) -> Manifest:
    spec: Manifest = {"type": "ClusterIP", "selector": selector, "ports": ports}
    if unready:
        spec["publishNotReadyAddresses"] = True
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.metadata(c, name, COMPONENT_INSTANCE),
        "spec": spec,
    }


def writer(c: AuroraCluster) -> Manifest:
    """The cluster endpoint: the pod the operator labels writer, ready or not.

    Why not only ready pods: the label is the switch (the operator sets it on one pod at a time, when it
    decides a failover), and publishing the address at once lets the endpoint reach the nodes while the
    target promotes, instead of after a readiness probe and another endpoint round trip. Until it has
    promoted, clients get a read-only or connection error from it, never a second writer.
    """
    if proxied(c):
        return _service(c, names.writer_service(c), meta.selector(c, COMPONENT_PROXY), [POSTGRES])
    select = meta.selector(c, COMPONENT_INSTANCE, **{contract.LABEL_ROLE: contract.ROLE_WRITER})
    return _service(c, names.writer_service(c), select, [POSTGRES], unready=True)


def readers(c: AuroraCluster) -> Manifest:
    if proxied(c):
        return _service(c, names.reader_service(c), meta.selector(c, COMPONENT_PROXY), [PROXIED_READERS])
    select = meta.selector(c, COMPONENT_INSTANCE, **{contract.LABEL_ROLE: contract.ROLE_READER})
    return _service(c, names.reader_service(c), select, [POSTGRES])


def instance(c: AuroraCluster, ordinal: int) -> Manifest:
    """Stable address of one instance, whatever its role or readiness (PostgreSQL and the HTTP API).

    Unready pods are included: this is the address a writer advertises to the storage nodes
    (``EnvInstance.ADVERTISE_HOST`` defaults to the instance name), and they must reach it before it is ready.
    """
    name = names.instance(c, ordinal)
    select = meta.selector(c, COMPONENT_INSTANCE, **{contract.LABEL_INSTANCE: name})
    http = {"name": "http", "port": contract.INSTANCE_HTTP_PORT, "targetPort": "http"}
    return _service(c, name, select, [POSTGRES, http], unready=True)
