"""Storage node settings, read once at start-up from the environment (pods) or arguments (tests).

Why it exists: one frozen object with a docstring per field instead of ``os.environ`` lookups scattered
through the drivers. It must not start anything or touch the data directory.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aurora_api import contract, control, https
from aurora_api.contract import SecretsLayout

from aurora_storage import envelope, fsutil
from aurora_storage import s3 as s3mod

DEFAULT_PG_BIN = Path("/usr/lib/postgresql/15/bin")
RECEIVERS = ("walrecv", "pg_receivewal")


@dataclass(frozen=True)
class NodeConfig:
    ordinal: int
    """This node's ordinal 0..5: slot ``storage_<ordinal>``, archive ownership, peer list position."""
    data_dir: Path
    """Owned by this node: ``wal/``, ``manifest/``, ``state.json``..."""
    listen: str
    port: int
    peers: tuple[str, ...]
    """Base URLs of all six nodes in ordinal order (this node's own entry is skipped)."""
    writer_conninfo: str | None
    """Default libpq conninfo of the writer; ``PUT /v1/term`` may replace it."""
    cluster_name: str | None
    pg_bin_dir: Path
    s3: s3mod.StoreConfig | None
    keep_segments: int = 64
    """Completed, archived segments kept locally for peers' repair (the repair window)."""
    archive_takeover_s: float = 30.0
    """A non-owner uploads a segment only after it has been complete this long and is still missing."""
    status_interval_s: int = 10
    """Receiver's idle feedback interval; acknowledgements of new WAL are sent at once regardless."""
    receiver: str = "walrecv"
    """``walrecv`` (quorumdb-walrecv, see docs/storage-engine.md) or ``pg_receivewal`` (the baseline)."""
    walrecv_bin: Path = Path("quorumdb-walrecv")
    linger_us: int = 0
    """quorumdb-walrecv's group-flush wait while the stream is busy (0: flush every batch at once)."""
    control_tokens: control.Tokens = field(default=control.fixed(), compare=False, repr=False)
    """The control tokens in force (``aurora_api.control.mounted``): what a term change must carry."""
    """What a term change must carry (``aurora_api.control``); read from the secrets directory."""

    @property
    def name(self) -> str:
        return f"{contract.STORAGE_SLOT_PREFIX}{self.ordinal}"

    def peer_urls(self) -> dict[int, str]:
        return {i: url for i, url in enumerate(self.peers) if i != self.ordinal}


def _key(env: Mapping[str, str]) -> bytes | None:
    """The archive key; a malformed one is logged and treated as missing (uploads are then refused with
    that reason) rather than keeping the storage node, and so the cluster's writes, down."""
    try:
        return s3mod.key_from_env(env)
    except envelope.EnvelopeError as err:
        logging.getLogger(__name__).error("%s: archive uploads are refused until it is fixed", err)
        return None


def _ordinal(env: Mapping[str, str]) -> int | None:
    if contract.EnvStorage.ORDINAL in env:
        return int(env[contract.EnvStorage.ORDINAL])
    m = re.search(r"-(\d+)$", env.get(contract.Env.POD_NAME, ""))
    return int(m.group(1)) if m else None


def from_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> NodeConfig:
    env = os.environ if env is None else env
    p = argparse.ArgumentParser(prog="quorumdb-storage-node", description="QuorumDB storage node")
    p.add_argument("--ordinal", type=int, default=_ordinal(env))
    p.add_argument("--data-dir", default=env.get(contract.Env.DATA_DIR, contract.PATH_DATA_DIR))
    p.add_argument("--listen", default=env.get(contract.EnvStorage.LISTEN_ADDRESS, "0.0.0.0"))
    p.add_argument(
        "--port", type=int, default=int(env.get(contract.EnvStorage.HTTP_PORT, contract.STORAGE_HTTP_PORT))
    )
    p.add_argument(
        "--peers", default=env.get(contract.Env.STORAGE_NODES, ""), help="host:port,... in ordinal order"
    )
    p.add_argument("--writer", default=env.get(contract.EnvStorage.WRITER_CONNINFO))
    p.add_argument("--cluster-name", default=env.get(contract.Env.CLUSTER_NAME))
    p.add_argument("--pg-bin-dir", default=env.get(contract.Env.PG_BIN_DIR, str(DEFAULT_PG_BIN)))
    p.add_argument("--keep-segments", type=int, default=int(env.get(contract.EnvStorage.KEEP_SEGMENTS, "64")))
    p.add_argument("--archive-takeover", type=float, default=30.0)
    p.add_argument("--receiver", choices=RECEIVERS, default=env.get(contract.EnvStorage.RECEIVER, "walrecv"))
    walrecv = env.get(contract.EnvStorage.WALRECV_BIN) or shutil.which("quorumdb-walrecv")
    p.add_argument("--walrecv-bin", default=walrecv or "quorumdb-walrecv")
    p.add_argument("--linger-us", type=int, default=int(env.get(contract.EnvStorage.LINGER_US, "0")))
    p.add_argument("--log-level", default="INFO")
    a = p.parse_args(argv)
    if a.ordinal is None:
        p.error(f"--ordinal or {contract.EnvStorage.ORDINAL} is required")
    writer = a.writer
    if writer is None and env.get(contract.Env.WRITER_ENDPOINT):
        host, _, port = env[contract.Env.WRITER_ENDPOINT].rpartition(":")
        writer = f"host={host} port={port}"
    s3 = s3mod.config_from_env(env, _key)
    peers = tuple(https.url(x.strip(), env) for x in a.peers.split(",") if x.strip())
    try:
        tokens = control.mounted(Path(env.get(contract.Env.SECRETS_DIR) or contract.PATH_SECRETS_DIR))
    except ValueError as err:
        p.error(str(err))
    return NodeConfig(
        ordinal=a.ordinal,
        data_dir=Path(a.data_dir),
        listen=a.listen,
        port=a.port,
        peers=peers,
        writer_conninfo=writer,
        cluster_name=a.cluster_name,
        pg_bin_dir=Path(a.pg_bin_dir),
        s3=s3,
        keep_segments=a.keep_segments,
        archive_takeover_s=a.archive_takeover,
        receiver=a.receiver,
        walrecv_bin=Path(a.walrecv_bin),
        linger_us=a.linger_us,
        control_tokens=tokens,
    )


