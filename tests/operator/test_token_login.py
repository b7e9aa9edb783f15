"""spec.tokenLogin: refused without TLS or for managed roles; rendered into the ConfigMap and a
ClusterRoleBinding to the token reviewer, which the plan deletes when token login is turned off."""

from __future__ import annotations

import json

import pytest
from aurora_api import contract
from aurora_operator.reconcile import plan
from aurora_operator.render import config, desired, names
from aurora_operator.settings import Settings
from pydantic import ValidationError

from . import factories
from .test_plan import applied, never

SETTINGS = Settings(token_reviewer_role="qdb-token-reviewer")
TOKENS = {
    "tokenLogin": {"roles": [{"role": "reporting", "serviceAccounts": ["analytics/reporter", "db/app"]}]}
}


def test_the_configmap_maps_roles_to_the_usernames_a_token_review_reports() -> None:
    c = factories.cluster(TOKENS)
    data = config.config_map(c)["data"]
    doc = json.loads(data[contract.CONFIG_TOKEN_LOGIN])
    assert doc == {
        "audience": "quorumdb:db:demo",
        "roles": {"reporting": ["system:serviceaccount:analytics:reporter", "system:serviceaccount:db:app"]},
    }
    custom = factories.cluster({"tokenLogin": {**TOKENS["tokenLogin"], "audience": "pg"}})
    assert json.loads(config.config_map(custom)["data"][contract.CONFIG_TOKEN_LOGIN])["audience"] == "pg"
    assert contract.CONFIG_TOKEN_LOGIN not in config.config_map(factories.cluster())["data"]


def test_the_pods_account_is_bound_to_the_reviewer_role_only_with_token_login() -> None:
    bindings = [
        m for m in desired.shared(factories.cluster(TOKENS), SETTINGS) if m["kind"] == "ClusterRoleBinding"
    ]
    assert len(bindings) == 1
    binding = bindings[0]
    assert binding["roleRef"]["name"] == "qdb-token-reviewer"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "demo-pods", "namespace": "db"}]
    assert "namespace" not in binding["metadata"] and "ownerReferences" not in binding["metadata"]
    assert not [m for m in desired.shared(factories.cluster(), SETTINGS) if m["kind"] == "ClusterRoleBinding"]


def test_turning_token_login_off_deletes_the_binding() -> None:
    c = factories.cluster(TOKENS)
    world = applied(plan.plan(c, SETTINGS, applied(()), lambda: "pw").actions)
    assert ("ClusterRoleBinding", names.token_review_binding(c)) in world.objects
    secrets = world.secrets | {names.secret(c, a) for a in names.ACCOUNTS} | {names.control_secret(c)}
    world = type(world)(objects=world.objects, secrets=frozenset(secrets))
    off = plan.plan(factories.cluster(), SETTINGS, world, never).actions
    deletes = [a for a in off if isinstance(a, plan.Delete) and a.kind == "ClusterRoleBinding"]
    assert deletes == [
        plan.Delete("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", names.token_review_binding(c), True)
    ]
    assert not [a for a in plan.plan(c, SETTINGS, world, never).actions if isinstance(a, plan.Delete)]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({**TOKENS, "tls": {"enabled": False}}, "tokenLogin needs tls.enabled"),
        ({"tokenLogin": {"roles": [{"role": "app", "serviceAccounts": ["db/x"]}]}}, "managed by QuorumDB"),
        ({"tokenLogin": {"roles": [{"role": "Bad-Name", "serviceAccounts": ["db/x"]}]}}, "pattern"),
        ({"tokenLogin": {"roles": [{"role": "r", "serviceAccounts": ["no-namespace"]}]}}, "pattern"),
        ({"tokenLogin": {"roles": [{"role": "r", "serviceAccounts": []}]}}, "at least 1"),
        ({"tokenLogin": {"roles": [{"role": "r", "serviceAccounts": ["a/b"]}] * 2}}, "each role once"),
    ],
)
def test_bad_token_login_specs_are_refused(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        factories.cluster(spec)
