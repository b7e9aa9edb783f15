"""Fencing rules of actions, against the in-memory storage fake (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aurora_api import contract
from aurora_instance import actions, settings
from aurora_instance.accounts import Account, Credentials
from aurora_instance.context import Context
from aurora_instance.postgres import Postgres
from aurora_instance.storage import MemoryStorage


def ctx(storage: MemoryStorage, tmp_path: Path) -> Context:
    env = {contract.EnvInstance.ROLE: "writer", contract.Env.CLUSTER_NAME: "c1",
           contract.Env.DATA_DIR: str(tmp_path),
           contract.EnvInstance.ADVERTISE_HOST: "i3", contract.EnvInstance.POSTGRES_PORT: "6000"}  # fmt: skip
    s = settings.from_env(env)
    creds = Credentials(Account("su", "p" * 8), Account("rep", "p" * 8), Account("app", "p" * 8), "appdb")
    pg = Postgres(s.pg_bin, s.pgdata, s.socket_dir, s.postgres_port, tmp_path / "pgpass", "su")
    return Context(s, creds, pg, storage, {})


def test_fence_names_this_instance_as_the_writer_to_follow(tmp_path: Path) -> None:
    storage = MemoryStorage()
    actions.fence(ctx(storage, tmp_path), 2)
    assert {n.term for n in storage.nodes} == {2}
    assert storage.nodes[0].writer == "host=i3 port=6000 user=rep dbname=postgres"


def test_fencing_before_promotion_keeps_the_nodes_writer(tmp_path: Path) -> None:
    storage = MemoryStorage()
    storage.nodes[0].writer = "host=old"
    actions.fence(ctx(storage, tmp_path), 2, follow_me=False)
    assert storage.nodes[0].writer == "host=old"


def test_a_newer_term_on_any_node_means_deposed(tmp_path: Path) -> None:
    storage = MemoryStorage()
    storage.nodes[4].term = 9
    with pytest.raises(actions.Deposed, match="term 9 > 2"):
        actions.fence(ctx(storage, tmp_path), 2)


def test_fencing_needs_three_nodes(tmp_path: Path) -> None:
    storage = MemoryStorage()
    for n in storage.nodes[:4]:
        n.reachable = False
    with pytest.raises(actions.ActionError, match="only 2 storage nodes confirmed, need 3"):
        actions.fence(ctx(storage, tmp_path), 2)
    storage.nodes[0].reachable = True
    actions.fence(ctx(storage, tmp_path), 2)
