"""Start-up settings of the instance manager, read once from the pod's environment and files.

Why: every later decision depends on these values; reading them in one place, validated, with a clear error
naming the variable, turns a mis-rendered pod into a non-zero exit instead of a half-configured database.
Names come from ``aurora_api.contract`` only. It must not touch PostgreSQL or the network.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aurora_api import contract

PG_BIN_DEFAULT = Path("/usr/lib/postgresql/15/bin")


class ConfigError(ValueError):
    """The pod's configuration is missing or impossible; the manager exits non-zero without touching data."""


@dataclass(frozen=True)
class Settings:
    """Everything the manager needs from its environment, validated."""

    cluster_name: str
    """Cluster name; stamped into the data directory and declared to storage nodes."""
    instance_name: str
    """This instance's stable name (application_name towards the writer)."""
    data_root: Path
    """Volume root; PostgreSQL's data directory is ``data_root/pgdata``."""
    secrets_dir: Path
    """Mounted Secrets, laid out as ``contract.SecretsLayout``."""
    config_dir: Path | None
    """Mounted cluster ConfigMap with user PostgreSQL parameters (optional)."""
    podinfo_dir: Path | None
    """Downward-API labels/annotations (optional): live role and term."""
    initial_role: str
    """``contract.ROLE_WRITER`` or ``contract.ROLE_READER``: the role at first start-up."""
    initial_term: int
    """Term at start-up when no later term is known."""
    writer_endpoint: str | None
    """host:port of the writer, required for readers."""
    listen_address: str
    advertise_host: str
    """Host storage nodes reach this instance at when it is the writer."""
    postgres_port: int
    http_port: int
    reader_max_lag_seconds: float
    pg_bin: Path
    python: str
    """Interpreter that runs ``restore_command`` (this one)."""
    archive_timeout_s: int = 0
    """``archive_timeout`` of a writer: with an object store, a segment is sealed (and so archived) at
    most this long after a commit, which bounds how far the latest restorable time trails; 0 = off."""
    static_parameters: str = ""
    """User parameters that need a restart, as postgresql.conf lines (fixed for the pod's life)."""
    own_archive: bool = False
    """The cluster has an object store: readers seed from its base backups and fall back to its archive."""
    serverless: bool = False
    """Settings that follow memory are derived from the cgroup's memory limit (``capacity``)."""
    cgroup_root: Path = Path("/sys/fs/cgroup")
    tls_dir: Path | None = None
    """Mounted server certificate Secret (``tls.crt``, ``tls.key``, optional ``ca.crt``): with it PostgreSQL
    serves TLS and refuses unencrypted TCP connections (``tls``)."""

    @property
    def pgdata(self) -> Path:
        return self.data_root / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.data_root / "run"

    @property
    def wal_cache(self) -> Path:
        """WAL fetched from the storage quorum for one promotion; restore_command reads it first."""
        return self.data_root / "walcache"

    @property
    def wal_hold(self) -> Path:
        """While this file exists restore_command answers "absent" for anything not in ``wal_cache``, and
        a fetch from the quorum in flight gives up (``walfetch``)."""
        return self.wal_cache / ".hold"

    @property
    def state_file(self) -> Path:
        return self.data_root / "instance-state.json"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise ConfigError(f"{name}={raw!r} is not an integer") from err
    if value < 0:
        raise ConfigError(f"{name}={raw!r} must not be negative")
    return value


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "")
    return Path(raw) if raw else None


ARCHIVE_TIMEOUT_DEFAULT = 30
"""Seconds: the latest restorable time then trails commits by at most ~45 s (seal + upload + the
operator's 10 s proof), inside the 60 s promise, at the price of one 16 MiB segment per 30 s of activity."""


def from_env(env: Mapping[str, str] = os.environ) -> Settings:
    """Build and validate ``Settings``; ConfigError names the offending variable."""
    role = env.get(contract.EnvInstance.ROLE, "")
    if role not in (contract.ROLE_WRITER, contract.ROLE_READER):
        raise ConfigError(
            f"{contract.EnvInstance.ROLE}={role!r}: "
            f"expected {contract.ROLE_WRITER!r} or {contract.ROLE_READER!r}"
        )
    writer = env.get(contract.Env.WRITER_ENDPOINT) or None
    if role == contract.ROLE_READER and not writer:
        raise ConfigError(f"a reader needs {contract.Env.WRITER_ENDPOINT} (host:port of the writer)")
    if writer and (":" not in writer or not writer.rsplit(":", 1)[1].isdigit()):
        raise ConfigError(f"{contract.Env.WRITER_ENDPOINT}={writer!r} is not host:port")
    cluster = env.get(contract.Env.CLUSTER_NAME, "")
    if not cluster:
        raise ConfigError(f"{contract.Env.CLUSTER_NAME} is not set")
    lag_raw = env.get(contract.EnvInstance.READER_MAX_LAG_SECONDS, "10")
    try:
        lag = float(lag_raw)
    except ValueError as err:
        raise ConfigError(
            f"{contract.EnvInstance.READER_MAX_LAG_SECONDS}={lag_raw!r} is not a number"
        ) from err
    instance = (
        env.get(contract.EnvInstance.INSTANCE_NAME) or env.get(contract.Env.POD_NAME) or socket.gethostname()
    )
    return Settings(
        cluster_name=cluster,
        instance_name=instance,
        advertise_host=env.get(contract.EnvInstance.ADVERTISE_HOST) or instance,
        data_root=Path(env.get(contract.Env.DATA_DIR) or contract.PATH_DATA_DIR),
        secrets_dir=Path(env.get(contract.Env.SECRETS_DIR) or contract.PATH_SECRETS_DIR),
        config_dir=_path(env, contract.EnvInstance.CONFIG_DIR),
        static_parameters=env.get(contract.EnvInstance.STATIC_PARAMETERS, ""),
        own_archive=bool(env.get(contract.Env.S3_ENDPOINT) and env.get(contract.Env.S3_BUCKET)),
        serverless=env.get(contract.EnvInstance.SERVERLESS) == "true",
        podinfo_dir=_path(env, contract.Env.PODINFO_DIR),
        tls_dir=_path(env, contract.EnvInstance.TLS_DIR),
        initial_role=role,
        initial_term=_int(env, contract.EnvInstance.TERM, 1),
        writer_endpoint=writer,
        listen_address=env.get(contract.EnvInstance.LISTEN_ADDRESS) or "*",
        postgres_port=_int(env, contract.EnvInstance.POSTGRES_PORT, contract.POSTGRES_PORT),
        http_port=_int(env, contract.EnvInstance.HTTP_PORT, contract.INSTANCE_HTTP_PORT),
        reader_max_lag_seconds=lag,
        pg_bin=_path(env, contract.Env.PG_BIN_DIR) or PG_BIN_DEFAULT,
        python=sys.executable,
        archive_timeout_s=(
            _int(env, contract.EnvInstance.ARCHIVE_TIMEOUT, ARCHIVE_TIMEOUT_DEFAULT)
            if env.get(contract.Env.S3_ENDPOINT)
            else 0
        ),
    )
