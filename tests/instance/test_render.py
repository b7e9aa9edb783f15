"""Rendering: the managed settings that make commits wait for the quorum cannot be overridden."""

from __future__ import annotations

import pytest
from aurora_instance import render
from aurora_instance.settings import ConfigError


def inputs(**kw: object) -> render.ConfigInputs:
    base = dict(
        role="writer", term=4, cluster_name="c1", listen_address="*", port=5432, socket_dir="/run/x",
        restore_command='if [ -f "/c/%f" ]; then cp "/c/%f" "%p"; fi', primary_conninfo="",
    )  # fmt: skip
    base.update(kw)
    return render.ConfigInputs(**base)  # type: ignore[arg-type]


def test_writer_waits_for_four_of_six_and_declares_its_term() -> None:
    conf = render.postgresql_conf(inputs())
    assert (
        "synchronous_standby_names = 'ANY 4 (storage_0,storage_1,storage_2,storage_3,storage_4,storage_5)'"
        in conf
    )
    assert "synchronous_commit = on" in conf
    assert "quorumdb.term = '4'" in conf
    assert "quorumdb.cluster_name = 'c1'" in conf
    assert "recovery_target_timeline = 'latest'" in conf


def test_bootstrap_config_has_no_quorum_wait_and_no_tcp() -> None:
    conf = render.postgresql_conf(inputs(synchronous=False, listen_address=""))
    assert "synchronous_standby_names = ''" in conf
    assert "listen_addresses = ''" in conf


def test_values_are_quoted() -> None:
    assert render.pgquote("it's") == "'it''s'"
    conf = render.postgresql_conf(inputs(primary_conninfo="host=a password=x'y"))
    assert "primary_conninfo = 'host=a password=x''y'" in conf


def test_user_parameters_parse_and_managed_ones_are_refused() -> None:
    params = render.parse_parameters("# c\nwork_mem = '8MB'\nshared_buffers 256MB  # trailing\n", "cm")
    assert params == {"work_mem": "'8MB'", "shared_buffers": "256MB"}
    with pytest.raises(ConfigError, match="cm:1: synchronous_commit is managed"):
        render.parse_parameters("synchronous_commit = off", "cm")
    with pytest.raises(ConfigError, match="cannot parse"):
        render.parse_parameters("= 3", "cm")


def test_hba_can_shut_clients_out_but_not_storage_nodes() -> None:
    closed = render.pg_hba_conf("replicator", clients=False)
    assert "host    replication  replicator  all  scram-sha-256" in closed
    assert "host    all" not in closed
    assert "host    all          all" in render.pg_hba_conf("replicator")


def test_with_a_certificate_tls_is_on_and_plain_tcp_is_refused_first() -> None:
    conf = render.postgresql_conf(inputs(ssl_cert_file="/d/tls/tls.crt", ssl_key_file="/d/tls/tls.key"))
    assert "ssl = on" in conf and "ssl_cert_file = '/d/tls/tls.crt'" in conf
    assert "ssl_min_protocol_version = 'TLSv1.2'" in conf
    assert "ssl = on" not in render.postgresql_conf(inputs())
    hba = [line.split() for line in render.pg_hba_conf("replicator", tls=True).splitlines()]
    rules = [line for line in hba if line and not line[0].startswith("#") and line[0] != "local"]
    # the reject comes before any rule that could admit a plain connection; every admitting rule needs TLS,
    assert rules[0] == ["hostnossl", "all", "all", "all", "reject"], rules
    assert {r[0] for r in rules[1:]} == {"hostssl"}, rules
    # and the local socket (the manager's own) is unaffected.
    assert ["local", "all", "all", "trust"] in hba
    with pytest.raises(ConfigError, match="managed"):
        render.parse_parameters("ssl = off", "cm")