PASSFILE = "pgpass"


def install_passfile(env: MutableMapping[str, str], data_dir: Path) -> Path | None:
    """Give libpq (the WAL receiver, the writer probe) the replication account's password as a password file
    built from the mounted Secret, and point ``PGPASSFILE`` at it: the password is then in no environment
    and no conninfo. Nothing when the caller set ``PGPASSWORD``/``PGPASSFILE`` itself (local processes) or
    no account is mounted. The file is then kept current by ``follow_passfile``."""
    if env.get(contract.EnvStorage.LIBPQ_PASSWORD) or env.get("PGPASSFILE"):
        return None
    account = secrets_account(env)
    path = data_dir / PASSFILE
    if not refresh_passfile(account, path):
        return None
    env["PGPASSFILE"] = str(path)
    return path


def writer_tls(ca_file: str) -> dict[str, str]:
    """libpq's environment for the connections to the writer (the WAL receiver, pg_receivewal, the probe).

    Set through libpq's own variables rather than each conninfo, so a conninfo pushed with a term change
    (``PUT /v1/term``) is held to the same rule. With the cluster's CA mounted: ``verify-ca`` (the writer
    is reached at whatever name the operator or the writer chose, and the CA is the cluster's own, so it is
    the chain, not the name, that identifies it, as for readers); without it (a user's Secret with no
    ``ca.crt``, or not synced yet): ``require``, encrypted only.
    """
    if Path(ca_file).is_file():
        return {"PGSSLMODE": "verify-ca", "PGSSLROOTCERT": ca_file}
    return {"PGSSLMODE": "require"}


def verify_writer(env: MutableMapping[str, str]) -> str | None:
    """Apply ``writer_tls`` when the cluster serves TLS; returns the CA file to follow (``follow_writer_ca``),
    or None when TLS is off or the caller set ``PGSSLMODE`` itself (local processes)."""
    ca_file = env.get(contract.EnvStorage.WRITER_CA_FILE)
    if not ca_file or env.get("PGSSLMODE"):
        return None
    env.update(writer_tls(ca_file))
    return ca_file


def secrets_account(env: Mapping[str, str]) -> Path:
    """Where the replication account's Secret is mounted."""
    return Path(env.get(contract.Env.SECRETS_DIR) or contract.PATH_SECRETS_DIR) / SecretsLayout.REPLICATION


def refresh_passfile(account: Path, path: Path) -> bool:
    """(Re)write ``path`` from the account mounted at ``account`` when its content differs; False when no
    account is mounted. A rotated password reaches the mount when the kubelet syncs the Secret; libpq reads
    the file at each connection, so the next reconnect uses it (open streams continue)."""
    try:
        user = (account / SecretsLayout.USERNAME).read_text().strip()
        password = (account / SecretsLayout.PASSWORD).read_text().strip()
    except FileNotFoundError:
        return False

    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace(":", "\\:")

    content = f"*:*:*:{esc(user)}:{esc(password)}\n".encode()
    try:
        if path.read_bytes() == content:
            return True
    except FileNotFoundError:
        pass
    fsutil.write_atomic(path, content)
    os.chmod(path, 0o600)
    return True


def log_level(argv: Sequence[str] | None = None) -> str:
    args = list(argv or [])
    if "--log-level" in args:
        return args[args.index("--log-level") + 1]
    return "INFO"
