"""A one-host QuorumDB data plane for instance-manager tests: instance "pods", six storage nodes.

Why: the acceptance criteria are about real processes (SIGKILL, pg_rewind, timelines), so each instance is a
real ``quorumdb-instance`` process running as user ``postgres`` with its own volume, and the storage quorum is
six real ``aurora_storage`` node processes (the shared ``StorageCluster`` fixture class). The test plays the
control plane: it raises terms through the instance HTTP API exactly as the operator does.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import psycopg
from aurora_api import contract, https
from aurora_api import control as api_control
from aurora_operator import certs

from tests.fixtures import availability, control
from tests.fixtures.postgres import PG_BIN, PgCluster
from tests.fixtures.storage import StorageCluster

PG_USER = "postgres"
SUPERUSER, REPLICATION, APP = (
    ("dbadmin", "S3cret-su-pw"),
    ("replicator", "S3cret-repl-pw"),
    ("app", "S3cret-app-pw"),
)
CLUSTER = "audit"
REPO = Path(__file__).resolve().parents[2]
# The instance manager runs as ``postgres`` and PostgreSQL runs its restore_command with the same interpreter:
# it must be one ``postgres`` can execute (the venv's may live under /root). Same minor version as the venv.
PYTHON = os.environ.get("QUORUMDB_TEST_PYTHON") or (
    "/usr/bin/python3.11" if Path("/usr/bin/python3.11").exists() else sys.executable
)
_CODE_PATHS = [
    *(p for p in sys.path if p.endswith("site-packages") and ".venv" in p),
    str(REPO / "operator"),
    str(REPO / "storage-engine"),
]


def _postgres_can_read(path: str) -> bool:
    probe = ["setpriv", "--reuid", PG_USER, "--regid", PG_USER, "--init-groups", "test", "-r", path]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def _readable_pythonpath() -> str:
    """The code paths as ``postgres`` can read them: as they are, or (a checkout under /root, say) a copy."""
    if all(_postgres_can_read(p) for p in _CODE_PATHS):
        return os.pathsep.join(_CODE_PATHS)
    stage = Path(tempfile.mkdtemp(prefix="quorumdb-test-pythonpath-"))
    atexit.register(shutil.rmtree, stage, True)
    copies = []
    for i, src in enumerate(_CODE_PATHS):
        dst = stage / str(i)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        copies.append(str(dst))
    for p in [stage, *stage.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o755 if p.is_dir() else p.stat().st_mode | 0o644)
    return os.pathsep.join(copies)


PYTHONPATH = _readable_pythonpath()


def chown_tree(path: Path) -> None:
    pw = pwd.getpwnam(PG_USER)
    for p in [path, *path.rglob("*")]:
        os.chown(p, pw.pw_uid, pw.pw_gid)


def write_control_certificate(root: Path) -> Path:
    """The control certificate's Secret as a pod mounts it (from the operator's own issuing code)."""
    now = datetime.datetime.now(datetime.UTC)
    ca = certs.issue_ca("bed-ca", now)
    pair = certs.issue_server(ca, ["bed.control.quorumdb.internal"], now)
    base = root / "control-tls"
    base.mkdir()
    files = {contract.TLS_CERT: pair.cert, contract.TLS_KEY: pair.key, contract.TLS_CA: ca.cert}
    for name, body in files.items():
        (base / name).write_bytes(body)
    (base / contract.TLS_KEY).chmod(0o600)
    return base


def write_secrets(root: Path) -> Path:
    L = contract.SecretsLayout
    base = root / "secrets"
    for account, (user, password) in ((L.SUPERUSER, SUPERUSER), (L.REPLICATION, REPLICATION), (L.APP, APP)):
        (base / account).mkdir(parents=True, exist_ok=True)
        (base / account / L.USERNAME).write_text(user)
        (base / account / L.PASSWORD).write_text(password + "\n")
    (base / L.APP / L.DATABASE).write_text("appdb")
    control.write_token(base)
    return base


class Instance:
    """One instance "pod": a ``quorumdb-instance`` process (PID 1 stand-in) and its volume."""

    def __init__(self, name: str, root: Path, pg_port: int, http_port: int, base_env: dict[str, str]) -> None:
        self.name, self.root, self.pg_port, self.http_port = name, root, pg_port, http_port
        self.base_env = base_env
        self.proc: subprocess.Popen[bytes] | None = None
        self.data_root = root / name / "volume"
        self.log_path = root / f"{name}.log"
        token = api_control.read(Path(base_env[contract.Env.SECRETS_DIR]))
        self.http = httpx.Client(
            base_url=f"{https.scheme(base_env)}://127.0.0.1:{http_port}", timeout=5,
            headers=api_control.headers(token), verify=https.client_context(base_env) or True,
        )  # fmt: skip

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.pg_port}"

    def start(self, role: str, term: int, writer: str | None = None, **extra: str) -> None:
        env = {
            **self.base_env,
            contract.EnvInstance.ROLE: role,
            contract.EnvInstance.TERM: str(term),
            contract.EnvInstance.INSTANCE_NAME: self.name,
            contract.Env.DATA_DIR: str(self.data_root),
            contract.EnvInstance.POSTGRES_PORT: str(self.pg_port),
            contract.EnvInstance.HTTP_PORT: str(self.http_port),
            contract.EnvInstance.LISTEN_ADDRESS: "127.0.0.1",
            contract.EnvInstance.ADVERTISE_HOST: "127.0.0.1",
            **extra,
        }
        if writer:
            env[contract.Env.WRITER_ENDPOINT] = writer
        self.data_root.parent.mkdir(parents=True, exist_ok=True)
        chown_tree(self.data_root.parent)
        log = self.log_path.open("ab")
        cmd = ["setpriv", "--reuid", PG_USER, "--regid", PG_USER, "--init-groups",
               PYTHON, "-m", "aurora_instance.main"]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def run_once(
        self, role: str, term: int, extra: dict[str, str] | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run the manager expecting it to exit (bad input tests)."""
        self.start(role, term, **(extra or {}))
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self.proc = None
        return subprocess.CompletedProcess([], code, self.log_path.read_text(errors="replace"), "")

    @property
    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_root / "pgdata" / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def kill_postgres(self) -> None:
        """SIGKILL the postmaster and every backend, leaving the manager alive (a PostgreSQL crash)."""
        self.kill(manager=False)

    def kill(self, manager: bool = True) -> None:
        """SIGKILL the manager, the postmaster and every backend at once: the pod dies like a machine."""
        pids = [self.proc.pid] if self.proc and manager else []
        pm = self.postmaster_pid
        if pm is not None:
            shim = PgCluster(self.data_root.parent, self.pg_port)
            shim.datadir = self.data_root / "pgdata"
            pids += [pm, *shim.children()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc and manager:
            self.proc.wait(10)
            self.proc = None
        deadline = time.monotonic() + 10
        while pm is not None and Path(f"/proc/{pm}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def status(self) -> dict[str, Any]:
        r = self.http.get(contract.InstancePaths.STATUS)
        r.raise_for_status()
        return cast(dict[str, Any], r.json())

    def promote(self, term: int) -> httpx.Response:
        return self.http.post(contract.InstancePaths.PROMOTE, json={contract.PromoteFields.TERM: term})

    def demote(self, term: int, writer: str) -> httpx.Response:
        body = {contract.PromoteFields.TERM: term, contract.PromoteFields.WRITER: writer}
        return self.http.post(contract.InstancePaths.DEMOTE, json=body)

    def ready(self) -> bool:
        try:
            return self.http.get(contract.InstancePaths.READINESS, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def wait(self, pred: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}: {self.log_tail()}")
            try:
                if pred():
                    return
            except (httpx.HTTPError, psycopg.Error) as err:
                last = err
            time.sleep(0.05)
        raise AssertionError(
            f"{self.name}: timed out after {timeout}s waiting for {what} ({last}); {self.log_tail()}"
        )

    def wait_ready(self, timeout: float = 60) -> None:
        self.wait(self.ready, timeout, "readiness")

    def log_tail(self, n: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def conninfo(self, user: tuple[str, str] = SUPERUSER, dbname: str = "appdb") -> str:
        return (
            f"host=127.0.0.1 port={self.pg_port} user={user[0]} password={user[1]} "
            f"dbname={dbname} connect_timeout=2"
        )

    def connect(self, **kw: Any) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.conninfo(**kw), autocommit=True)


class Bed:
    """Six storage nodes plus instances; ``writer`` is whoever the control plane last promoted."""

    def __init__(self, root: Path, control_tls: bool = False) -> None:
        self.root = root
        self.secrets = write_secrets(root)
        chown_tree(self.secrets)
        passfile = root / "storage-pgpass"
        passfile.write_text(f"*:*:*:{REPLICATION[0]}:{REPLICATION[1]}\n")
        passfile.chmod(0o600)
        storage_env = {"PGPASSFILE": str(passfile), contract.Env.SECRETS_DIR: str(self.secrets)}
        tls: dict[str, str] = {}
        if control_tls:  # the control endpoints speak HTTPS, as in pods with TLS on
            tls[contract.Env.CONTROL_TLS_DIR] = str(write_control_certificate(root))
            chown_tree(root / "control-tls")
            storage_env.update(tls)
        self.storage = StorageCluster(cast(PgCluster, None), root / "storage", storage_env)
        (root / "storage").mkdir()
        self.base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": PYTHONPATH,
            "HOME": str(root),
            contract.Env.CLUSTER_NAME: CLUSTER,
            contract.Env.SECRETS_DIR: str(self.secrets),
            contract.Env.STORAGE_NODES: ",".join(self.storage.urls),
            contract.EnvInstance.READER_MAX_LAG_SECONDS: "5",
            **tls,
        }
        self.config_dir = root / "config"  # the cluster ConfigMap: user PostgreSQL parameters
        self.config_dir.mkdir()
        chown_tree(self.config_dir)
        self.base_env[contract.EnvInstance.CONFIG_DIR] = str(self.config_dir)
        self.instances: list[Instance] = []
        self.writer: Instance | None = None
        self.term = 1

    def start_storage(self) -> None:
        for i in range(contract.STORAGE_NODES):
            self.storage.start(i, set_term=False)

    def add(self, name: str) -> Instance:
        pg_port, http_port = availability.free_ports(2)
        inst = Instance(name, self.root, pg_port, http_port, self.base_env)
        self.instances.append(inst)
        return inst

    def readers(self) -> list[Instance]:
        return [i for i in self.instances if i is not self.writer]

    def streaming_nodes(self) -> int:
        assert self.writer is not None
        with self.writer.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_replication WHERE application_name LIKE 'storage\\_%%' "
                "AND state = 'streaming'"
            ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        for inst in self.instances:
            with contextlib.suppress(Exception):
                inst.kill()
        self.storage.stop_all()


def require_postgres() -> None:
    if not (PG_BIN / "postgres").exists() or shutil.which("setpriv") is None:
        availability.unavailable(f"PostgreSQL 15 binaries or setpriv missing ({PG_BIN})")


@contextlib.contextmanager
def bed(root: Path, readers: int = 2, control_tls: bool = False) -> Iterator[Bed]:
    """Writer ``i0`` bootstrapped by the instance manager, ``readers`` readers copied from it, six nodes;
    with ``control_tls`` every control endpoint speaks HTTPS."""
    require_postgres()
    b = Bed(root, control_tls)
    try:
        b.start_storage()
        w = b.add("i0")
        w.start(contract.ROLE_WRITER, b.term)
        b.writer = w
        w.wait_ready(90)
        w.wait(lambda: b.streaming_nodes() >= contract.STORAGE_NODES, 30, "six storage nodes streaming")
        for n in range(readers):
            r = b.add(f"i{n + 1}")
            r.start(contract.ROLE_READER, b.term, writer=w.endpoint)
        for r in b.readers():
            r.wait_ready(90)
        yield b
    finally:
        b.close()
