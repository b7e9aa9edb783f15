"""Token login's decision (sans-IO) over the API server's TokenReview answer, its input checks, and the
pg_hba line and role list the instance manager derives from the mounted ``token-login.json``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from aurora_api import contract
from aurora_instance import files, render, token_login
from aurora_instance import settings as settings_mod
from aurora_instance.settings import ConfigError

REPORTER = contract.service_account_username("analytics", "reporter")
CONFIG = token_login.Config("quorumdb:db:demo", {"reporting": frozenset({REPORTER})})
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


def review(authenticated: bool = True, user: str = REPORTER, audiences: list[str] | None = None,
           error: str = "") -> dict[str, object]:  # fmt: skip
    status: dict[str, object] = {"authenticated": authenticated}
    if authenticated:
        status |= {"user": {"username": user}, "audiences": audiences or ["quorumdb:db:demo"]}
    if error:
        status["error"] = error
    return {"status": status}


def test_a_mapped_account_with_the_cluster_audience_is_admitted() -> None:
    got = token_login.verdict(CONFIG, "reporting", review())
    assert got.allowed and got.subject == REPORTER


@pytest.mark.parametrize(
    ("role", "answer", "reason"),
    [
        (
            "reporting",
            review(False, error="token has expired"),
            "rejected by the API server: token has expired",
        ),
        ("reporting", review(False), "not authenticated"),
        ("reporting", review(audiences=["other"]), "not issued for audience 'quorumdb:db:demo'"),
        (
            "reporting",
            review(user=contract.service_account_username("db", "intruder")),
            "is not mapped to role 'reporting'",
        ),
        ("app", review(), "does not log in with tokens"),
        ("reporting", {}, "no status"),
    ],
)
def test_everything_else_is_refused_with_its_reason(
    role: str, answer: dict[str, object], reason: str
) -> None:
    got = token_login.verdict(CONFIG, role, answer)
    assert not got.allowed and reason in got.reason


@pytest.mark.parametrize(
    ("token", "problem"),
    [("", "empty"), ("a.b", "not a JSON Web Token"), ("a.b.c d", "not a JSON Web Token"),
     ("a.b.c\n", "not a JSON Web Token"), ("x" * 20000, "longer than")],
)  # fmt: skip
def test_malformed_tokens_are_refused_before_any_request(token: str, problem: str, tmp_path: Path) -> None:
    assert problem in (token_login.malformed(token) or "")
    # check() answers without the API server (none exists here) and without reading a configuration.
    got = token_login.check("reporting", token, tmp_path, tmp_path)
    assert not got.allowed and problem in got.reason
    assert token_login.malformed(JWT) is None


def test_a_missing_configuration_or_service_account_refuses(tmp_path: Path) -> None:
    assert "not configured" in token_login.check("reporting", JWT, tmp_path, tmp_path).reason
    (tmp_path / contract.CONFIG_TOKEN_LOGIN).write_text(
        json.dumps({"audience": "a", "roles": {"reporting": []}})
    )
    got = token_login.check("reporting", JWT, tmp_path, tmp_path / "no-account")
    assert not got.allowed and "did not answer" in got.reason
    assert JWT not in got.reason


def test_the_manager_reads_the_roles_and_rejects_names_pg_hba_could_not_hold(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    env = {
        "QUORUMDB_ROLE": "writer",
        "QUORUMDB_CLUSTER_NAME": "c",
        "QUORUMDB_DATA_DIR": str(tmp_path / "data"),
    }
    s = dataclasses.replace(settings_mod.from_env(env), config_dir=tmp_path)
    assert files.token_roles(s) == ()
    path = tmp_path / contract.CONFIG_TOKEN_LOGIN
    path.write_text(json.dumps({"audience": "a", "roles": {"z_role": [REPORTER], "reporting": []}}))
    assert files.token_roles(s) == ("reporting", "z_role")
    path.write_text(json.dumps({"audience": "a", "roles": {'x" all trust': []}}))
    with pytest.raises(ConfigError, match="not plain lower-case identifiers"):
        files.token_roles(s)
    path.write_text("{")
    with pytest.raises(ConfigError):
        files.token_roles(s)


def test_token_roles_go_to_pam_before_the_password_rule() -> None:
    hba = render.pg_hba_conf("replicator", tls=True, token_roles=("reporting", "etl"))
    lines = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
    pam = lines.index(["hostssl", "all", '"etl","reporting"', "all", "pam", "pamservice=quorumdb-token"])
    scram = lines.index(["hostssl", "all", "all", "all", "scram-sha-256"])
    assert pam < scram
    assert lines[2] == ["hostnossl", "all", "all", "all", "reject"]
    assert "pam" not in render.pg_hba_conf("replicator", tls=True)
    assert "pam" not in render.pg_hba_conf("replicator", clients=False, tls=True, token_roles=("etl",))
