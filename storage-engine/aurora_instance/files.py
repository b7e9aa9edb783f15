"""Files the instance manager owns on the data volume: configuration, password file, identity stamp, state.

Why: which cluster a data directory belongs to, which role and term the instance last ran with, and the
rendered configuration must survive restarts and be written atomically, so a crash between two writes never
leaves a half-written file that changes the role. It must not decide anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from aurora_api import capacity, contract
from aurora_storage import fsutil

from aurora_instance import accounts, load, render, tls, token_login
from aurora_instance.accounts import Credentials
from aurora_instance.settings import ConfigError, Settings

STAMP = "quorumdb-cluster"  # inside PGDATA, so base backups carry it to readers
USER_CONF = "quorumdb-user.conf"


def write(path: Path, text: str, mode: int = 0o600) -> None:
    fsutil.write_atomic(path, text.encode())
    os.chmod(path, mode)


def passfile(settings: Settings) -> Path:
    return settings.data_root / "pgpass"


def write_passfile(settings: Settings, creds: Credentials) -> None:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace(":", "\\:")

    lines = [f"*:*:*:{esc(a.username)}:{esc(a.password)}" for a in (creds.replication, creds.superuser)]
    write(passfile(settings), "\n".join(lines) + "\n")


def read_stamp(pgdata: Path) -> str | None:
    try:
        return (pgdata / STAMP).read_text().strip()
    except FileNotFoundError:
        return None


def check_data_dir(settings: Settings) -> bool:
    """True if PGDATA holds this cluster's data, False if there is none; ConfigError if foreign or unknown."""
    pgdata = settings.pgdata
    if not pgdata.exists() or not any(pgdata.iterdir()):
        return False
    if not (pgdata / "PG_VERSION").exists():
        raise ConfigError(f"{pgdata} is not empty and not a PostgreSQL data directory: refusing to touch it")
    stamp = read_stamp(pgdata)
    if stamp != settings.cluster_name:
        raise ConfigError(
            f"{pgdata} belongs to cluster {stamp!r}, not {settings.cluster_name!r}: refusing to touch it"
        )
    return True


@dataclass(frozen=True)
class State:
    """Role and term the instance last ran with (or was told by the control plane)."""

    role: str
    term: int
    writer: str | None


def load_state(settings: Settings) -> State | None:
    try:
        raw = json.loads(settings.state_file.read_text())
        return State(str(raw["role"]), int(raw["term"]), raw.get("writer"))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"state file {settings.state_file} is malformed: {err}") from err


def save_state(settings: Settings, state: State) -> None:
    write(settings.state_file, json.dumps({"role": state.role, "term": state.term, "writer": state.writer}))


def pause_marker(settings: Settings) -> Path:
    """Present while the instance is paused: a manager restarted while paused keeps PostgreSQL stopped."""
    return settings.data_root / "paused"


def load_paused(settings: Settings) -> bool:
    return pause_marker(settings).exists()


def save_paused(settings: Settings, paused: bool) -> None:
    if paused:
        write(pause_marker(settings), "paused until a client connects\n")
    else:
        pause_marker(settings).unlink(missing_ok=True)


def user_parameters(settings: Settings) -> dict[str, str]:
    """User parameters: the restart-only ones from the pod's environment, the reloadable ones from the
    mounted ConfigMap (re-read on every cycle), over (serverless) the settings that follow the cgroup's
    memory limit, so an in-place resize is a change like any other and is reloaded; ConfigError on a bad
    line."""
    static = render.parse_parameters(settings.static_parameters, contract.EnvInstance.STATIC_PARAMETERS)
    if settings.serverless:
        limit = load.read(settings.cgroup_root).memory_limit_bytes
        live = capacity.live_parameters(limit) if limit else {}
        static = {name: f"'{value}'" for name, value in live.items()} | static
    if settings.config_dir is None:
        return static
    path = settings.config_dir / contract.CONFIG_POSTGRESQL_CONF
    try:
        text = path.read_text()
    except FileNotFoundError:
        return static
    return static | render.parse_parameters(text, str(path))


