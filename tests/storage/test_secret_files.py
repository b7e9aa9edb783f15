"""Secrets reach processes as files: ``<VAR>_FILE`` values, and the storage node's libpq password file;
the node's libpq checks the writer by the cluster's CA."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from aurora_api import contract, secretfiles
from aurora_storage.node import config, housekeeping


def test_a_value_comes_from_the_variable_else_from_the_file_it_names(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cr3t\n")
    assert secretfiles.read({"K": "direct", "K_FILE": str(tmp_path / "secret")}, "K") == "direct"
    assert secretfiles.read({"K_FILE": str(tmp_path / "secret")}, "K") == "s3cr3t"
    # a missing optional Secret reads as unset, like an unset variable.
    assert secretfiles.read({"K_FILE": str(tmp_path / "absent")}, "K") == ""
    assert secretfiles.read({}, "K") == ""


def test_the_storage_node_writes_a_private_password_file_from_the_mounted_account(tmp_path: Path) -> None:
    account = tmp_path / "secrets" / "replication"
    account.mkdir(parents=True)
    (account / "username").write_text("replicator")
    (account / "password").write_text("pa:ss\\word")
    (tmp_path / "data").mkdir()
    env = {"QUORUMDB_SECRETS_DIR": str(tmp_path / "secrets")}
    path = config.install_passfile(env, tmp_path / "data")
    assert path is not None and env["PGPASSFILE"] == str(path)
    assert path.read_text() == "*:*:*:replicator:pa\\:ss\\\\word\n"  # libpq's escapes
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A password given by the caller (a local process) is left alone.
    assert config.install_passfile({"PGPASSWORD": "x", **env}, tmp_path / "data") is None


def test_the_password_file_follows_a_rotated_password_and_is_left_alone_otherwise(tmp_path: Path) -> None:
    account = tmp_path / "secrets" / "replication"
    account.mkdir(parents=True)
    (account / "username").write_text("replicator")
    (account / "password").write_text("first-password")
    (tmp_path / "data").mkdir()
    path = config.install_passfile({"QUORUMDB_SECRETS_DIR": str(tmp_path / "secrets")}, tmp_path / "data")
    assert path is not None
    before = path.stat().st_ino
    assert config.refresh_passfile(account, path)
    assert path.stat().st_ino == before  # same content: the file is left as it is
    (account / "password").write_text("second-password\n")  # what the kubelet does on a rotation
    assert config.refresh_passfile(account, path)
    assert path.read_text() == "*:*:*:replicator:second-password\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not config.refresh_passfile(tmp_path / "secrets" / "absent", tmp_path / "data" / "other")


def test_libpq_checks_the_writers_certificate_when_the_cluster_ca_is_mounted(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    env = {contract.EnvStorage.WRITER_CA_FILE: str(ca)}
    # TLS on, CA not (yet) in the mount: encrypted only,
    assert config.verify_writer(env) == str(ca) and env["PGSSLMODE"] == "require"
    assert "PGSSLROOTCERT" not in env
    # then the CA synced into the mount: the next connection checks the chain.
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    asyncio.run(_one_follow_pass(env, str(ca)))
    assert env["PGSSLMODE"] == "verify-ca" and env["PGSSLROOTCERT"] == str(ca)
    # TLS off, or a caller that chose its own mode (local processes): left alone.
    assert config.verify_writer({}) is None
    mine = {contract.EnvStorage.WRITER_CA_FILE: str(ca), "PGSSLMODE": "disable"}
    assert config.verify_writer(mine) is None and mine["PGSSLMODE"] == "disable"


async def _one_follow_pass(env: dict[str, str], ca_file: str) -> None:
    task = asyncio.create_task(housekeeping.follow_writer_ca(env, ca_file, period=0.01))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if env["PGSSLMODE"] == "verify-ca":
            break
    task.cancel()
