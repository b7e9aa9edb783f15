"""Operator settings, read once from the environment at start-up.

Why a frozen dataclass: the values flow into pure renderers as an argument, never through module globals,
so tests can build any combination and the running operator cannot change them behind a handler's back.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

PREFIX = "QUORUMDB_OPERATOR_"


@dataclasses.dataclass(frozen=True)
class Settings:
    """How the operator renders and watches clusters. Env var: ``QUORUMDB_OPERATOR_<FIELD>`` upper-cased."""

    image: str = "quorumdb:0.1.0"
    """Image for storage and instance pods when ``spec.engine.image`` is unset."""
    image_pull_policy: str = "IfNotPresent"
    """Pull policy of database pods (kind test beds load images locally: never ``Always`` there)."""
    watch_namespace: str = ""
    """Namespace to watch; empty watches the whole cluster."""
    peering: str = "quorumdb"
    """Name of the kopf peering object through which replicas elect the single active operator."""
    cluster_domain: str = "cluster.local"
    """DNS suffix for the storage nodes' fully qualified names."""
    resync_seconds: float = 10.0
    """Period of the level-based re-check of every cluster (drift, readiness, scaling progress)."""
    field_manager: str = "quorumdb-operator"
    """Server-side apply field manager of everything the operator renders."""
    run_as_user: int = 999
    """uid and gid of database pods: the image's ``quorumdb`` user (initdb needs a passwd entry for it)."""
    operator_namespace: str = "quorumdb-system"
    """The operator's own namespace: NetworkPolicies admit its calls to the control endpoints."""
    token_reviewer_role: str = "quorumdb-token-reviewer"
    """The ClusterRole (from the chart: TokenReview create, nothing else) bound to the pods' ServiceAccount of
    a cluster with spec.tokenLogin, so its instances can check a client's token."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``QUORUMDB_OPERATOR_*`` variables; unset ones keep their defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(PREFIX + field.name.upper())
            if raw is None:
                continue
            values[field.name] = {"float": float, "int": int}.get(str(field.type), str)(raw)
        return cls(**values)  # type: ignore[arg-type]