def token_roles(settings: Settings) -> tuple[str, ...]:
    """Roles that log in with ServiceAccount tokens (the mounted ``token-login.json``; none without it),
    re-read on every cycle like the parameters; ConfigError on a file the operator would not render."""
    if settings.config_dir is None:
        return ()
    path = settings.config_dir / contract.CONFIG_TOKEN_LOGIN
    try:
        config = token_login.parse_config(path.read_text())
    except FileNotFoundError:
        return ()
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from err
    bad = [role for role in config.roles if not accounts.NAME_RE.match(role)]
    if bad:
        raise ConfigError(f"{path}: role names {bad} are not plain lower-case identifiers")
    return tuple(sorted(config.roles))


def restore_command(settings: Settings, *, archive: bool = False) -> str:
    """Serve from the promotion's WAL cache (or its list of files known absent), else ask the quorum; a
    fetch from the quorum gives up when a promotion creates the hold file (``walfetch``). With ``archive``
    (a reader of a cluster with an object store), WAL the quorum no longer holds (a reader seeded from an
    older base backup, or one that fell far behind) comes from the cluster's own archive, inside the
    same abandonable fetch."""
    c, hold = settings.wal_cache, settings.wal_hold
    flag = "--archive " if archive else ""
    return (
        f'if [ -f "{c}/%f" ]; then cp "{c}/%f" "%p"; '
        f'elif [ -f "{c}/%f.absent" ] || [ -f "{hold}" ]; then exit 1; '
        f'else exec {settings.python} -m aurora_instance.walfetch {flag}"%f" "%p" "{hold}"; fi'
    )


def write_config(
    settings: Settings,
    creds: Credentials,
    *,
    role: str,
    term: int,
    writer: str | None,
    params: dict[str, str],
    clients: bool = True,
    synchronous: bool = True,
    token_roles: tuple[str, ...] = (),
    pgdata: Path | None = None,
) -> None:
    """Render postgresql.conf, pg_hba.conf, the user parameters and (readers) standby.signal into PGDATA."""
    pgdata = pgdata or settings.pgdata
    certs = tls.install(settings)
    conninfo = ""
    if role == contract.ROLE_READER and writer:
        host, port = writer.rsplit(":", 1)
        conninfo = (
            f"host={host} port={port} user={creds.replication.username} passfile={passfile(settings)} "
            f"application_name={settings.instance_name} connect_timeout=2 "
            "keepalives_idle=5 keepalives_interval=2"
        )
        if certs is not None:
            # The writer must present a certificate of the cluster's CA (its host name is an address the
            # operator chose, so the CA, not the name, is what is checked); without a CA: encrypted only.
            verify = f"sslmode=verify-ca sslrootcert={certs.ca}" if certs.ca else "sslmode=require"
            conninfo += " " + verify
    restore = restore_command(settings, archive=role == contract.ROLE_READER and settings.own_archive)
    inputs = render.ConfigInputs(
        role=role, term=term, cluster_name=settings.cluster_name,
        listen_address=settings.listen_address if synchronous else "", port=settings.postgres_port,
        socket_dir=str(settings.socket_dir), restore_command=restore, primary_conninfo=conninfo,
        synchronous=synchronous, archive_timeout=settings.archive_timeout_s,
        ssl_cert_file=str(certs.cert) if certs else "", ssl_key_file=str(certs.key) if certs else "",
    )  # fmt: skip
    write(pgdata / "postgresql.conf", render.postgresql_conf(inputs))
    write(
        pgdata / "pg_hba.conf",
        render.pg_hba_conf(
            creds.replication.username, clients=clients, tls=certs is not None, token_roles=token_roles
        ),
    )
    write(pgdata / USER_CONF, render.user_conf(params))
    write(pgdata / "postgresql.auto.conf", "# Not used: QuorumDB renders postgresql.conf.\n")
    signal_file = pgdata / "standby.signal"
    if role == contract.ROLE_READER:
        signal_file.touch()
    else:
        signal_file.unlink(missing_ok=True)
