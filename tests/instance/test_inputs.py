"""Bad input is a clear ConfigError naming the culprit, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from aurora_api import contract
from aurora_instance import accounts, files, settings, waldump
from aurora_instance.settings import ConfigError

ENV = {
    contract.EnvInstance.ROLE: "reader",
    contract.Env.WRITER_ENDPOINT: "w:5432",
    contract.Env.CLUSTER_NAME: "c1",
}


def test_settings_validate_role_writer_and_numbers() -> None:
    s = settings.from_env(ENV)
    assert (s.initial_role, s.writer_endpoint, s.postgres_port) == ("reader", "w:5432", 5432)
    with pytest.raises(ConfigError, match="QUORUMDB_ROLE='boss'"):
        settings.from_env({**ENV, contract.EnvInstance.ROLE: "boss"})
    with pytest.raises(ConfigError, match="a reader needs QUORUMDB_WRITER_ENDPOINT"):
        settings.from_env({k: v for k, v in ENV.items() if k != contract.Env.WRITER_ENDPOINT})
    with pytest.raises(ConfigError, match="not host:port"):
        settings.from_env({**ENV, contract.Env.WRITER_ENDPOINT: "w"})
    with pytest.raises(ConfigError, match="QUORUMDB_POSTGRES_PORT='x'"):
        settings.from_env({**ENV, contract.EnvInstance.POSTGRES_PORT: "x"})


def _secrets(base: Path, **override: str) -> Path:
    L = contract.SecretsLayout
    values = {
        f"{L.SUPERUSER}/{L.USERNAME}": "su", f"{L.SUPERUSER}/{L.PASSWORD}": "password-1",
        f"{L.REPLICATION}/{L.USERNAME}": "rep", f"{L.REPLICATION}/{L.PASSWORD}": "password-2",
        f"{L.APP}/{L.USERNAME}": "app", f"{L.APP}/{L.PASSWORD}": "password-3",
        f"{L.APP}/{L.DATABASE}": "appdb",
        **override,
    }  # fmt: skip
    for key, value in values.items():
        if value is not None:
            (base / key).parent.mkdir(parents=True, exist_ok=True)
            (base / key).write_text(value)
    return base


def test_secrets_load_and_each_defect_is_named(tmp_path: Path) -> None:
    creds = accounts.load(_secrets(tmp_path / "ok"))
    assert (creds.superuser.username, creds.app_database) == ("su", "appdb")
    with pytest.raises(ConfigError, match="does not exist"):
        accounts.load(tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"replication/password .* is empty"):
        accounts.load(_secrets(tmp_path / "empty", **{"replication/password": ""}))
    with pytest.raises(ConfigError, match="not a plain lower-case identifier"):
        accounts.load(_secrets(tmp_path / "name", **{"app/username": "Robert'); DROP"}))
    with pytest.raises(ConfigError, match="shorter than 8"):
        accounts.load(_secrets(tmp_path / "short", **{"app/password": "x"}))
    with pytest.raises(ConfigError, match="must differ"):
        accounts.load(_secrets(tmp_path / "same", **{"app/username": "su"}))


def test_foreign_or_unknown_data_directory_is_refused(tmp_path: Path) -> None:
    s = settings.from_env({**ENV, contract.Env.DATA_DIR: str(tmp_path)})
    assert files.check_data_dir(s) is False
    s.pgdata.mkdir()
    (s.pgdata / "somefile").write_text("x")
    with pytest.raises(ConfigError, match="not a PostgreSQL data directory"):
        files.check_data_dir(s)
    (s.pgdata / "PG_VERSION").write_text("15")
    (s.pgdata / files.STAMP).write_text("other\n")
    with pytest.raises(ConfigError, match="belongs to cluster 'other', not 'c1'"):
        files.check_data_dir(s)
    (s.pgdata / files.STAMP).write_text("c1\n")
    assert files.check_data_dir(s) is True


def test_waldump_output_parsing() -> None:
    out = (
        "rmgr: Heap        len (rec/tot):     54/    54, tx:        735, "
        "lsn: 0/0300A1B8, prev 0/0300A180, desc: x\n"
        "rmgr: Transaction len (rec/tot):     34/    34, tx:        735, "
        "lsn: 0/0300A1F0, prev 0/0300A1B8, desc: C\n"
    )
    assert waldump.parse(out) == 0x0300A1F0
    assert waldump.parse("") is None


# Made by PostgreSQL 15 itself: CREATE ROLE alice PASSWORD 'correct horse battery'; SELECT rolpassword ...
ALICE_VERIFIER = (
    "SCRAM-SHA-256$4096:xEi81iD5ZYUGl+gqFEnN/A==$qXCH4zS4dmPzcRpjF05tWLC4SiEvdCR1JMW0APDUGyY="
    ":1J8z+6dBhp7ffW4yD4nqtfDD5cUS545bNxWtxhvmbeE="
)


def test_a_stored_scram_verifier_matches_its_password_only() -> None:
    assert accounts.scram_matches(ALICE_VERIFIER, "correct horse battery")
    assert not accounts.scram_matches(ALICE_VERIFIER, "correct horse battery ")
    assert not accounts.scram_matches(ALICE_VERIFIER, "")
    # Not a SCRAM verifier (md5, none, damaged): never a match, never an exception.
    for other in (
        "md5" + "0" * 32,
        "",
        "SCRAM-SHA-256$x:y$z:w",
        "SCRAM-SHA-256$4096:!!$a:b",
        "SCRAM-SHA-1$1:AA==$AA==:AA==",
    ):
        assert not accounts.scram_matches(other, "correct horse battery")
