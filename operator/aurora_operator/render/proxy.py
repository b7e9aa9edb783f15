"""The resume proxy of a serverless cluster that pauses: one small Deployment, always running.

Why always running and not started on demand: it is what accepts a client while the cluster is paused, so
it must be up before the cluster pauses; it holds no data, so a Deployment (re-created anywhere) suits it.
The endpoints lead to it only while ``status.pause`` is set (``services``).
"""

from __future__ import annotations

from collections.abc import Iterable

from aurora_api import contract
from aurora_api.contract import COMPONENT_PROXY, EnvProxy
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..settings import Settings
from . import names, podspec
from .meta import Manifest

RESOURCES = {"requests": {"cpu": "10m", "memory": "48Mi"}, "limits": {"memory": "192Mi"}}
"""No CPU limit: a throttled proxy would add its throttling to every resume."""


def wanted(c: AuroraCluster) -> bool:
    serverless = c.spec.instances.serverless
    return serverless is not None and serverless.auto_pause_seconds is not None


def deployment(c: AuroraCluster, settings: Settings, ordinals: Iterable[int]) -> Manifest:
    """The proxy, told the instances' stable names (it asks their managers which one writes)."""
    instances = ",".join(names.instance(c, o) for o in sorted(ordinals))
    tls = c.spec.tls.enabled
    container = {
        "name": "proxy",
        "image": podspec.image(c, settings),
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["quorumdb-proxy"],
        "env": [
            podspec.env(EnvProxy.INSTANCES, instances),
            podspec.env(contract.Env.SECRETS_DIR, contract.PATH_SECRETS_DIR),
            *podspec.control_tls_env(c),
        ],
        "volumeMounts": [
            {"name": "secrets", "mountPath": contract.PATH_SECRETS_DIR, "readOnly": True},
            podspec.TMP_MOUNT,
        ],
        "ports": [
            {"name": "postgres", "containerPort": contract.PROXY_WRITER_PORT},
            {"name": "readers", "containerPort": contract.PROXY_READER_PORT},
            {"name": "http", "containerPort": contract.PROXY_HTTP_PORT},
        ],
        "readinessProbe": podspec.http_probe("/healthz", "http", period=2, failures=2, https=tls),
        "livenessProbe": podspec.http_probe("/healthz", "http", period=10, failures=3, https=tls),
        "resources": RESOURCES,
        "securityContext": podspec.container_security(),
    }
    token = {"name": "secrets", "projected": {"sources": podspec.control_sources(c), "defaultMode": 0o440}}
    volumes = [token, podspec.tmp_volume()]
    if tls:  # it calls the managers and serves its status over HTTPS
        volumes.append(podspec.control_tls_volume(c))
        container["volumeMounts"] = [*container["volumeMounts"], podspec.CONTROL_TLS_MOUNT]
    return podspec.stateless_deployment(c, settings, names.proxy(c), COMPONENT_PROXY, container, volumes)
