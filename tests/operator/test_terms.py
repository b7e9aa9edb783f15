"""Seeding storage nodes that missed the writer's fencing: copy, never invent, never lower a term."""

from __future__ import annotations

from aurora_api import contract
from aurora_api.reports import StorageReport
from aurora_operator.reconcile import terms
from aurora_operator.reconcile.observed import Observed
from aurora_operator.storage_nodes import FakeStorageNodes, State

from . import factories

FENCED: State = {"term": 1, "writer": "host=demo-instance-0 port=5432 user=replicator dbname=postgres",
          "system_identifier": "7312"}  # fmt: skip
BLANK: State = {"term": 0, "writer": None, "system_identifier": None}


def test_term_zero_nodes_get_the_fenced_state() -> None:
    states: dict[str, State | None] = {
        "s0": FENCED,
        "s1": BLANK,
        "s2": None,
        "s3": {"term": 2, "writer": "x"},
    }
    assert terms.seeds(states, 1) == {"s1": FENCED}


def test_nodes_left_at_an_older_term_by_a_failover_follow_the_new_writer() -> None:
    new = {**FENCED, "term": 3, "writer": "host=demo-instance-1 port=5432 user=replicator dbname=postgres"}
    states: dict[str, State | None] = {"s0": new, "s1": new, "s2": FENCED, "s3": {**FENCED, "term": 4}}
    assert terms.seeds(states, 3) == {"s2": new}  # s3 holds a newer term: never lowered


def test_nothing_before_the_writer_fenced_anyone() -> None:
    assert terms.seeds({"s0": BLANK, "s1": BLANK}, 1) == {}
    assert terms.seeds({"s0": {"term": 1, "writer": None}, "s1": BLANK}, 1) == {}
    assert terms.seeds({"s0": FENCED, "s1": BLANK}, 0) == {}


def storage_pod(name: str, ip: str | None) -> factories.Manifest:
    labels = {contract.LABEL_CLUSTER: "demo", contract.LABEL_COMPONENT: "storage"}
    pod = factories.pod(name, labels)
    if ip:
        pod["status"]["podIP"] = ip
    return pod


async def test_seed_puts_to_the_blank_nodes_only() -> None:
    pods = (storage_pod("demo-storage-0-0", "10.0.0.1"), storage_pod("demo-storage-0-1", "10.0.0.2"))
    reports = {"demo-storage-0-0": StorageReport.model_validate(FENCED),
               "demo-storage-0-1": StorageReport.model_validate(BLANK), "demo-storage-1-2": None}  # fmt: skip
    observed = Observed(pods=(*pods, storage_pod("demo-storage-1-2", None)), storage=reports)
    nodes = FakeStorageNodes({"http://10.0.0.1:7000": dict(FENCED), "http://10.0.0.2:7000": dict(BLANK)})
    done = await terms.seed(nodes, factories.cluster(status={"term": 1}), observed)
    assert nodes.puts == [("http://10.0.0.2:7000", FENCED)]
    assert done == [
        "gave storage node demo-storage-0-1 term 1 and its writer (it missed the writer's fencing)"
    ]
    # The next pass reads the seeded node's report: nothing left to seed.
    again = {name: await nodes.status(f"http://{ip}:7000") for name, ip in
             (("demo-storage-0-0", "10.0.0.1"), ("demo-storage-0-1", "10.0.0.2"))}  # fmt: skip
    observed = Observed(pods=observed.pods, storage=again)
    assert await terms.seed(nodes, factories.cluster(status={"term": 1}), observed) == []
