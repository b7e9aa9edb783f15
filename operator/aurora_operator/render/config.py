"""PostgreSQL parameters: reloadable ones in the cluster ConfigMap, restart-only ones in the pod template.

Why split: the instance manager re-reads the mounted ConfigMap and reloads, so a reloadable parameter is
applied live, on every pod, within the kubelet's refresh. A parameter that needs a restart is different: it
must take effect when its pod is restarted by a rolling update (in the maintenance window), not when a
container happens to restart. So those go into the instance template's environment: the template's revision
changes, each pod keeps the values it was created with, and the roll (``reconcile.maintenance``) applies them.
"""

from __future__ import annotations

import json

from aurora_api import capacity, contract, pgparams
from aurora_api.v1alpha1.cluster import AuroraCluster

from . import meta, names, podspec
from .meta import Manifest

HEADER = "# Rendered by the QuorumDB operator from spec.postgresql.parameters. Do not edit.\n"


def quote(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _lines(params: dict[str, str]) -> str:
    return "".join(f"{key} = {quote(value)}\n" for key, value in sorted(params.items()))


def reloadable(c: AuroraCluster) -> dict[str, str]:
    return {k: v for k, v in c.spec.postgresql.parameters.items() if not pgparams.needs_restart(k)}


def static(c: AuroraCluster) -> dict[str, str]:
    """Restart-only parameters: the user's, over (serverless) those the capacity model fixes for the pod's
    life from minCapacity (``capacity.static_parameters``)."""
    serverless = c.spec.instances.serverless
    sized = {} if serverless is None else capacity.static_parameters(serverless.min_capacity)
    return sized | {k: v for k, v in c.spec.postgresql.parameters.items() if pgparams.needs_restart(k)}


def postgresql_conf(c: AuroraCluster) -> str:
    return HEADER + _lines(reloadable(c))


def static_env(c: AuroraCluster) -> list[Manifest]:
    """The restart-only parameters as one environment variable (none when there are none)."""
    params = static(c)
    return [podspec.env(contract.EnvInstance.STATIC_PARAMETERS, _lines(params))] if params else []


def token_login(c: AuroraCluster) -> str | None:
    """``contract.CONFIG_TOKEN_LOGIN``: the audience and, per role, the usernames a TokenReview reports."""
    spec = c.spec.token_login
    if spec is None:
        return None
    roles = {
        r.role: sorted(contract.service_account_username(*sa.split("/", 1)) for sa in r.service_accounts)
        for r in spec.roles
    }
    doc = {"audience": spec.audience_for(c.metadata.namespace, c.metadata.name), "roles": roles}
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def config_map(c: AuroraCluster) -> Manifest:
    data = {contract.CONFIG_POSTGRESQL_CONF: postgresql_conf(c)}
    tokens = token_login(c)
    if tokens is not None:
        data[contract.CONFIG_TOKEN_LOGIN] = tokens
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta.metadata(c, names.config(c)),
        "data": data,
    }
