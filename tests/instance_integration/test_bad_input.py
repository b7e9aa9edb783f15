"""Bad input (acceptance): a missing or malformed Secret, a data directory from another cluster, an impossible
configuration — a clear error, exit code 2, and nothing written or overwritten. Real manager processes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from aurora_api import contract

from tests.instance_integration import harness

pytestmark = pytest.mark.integration
NODES = ",".join(f"127.0.0.1:{p}" for p in range(1, 7))  # never contacted: the manager must stop before


def _instance(root: Path) -> harness.Instance:
    harness.require_postgres()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": harness.PYTHONPATH,
        contract.Env.CLUSTER_NAME: harness.CLUSTER,
        contract.Env.SECRETS_DIR: str(harness.write_secrets(root)),
        contract.Env.STORAGE_NODES: NODES,
    }
    harness.chown_tree(root / "secrets")
    return harness.Instance("i0", root, 1, 1, env)


def _tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        h.update(str(p).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def test_missing_secret_key_exits_2_without_creating_data(bed_root: Path) -> None:
    inst = _instance(bed_root)
    (bed_root / "secrets" / contract.SecretsLayout.REPLICATION / contract.SecretsLayout.PASSWORD).unlink()
    done = inst.run_once(contract.ROLE_WRITER, 1)
    assert done.returncode == 2
    assert "secret replication/password missing" in done.stdout
    assert not (inst.data_root / "pgdata").exists()


def test_malformed_secret_exits_2(bed_root: Path) -> None:
    inst = _instance(bed_root)
    (bed_root / "secrets" / contract.SecretsLayout.APP / contract.SecretsLayout.USERNAME).write_text(
        "App User"
    )
    done = inst.run_once(contract.ROLE_WRITER, 1)
    assert done.returncode == 2
    assert "secret app/username 'App User' is not a plain lower-case identifier" in done.stdout


def test_data_directory_of_another_cluster_is_left_untouched(bed_root: Path) -> None:
    inst = _instance(bed_root)
    pgdata = inst.data_root / "pgdata"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("15\n")
    (pgdata / "quorumdb-cluster").write_text("someone-else\n")
    (pgdata / "postgresql.conf").write_text("# theirs\n")
    harness.chown_tree(inst.data_root)
    before = _tree_digest(inst.data_root)
    done = inst.run_once(contract.ROLE_WRITER, 1)
    assert done.returncode == 2
    assert "belongs to cluster 'someone-else', not 'audit': refusing to touch it" in done.stdout
    assert _tree_digest(inst.data_root) == before


def test_impossible_configuration_exits_2(bed_root: Path) -> None:
    inst = _instance(bed_root)
    config = bed_root / "config"
    config.mkdir()
    (config / contract.CONFIG_POSTGRESQL_CONF).write_text("work_mem = '8MB'\nsynchronous_commit = off\n")
    harness.chown_tree(config)
    done = inst.run_once(contract.ROLE_WRITER, 1, {contract.EnvInstance.CONFIG_DIR: str(config)})
    assert done.returncode == 2
    assert "postgresql.conf:2: synchronous_commit is managed by QuorumDB and cannot be set" in done.stdout
    assert not (inst.data_root / "pgdata").exists()


def test_reader_without_writer_endpoint_exits_2(bed_root: Path) -> None:
    done = _instance(bed_root).run_once(contract.ROLE_READER, 1)
    assert done.returncode == 2
    assert "a reader needs QUORUMDB_WRITER_ENDPOINT" in done.stdout
