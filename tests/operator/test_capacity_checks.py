"""The CapacitySupported finding: a maxCapacity no node can hold."""

from __future__ import annotations

from aurora_operator.reconcile import checks
from aurora_operator.reconcile.observed import Observed

from tests.operator import factories

GIB = 1 << 30
NODES = {f"node-{z}": (2.0, 24 * GIB) for z in factories.ZONES}  # the kind test bed: 8 ACU fit


def reasons(serverless: dict[str, object]) -> list[str]:
    c = factories.cluster({"instances": {"serverless": serverless}})
    return [f.reason for f in checks.capacity_range(c, Observed(node_allocatable=NODES))]


def test_a_range_the_nodes_hold_is_supported() -> None:
    assert reasons({"minCapacity": 0.5, "maxCapacity": 8}) == []
    assert checks.capacity_range(factories.cluster(), Observed(node_allocatable=NODES)) == []


def test_auto_pause_is_supported() -> None:
    assert reasons({"minCapacity": 0, "maxCapacity": 4}) == []
    assert reasons({"minCapacity": 0, "maxCapacity": 4, "secondsUntilAutoPause": 300}) == []


def test_a_max_no_node_holds_is_flagged_with_what_the_largest_node_holds() -> None:
    c = factories.cluster({"instances": {"serverless": {"minCapacity": 0.5, "maxCapacity": 8.5}}})
    [finding] = checks.capacity_range(c, Observed(node_allocatable=NODES))
    assert finding.reason == "MaxCapacityTooLarge"
    assert "the largest node holds 8 ACU" in finding.message
    assert reasons({"minCapacity": 0.5, "maxCapacity": 256}) == ["MaxCapacityTooLarge"]
