"""The cluster ConfigMap: PostgreSQL parameters as a ``postgresql.conf`` fragment.

Why a file and not env: the instance manager includes it from its own postgresql.conf and reloads when the
kubelet refreshes the mount, so changing a reloadable parameter never needs a restart.
"""

from __future__ import annotations

from aurora_api import contract
from aurora_api.v1alpha1.cluster import AuroraCluster

from . import meta, names
from .meta import Manifest

HEADER = "# Rendered by the QuorumDB operator from spec.postgresql.parameters. Do not edit.\n"


def quote(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def postgresql_conf(c: AuroraCluster) -> str:
    lines = [f"{key} = {quote(value)}\n" for key, value in sorted(c.spec.postgresql.parameters.items())]
    return HEADER + "".join(lines)


def config_map(c: AuroraCluster) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta.metadata(c, names.config(c)),
        "data": {contract.CONFIG_POSTGRESQL_CONF: postgresql_conf(c)},
    }
