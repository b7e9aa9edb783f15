"""Credential Secrets (superuser, replication, application user) and the pod ServiceAccount with its Role.

Why together: both are identity. Passwords are inputs, not generated here, so rendering stays pure and the
planner decides when a Secret is created (only when missing: an existing password is never rotated by a
reconcile, which is what makes an operator restart safe). A rotation is asked for in the Secret itself, as
level-triggered state: its ``password`` key removed (a new one is generated) or replaced by hand (the
connection URI follows it); ``rewrite`` says which.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping

from aurora_api import contract
from aurora_api.contract import SecretsLayout
from aurora_api.v1alpha1.cluster import AuroraCluster

from . import meta, names
from .meta import Manifest

USERNAMES = {
    SecretsLayout.SUPERUSER: "postgres",
    SecretsLayout.REPLICATION: "replicator",
    SecretsLayout.APP: "app",
}
APP_DATABASE = "app"


def secret(c: AuroraCluster, account: str, password: str) -> Manifest:
    """The Secret of one account; the app account also carries its database and a connection URI."""
    user = USERNAMES[account]
    data = {SecretsLayout.USERNAME: user, SecretsLayout.PASSWORD: password}
    if account == SecretsLayout.APP:
        host = f"{names.writer_service(c)}.{c.metadata.namespace}.svc"
        data |= {
            SecretsLayout.DATABASE: APP_DATABASE,
            "host": host,
            "port": str(contract.POSTGRES_PORT),
            "uri": f"postgresql://{user}:{password}@{host}:{contract.POSTGRES_PORT}/{APP_DATABASE}",
        }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta.metadata(c, names.secret(c, account)),
        "type": "kubernetes.io/basic-auth",
        "stringData": data,
    }


def rewrite(
    c: AuroraCluster, account: str, current: Mapping[str, str], password: Callable[[], str]
) -> tuple[Manifest, str] | None:
    """The account Secret to write over ``current`` (its decoded data), with why, or None when it is as
    rendered from the password it holds. Written as ``data`` (server-side apply of a whole Secret)."""
    given = current.get(SecretsLayout.PASSWORD, "").rstrip("\n")
    if not given.strip():
        return as_data(secret(c, account, password())), "its password was removed: generated a new one"
    wanted = secret(c, account, given)
    if all(current.get(k) == v for k, v in wanted["stringData"].items()):
        return None
    return as_data(wanted), "rendered its connection details from the password it holds"


def as_data(manifest: Manifest) -> Manifest:
    fields = {k: v for k, v in manifest.items() if k != "stringData"}
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in manifest["stringData"].items()}
    return fields | {"data": encoded}


def control_secret(c: AuroraCluster, token: str, previous: str = "", until: str = "") -> Manifest:
    """The control token: created once (like the passwords); rewritten only by a rotation, which keeps the
    ``previous`` token accepted ``until`` an RFC 3339 time, and then without it (``aurora_api.control``)."""
    metadata = meta.metadata(c, names.control_secret(c))
    if until:
        metadata["annotations"] = {contract.ANNOTATION_PREVIOUS_TOKEN_UNTIL: until}
    data = {SecretsLayout.TOKEN: token} | ({SecretsLayout.PREVIOUS: previous} if previous else {})
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque", "stringData": data}


def service_account(c: AuroraCluster) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta.metadata(c, names.service_account(c)),
        "automountServiceAccountToken": False,
    }


def token_review_binding(c: AuroraCluster, reviewer_role: str) -> Manifest:
    """Lets the cluster's instances create TokenReviews (spec.tokenLogin). Cluster-scoped: no owner
    reference can reach a namespaced AuroraCluster, so the operator deletes it itself (``loop.teardown``)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": names.token_review_binding(c), "labels": meta.labels(c)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": reviewer_role},
        "subjects": [
            {"kind": "ServiceAccount", "name": names.service_account(c), "namespace": c.metadata.namespace}
        ],
    }


def role(c: AuroraCluster) -> Manifest:
    """What in-pod processes may do: read their peers and their cluster, report Events. Nothing else."""
    read = ["get", "list", "watch"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta.metadata(c, names.service_account(c)),
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": read},
            {"apiGroups": [contract.API_GROUP], "resources": ["auroraclusters"], "verbs": read},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        ],
    }


def role_binding(c: AuroraCluster) -> Manifest:
    name = names.service_account(c)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta.metadata(c, name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": c.metadata.namespace}],
    }
