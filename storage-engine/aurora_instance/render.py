"""PostgreSQL configuration files rendered from templates (package data) and user parameters. Pure.

Why: the settings that make every commit wait for the storage quorum, declare the writer's term to storage
nodes and let readers fall back to the quorum's WAL must be identical on every instance and never be
overridden by a user parameter. Rendering is a pure function of validated values, golden-tested.
It must not read or write files (``postgres.write_config`` does that).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import jinja2
from aurora_api import contract
from aurora_storage import quorum

from aurora_instance.settings import ConfigError

MANAGED = frozenset(
    {
        "listen_addresses", "port", "unix_socket_directories", "unix_socket_permissions", "cluster_name",
        "wal_level", "synchronous_commit", "synchronous_standby_names", "max_wal_senders",
        "max_replication_slots", "hot_standby", "restore_command", "primary_conninfo", "primary_slot_name",
        "recovery_target_timeline", "recovery_target", "recovery_target_lsn", "recovery_target_time",
        "recovery_target_xid", "recovery_target_name", "recovery_target_action", "archive_mode",
        "archive_command", "archive_timeout", "logging_collector", "data_directory", "hba_file", "ident_file",
        "include", "include_if_exists", "include_dir", "fsync", "full_page_writes", "wal_log_hints",
        "quorumdb.term", "quorumdb.cluster_name", "ssl", "ssl_cert_file", "ssl_key_file", "ssl_ca_file",
        "ssl_min_protocol_version",
    }
)  # fmt: skip
_PARAM_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:=\s*|\s+)(.*?)\s*$")

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("aurora_instance", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


def pgquote(value: str) -> str:
    """Quote a string as a postgresql.conf value."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


_env.filters["pgquote"] = pgquote


def parse_parameters(text: str, source: str) -> dict[str, str]:
    """Parse postgresql.conf syntax (``name = value``, ``#`` comments); reject managed names."""
    params: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _PARAM_RE.match(line)
        if m is None:
            raise ConfigError(f"{source}:{number}: cannot parse {raw!r} (expected name = value)")
        name, value = m.group(1).lower(), m.group(2)
        if not value.startswith("'") and "#" in value:
            value = value.split("#", 1)[0].strip()
        if not value:
            raise ConfigError(f"{source}:{number}: parameter {name} has no value")
        if name in MANAGED:
            raise ConfigError(f"{source}:{number}: {name} is managed by QuorumDB and cannot be set")
        params[name] = value
    return params


@dataclass(frozen=True)
class ConfigInputs:
    """Everything the managed configuration depends on."""

    role: str
    term: int
    cluster_name: str
    listen_address: str
    port: int
    socket_dir: str
    restore_command: str
    primary_conninfo: str
    max_wal_senders: int = 16
    max_replication_slots: int = 16
    synchronous: bool = True
    """False only while bootstrapping (no client can connect, storage nodes have no slots yet)."""
    archive_timeout: int = 0
    ssl_cert_file: str = ""
    """With a certificate (and ``ssl_key_file``): TLS on, and ``pg_hba_conf(tls=True)`` refuses plain TCP."""
    ssl_key_file: str = ""


def postgresql_conf(inputs: ConfigInputs) -> str:
    names = quorum.synchronous_standby_names() if inputs.synchronous else ""
    return _env.get_template("postgresql.conf.j2").render(**vars(inputs), synchronous_standby_names=names)


def user_conf(params: Mapping[str, str]) -> str:
    lines = ["# User parameters from the cluster ConfigMap, applied by the QuorumDB instance manager."]
    lines += [f"{name} = {value}" for name, value in sorted(params.items())]
    return "\n".join(lines) + "\n"


def pg_hba_conf(
    replication_user: str, clients: bool = True, tls: bool = False, token_roles: Sequence[str] = ()
) -> str:
    """Client access; ``clients=False`` admits only storage nodes and the manager (quorum recovery);
    ``tls``: every TCP connection (clients, readers, storage nodes) must be encrypted; ``token_roles`` log
    in only with a ServiceAccount token, through PAM (``token_login``)."""
    return _env.get_template("pg_hba.conf.j2").render(
        replication_user=replication_user, clients=clients, host="hostssl" if tls else "host", tls=tls,
        token_roles=",".join(f'"{r}"' for r in sorted(token_roles)), pam_service=contract.PAM_TOKEN_SERVICE,
    )  # fmt: skip
