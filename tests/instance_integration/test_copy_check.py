"""A reader's fresh copy is kept only if it is the PostgreSQL system the storage nodes hold.

Prose: the data-loss case behind this check is a writer that initdb'd a new system over an existing cluster
(an empty volume on Kubernetes): its copy carries our cluster stamp, so only the system identifier tells it
apart. A real data directory made by ``initdb`` stands in for the copy (``pg_controldata`` reads it for
real); the storage nodes are the in-memory fake, holding either that system, another one, or none yet.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from aurora_api import contract
from aurora_instance import actions, files, settings
from aurora_instance.accounts import Account, Credentials
from aurora_instance.context import Context
from aurora_instance.postgres import Postgres
from aurora_instance.storage import MemoryNode, MemoryStorage

from tests.fixtures.postgres import PG_BIN, _as_pg
from tests.instance_integration import harness

pytestmark = pytest.mark.integration


def _context(root: Path, storage: MemoryStorage) -> Context:
    env = {contract.EnvInstance.ROLE: "reader", contract.Env.CLUSTER_NAME: harness.CLUSTER,
           contract.Env.WRITER_ENDPOINT: "w:5432", contract.Env.DATA_DIR: str(root),
           contract.Env.PG_BIN_DIR: str(PG_BIN)}  # fmt: skip
    s = settings.from_env(env)
    creds = Credentials(Account("su", "p" * 8), Account("rep", "p" * 8), Account("app", "p" * 8), "appdb")
    pg = Postgres(s.pg_bin, s.pgdata, s.socket_dir, s.postgres_port, root / "pgpass", "su")
    return Context(s, creds, pg, storage, {})


def _copy(root: Path) -> tuple[Path, str]:
    """A data directory of a fresh system, stamped with our cluster's name; and its system identifier."""
    harness.require_postgres()
    harness.chown_tree(root)
    copy = root / "pgdata.new"
    subprocess.run(_as_pg([str(PG_BIN / "initdb"), "-D", str(copy), "-U", "postgres", "--no-sync"]),
                   check=True, capture_output=True)  # fmt: skip
    (copy / files.STAMP).write_text(harness.CLUSTER + "\n")
    out = subprocess.run([str(PG_BIN / "pg_controldata"), "-D", str(copy)],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    system = next(line.split(":", 1)[1].strip() for line in out.splitlines() if "system identifier" in line)
    return copy, system


def test_a_copy_of_another_system_than_the_storage_nodes_hold_is_refused(bed_root: Path) -> None:
    copy, system = _copy(bed_root)
    held = MemoryStorage([MemoryNode(term=2, system_identifier=system) for _ in range(6)])
    actions.check_copy(_context(bed_root, held), "w:5432", copy)  # the very system: kept

    other = MemoryStorage([MemoryNode(term=2, system_identifier="7000000000000000001") for _ in range(6)])
    with pytest.raises(actions.ActionError) as err:
        actions.check_copy(_context(bed_root, other), "w:5432", copy)
    assert f"is PostgreSQL system {system}, but the storage nodes hold system 7000000000000000001" in str(
        err.value
    )

    actions.check_copy(_context(bed_root, MemoryStorage()), "w:5432", copy)  # a new cluster: nothing pinned

    (copy / files.STAMP).write_text("another-cluster\n")
    with pytest.raises(actions.ActionError, match="is not cluster 'audit'"):
        actions.check_copy(_context(bed_root, held), "w:5432", copy)
