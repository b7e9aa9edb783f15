"""NetworkPolicies: PostgreSQL from the allowed clients, control ports from the cluster and the operator."""

from __future__ import annotations

from typing import Any

from aurora_operator.render import network
from aurora_operator.settings import Settings

from tests.operator import factories

OPERATOR = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "quorumdb-system"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "quorumdb-operator"}},
}
INSIDE = {"podSelector": {"matchLabels": {"quorumdb.io/cluster": "demo"}}}


def rules(policy: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """Port -> the peers admitted to it."""
    return {port["port"]: rule["from"] for rule in policy["spec"]["ingress"] for port in rule["ports"]}


def by_component(c: Any) -> dict[str, dict[str, Any]]:
    found = network.policies(c, Settings())
    return {p["spec"]["podSelector"]["matchLabels"]["quorumdb.io/component"]: p for p in found}


def test_by_default_the_namespace_reaches_postgresql_only_the_cluster_and_operator_the_control_ports() -> (
    None
):
    found = by_component(factories.cluster())
    assert set(found) == {"instance", "storage", "proxy", "data-api"}
    assert all(p["spec"]["policyTypes"] == ["Ingress"] for p in found.values())
    instance = rules(found["instance"])
    assert instance[5432] == [INSIDE, {"podSelector": {}}]  # every pod of the cluster's namespace
    assert instance[8008] == [INSIDE, OPERATOR]
    assert rules(found["storage"]) == {7000: [INSIDE, OPERATOR]}
    assert rules(found["proxy"])[5433] == [INSIDE, {"podSelector": {}}] and rules(found["proxy"])[8010] == [
        INSIDE, OPERATOR
    ]  # fmt: skip
    assert rules(found["data-api"]) == {8080: [INSIDE, {"podSelector": {}}]}


def test_allowed_clients_replace_the_namespace_default_and_policies_can_be_turned_off() -> None:
    c = factories.cluster({"network": {"allowedClients": [
        {"podLabels": {"app": "shop"}},
        {"namespaceLabels": {"team": "analytics"}},
        {"namespaceLabels": {}, "podLabels": {"role": "admin"}},
    ]}})  # fmt: skip
    assert rules(by_component(c)["instance"])[5432] == [
        INSIDE,
        {"podSelector": {"matchLabels": {"app": "shop"}}},
        {"podSelector": {}, "namespaceSelector": {"matchLabels": {"team": "analytics"}}},
        {"podSelector": {"matchLabels": {"role": "admin"}}, "namespaceSelector": {}},
    ]
    assert network.policies(factories.cluster({"network": {"policies": False}}), Settings()) == []
